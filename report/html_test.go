package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/plan"
)

// failoverSample is a run with parallel steps, a retried step and two
// gates, over ten minutes.
func failoverSample() Report {
	r := sample()
	t0 := r.Started
	r.Ended = t0.Add(10 * time.Minute)
	r.Redirected = t0.Add(9 * time.Minute)
	r.RTO = Measure(15*time.Minute, 9*time.Minute)
	r.Steps = []Step{
		{Name: "choose point", Phase: "preflight", Started: t0, Ended: t0.Add(10 * time.Second), Attempts: 1, Outcome: "ok"},
		{Name: "restore cell", Phase: "restore", Started: t0.Add(2 * time.Minute), Ended: t0.Add(4 * time.Minute), Attempts: 1, Outcome: "ok"},
		{Name: "restore db", Phase: "restore", Started: t0.Add(2 * time.Minute), Ended: t0.Add(5 * time.Minute), Attempts: 3, Outcome: "ok", Detail: "retried after a timeout"},
		{Name: "start db2", Phase: "restart", Started: t0.Add(6 * time.Minute), Ended: t0.Add(6*time.Minute + 30*time.Second), Attempts: 1, Outcome: "ok"},
		{Name: "start app1", Phase: "restart", Started: t0.Add(7 * time.Minute), Ended: t0.Add(8 * time.Minute), Attempts: 1, Outcome: "ok"},
		{Name: "start app2", Phase: "restart", Started: t0.Add(7 * time.Minute), Ended: t0.Add(8*time.Minute + 20*time.Second), Attempts: 1, Outcome: "failed"},
		{Name: "redirect", Phase: "redirect", Started: t0.Add(8*time.Minute + 40*time.Second), Ended: t0.Add(9 * time.Minute), Attempts: 1, Outcome: "ok"},
	}
	r.Gates = []Gate{
		{Name: "accept-data-loss", Outcome: "approve", Opened: t0.Add(10 * time.Second), Closed: t0.Add(2 * time.Minute), Approvers: []string{"alice", "bob"}, Quorum: 1,
			Approvals: []Approval{{Approver: "alice", Decision: "approve", At: t0.Add(2 * time.Minute), Signed: true, Signer: "SHA256:abc", Comment: "dc1 is gone"}}},
		{Name: "start-secondary", Outcome: "approve", Opened: t0.Add(5 * time.Minute), Closed: t0.Add(6 * time.Minute), Approvers: []string{"bob"}, Quorum: 1,
			Approvals: []Approval{{Approver: "bob", Decision: "approve", At: t0.Add(6 * time.Minute)}}},
	}
	r.Verification.Levels = append(r.Verification.Levels, Level{Level: plan.LevelMonitoring, Ran: false})
	r.Verification.Levels[0].Checks = append(r.Verification.Levels[0].Checks, Check{Level: plan.LevelSystem, Name: "ports", Result: CheckResult{Passed: true, Summary: "<all> open"}})
	return r
}

// svgDoc is the part of the timeline the test reads.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []svgNode  `xml:",any"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) num(t *testing.T, name string) float64 {
	v, err := strconv.ParseFloat(n.attr(name), 64)
	require.NoError(t, err, "%s=%q", name, n.attr(name))
	return v
}

// find returns every descendant element whose class contains class.
func (n svgNode) find(class string) []svgNode {
	var out []svgNode
	for _, c := range n.Nodes {
		if strings.Contains(" "+c.attr("class")+" ", " "+class+" ") {
			out = append(out, c)
		}
		out = append(out, c.find(class)...)
	}
	return out
}

func timelineSVG(t *testing.T, page string) svgNode {
	t.Helper()
	i := strings.Index(page, `<svg id="timeline"`)
	require.GreaterOrEqual(t, i, 0)
	j := strings.Index(page[i:], "</svg>")
	require.Greater(t, j, 0)
	var root svgNode
	require.NoError(t, xml.Unmarshal([]byte(page[i:i+j+len("</svg>")]), &root), "the timeline is well-formed SVG")
	return root
}

