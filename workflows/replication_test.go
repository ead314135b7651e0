package workflows

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/plan"
)

// replicaCell is a replicating database driver over the fake cell: which
// site's copy takes writes, whether the standby streams and how far behind
// it is. It records every replication call with the site it acted on.
type replicaCell struct {
	*siteCell
	mu         sync.Mutex
	primary    string
	streaming  bool
	lagBytes   int64
	lagSeconds float64
	// behind is how many lag measurements still find the standby behind
	// before it has caught up.
	behind    int
	lostBytes int64
	failFence bool
	calls     []string
}

func newReplicaCell(cell *siteCell) *replicaCell {
	return &replicaCell{siteCell: cell, primary: "dc1", streaming: true, lagBytes: 8192, lagSeconds: 0.4}
}

func (c *replicaCell) call(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *replicaCell) setRunning(t drivers.Target, running bool) {
	c.siteCell.mu.Lock()
	defer c.siteCell.mu.Unlock()
	c.siteCell.running[key(t)] = running
}

func (c *replicaCell) isRunning(t drivers.Target) bool {
	c.siteCell.mu.Lock()
	defer c.siteCell.mu.Unlock()
	return c.siteCell.running[key(t)]
}

func (c *replicaCell) Seed(_ context.Context, p, s drivers.Target) (drivers.ReplicationResult, error) {
	c.call("seed " + s.Site.Name + " from " + p.Site.Name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streaming {
		return drivers.ReplicationResult{Action: "seed", Role: drivers.RoleStandby, AlreadyDone: true}, nil
	}
	c.streaming = true
	c.setRunning(s, true)
	return drivers.ReplicationResult{Action: "seed", Method: "pg_basebackup", Role: drivers.RoleStandby, Position: "0/3000000"}, nil
}

func (c *replicaCell) Lag(_ context.Context, p, s drivers.Target) (drivers.ReplicationLag, error) {
	c.call("lag " + s.Site.Name)
	primaryUp := c.isRunning(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	lag := drivers.ReplicationLag{Bytes: c.lagBytes, BytesKnown: primaryUp, Seconds: c.lagSeconds, SecondsKnown: true,
		ReplayedPosition: "0/2FFE000", Streaming: c.streaming && primaryUp, PrimaryReachable: primaryUp, StandbyReachable: true,
		MeasuredAt: time.Now()}
	if primaryUp {
		lag.PrimaryPosition = "0/3000000"
	}
	if c.behind > 0 {
		c.behind--
		lag.Bytes, lag.Seconds = 1<<20, 5
	} else if c.primary != "dc1" {
		lag.Bytes, lag.Seconds = 0, 0
	}
	return lag, nil
}

func (c *replicaCell) Promote(_ context.Context, s drivers.Target) (drivers.ReplicationResult, error) {
	c.call("promote " + s.Site.Name)
	c.setRunning(s, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primary, c.streaming = s.Site.Name, false
	return drivers.ReplicationResult{Action: "promote", Method: "pg_promote", Role: drivers.RolePrimary, Position: "0/3000060", Timeline: 2}, nil
}

func (c *replicaCell) Fence(_ context.Context, p drivers.Target) (drivers.ReplicationResult, error) {
	c.call("fence " + p.Site.Name)
	c.mu.Lock()
	fail := c.failFence
	c.mu.Unlock()
	if fail {
		return drivers.ReplicationResult{Action: "fence"}, fmt.Errorf("pg_ctl stop: permission denied")
	}
	c.setRunning(p, false)
	return drivers.ReplicationResult{Action: "fence", Method: "stopped"}, nil
}

func (c *replicaCell) Reseed(_ context.Context, n, o drivers.Target) (drivers.ReplicationResult, error) {
	c.call("reseed " + o.Site.Name + " from " + n.Site.Name)
	c.setRunning(o, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streaming = true
	return drivers.ReplicationResult{Action: "reseed", Method: "pg_rewind", Role: drivers.RoleStandby}, nil
}

func (c *replicaCell) Switchover(_ context.Context, p, s drivers.Target) (drivers.ReplicationResult, error) {
	c.call("switchover " + p.Site.Name + " to " + s.Site.Name)
	c.setRunning(s, true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primary, c.streaming = s.Site.Name, true
	return drivers.ReplicationResult{Action: "switchover", Method: "stop fast, replay check, pg_promote, pg_rewind", Role: drivers.RoleStandby,
		Position: "0/4000000", Timeline: 3, LostBytes: c.lostBytes}, nil
}

func (c *replicaCell) recorded() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// replicated turns the test plan's database into a replicated PostgreSQL
// with its standby at dc2; withGroups false leaves the plan no storage group.
func replicated(t *testing.T, withGroups bool) (*drEnv, *replicaCell) {
	e := newDREnv(t)
	rc := newReplicaCell(e.cell)
	e.register = func(reg *drivers.Registry) { reg.RegisterMiddleware("pg", rc) }
	e.plan.Components[0].Driver = "pg"
	e.plan.Components[0].Replication = &plan.Replication{Standby: "dc2"}
	e.plan.Storage.Groups[0].Components = []string{"app"}
	if !withGroups {
		e.plan.Storage.Groups = nil
	}
	e.plan.Order = []plan.Tier{{Index: 0, Components: []string{"db"}}, {Index: 1, Components: []string{"app"}}}
	e.cell.running["dc1/db"], e.cell.running["dc1/app"], e.cell.running["dc2/db"] = true, true, true
	return e, rc
}

func index(t *testing.T, calls []string, call string) int {
	t.Helper()
	i := slices.Index(calls, call)
	require.GreaterOrEqual(t, i, 0, "%q not in %v", call, calls)
	return i
}

func TestReplicatedFailoverOfALostSitePromotesTheStandbyAndRestoresTheRest(t *testing.T) {
	e, rc := replicated(t, true)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	// dc1 is destroyed: its server and its worker are gone (and with them
	// its installation manifest, which this test does not compare).
	e.plan.Sites.Primary.Installation, e.plan.Sites.Secondary.Installation = "", ""
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = false, false
	e.missingQueues = map[string]bool{contract.SiteQueue("dc1"): true}
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	res, rep := failoverReport(t, env)

	calls := rc.recorded()
	require.Less(t, index(t, calls, "lag dc2"), index(t, calls, "promote dc2"), "lag measured at declaration, before the promotion")
	require.NotContains(t, calls, "fence dc1", "no worker answers at dc1: nothing to fence")
	require.Equal(t, "dc2", rc.primary)
	require.Equal(t, pt.ID, res.Point.ID, "the rest of the cell is restored from the point")
	require.Equal(t, []string{"dc2/app"}, e.cell.starts, "the app starts at dc2 beside the promoted database (already running)")
	require.Equal(t, "dc2", e.cell.pointsAt)

	require.Len(t, rep.Replicas, 1)
	lag := rep.Replicas[0].LagAtDeclaration
	require.NotNil(t, lag)
	require.False(t, lag.BytesKnown, "the lost primary leaves the bytes unknown")
	require.InDelta(t, 0.4, lag.Seconds, 1e-9)
	var actions []string
	for _, s := range rep.Replicas[0].Steps {
		actions = append(actions, s.Action+"@"+s.Site+":"+s.Method)
	}
	require.Equal(t, []string{"fence@dc1:not reached", "promote@dc2:pg_promote"}, actions)
	require.True(t, res.RPO.Known)
	require.Equal(t, 400*time.Millisecond, res.RPO.Achieved, "the RPO is the point's age or the lag, whichever is larger: the point is newer")
	md := readMarkdown(t, res.Report.Markdown)
	require.Contains(t, md, "lag at declaration: bytes unknown (primary unreachable), 0.400 s, standby replayed 0/2FFE000")
}

func TestReplicatedFailoverFencesAReachablePrimaryWithoutAnyPoint(t *testing.T) {
	e, rc := replicated(t, false)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	res, rep := failoverReport(t, env)
	calls := rc.recorded()
	require.Less(t, index(t, calls, "lag dc2"), index(t, calls, "fence dc1"))
	require.Less(t, index(t, calls, "fence dc1"), index(t, calls, "promote dc2"), "fenced before the standby takes writes")
	require.False(t, e.cell.running["dc1/db"])
	require.False(t, e.cell.running["dc1/app"], "the rest of the primary is stopped too")
	require.Empty(t, res.Point.ID, "no storage group: no point")
	require.Nil(t, rep.Point)
	require.Equal(t, "dc2", e.cell.pointsAt)
	lag := rep.Replicas[0].LagAtDeclaration
	require.True(t, lag.BytesKnown)
	require.Equal(t, int64(8192), lag.Bytes)
	require.Equal(t, 400*time.Millisecond, res.RPO.Achieved)
}

func TestReplicatedFailoverAsksWhenTheStandbyIsBehindTheRPO(t *testing.T) {
	e, rc := replicated(t, false)
	rc.lagSeconds = 2 * time.Hour.Seconds()
	env := e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: "ops", Decision: contract.DecisionReject})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.ErrorContains(t, env.GetWorkflowError(), "gate "+contract.GateAcceptDataLoss)
	require.NotContains(t, rc.recorded(), "promote dc2", "a refused loss promotes nothing")
	require.Equal(t, "dc1", rc.primary)
}

func TestReplicatedFailoverAsksWhenAnAnsweringPrimaryCannotBeFenced(t *testing.T) {
	e, rc := replicated(t, false)
	rc.failFence = true
	e.withGate(contract.GatePrimaryAlive)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GatePrimaryAlive, Approver: "ops", Decision: contract.DecisionReject})
	}, 2*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.ErrorContains(t, env.GetWorkflowError(), "gate "+contract.GatePrimaryAlive)
	require.NotContains(t, rc.recorded(), "promote dc2")
}

