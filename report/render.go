package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Markdown renders the report for people: the outcome first, then the
// objectives, the point, the verification table, the gates and every step.
func (r Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	kind := r.Kind
	if r.Kind == "failover" || r.Kind == "failback" {
		kind = "unplanned " + r.Kind
		if r.Planned {
			kind = "planned " + r.Kind
		}
	}
	w("# drover %s report: %s\n\n", kind, r.Plan)
	w("| | |\n|---|---|\n")
	w("| outcome | **%s** |\n", r.Outcome)
	if r.Error != "" {
		w("| error | %s |\n", cell(r.Error))
	}
	w("| run | `%s` / `%s` |\n", r.WorkflowID, r.RunID)
	w("| started | %s |\n| ended | %s (%s) |\n", stamp(r.Started), stamp(r.Ended), r.Ended.Sub(r.Started).Round(time.Millisecond))
	if !r.Declared.IsZero() {
		w("| disaster declared | %s |\n", stamp(r.Declared))
	}
	if !r.Redirected.IsZero() {
		w("| traffic redirected | %s |\n", stamp(r.Redirected))
	}
	w("| RPO | %s |\n| RTO | %s |\n\n", objective(r.RPO), objective(r.RTO))

	if r.Point != nil {
		p := r.Point
		w("## Recovery point\n\n`%s` (%s", p.ID, p.Mode)
		if p.BaseID != "" {
			w(" on `%s`", p.BaseID)
		}
		w("), captured %s, consistency %s, validity %s", stamp(p.Captured), p.Consistency, p.Validity)
		if p.Bytes > 0 {
			w(", %d bytes", p.Bytes)
		}
		if p.Cold {
			w(", cold (the whole scope stopped while it was captured)")
		}
		if p.Configuration != "" {
			w(", configuration `%s` (first seen %s)", p.Configuration, stamp(p.ConfigurationSince))
		}
		w(".\n\n")
		if p.Quiesce != nil {
			w("Writes paused %s.\n\n", p.Quiesce)
		}
	}
	for _, p := range r.Abandoned {
		w("- abandoned after failed verification: `%s` captured %s\n", p.ID, stamp(p.Captured))
	}
	if len(r.Abandoned) > 0 {
		w("\n")
	}
	if len(r.Sites) > 0 {
		w("## Sites\n\n| role | site | left in state |\n|---|---|---|\n")
		for _, s := range r.Sites {
			w("| %s | %s | %s |\n", s.Role, s.Site, cell(s.State))
		}
		w("\n")
	}
	if len(r.Replicas) > 0 {
		w("## Replication\n\n")
		for _, rp := range r.Replicas {
			if l := rp.LagAtDeclaration; l != nil {
				w("- `%s`: lag at declaration: %s\n", rp.Component, cell(l.String()))
			}
			for _, st := range rp.Steps {
				w("- `%s`: %s at %s: %s", rp.Component, st.Action, st.Site, cell(st.Method))
				if st.Position != "" {
					w(", position %s", st.Position)
				}
				if st.Timeline > 0 {
					w(", timeline %d", st.Timeline)
				}
				if st.Action == "switchover" {
					w(", lost %d bytes", st.LostBytes)
				}
				if st.Detail != "" {
					w(" (%s)", cell(st.Detail))
				}
				w("\n")
			}
		}
		w("\n")
	}
	if len(r.SiteChecks) > 0 {
		w("## Site checks (seed 000 §3)\n\n| result | check | evidence |\n|---|---|---|\n")
		for _, c := range r.SiteChecks {
			res := "pass"
			if !c.Result.Passed {
				res = "**FAIL**"
			}
			w("| %s | %s | %s |\n", res, c.Name, cell(c.Result.Summary))
		}
		w("\n")
	}
	if v := r.Verification; v != nil {
		w("## Verification")
		if v.Site != "" {
			w(" of %s", v.Site)
		}
		w(" (valid: %v)\n\n| level | fatal | result | check | evidence |\n|---|---|---|---|---|\n", v.Valid)
		for _, l := range v.Levels {
			if !l.Ran {
				w("| %s | %v | not run | | |\n", l.Level, l.Fatal)
				continue
			}
			for _, c := range l.Checks {
				res := "pass"
				if !c.Result.Passed {
					res = "**FAIL**"
				}
				w("| %s | %v | %s | %s | %s |\n", l.Level, l.Fatal, res, c.Name, cell(c.Result.Summary+timing(l)))
			}
		}
		for _, f := range v.Findings {
			w("\n- finding: %s", cell(f))
		}
		w("\n\n")
	}
	if len(r.Gates) > 0 {
		w("## Gates\n\n| gate | outcome | opened | closed | decisions |\n|---|---|---|---|---|\n")
		for _, g := range r.Gates {
			var ds []string
			for _, a := range g.Approvals {
				sig := ""
				if a.Signed {
					sig = " (signed " + a.Signer + ")"
				}
				d := fmt.Sprintf("%s: %s at %s%s", a.Approver, a.Decision, stamp(a.At), sig)
				if a.Comment != "" {
					d += " — " + a.Comment
				}
				ds = append(ds, d)
			}
			w("| %s | %s | %s | %s | %s |\n", g.Name, g.Outcome, stamp(g.Opened), stamp(g.Closed), cell(strings.Join(ds, "; ")))
		}
		w("\n")
		for _, g := range r.Gates {
			if g.Detail == "" && len(g.Checklist) == 0 {
				continue
			}
			w("**%s**: %s\n\n", g.Name, g.Detail)
			done := g.Outcome != "pending" && g.Outcome != "timeout" && g.Outcome != "reject" && g.Outcome != "abort"
			for _, item := range g.Checklist {
				mark := " "
				if done {
					mark = "x"
				}
				w("- [%s] %s\n", mark, item)
			}
			if len(g.Checklist) > 0 {
				w("\n")
			}
		}
	}
	if len(r.Ignored) > 0 {
		w("## Signals ignored\n\n")
		for _, s := range r.Ignored {
			if s.Dropped > 0 {
				w("- %s\n", cell(s.Reason))
				continue
			}
			w("- %s gate %q from %q: %s\n", stamp(s.At), s.Gate, s.Approver, cell(s.Reason))
		}
		w("\n")
	}
	w("## Steps\n\n| step | run | phase | started | ended | attempts | outcome | where | detail |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Steps {
		where := s.Site
		if s.Host != "" {
			where += "/" + s.Host
		}
		if s.Worker != "" {
			where += " (" + s.Worker + ")"
		}
		w("| %s | %s | %s | %s | %s | %d | %s | %s | %s |\n", s.Name, s.Run, s.Phase, stamp(s.Started), stamp(s.Ended), s.Attempts, s.Outcome,
			cell(where), cell(s.Detail))
	}
	var withOutput []Step
	for _, s := range r.Steps {
		if strings.TrimSpace(s.Output) != "" {
			withOutput = append(withOutput, s)
		}
	}
	if len(withOutput) > 0 {
		// Folded, so the table stays readable; a code fence in the output
		// would end the block early, so it is broken up.
		w("\n## Output\n")
		for _, s := range withOutput {
			name := s.Name
			if s.Run != "" {
				name = s.Run + ": " + name
			}
			w("\n<details><summary>%s</summary>\n\n```\n%s\n```\n\n</details>\n", name, strings.ReplaceAll(s.Output, "```", "` ` `"))
		}
	}
	for _, n := range r.Notes {
		w("\n- %s", n)
	}
	if len(r.Notes) > 0 {
		w("\n")
	}
	return b.String()
}

