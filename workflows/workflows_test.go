package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/plan"
)

// fakeCell is a middleware and probe driver over an in-memory cell: it
// records the order of starts and can be told to fail.
type fakeCell struct {
	mu       sync.Mutex
	running  map[string]bool
	starts   []string
	failures map[string]int // component -> starts that fail before one works
	failing  map[string]bool
	checks   map[string]bool // check name -> passes
}

func newFakeCell() *fakeCell {
	return &fakeCell{running: map[string]bool{}, failures: map[string]int{}, failing: map[string]bool{}, checks: map[string]bool{}}
}

func (f *fakeCell) Start(_ context.Context, t drivers.Target) (drivers.Evidence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[t.Component.Name] {
		return drivers.Evidence{Action: "start " + t.Component.Name, AlreadyDone: true}, nil
	}
	if f.failing[t.Component.Name] {
		return drivers.Evidence{}, fmt.Errorf("%s: exit status 1: port in use", t.Component.Name)
	}
	if f.failures[t.Component.Name] > 0 {
		f.failures[t.Component.Name]--
		return drivers.Evidence{}, fmt.Errorf("%s: transient failure", t.Component.Name)
	}
	f.running[t.Component.Name] = true
	f.starts = append(f.starts, t.Component.Name)
	return drivers.Evidence{Action: "start " + t.Component.Name}, nil
}

func (f *fakeCell) Stop(_ context.Context, t drivers.Target, _ drivers.StopMode) (drivers.Evidence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[t.Component.Name] = false
	return drivers.Evidence{Action: "stop " + t.Component.Name}, nil
}

func (f *fakeCell) Status(_ context.Context, t drivers.Target) (drivers.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[t.Component.Name] {
		return drivers.Status{State: drivers.StateRunning}, nil
	}
	return drivers.Status{State: drivers.StateStopped}, nil
}

func (f *fakeCell) Check(_ context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pass, ok := f.checks[req.Name]
	if !ok {
		pass = true
	}
	return drivers.CheckResult{Passed: pass, Summary: fmt.Sprintf("%s passed=%v", req.Name, pass)}, nil
}

func (f *fakeCell) startOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.starts...)
}

func testPlan() plan.Plan {
	check := func(name string) []plan.DriverCheck { return []plan.DriverCheck{{Name: name, Driver: "fake"}} }
	return plan.Plan{
		APIVersion: plan.APIVersion, Name: "cell", RPO: plan.Duration(15 * time.Minute), RTO: plan.Duration(time.Hour),
		Products: []string{"bpm", "monitor"},
		Sites: plan.Sites{
			Primary:   &plan.Site{Name: "dc1"},
			Secondary: &plan.Site{Name: "dc2"},
		},
		Components: []plan.Component{
			{Name: "mon-app", Role: plan.RoleApp, Product: "monitor", Driver: "fake"},
			{Name: "bpm-app1", Role: plan.RoleApp, Product: "bpm", Driver: "fake"},
			{Name: "bpm-app2", Role: plan.RoleApp, Product: "bpm", Driver: "fake", Optional: true},
			{Name: "bpm-me", Role: plan.RoleMessaging, Product: "bpm", Driver: "fake"},
			{Name: "na1", Role: plan.RoleNodeAgent, Driver: "fake"},
			{Name: "dmgr", Role: plan.RoleDmgr, Driver: "fake"},
			{Name: "db", Role: plan.RoleDatabase, Driver: "fake"},
		},
		Verification: plan.Verification{
			System: check("containers"), Application: check("apps"), Instance: check("instances"),
			Consistency: check("bpm-vs-monitor"), SCA: check("sca"), Monitoring: check("dashboard"),
		},
		Approvers: []plan.Approver{{Name: "alice"}, {Name: "bob"}, {Name: "carol"}},
		Gates: []plan.Gate{
			{Name: contract.GateStartFailed, Approvers: []string{"alice", "bob"}, Timeout: plan.Duration(time.Hour)},
			{Name: "two-person", Approvers: []string{"alice", "bob"}, Quorum: 2, Timeout: plan.Duration(time.Hour)},
			{Name: "remind", Approvers: []string{"alice"}, Timeout: plan.Duration(10 * time.Minute), OnTimeout: plan.EscalateRemind},
		},
	}
}

type WorkflowSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env  *testsuite.TestWorkflowEnvironment
	cell *fakeCell
}

func TestWorkflows(t *testing.T) { suite.Run(t, new(WorkflowSuite)) }

