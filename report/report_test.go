package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/plan"
)

func sample() Report {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return Report{
		Kind: "failover", Plan: "lab", WorkflowID: "drover/lab/failover", RunID: "r1", Outcome: "completed",
		Started: t0, Ended: t0.Add(90 * time.Second), Declared: t0, Redirected: t0.Add(80 * time.Second),
		Point: &Point{ID: "p1", Mode: "full", Captured: t0.Add(-4 * time.Minute), Consistency: "quiesced", Validity: "valid",
			Quiesce: &QuiesceWindow{Start: t0.Add(-4 * time.Minute), End: t0.Add(-4*time.Minute + 1234*time.Millisecond), Duration: 1234 * time.Millisecond, Components: []string{"db", "dmgr"}}},
		RPO:   Measure(15*time.Minute, 4*time.Minute),
		RTO:   Measure(time.Minute, 80*time.Second),
		Steps: []Step{{Name: "restore cell", Phase: "restore", Started: t0, Ended: t0.Add(time.Second), Attempts: 1, Outcome: "ok", Detail: "a|b"}},
		Gates: []Gate{{Name: "start-secondary", Outcome: "approve", Opened: t0, Closed: t0.Add(time.Second),
			Approvals: []Approval{{Approver: "alice", Decision: "approve", At: t0.Add(time.Second), Signed: true, Signer: "SHA256:abc", Comment: "go"}}}},
		Verification: &Verification{Site: "dc2", Valid: true, Levels: []Level{
			{Level: plan.LevelSystem, Fatal: true, Passed: true, Ran: true, Checks: []Check{{Level: plan.LevelSystem, Name: "containers", Result: CheckResult{Passed: true, Summary: "4 of 4 started"}}}},
			{Level: plan.LevelInstance, Ran: true, Checks: []Check{{Level: plan.LevelInstance, Name: "instances", Result: CheckResult{Summary: "2 failed"}}}},
		}, Findings: []string{"instance/instances: 2 failed"}},
		Sites: []SiteState{{Role: "primary", Site: "dc1", State: "lost (disaster)"}},
	}
}

func TestMarkdownShowsWhatHappened(t *testing.T) {
	md := sample().Markdown()
	require.Contains(t, md, "# drover unplanned failover report: lab")
	require.Contains(t, md, "| RPO | 4m0s achieved against a target of 15m0s: met |")
	require.Contains(t, md, "| RTO | 1m20s achieved against a target of 1m0s: **missed** |")
	require.Contains(t, md, "| system | true | pass | containers | 4 of 4 started |")
	require.Contains(t, md, "| instance | false | **FAIL** | instances | 2 failed |")
	require.Contains(t, md, "alice: approve at 2026-11-23 10:00:01.000Z (signed SHA256:abc) — go")
	require.Contains(t, md, `a\|b`, "a pipe in a detail must not break the table")
	require.Contains(t, md, "| primary | dc1 | lost (disaster) |")
	require.Contains(t, md, "Writes paused 1.234s (db, dmgr) from 09:56:00.000 to 09:56:01.234 UTC.", "the point's quiesce window")
}

func TestWriteIsAtomicAndReadable(t *testing.T) {
	dir := t.TempDir()
	j, m, err := Write(dir, sample())
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "drover_lab_failover_r1.json"), j)
	require.FileExists(t, m)
	got, err := Read(j)
	require.NoError(t, err)
	require.Equal(t, sample().RTO, got.RTO)
	require.Equal(t, "p1", got.Point.ID)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary files left behind")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644))
	_, err = Read(filepath.Join(dir, "bad.json"))
	require.ErrorContains(t, err, "not a drover report")
}