func TestHTMLTimeline(t *testing.T) {
	r := failoverSample()
	var b bytes.Buffer
	require.NoError(t, HTML(&b, r))
	page := b.String()
	for _, bad := range []string{`src="http`, `href="http`, "<script", "<link", "@import"} {
		assert.NotContains(t, page, bad, "self-contained: no external asset")
	}
	assert.Contains(t, page, "drover unplanned failover report: lab")
	assert.Contains(t, page, "4m0s achieved against a target of 15m0s: met")
	assert.Contains(t, page, "&lt;all&gt; open", "evidence is escaped")
	assert.Contains(t, page, "dc1 is gone")
	assert.Contains(t, page, "SHA256:abc")
	assert.Contains(t, page, "writes paused 1.234s (db, dmgr) from 09:56:00.000 to 09:56:01.234 UTC", "the point's quiesce window")

	svg := timelineSVG(t, page)
	bars := svg.find("bar")
	require.Len(t, bars, len(r.Steps), "one bar per step")
	byStep := map[string]svgNode{}
	for _, bar := range bars {
		byStep[bar.attr("data-step")] = bar
	}
	left, right := tlLabelWidth, tlWidth-24
	scale := (right - left) / (10 * time.Minute).Seconds()
	// Positions follow time: restore cell starts at 2m and lasts 2m.
	cell := byStep["restore cell"]
	assert.InDelta(t, left+120*scale, cell.num(t, "x"), 0.1)
	assert.InDelta(t, 120*scale, cell.num(t, "width"), 0.1)
	// Steps that ran at once are side by side: same x, different lanes.
	db := byStep["restore db"]
	assert.Equal(t, cell.attr("x"), db.attr("x"))
	assert.NotEqual(t, cell.attr("y"), db.attr("y"))
	assert.NotEqual(t, cell.attr("data-lane"), db.attr("data-lane"))
	app1, app2 := byStep["start app1"], byStep["start app2"]
	assert.NotEqual(t, app1.attr("y"), app2.attr("y"))
	// Steps that followed each other share a lane.
	assert.Equal(t, byStep["start db2"].attr("y"), app1.attr("y"))
	// Phases stack downwards in the order they ran.
	assert.Less(t, byStep["choose point"].num(t, "y"), cell.num(t, "y"))
	assert.Less(t, db.num(t, "y"), app1.num(t, "y"))
	assert.Contains(t, app2.attr("class"), "outcome-failed")
	// The retried step is marked, and only it.
	retries := svg.find("retry")
	require.Len(t, retries, 1)
	assert.Equal(t, "restore db", retries[0].attr("data-step"))
	// Gates are bands over their waiting time.
	bands := svg.find("gate-band")
	require.Len(t, bands, 2)
	assert.Equal(t, "accept-data-loss", bands[0].attr("data-gate"))
	assert.InDelta(t, left+10*scale, bands[0].num(t, "x"), 0.1)
	assert.InDelta(t, 110*scale, bands[0].num(t, "width"), 0.1)
	assert.InDelta(t, left+300*scale, bands[1].num(t, "x"), 0.1)
	assert.Len(t, svg.find("phase"), 4)
	assert.NotEmpty(t, svg.find("bar-label"), "long bars carry their step's name")
	assert.NotEmpty(t, svg.find("tick"))
	assert.Len(t, svg.find("mark"), 2, "declared and redirected")
}

func TestHTMLWithoutSteps(t *testing.T) {
	r := sample()
	r.Steps, r.Gates, r.Verification, r.Point = nil, nil, nil, nil
	r.RTO = Objective{Target: time.Hour}
	var b bytes.Buffer
	require.NoError(t, HTML(&b, r))
	svg := timelineSVG(t, b.String())
	assert.Empty(t, svg.find("bar"))
	assert.Contains(t, b.String(), "not measured")
}

// TestHTMLRendersInChromium renders the report in headless Chromium and
// checks the screenshot: a PNG of the window's size, not blank, with the
// timeline's colours in it.
func TestHTMLRendersInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not found (CI installs Debian's chromium): %v", err)
		}
		t.Skip("chromium not found: apt-get install chromium")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	require.NoError(t, err)
	require.NoError(t, HTML(f, failoverSample()))
	require.NoError(t, f.Close())
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1200,1600", "file://"+page)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	if keep := os.Getenv("DROVER_REPORT_SCREENSHOT"); keep != "" {
		data, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(keep, data, 0o644))
	}
	sf, err := os.Open(shot)
	require.NoError(t, err)
	defer sf.Close()
	img, err := png.Decode(sf)
	require.NoError(t, err, "the screenshot is a PNG")
	require.Equal(t, 1200, img.Bounds().Dx())
	require.Equal(t, 1600, img.Bounds().Dy())
	colours := map[[3]uint32]int{}
	nonWhite := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, b >> 8}
			colours[c]++
			if c != [3]uint32{255, 255, 255} {
				nonWhite++
			}
		}
	}
	assert.Greater(t, nonWhite, 20000, "the page is not blank")
	near := func(want [3]uint32) int {
		n := 0
		for c, k := range colours {
			close := true
			for i := range 3 {
				if d := int(c[i]) - int(want[i]); d > 6 || d < -6 {
					close = false
				}
			}
			if close {
				n += k
			}
		}
		return n
	}
	assert.Greater(t, near([3]uint32{0x42, 0x85, 0xf4}), 500, "blue step bars are drawn")
	assert.Greater(t, near([3]uint32{0xd9, 0x30, 0x25}), 100, "the failed step and the retry mark are drawn in red")
}