func (s *WorkflowSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.cell = newFakeCell()
	reg := drivers.NewRegistry()
	reg.RegisterMiddleware("fake", s.cell)
	reg.RegisterProbe("fake", s.cell)
	s.env.RegisterActivity(testActivities(reg))
	s.env.RegisterWorkflow(RestartWorkflow)
	s.env.RegisterWorkflow(VerifyWorkflow)
	s.env.RegisterWorkflow(BringUpWorkflow)
	s.env.RegisterWorkflow(gateTestWorkflow)
}

func (s *WorkflowSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func primary(p plan.Plan) contract.SiteRef {
	return contract.SiteRef{Role: "primary", Site: *p.Sites.Primary}
}

func (s *WorkflowSuite) approveLater(after time.Duration, ap Approval) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(contract.SignalApprove, ap) }, after)
}

func (s *WorkflowSuite) status() Status {
	v, err := s.env.QueryWorkflow(contract.QueryStatus)
	s.Require().NoError(err)
	var st Status
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *WorkflowSuite) TestRestartStartsTiersInDerivedOrder() {
	p := testPlan()
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res RestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))

	order := s.cell.startOrder()
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	s.Require().Len(order, 7)
	// Tiers are strict: everything of one tier before anything of the next.
	s.Less(pos["db"], pos["dmgr"])
	s.Less(pos["dmgr"], pos["na1"])
	s.Less(pos["na1"], pos["bpm-me"])
	s.Less(pos["bpm-me"], pos["bpm-app1"])
	s.Less(pos["bpm-me"], pos["bpm-app2"])
	s.Less(pos["bpm-app1"], pos["mon-app"])
	s.Less(pos["bpm-app2"], pos["mon-app"])
	s.Len(res.Tiers, 6)
	s.ElementsMatch([]string{"bpm-app1", "bpm-app2"}, res.Tiers[4].Components)
	for _, c := range res.Components {
		s.Equal(OutcomeOK, c.Outcome, c.Name)
	}
}

func (s *WorkflowSuite) TestRestartIsIdempotentOnRunningComponents() {
	p := testPlan()
	s.cell.running["db"] = true
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NotContains(s.cell.startOrder(), "db", "a running database must not be started again")
}

func (s *WorkflowSuite) TestTransientStartFailureIsRetriedWithoutGate() {
	p := testPlan()
	s.cell.failures["dmgr"] = 2
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	var res RestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	for _, c := range res.Components {
		if c.Name == "dmgr" {
			s.Equal(3, c.Attempts)
		}
	}
	s.Empty(s.status().Gates)
}

func (s *WorkflowSuite) TestStartFailureGateSkipOptional() {
	p := testPlan()
	s.cell.failing["bpm-app2"] = true
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "alice", Decision: contract.DecisionSkip, Comment: "run on one member"})
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	var res RestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	got := map[string]string{}
	for _, c := range res.Components {
		got[c.Name] = c.Outcome
	}
	s.Equal(OutcomeSkipped, got["bpm-app2"])
	s.Equal(OutcomeOK, got["mon-app"], "the next tier starts after a skip")
	st := s.status()
	s.Require().Len(st.Gates, 1)
	s.Equal(contract.DecisionSkip, st.Gates[0].Outcome)
	s.Equal("alice", st.Gates[0].Approvals[0].Approver)
	s.Contains(st.Gates[0].Options, contract.DecisionSkip)
}

func (s *WorkflowSuite) TestStartFailureGateSkipRefusedForRequiredComponent() {
	p := testPlan()
	s.cell.failing["bpm-app1"] = true
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "alice", Decision: contract.DecisionSkip})
	s.approveLater(2*time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "bob", Decision: contract.DecisionAbort})
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "bpm-app1 did not start")
	st := s.status()
	s.Require().Len(st.Ignored, 1)
	s.Contains(st.Ignored[0].Reason, `decision "skip" is not one of retry, abort`)
	s.NotContains(s.cell.startOrder(), "mon-app", "an abort stops the restart before the next tier")
}

func (s *WorkflowSuite) TestStartFailureGateRetry() {
	p := testPlan()
	s.cell.failing["bpm-me"] = true
	s.env.RegisterDelayedCallback(func() {
		s.cell.mu.Lock()
		s.cell.failing["bpm-me"] = false // the operator freed the port
		s.cell.mu.Unlock()
		s.env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateStartFailed, Approver: "bob", Decision: contract.DecisionRetry})
	}, 5*time.Minute)
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Contains(s.cell.startOrder(), "bpm-me")
	s.Contains(s.cell.startOrder(), "mon-app")
}

func (s *WorkflowSuite) TestUnattendedRestartFailsWithoutGate() {
	p := testPlan()
	s.cell.failing["bpm-me"] = true
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p), Unattended: true})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "bpm-me did not start")
	s.Contains(err.Error(), "unattended run: no start-failed gate")
	s.Empty(s.status().Gates, "nobody is asked in an unattended run")
	s.NotContains(s.cell.startOrder(), "mon-app", "nothing after the failed tier starts")
}

