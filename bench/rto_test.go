package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/plan"
)

func TestParseCounts(t *testing.T) {
	got, err := ParseCounts("32, 1,8", RTOMaxN)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 8, 32}, got)
	for _, bad := range []string{"", "0", "a", "1,1", "-3", "1,,2", "201"} {
		_, err := ParseCounts(bad, RTOMaxN)
		assert.Error(t, err, bad)
	}
}

// The bench's plan is a valid plan with N app servers per product, every
// one of them in the storage group, and 9 tiers whatever N is.
func TestRTOPlanScalesTheAppTiers(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{1, 5} {
		path := filepath.Join(dir, "plan.yaml")
		require.NoError(t, os.WriteFile(path, []byte(rtoPlanText("rto-test", dir, n, 30000, 0.01)), 0o644))
		p, err := plan.LoadAndValidate(path, builtin.Registry(nil))
		require.NoError(t, err)
		assert.Len(t, p.Components, 2*n+8)
		assert.Len(t, p.Storage.Groups[0].Settings["members"], 2*n+8)
		tiers, err := plan.Tiers(p)
		require.NoError(t, err)
		require.Len(t, tiers, 9)
		assert.Len(t, tiers[5].Components, n, "bpm app tier")
		assert.Len(t, tiers[8].Components, n, "monitor app tier")
		for _, g := range p.Gates {
			if g.Name == "start-secondary" {
				assert.True(t, g.NoApproval, "the bench has nobody to open the start gate: it waives it")
			}
		}
		topo, _, err := labplan.Topology(p, 30000, 0.01)
		require.NoError(t, err)
		require.NoError(t, topo.Validate())
		assert.Len(t, topo.ByRole(lab.RoleApp, lab.ProductMonitor), n)
	}
}

// rtoAnalyse on a hand-made run: a restore, a tier of two members (the
// slower counts), a check, and gaps between them that are overhead.
func TestRTOAnalyseSplitsWorkAndOverhead(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	span := func(wf, act, key string, sched, begin, end int) rtoSpan {
		return rtoSpan{Workflow: wf, Activity: act, Key: key, Scheduled: at(sched), Begin: at(begin), End: at(end), Attempt: 1}
	}
	spans := []rtoSpan{
		span("f", "PlanLifecycle", "", 5, 10, 20),          // other 10
		span("f", "RestoreGroup", "cell", 30, 35, 135),     // restore 100
		span("f", "ApplyEnvironment", "", 140, 142, 152),   // restore 10
		span("f/r", "StartComponent", "a1", 160, 162, 362), // a1 200
		span("f/r", "StartComponent", "a2", 160, 170, 400), // a2 230
		span("f/r", "WaitReady", "a1", 365, 366, 376),      // a1 210
		span("f/r", "WaitReady", "a2", 405, 410, 420),      // a2 240: slowest
		{Workflow: "f/x/verify", Activity: "RunCheck", Key: "c", Level: "system", Scheduled: at(430), Begin: at(432), End: at(482), Attempt: 1}, // verify 50
		span("f", "WriteReport", "", 490, 492, 497), // other 5
	}
	tiers := []plan.Tier{{Index: 1, Components: []string{"a1", "a2"}}}
	w, ov := rtoAnalyse(spans, tiers, at(0), at(500))
	assert.Equal(t, 110*time.Millisecond, w.Restore)
	assert.Equal(t, 240*time.Millisecond, w.Start)
	assert.Equal(t, 50*time.Millisecond, w.Verify)
	assert.Equal(t, 15*time.Millisecond, w.Other)
	require.Len(t, w.Tiers, 1)
	assert.Equal(t, "a2", w.Tiers[0].Slowest)
	assert.Equal(t, 10*time.Millisecond, ov.RunStart)
	// Gaps: 20→35 (sched 30: 10 reaction, 5 dispatch), 135→142 (5+2),
	// 152→162 (8+2), 400→410 (5+5), 420→432 (10+2), 482→492 (8+2).
	assert.Equal(t, 46*time.Millisecond, ov.Reactions)
	assert.Equal(t, 18*time.Millisecond, ov.Dispatch)
	assert.Equal(t, 3*time.Millisecond, ov.Tail)
	// Busy 423ms (union of the spans) minus work 415ms.
	assert.Equal(t, 8*time.Millisecond, ov.Skew)
	f := rtoFailover{Took: 500 * time.Millisecond, Work: w, Overhead: ov}
	// Every millisecond of the run is work or one kind of overhead.
	assert.Equal(t, f.overhead(), ov.RunStart+ov.Reactions+ov.Dispatch+ov.Tail+ov.Skew)
	require.Len(t, ov.Gaps, 6)
	assert.Equal(t, 6, ov.ReactionCount)
	assert.Equal(t, rtoGap{After: "PlanLifecycle", Before: "RestoreGroup cell", Reaction: 10, Dispatch: 5, totalTime: 15 * time.Millisecond}, ov.Gaps[0])
	assert.Equal(t, []string{"WaitReady a2", "RunCheck c"}, []string{ov.Gaps[1].After, ov.Gaps[1].Before}, "the second longest, 12ms, before the check")
	assert.Equal(t, 9, ov.Activities)
	assert.Equal(t, 10*time.Millisecond, ov.DispatchMax)
}