func TestPlannedReplicatedFailoverSwitchesOverLosingNothing(t *testing.T) {
	e, rc := replicated(t, true)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Planned: true})
	require.NoError(t, env.GetWorkflowError())
	_, rep := failoverReport(t, env)
	calls := rc.recorded()
	require.Contains(t, calls, "switchover dc1 to dc2")
	require.NotContains(t, calls, "promote dc2", "planned: a switchover, not a promotion")
	require.Equal(t, []string{"dc1/app"}, e.cell.stops, "the orderly stop leaves the database to its switchover")
	require.Equal(t, "dc2", e.cell.pointsAt)
	require.Nil(t, rep.Replicas[0].LagAtDeclaration)
	require.Equal(t, "switchover", rep.Replicas[0].Steps[0].Action)
	require.Zero(t, rep.Replicas[0].Steps[0].LostBytes)
}

func TestASwitchoverThatLostBytesOpensAcceptDataLoss(t *testing.T) {
	e, rc := replicated(t, false)
	rc.lostBytes = 512
	env := e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: "ops", Decision: contract.DecisionReject})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Planned: true})
	err := env.GetWorkflowError()
	require.ErrorContains(t, err, "gate "+contract.GateAcceptDataLoss)
	require.Empty(t, e.cell.pointsAt, "nothing redirected")
}