func (s *WorkflowSuite) TestBadSettingsFailWithoutGate() {
	p := testPlan()
	p.Components[0].Driver = "nope"
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), `unknown middleware driver "nope"`)
	s.Empty(s.status().Gates)
}

func (s *WorkflowSuite) TestVerifyFatalLevelMakesInvalid() {
	p := testPlan()
	s.cell.checks["apps"] = false
	s.env.ExecuteWorkflow(VerifyWorkflow, VerifyInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	var res VerifyResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.False(res.Valid)
	s.Equal(plan.LevelApplication, res.FailedLevel)
	s.True(res.Levels[0].Passed)
	s.False(res.Levels[1].Passed)
	s.False(res.Levels[2].Ran, "levels after a fatal failure do not run")
}

func (s *WorkflowSuite) TestVerifyInstanceFindingIsNotFatal() {
	p := testPlan()
	s.cell.checks["instances"] = false
	s.env.ExecuteWorkflow(VerifyWorkflow, VerifyInput{Plan: p, Site: primary(p)})
	var res VerifyResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.True(res.Valid)
	s.Require().Len(res.Findings, 1)
	s.Contains(res.Findings[0], "instance/instances")
	for _, l := range res.Levels {
		s.True(l.Ran, l.Level)
	}
}

func (s *WorkflowSuite) TestBringUpRunsRestartThenVerify() {
	p := testPlan()
	s.env.ExecuteWorkflow(BringUpWorkflow, BringUpInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	var res BringUpResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.True(res.Verify.Valid)
	s.Len(res.Restart.Components, 7)
	s.Equal("done", s.status().Phase)
}

func (s *WorkflowSuite) TestBringUpFailsWhenVerificationInvalid() {
	p := testPlan()
	s.cell.checks["containers"] = false
	s.env.ExecuteWorkflow(BringUpWorkflow, BringUpInput{Plan: p, Site: primary(p)})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "failed at the system level")
}

// gateTestWorkflow opens one gate and returns its outcome, so the gate rules
// are tested apart from any runbook.
func gateTestWorkflow(ctx workflow.Context, p plan.Plan, gate string) (string, error) {
	r, err := newRun(ctx, "test", p.Name)
	if err != nil {
		return "", err
	}
	gk := startGateKeeper(ctx, r, &p)
	return gk.wait(ctx, gateRequest{Name: gate, Detail: "test"})
}

func (s *WorkflowSuite) runGate(gate string) (string, error) {
	s.env.ExecuteWorkflow(gateTestWorkflow, testPlan(), gate)
	s.Require().True(s.env.IsWorkflowCompleted())
	if err := s.env.GetWorkflowError(); err != nil {
		return "", err
	}
	var out string
	s.Require().NoError(s.env.GetWorkflowResult(&out))
	return out, nil
}

func (s *WorkflowSuite) TestGateApproved() {
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "bob", Decision: contract.DecisionApprove})
	out, err := s.runGate(contract.GateStartFailed)
	s.Require().NoError(err)
	s.Equal(contract.DecisionApprove, out)
}

func (s *WorkflowSuite) TestGateRejected() {
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "bob", Decision: contract.DecisionReject, Comment: "not yet"})
	out, err := s.runGate(contract.GateStartFailed)
	s.Require().NoError(err)
	s.Equal(contract.DecisionReject, out)
	s.Equal("not yet", s.status().Gates[0].Approvals[0].Comment)
}

func (s *WorkflowSuite) TestGateTimesOut() {
	out, err := s.runGate(contract.GateStartFailed)
	s.Require().NoError(err)
	s.Equal(OutcomeTimeout, out)
	g := s.status().Gates[0]
	s.Equal(time.Hour, g.Closed.Sub(g.Opened))
}

func (s *WorkflowSuite) TestGateRemindsThenApproved() {
	s.approveLater(35*time.Minute, Approval{Gate: "remind", Approver: "alice", Decision: contract.DecisionApprove})
	out, err := s.runGate("remind")
	s.Require().NoError(err)
	s.Equal(contract.DecisionApprove, out)
	s.Equal(3, s.status().Gates[0].Reminders)
}

