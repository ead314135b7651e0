package report

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// HTML writes the report as one self-contained HTML file (inline CSS and
// SVG, no external asset): the outcome, RPO and RTO against their targets,
// the timeline as a Gantt chart (phases, steps as bars with parallel steps
// side by side, gates as waiting bands, retries marked), the verification
// table and the approvals.
func HTML(w io.Writer, r Report) error {
	data := htmlData{R: r, T: layoutTimeline(r), Kind: r.Kind}
	if r.Kind == "failover" || r.Kind == "failback" {
		data.Kind = "unplanned " + r.Kind
		if r.Planned {
			data.Kind = "planned " + r.Kind
		}
	}
	for _, o := range []struct {
		name string
		o    Objective
	}{{"RPO", r.RPO}, {"RTO", r.RTO}} {
		data.Objectives = append(data.Objectives, newObjectiveView(o.name, o.o))
	}
	if err := htmlTemplate.Execute(w, data); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	return nil
}

type htmlData struct {
	R          Report
	T          timeline
	Kind       string
	Objectives []objectiveView
}

// objectiveView draws achieved against target on one scale.
type objectiveView struct {
	Name, Text, Class  string
	Known              bool
	AchievedW, TargetX float64
}

func newObjectiveView(name string, o Objective) objectiveView {
	v := objectiveView{Name: name, Known: o.Known, Text: objective(o)}
	if !o.Known {
		v.Class = "unknown"
		return v
	}
	v.Class = "met"
	if !o.Met {
		v.Class = "missed"
	}
	scale := max(o.Target, o.Achieved, time.Nanosecond)
	const width = 380.0
	v.AchievedW = max(width*float64(o.Achieved)/float64(scale), 1)
	v.TargetX = width * float64(o.Target) / float64(scale)
	return v
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp": stamp,
	"dur":   func(a, b time.Time) string { return b.Sub(a).Round(time.Millisecond).String() },
	"f":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"add":   func(a, b float64) float64 { return a + b },
	"half":  func(a float64) float64 { return a / 2 },
	"barH":  func() float64 { return tlBarHeight },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>drover {{.Kind}} report: {{.R.Plan}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 12px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #d8dde6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8} .outcome-completed{color:#137333;font-weight:700} .outcome-failed,.outcome-cancelled{color:#b3261e;font-weight:700}
.pass{color:#137333} .fail{color:#b3261e;font-weight:700} .notrun{color:#6b7280}
.obj{display:flex;align-items:center;gap:14px;margin:6px 0;font-size:14px} .obj b{width:40px}
svg text{font-family:system-ui,sans-serif}
</style></head><body>
<h1>drover {{.Kind}} report: {{.R.Plan}}</h1>
<table>
<tr><th>outcome</th><td class="outcome-{{.R.Outcome}}">{{.R.Outcome}}</td></tr>
{{if .R.Error}}<tr><th>error</th><td>{{.R.Error}}</td></tr>{{end}}
<tr><th>run</th><td><code>{{.R.WorkflowID}}</code> / <code>{{.R.RunID}}</code></td></tr>
<tr><th>started</th><td>{{stamp .R.Started}}</td></tr>
<tr><th>ended</th><td>{{stamp .R.Ended}} ({{dur .R.Started .R.Ended}})</td></tr>
{{if not .R.Declared.IsZero}}<tr><th>disaster declared</th><td>{{stamp .R.Declared}}</td></tr>{{end}}
{{if not .R.Redirected.IsZero}}<tr><th>traffic redirected</th><td>{{stamp .R.Redirected}}</td></tr>{{end}}
{{with .R.Point}}<tr><th>recovery point</th><td><code>{{.ID}}</code> ({{.Mode}}{{if .BaseID}} on <code>{{.BaseID}}</code>{{end}}), captured {{stamp .Captured}}, {{.Consistency}}, {{.Validity}}{{if .Cold}}, cold{{end}}{{if .Configuration}}, configuration <code>{{.Configuration}}</code> (first seen {{stamp .ConfigurationSince}}){{end}}{{with .Quiesce}}; writes paused {{.}}{{end}}</td></tr>{{end}}
</table>

<h2>Objectives</h2>
<div id="objectives">
{{range .Objectives}}<div class="obj"><b>{{.Name}}</b>
{{if .Known}}<svg class="objective {{.Class}}" data-objective="{{.Name}}" width="400" height="22" viewBox="0 0 400 22" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="3" width="390" height="16" fill="#eef1f5"/>
<rect class="achieved" x="0" y="3" width="{{f .AchievedW}}" height="16" fill="{{if eq .Class "met"}}#34a853{{else}}#d93025{{end}}"/>
<line class="target" x1="{{f .TargetX}}" y1="0" x2="{{f .TargetX}}" y2="22" stroke="#1d2430" stroke-width="2"/>
</svg>{{end}}<span>{{.Text}}</span></div>
{{end}}</div>

<h2>Timeline</h2>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{{f .T.Width}}" height="{{f .T.Height}}" overflow="visible" viewBox="0 0 {{f .T.Width}} {{f .T.Height}}" font-size="11">
<rect x="0" y="0" width="{{f .T.Width}}" height="{{f .T.Height}}" fill="#ffffff"/>
{{range .T.Phases}}<g class="phase" data-phase="{{.Name}}"><rect x="0" y="{{f .Y}}" width="{{f $.T.Width}}" height="{{f .H}}" fill="#f6f8fb"/><text x="6" y="{{f (add .Y 15)}}" fill="#1d2430" font-weight="600">{{.Name}}</text></g>
{{end}}{{range .T.Ticks}}<g class="tick"><line x1="{{f .X}}" y1="24" x2="{{f .X}}" y2="{{f $.T.Height}}" stroke="#e3e7ee"/><text x="{{f .X}}" y="18" text-anchor="middle" fill="#6b7280">{{.Label}}</text></g>
{{end}}{{range .T.Bands}}<rect class="gate-band" data-gate="{{.Gate}}" x="{{f .X}}" y="24" width="{{f .W}}" height="{{f (add $.T.Height -48)}}" fill="#fbbc04" fill-opacity="0.28" stroke="#e8a100" stroke-dasharray="4 3"><title>{{.Title}}</title></rect><text class="gate-label" x="{{f (add .X 3)}}" y="{{f (add $.T.Height -10)}}" fill="#8a5a00">gate {{.Gate}}</text>
{{end}}{{range .T.Bars}}<rect class="bar outcome-{{.Outcome}}" data-step="{{.Step}}" data-phase="{{.Phase}}" data-lane="{{.Lane}}" data-attempts="{{.Attempts}}" x="{{f .X}}" y="{{f .Y}}" width="{{f .W}}" height="{{f barH}}" rx="3" fill="{{if eq .Outcome "ok"}}#4285f4{{else if eq .Outcome "failed"}}#d93025{{else if eq .Outcome "skipped"}}#9aa0a6{{else}}#a142f4{{end}}"><title>{{.Title}}</title></rect>{{if .Label}}<text class="bar-label" x="{{f (add .X 5)}}" y="{{f (add .Y 12)}}" fill="#ffffff" font-size="10">{{.Label}}</text>{{end}}{{if gt .Attempts 1}}<g class="retry" data-step="{{.Step}}"><circle cx="{{f (add .X .W)}}" cy="{{f (add .Y (half barH))}}" r="6" fill="#ffffff" stroke="#d93025" stroke-width="2"/><text x="{{f (add .X .W)}}" y="{{f (add .Y 12)}}" text-anchor="middle" font-size="9" fill="#d93025">{{.Attempts}}</text></g>{{end}}
{{end}}{{range .T.Marks}}<g class="mark" data-mark="{{.Label}}"><line x1="{{f .X}}" y1="24" x2="{{f .X}}" y2="{{f $.T.Height}}" stroke="#1d2430" stroke-width="1.5" stroke-dasharray="2 2"/><text x="{{f (add .X 3)}}" y="32" fill="#1d2430">{{.Label}}</text></g>
{{end}}</svg>
<p style="font-size:12px;color:#6b7280">Bars are steps (blue ok, red failed, grey skipped, purple running); steps that ran at once sit in separate lanes of their phase; yellow bands are gates waiting for approval; a red ring with a number marks a step retried that many attempts.</p>

{{with .R.Verification}}<h2>Verification{{if .Site}} of {{.Site}}{{end}} (valid: {{.Valid}})</h2>
<table id="verification"><tr><th>level</th><th>fatal</th><th>result</th><th>check</th><th>evidence</th></tr>
{{range .Levels}}{{$l := .}}{{if not .Ran}}<tr><td>{{.Level}}</td><td>{{.Fatal}}</td><td class="notrun">not run</td><td></td><td></td></tr>{{else}}{{range .Checks}}<tr><td>{{$l.Level}}</td><td>{{$l.Fatal}}</td>{{if .Result.Passed}}<td class="pass">pass</td>{{else}}<td class="fail">FAIL</td>{{end}}<td>{{.Name}}</td><td>{{.Result.Summary}}</td></tr>{{end}}{{end}}
{{end}}</table>
{{if .Findings}}<ul>{{range .Findings}}<li>{{.}}</li>{{end}}</ul>{{end}}{{end}}

{{if .R.Gates}}<h2>Gates and approvals</h2>
<table id="approvals"><tr><th>gate</th><th>opened</th><th>closed</th><th>outcome</th><th>approver</th><th>decision</th><th>at</th><th>signed</th><th>comment</th></tr>
{{range .R.Gates}}{{$g := .}}{{if .Approvals}}{{range .Approvals}}<tr><td>{{$g.Name}}</td><td>{{stamp $g.Opened}}</td><td>{{stamp $g.Closed}}</td><td>{{$g.Outcome}}</td><td>{{.Approver}}</td><td>{{.Decision}}</td><td>{{stamp .At}}</td><td>{{if .Signed}}yes {{.Signer}}{{else}}no{{end}}</td><td>{{.Comment}}</td></tr>{{end}}{{else}}<tr><td>{{.Name}}</td><td>{{stamp .Opened}}</td><td>{{stamp .Closed}}</td><td>{{.Outcome}}</td><td colspan="5">no approval counted</td></tr>{{end}}{{end}}
</table>{{end}}

{{if .R.Sites}}<h2>Sites</h2><table><tr><th>role</th><th>site</th><th>left in state</th></tr>{{range .R.Sites}}<tr><td>{{.Role}}</td><td>{{.Site}}</td><td>{{.State}}</td></tr>{{end}}</table>{{end}}
{{if .R.Replicas}}<h2>Replication</h2><ul id="replication">{{range .R.Replicas}}{{$c := .Component}}{{with .LagAtDeclaration}}<li>{{$c}}: lag at declaration: {{.String}}</li>{{end}}{{range .Steps}}<li>{{$c}}: {{.Action}} at {{.Site}}: {{.Method}}{{if .Position}}, position {{.Position}}{{end}}{{if eq .Action "switchover"}}, lost {{.LostBytes}} bytes{{end}}{{if .Detail}} ({{.Detail}}){{end}}</li>{{end}}{{end}}</ul>{{end}}
{{if .R.Notes}}<h2>Notes</h2><ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
`))