func objective(o Objective) string {
	if !o.Known {
		return fmt.Sprintf("not measured (target %s)", o.Target)
	}
	verdict := "met"
	if !o.Met {
		verdict = "**missed**"
	}
	return fmt.Sprintf("%s achieved against a target of %s: %s", o.Achieved.Round(time.Millisecond), o.Target, verdict)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// cell keeps a value on one Markdown table row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// FileName is the base name of a run's report files.
func FileName(workflowID, runID string) string {
	id := strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(workflowID)
	if runID != "" {
		id += "_" + runID
	}
	return id
}

// Write stores the report as FILE.json and FILE.md in dir, each written to a
// temporary name, synced and renamed, so a reader never sees half a report.
func Write(dir string, r Report) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("report dir %s: %w", dir, err)
	}
	base := filepath.Join(dir, FileName(r.WorkflowID, r.RunID))
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encode report: %w", err)
	}
	if err := writeAtomic(base+".json", data); err != nil {
		return "", "", err
	}
	if err := writeAtomic(base+".md", []byte(r.Markdown())); err != nil {
		return "", "", err
	}
	return base + ".json", base + ".md", nil
}

// Read loads a report written by Write.
func Read(path string) (Report, error) {
	var r Report
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: not a drover report: %w", path, err)
	}
	return r, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// timing says when a level's checks ran and how long they took.
func timing(l Level) string {
	if l.Started.IsZero() || l.Ended.IsZero() {
		return ""
	}
	return fmt.Sprintf(" (%s, %s)", l.Started.UTC().Format("15:04:05.000"), l.Ended.Sub(l.Started).Round(time.Millisecond))
}