func TestReplicatedFailbackReseedsCatchesUpDrainsAndSwitchesOver(t *testing.T) {
	e, rc := replicated(t, true)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, "dc2", rc.primary)

	rc.behind = 3
	before := len(rc.recorded())
	env = e.env()
	e.approve(env, time.Minute, contract.GateFailback)
	env.ExecuteWorkflow(FailbackWorkflow, FailbackInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res FailbackResult
	require.NoError(t, env.GetWorkflowResult(&res))
	calls := rc.recorded()[before:]
	reseed := index(t, calls, "reseed dc1 from dc2")
	switchover := index(t, calls, "switchover dc2 to dc1")
	lags := 0
	for _, c := range calls[reseed:switchover] {
		if c == "lag dc1" {
			lags++
		}
	}
	require.Equal(t, 4, lags, "the lag is polled until the former primary caught up")
	require.Equal(t, "dc1", rc.primary)
	require.Equal(t, []string{"dc2"}, e.cell.drained)
	require.Equal(t, "dc1", e.cell.pointsAt)
	require.False(t, e.cell.running["dc2/app"], "the rest of dc2 stopped")
}

func TestRPOMonitorSeedsTheStandbyAndJudgesItsLag(t *testing.T) {
	e, rc := replicated(t, false)
	rc.streaming = false
	env := e.env()
	env.RegisterWorkflow(RPOMonitorWorkflow)
	var seen []RPOStatus
	queryRPOAt(t, env, &seen, 5*time.Minute)
	env.RegisterDelayedCallback(func() {
		rc.mu.Lock()
		rc.lagSeconds = 2 * time.Hour.Seconds()
		rc.mu.Unlock()
	}, 20*time.Minute)
	queryRPOAt(t, env, &seen, 45*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e.plan, Interval: 10 * time.Minute, ChecksPerRun: 6})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Equal(t, "seed dc2 from dc1", rc.recorded()[1], "a standby not streaming is seeded when the plan is enabled")
	require.Len(t, seen, 2)
	require.Equal(t, contract.RPOOk, seen[0].Status)
	require.Len(t, seen[0].Replicas, 1)
	require.True(t, seen[0].Replicas[0].Streaming)
	require.Equal(t, 400*time.Millisecond, seen[0].Age, "with no storage group the RPO is the lag")
	require.Equal(t, contract.RPOBreached, seen[1].Status)
	require.Equal(t, 2*time.Hour, seen[1].Age)
}

func TestWithoutReplicatedKeepsTheRestInOrder(t *testing.T) {
	e, _ := replicated(t, true)
	rest := withoutReplicated(&e.plan)
	require.Len(t, rest.Components, 1)
	require.Equal(t, []plan.Tier{{Index: 1, Components: []string{"app"}}}, rest.Order)
	require.Len(t, e.plan.Components, 2, "the plan itself is untouched")
}

func readMarkdown(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}
