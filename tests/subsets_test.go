package tests

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// subsetsDeferred are the lab components the test's plan puts in the
// deferred class: Business Monitor, which the orders do not need.
var subsetsDeferred = []string{"mon-me1", "mon-support1", "mon-app1", "mon-app2"}

func subsetsPlan(text string) string {
	for _, name := range subsetsDeferred {
		text = strings.Replace(text, "\n  - name: "+name+"\n", "\n  - name: "+name+"\n    priority: deferred\n", 1)
	}
	return text
}

// TestSubsetsFailoverOnlyCriticalThenContinue: `drover failover --only
// critical` restores the whole point at dc2 but starts only the critical
// components, in the plan's tier order, and redirects; `drover failover
// --continue RUN` then starts the deferred ones from the same point,
// restoring nothing again and leaving the running servers alone.
func TestSubsetsFailoverOnlyCriticalThenContinue(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "subsets", edit: subsetsPlan})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pt := e.backup(ctx, e.p, contract.ModeFull, "subset")
	_, err := e.l.Disaster("dc1")
	require.NoError(t, err)

	var critical []string
	for _, c := range e.p.Components {
		if !slices.Contains(subsetsDeferred, c.Name) {
			critical = append(critical, c.Name)
		}
	}
	tiers, err := plan.Tiers(e.p)
	require.NoError(t, err)

	first, firstRep := subsetsFailover(t, ctx, e, "--unplanned", "--point", pt.ID, "--only", "critical")
	assert.Equal(t, pt.ID, first.res.Point.ID)
	assert.ElementsMatch(t, subsetsDeferred, first.res.Deferred)
	assert.ElementsMatch(t, critical, subsetsKeys(e.serverPIDs("dc2")), "only the critical servers run at dc2")
	route, err := e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc2", route, "the critical part serves traffic")
	assert.ElementsMatch(t, critical, subsetsStarted(t, firstRep, tiers), "started by the subset run")
	assert.True(t, slices.ContainsFunc(firstRep.Notes, func(n string) bool {
		return strings.Contains(n, "DR subset: classes critical brought up") && strings.Contains(n, "--continue "+first.runID)
	}), "the report names what waits and how to continue: %v", firstRep.Notes)
	running := e.serverPIDs("dc2")

	second, secondRep := subsetsFailover(t, ctx, e, "--continue", first.runID)
	assert.Equal(t, pt.ID, second.res.Point.ID, "the follow-up continues from the same point")
	require.NotNil(t, secondRep.Point)
	assert.Equal(t, firstRep.Point.ID, secondRep.Point.ID)
	for _, s := range secondRep.Steps {
		assert.False(t, strings.HasPrefix(s.Name, "restore group"), "the follow-up restored again: %s", s.Name)
	}
	// The follow-up goes through the whole order again: what runs is
	// found running and left alone (same processes), the rest starts.
	assert.ElementsMatch(t, subsetsKeys(subsetsNames(e.p.Components)), subsetsStarted(t, secondRep, tiers), "in order in the follow-up")
	all := e.serverPIDs("dc2")
	assert.Len(t, all, len(e.p.Components), "the whole cell runs at dc2")
	for name, pid := range running {
		assert.Equal(t, pid, all[name], "%s was restarted by the follow-up", name)
	}
	assert.True(t, slices.ContainsFunc(secondRep.Notes, func(n string) bool {
		return strings.Contains(n, "continues failover "+first.runID+" from point "+pt.ID)
	}), "notes: %v", secondRep.Notes)
	require.NotNil(t, secondRep.Verification)
	route, err = e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc2", route)
}

type subsetsRun struct {
	runID string
	res   workflows.FailoverResult
}

// subsetsFailover runs `drover failover` with args, approves its gates and
// waits for it; it returns the result and the report.
func subsetsFailover(t *testing.T, ctx context.Context, e *labEnv, args ...string) (subsetsRun, report.Report) {
	t.Helper()
	out, err := e.drover(append([]string{"failover", "--plan", e.planPath, "-o", "json"}, args...)...)
	require.NoError(t, err)
	var ids struct {
		WorkflowID string `json:"workflowId"`
		RunID      string `json:"runId"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ids), out)
	actx, stop := context.WithCancel(ctx)
	approved := e.autoApprove(actx, ids.WorkflowID)
	var run subsetsRun
	run.runID = ids.RunID
	err = e.c.GetWorkflow(ctx, ids.WorkflowID, ids.RunID).Get(ctx, &run.res)
	stop()
	t.Logf("failover %v: gates approved %v", args, <-approved)
	require.NoError(t, err, "failover %v", args)
	var r report.Report
	readJSON(t, run.res.Report.JSON, &r)
	assert.Equal(t, "completed", r.Outcome)
	return run, r
}

// subsetsStarted returns the components a run's report says it started,
// checking they came up in tier order: no start of a tier began before
// every start of an earlier tier was done.
func subsetsStarted(t *testing.T, r report.Report, tiers []plan.Tier) []string {
	t.Helper()
	tierOf := map[string]int{}
	for _, tr := range tiers {
		for _, c := range tr.Components {
			tierOf[c] = tr.Index
		}
	}
	var starts []report.Step
	for _, s := range r.Steps {
		if name, ok := strings.CutPrefix(s.Name, "start "); ok {
			if _, known := tierOf[name]; known {
				require.Equal(t, "ok", s.Outcome, "%s", s.Name)
				starts = append(starts, s)
			}
		}
	}
	var names []string
	for _, a := range starts {
		an := strings.TrimPrefix(a.Name, "start ")
		names = append(names, an)
		for _, b := range starts {
			bn := strings.TrimPrefix(b.Name, "start ")
			if tierOf[an] < tierOf[bn] {
				assert.False(t, b.Started.Before(a.Ended), "%s (tier %d) began before %s (tier %d) was up", bn, tierOf[bn], an, tierOf[an])
			}
		}
	}
	return names
}

func subsetsNames(cs []plan.Component) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		out[c.Name] = 0
	}
	return out
}

func subsetsKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
