package starter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/report"
)

// drover report --format html writes the run's page with its timeline.
func TestReportWritesOneHTMLPage(t *testing.T) {
	useFakePlanChecker(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	require.NoError(t, os.MkdirAll(store, 0o755))
	planFile := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(planFile, []byte(`apiVersion: drover/v1
name: shop
rpo: 15m
rto: 1h
products: [shop]
sites:
  primary: {name: dc1}
  secondary: {name: dc2}
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
components:
  - {name: db, role: database, driver: exec, settings: {start: "true", stop: "true", status: "true"}}
storage:
  store: {path: `+store+`}
`), 0o644))
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	r := report.Report{Kind: "failover", Plan: "shop", WorkflowID: "drover/shop/switchover", RunID: "r1", Outcome: "completed",
		Started: at, Ended: at.Add(time.Minute), Declared: at, Redirected: at.Add(50 * time.Second),
		RPO: report.Measure(15*time.Minute, 2*time.Minute), RTO: report.Measure(time.Hour, 50*time.Second),
		Steps: []report.Step{{Name: "restore group cell", Phase: "restore", Started: at.Add(time.Second), Ended: at.Add(20 * time.Second), Outcome: "ok", Site: "dc2"}}}
	_, _, err := report.Write(activities.ReportDir(store, "shop"), r)
	require.NoError(t, err)

	out := filepath.Join(dir, "failover.html")
	code, stdout, stderr := runDrover("report", "drover/shop/switchover", "--plan", planFile, "--format", "html", "--out", out)
	require.Equal(t, ExitOK, code, stderr)
	assert.Contains(t, stdout, "written to "+out)
	page, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<svg")
	assert.Contains(t, string(page), "restore group cell")
	assert.False(t, strings.Contains(string(page), "http://") && strings.Contains(string(page), "<script src="), "self-contained")

	code, _, stderr = runDrover("report", "drover/shop/switchover", "--plan", planFile, "--format", "html")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, stderr, "give --out FILE")
}

// A failover and the failback after it share the switchover workflow id:
// drover report tells them apart by run id and kind, and says which
// failover a failback follows.
func TestReportTellsFailoverAndFailbackApart(t *testing.T) {
	useFakePlanChecker(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	require.NoError(t, os.MkdirAll(store, 0o755))
	planFile := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(planFile, []byte(`apiVersion: drover/v1
name: shop
rpo: 15m
rto: 1h
products: [shop]
sites:
  primary: {name: dc1}
  secondary: {name: dc2}
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
components:
  - {name: db, role: database, driver: exec, settings: {start: "true", stop: "true", status: "true"}}
storage:
  store: {path: `+store+`}
`), 0o644))
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	reports := activities.ReportDir(store, "shop")
	for _, r := range []report.Report{
		{Kind: "failover", Plan: "shop", WorkflowID: "drover/shop/switchover", RunID: "r-over", Outcome: "completed", Started: at, Ended: at.Add(time.Minute)},
		{Kind: "failback", Plan: "shop", WorkflowID: "drover/shop/switchover", RunID: "r-back", Outcome: "completed", Planned: true, Started: at.Add(time.Hour), Ended: at.Add(61 * time.Minute)},
	} {
		_, _, err := report.Write(reports, r)
		require.NoError(t, err)
	}
	code, out, errs := runDrover("report", "r-back", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "# drover planned failback report: shop")
	assert.Contains(t, out, "follows the unplanned failover run r-over of drover/shop/switchover")

	code, out, errs = runDrover("report", "drover/shop/switchover", "--kind", "failover", "--plan", planFile, "-o", "json")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, `"runId": "r-over"`)
	assert.Contains(t, out, `"relation": "followedBy"`)
	assert.Contains(t, out, `"runId": "r-back"`)
}
