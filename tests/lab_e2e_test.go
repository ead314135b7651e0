package tests

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/sitefs"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// TestPlannedFailoverLosesNothing: a planned failover under load (drain,
// orderly stop of dc1, final backup, restore at dc2, redirect) loses no
// committed step at all. The load runs through the whole failover: orders
// refused while the front door is drained were never committed, so they are
// not in the ledger; orders after the redirect are taken at dc2.
func TestPlannedFailoverLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "planned"})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	ld := e.startLoad(20)
	time.Sleep(2 * time.Second)
	older := e.backup(ctx, e.p, contract.ModeFull, "before")
	time.Sleep(2 * time.Second)

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow,
		workflows.FailoverInput{Plan: *e.p, Planned: true})
	require.NoError(t, err)
	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)

	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	finished := time.Now()
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "planned failover")
	t.Logf("failover: point %s captured %s, RPO %s, RTO %s, report %s", res.Point.ID,
		res.Point.Instant.Format("15:04:05.000"), res.RPO.Achieved, res.RTO.Achieved, res.Report.Markdown)
	// A moment of orders at dc2 after the redirect.
	time.Sleep(time.Second)
	rep := ld.stop()
	t.Logf("load through the failover: %s; errors %v", rep.String(), rep.Errors)
	assert.Positive(t, rep.BySite["dc1"], "orders taken at dc1 before the failover")
	assert.Positive(t, rep.BySite["dc2"], "orders taken at dc2 after the redirect")

	// The point restored is the final invocation backup, taken after the
	// failover began, not the older one.
	require.NotEqual(t, older.ID, res.Point.ID, "a planned failover restores its own final backup")
	require.True(t, res.Point.Instant.After(older.Instant))
	assert.True(t, res.RPO.Known)
	assert.Zero(t, res.RPO.Achieved, "RPO achieved by a planned failover")
	assert.True(t, res.RPO.Met)

	// Every step committed anywhere before the failover ended is at dc2,
	// none twice.
	ledger, err := lab.CheckLedger(e.labDir, "dc2", finished)
	require.NoError(t, err)
	t.Logf("ledger: %s", ledger.String())
	require.Positive(t, ledger.Expected)
	assert.Zero(t, ledger.MissingCount, "steps lost by a planned failover: %v", ledger.Missing)
	assert.Zero(t, ledger.DuplicateCount, "work done twice: %v", ledger.Duplicates)
	assert.Equal(t, ledger.Expected, ledger.Present)

	// dc1 was stopped in order and runs nothing; dc2 serves the orders.
	assert.Empty(t, e.serverPIDs("dc1"), "servers still running at dc1 after a planned failover")
	assert.Len(t, e.serverPIDs("dc2"), len(e.l.Topo.Servers))
	route, err := e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc2", route)

	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	assert.True(t, r.Planned)
	assert.Equal(t, "completed", r.Outcome)
	assert.Zero(t, r.RPO.Achieved)
	recordHistoriesOf(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "planned"`,
		[]string{"FailoverWorkflow", "BackupWorkflow"}, os.Getenv("DROVER_RECORD_SUFFIX"))
}

// TestDrillLeavesPrimaryUntouched: a drill restores the newest valid point
// into the sandbox and verifies it while dc1 serves orders; afterwards every
// dc1 server is the same process as before, the load saw no failure, dc1
// still holds every committed step, and the sandbox holds no data and runs
// nothing. The drill's report carries its RTO.
func TestDrillLeavesPrimaryUntouched(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "drill"})
	e.up()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// A valid point to drill: taken and validated before the load starts.
	warm := e.startLoad(20)
	time.Sleep(2 * time.Second)
	pt := e.backup(ctx, e.p, contract.ModeFull, "drill")
	warm.stop()
	v := e.validate(ctx, e.p, pt.ID)
	require.True(t, v.Valid, "point %s: %s", pt.ID, v.Reason)

	pids := e.serverPIDs("dc1")
	require.Len(t, pids, len(e.l.Topo.Servers))
	ld := e.startLoad(20)
	time.Sleep(time.Second)

	var res workflows.DrillResult
	id := contract.DrillID(e.p.Name)
	begin := time.Now()
	err := e.run(ctx, id, contract.KindDrill, workflows.DrillWorkflow, workflows.DrillInput{Plan: *e.p}, &res)
	took := time.Since(begin)
	time.Sleep(time.Second)
	rep := ld.stop()
	require.NoError(t, err, "drill")
	t.Logf("drill in %s: point %s, RTO %s, report %s; load during it: %s", took.Round(time.Millisecond), res.Point.ID,
		res.RTO.Achieved, res.Report.Markdown, rep.String())

	assert.Equal(t, pt.ID, res.Point.ID, "the drill takes the newest valid point")
	assert.True(t, res.Verify.Valid)
	require.True(t, res.RTO.Known, "the drill measures an RTO")
	assert.Positive(t, res.RTO.Achieved)
	assert.Less(t, res.RTO.Achieved, took)

	// The primary: same processes, every order served, nothing lost.
	assert.Equal(t, pids, e.serverPIDs("dc1"), "dc1 servers restarted or stopped by the drill")
	require.Positive(t, rep.Accepted)
	assert.Zero(t, rep.Failed-stopped(rep), "orders failed during the drill: %v", rep.Errors)
	assert.Equal(t, map[string]int64{"dc1": rep.Accepted}, rep.BySite, "orders went elsewhere than dc1")
	route, err := e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc1", route)
	ledger, err := lab.CheckLedger(e.labDir, "dc1", time.Now())
	require.NoError(t, err)
	t.Logf("ledger at dc1: %s", ledger.String())
	assert.True(t, ledger.OK(), "dc1 after the drill: %s", ledger.String())

	// The sandbox: torn down, no data, no process.
	assert.Empty(t, e.serverPIDs("sandbox"))
	assert.Empty(t, labProcesses(e.labDir, "sandbox"), "sandbox servers left running")
	entries, err := os.ReadDir(e.l.L.DataRoot("sandbox"))
	if err == nil {
		var names []string
		for _, ent := range entries {
			if ent.Name() != sitefs.MarkerFile {
				names = append(names, ent.Name())
			}
		}
		assert.Empty(t, names, "sandbox data root %s still holds data", e.l.L.DataRoot("sandbox"))
	} else {
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	// dc2 was never touched either.
	assert.Empty(t, e.serverPIDs("dc2"))

	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	assert.Equal(t, "completed", r.Outcome)
	assert.True(t, r.RTO.Known)
	assert.Equal(t, res.RTO.Achieved, r.RTO.Achieved)
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	assert.Contains(t, string(md), "RTO")
	recordHistoriesOf(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "drill"`,
		[]string{"DrillWorkflow", "ValidateWorkflow"}, os.Getenv("DROVER_RECORD_SUFFIX"))
}

// stopped counts the orders a load report lists as failed only because the
// test stopped the load while they were in flight.
func stopped(rep lab.LoadReport) int64 {
	var n int64
	for msg, count := range rep.Errors {
		if strings.HasSuffix(msg, "context canceled") {
			n += count
		}
	}
	return n
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v), path)
}