func TestRTOJudgeAndPrint(t *testing.T) {
	rows := []rtoRow{
		rtoMakeRow(1, 12, rtoFailover{Took: 10 * time.Second, Work: rtoWork{Start: 9 * time.Second, Other: 600 * time.Millisecond}},
			rtoSequential{Took: 12 * time.Second}),
		rtoMakeRow(8, 26, rtoFailover{Took: 10500 * time.Millisecond, Work: rtoWork{Start: 10 * time.Second, Other: 100 * time.Millisecond}},
			rtoSequential{Took: 40 * time.Second}),
	}
	assert.InDelta(t, 400.0/9000*100, rows[0].OverheadPercent, 1e-9)
	assert.True(t, rows[0].OverheadGoalMet)
	assert.InDelta(t, 4.0, rows[1].OverheadPercent, 1e-9)
	goals := rtoJudge(rows)
	assert.True(t, goals.Compared)
	assert.True(t, goals.OverheadMet)
	assert.True(t, goals.FailoverFlat)
	assert.True(t, goals.SequentialGrows)
	rows[1].OverheadPercent, rows[1].OverheadGoalMet = 6, false
	assert.False(t, rtoJudge(rows).OverheadMet, "one N above 5% fails the goal")

	var b bytes.Buffer
	RTODoc{TimeScale: 0.02, Rounds: 1, StartupSeconds: map[string]float64{"app": 1.8}, Rows: rows, Goals: rtoJudge(rows)}.Print(&b)
	out := b.String()
	assert.Contains(t, out, "seq/failover")
	assert.Contains(t, out, "goal: orchestration overhead ≤ 5% of the critical path: no (N=1 4.4%, N=8 6.0%)")
	assert.Contains(t, out, "goal: failover flat in N (within ×1.10): yes")
	assert.Contains(t, out, "goal: sequential runbook grows with N (×1.5 or more): yes")
}

// The benchmark end to end on the real lab, tiny: the printed structure is
// checked, not the timings.
func TestBenchRTOSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lab, an embedded Temporal server and two failovers")
	}
	dir := t.TempDir()
	doc, err := RTO(context.Background(), testEnv(t), RTOOptions{Counts: []int{1, 2}, TimeScale: 0.002, Dir: dir, Rounds: 1,
		Timeout: 10 * time.Minute, LabExe: "auto"})
	require.NoError(t, err)
	require.Len(t, doc.Rows, 2)
	for i, n := range []int{1, 2} {
		r := doc.Rows[i]
		assert.Equal(t, n, r.N)
		assert.Equal(t, 2*n+8, r.Servers)
		assert.Equal(t, 9, r.Tiers)
		require.Len(t, r.TierSeconds, 9)
		assert.Equal(t, n, r.TierSeconds[5].Members)
		for _, tier := range r.TierSeconds {
			assert.NotEmpty(t, tier.Slowest, "tier %d has a measured slowest member", tier.Tier)
			assert.Positive(t, tier.Seconds)
		}
		assert.Positive(t, r.FailoverSeconds)
		assert.Positive(t, r.RestoreSeconds)
		assert.Positive(t, r.VerifySeconds)
		assert.InDelta(t, r.RestoreSeconds+r.StartSeconds+r.VerifySeconds, r.CriticalPathSeconds, 1e-6)
		assert.InDelta(t, r.FailoverSeconds-r.CriticalPathSeconds-r.OtherWorkSeconds, r.OverheadSeconds, 1e-6)
		assert.InDelta(t, r.SequentialSeconds/r.FailoverSeconds, r.Ratio, 1e-6)
		for _, part := range []string{"runStart", "reactions", "dispatch", "skew", "tail"} {
			assert.Contains(t, r.OverheadParts, part)
		}
		for _, act := range []string{"PlanLifecycle", "ChoosePoint", "WaitChecks", "Redirect", "WriteReport"} {
			assert.Contains(t, r.OtherWorkParts, act)
		}
		// one start-and-wait per member; a check per level; the rest.
		assert.GreaterOrEqual(t, r.Activities, r.Servers+6)
		assert.Positive(t, r.SequentialStartSeconds)
		assert.Positive(t, r.SequentialVerifySeconds)
	}
	assert.True(t, doc.Goals.Compared)
	assert.Equal(t, 5.0, doc.Goals.OverheadLimitPercent)

	// The labs are gone: no server of the bench is left running.
	for _, n := range []string{"n1", "n2"} {
		l, err := lab.Open(filepath.Join(dir, n), nil)
		require.NoError(t, err, "--dir keeps the labs' folders")
		for _, s := range l.Topo.Servers {
			assert.Empty(t, l.RunningSite(s.Name), "%s of %s still runs", s.Name, n)
		}
	}
}