func (s *WorkflowSuite) TestGateIgnoresUnauthorizedAndMalformed() {
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "mallory", Decision: contract.DecisionApprove})
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(contract.SignalApprove, map[string]any{"gate": contract.GateStartFailed, "approver": "alice", "decision": "approve", "sudo": true})
	}, 2*time.Minute)
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(contract.SignalApprove, "yes please") }, 3*time.Minute)
	s.approveLater(4*time.Minute, Approval{Gate: "other-gate", Approver: "alice", Decision: contract.DecisionApprove})
	s.approveLater(5*time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "carol", Decision: contract.DecisionApprove})
	s.approveLater(6*time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "alice", Decision: contract.DecisionApprove})
	out, err := s.runGate(contract.GateStartFailed)
	s.Require().NoError(err)
	s.Equal(contract.DecisionApprove, out)
	st := s.status()
	s.Require().Len(st.Ignored, 5)
	s.Contains(st.Ignored[0].Reason, `"mallory" may not approve`)
	s.Contains(st.Ignored[1].Reason, `unknown field "sudo"`)
	s.Contains(st.Ignored[2].Reason, "malformed")
	s.Contains(st.Ignored[3].Reason, `gate "other-gate" is not open`)
	s.Contains(st.Ignored[4].Reason, `"carol" may not approve`)
	s.Require().Len(st.Gates[0].Approvals, 1)
	s.Equal("alice", st.Gates[0].Approvals[0].Approver)
}

func (s *WorkflowSuite) TestGateQuorumOfTwoNeedsDistinctApprovers() {
	s.approveLater(time.Minute, Approval{Gate: "two-person", Approver: "alice", Decision: contract.DecisionApprove})
	s.approveLater(2*time.Minute, Approval{Gate: "two-person", Approver: "alice", Decision: contract.DecisionApprove})
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(OutcomePending, st.Gates[0].Outcome, "one approver twice is not a quorum of two")
		s.env.SignalWorkflow(contract.SignalApprove, Approval{Gate: "two-person", Approver: "bob", Decision: contract.DecisionApprove})
	}, 3*time.Minute)
	out, err := s.runGate("two-person")
	s.Require().NoError(err)
	s.Equal(contract.DecisionApprove, out)
	st := s.status()
	s.Len(st.Gates[0].Approvals, 2)
	s.Require().Len(st.Ignored, 1)
	s.Contains(st.Ignored[0].Reason, "already decided")
	g := st.Gates[0]
	s.Equal(3*time.Minute, g.Closed.Sub(g.Opened))
}

func (s *WorkflowSuite) TestGateMissingFromPlanFailsClearly() {
	_, err := s.runGate("no-such-gate")
	s.Require().Error(err)
	s.Contains(err.Error(), `the plan defines no gate "no-such-gate"`)
}

func TestDecodeApproval(t *testing.T) {
	_, err := decodeApproval(map[string]any{"gate": "g"})
	require.EqualError(t, err, "payload: missing approver, decision")
	_, err = decodeApproval(nil)
	require.Error(t, err)
	a, err := decodeApproval(map[string]any{"gate": "g", "approver": "x", "decision": "approve", "comment": "ok"})
	require.NoError(t, err)
	require.Equal(t, Approval{Gate: "g", Approver: "x", Decision: "approve", Comment: "ok"}, a)
	require.False(t, errors.Is(err, context.Canceled))
}

func (s *WorkflowSuite) TestVerifyConsistencyFailureIsFatal() {
	p := testPlan()
	s.cell.checks["bpm-vs-monitor"] = false
	s.env.ExecuteWorkflow(VerifyWorkflow, VerifyInput{Plan: p, Site: primary(p)})
	var res VerifyResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.False(res.Valid, "members not consistent with each other make the point invalid (seed 2.4)")
	s.Equal(plan.LevelConsistency, res.FailedLevel)
	s.False(res.Levels[4].Ran, "SCA does not run on an inconsistent cell")
}

// everyQueue says each queue has a worker: the test environment runs every
// activity whatever queue it is placed on.
type everyQueue struct{ missing map[string]bool }

func (q everyQueue) Workers(_ context.Context, queue string) ([]string, error) {
	if q.missing[queue] {
		return nil, nil
	}
	return []string{"test-worker@" + queue}, nil
}

func testActivities(reg *drivers.Registry) *activities.Activities {
	return testActivitiesWith(reg, &scheduleLog{})
}

func testActivitiesWith(reg *drivers.Registry, schedules *scheduleLog) *activities.Activities {
	acts := activities.New(reg, nil)
	acts.Worker = "test-worker"
	acts.Workers = everyQueue{}
	acts.Schedules = schedules
	return acts
}

// scheduleLog records the changes made to backup schedules.
type scheduleLog struct {
	mu      sync.Mutex
	changes []contract.ScheduleChange
	// cold are the changes made to the cold backup schedule.
	cold []contract.ScheduleChange
}

func (l *scheduleLog) Change(_ context.Context, id string, ch contract.ScheduleChange) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id == contract.ColdScheduleID(ch.Plan) {
		l.cold = append(l.cold, ch)
		return true, nil
	}
	l.changes = append(l.changes, ch)
	return true, nil
}
