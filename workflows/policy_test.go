package workflows

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// stepNamed returns the report's step called name, if any.
func stepNamed(rep report.Report, name string) (report.Step, bool) {
	for _, s := range rep.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return report.Step{}, false
}

func (s *WorkflowSuite) TestRestartPolicyStopsAndStartsOnceMoreBeforeTheGate() {
	p := testPlan()
	// Every attempt of the first start fails; the one after the policy's
	// stop works. Today's code opens start-failed here and waits.
	s.cell.failures["db"] = startAttempts
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().NoError(s.env.GetWorkflowError())
	var res RestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("db", res.Components[0].Name)
	s.Equal(OutcomeOK, res.Components[0].Outcome)
	s.Equal(string(plan.PolicyRestart), res.Components[0].Policy, "the report names the policy that acted")
	s.Empty(res.Gates, "the restart helped: nobody was asked")
	var policyStep *StepRecord
	for i := range res.Steps {
		if res.Steps[i].Name == "failure policy restart: db" {
			policyStep = &res.Steps[i]
		}
	}
	s.Require().NotNil(policyStep)
	s.Equal(OutcomeOK, policyStep.Outcome)
	s.Contains(policyStep.Detail, "starting it once more")
}

func (s *WorkflowSuite) TestGatePolicyAsksAtOnce() {
	p := testPlan()
	// dmgr's role defaults to gate: the start-failed gate opens without a
	// stop and a second start.
	s.cell.failing["dmgr"] = true
	s.approveLater(time.Minute, Approval{Gate: contract.GateStartFailed, Approver: "alice", Decision: contract.DecisionAbort})
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().Error(s.env.GetWorkflowError())
	st := s.status()
	for _, step := range st.Steps {
		s.NotContains(step.Name, "failure policy", "gate acts by asking, nothing else")
	}
	s.Require().Len(st.Gates, 1)
	s.Equal(contract.GateStartFailed, st.Gates[0].Name)
}

func (s *WorkflowSuite) TestRestartPolicyThatDoesNotHelpEndsAtTheGate() {
	p := testPlan()
	s.cell.failing["db"] = true
	s.approveLater(time.Hour, Approval{Gate: contract.GateStartFailed, Approver: "alice", Decision: contract.DecisionAbort})
	s.env.ExecuteWorkflow(RestartWorkflow, RestartInput{Plan: p, Site: primary(p)})
	s.Require().Error(s.env.GetWorkflowError())
	st := s.status()
	s.Require().Len(st.Gates, 1)
	s.Contains(st.Gates[0].Detail, "again, after failure policy restart")
}

func TestRecreatePolicyRestoresOnlyThatComponentFromThePoint(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.failStarts["dc2/app"] = startAttempts
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	appConfig := filepath.Join(e.dir, "dc2", "app", "config", "server.json")
	dbMarker := filepath.Join(e.dir, "dc2", "db", "runtime", "written-since-start")
	var once sync.Once
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name != contract.StartAndWaitReady {
			return
		}
		once.Do(func() {
			// The running database writes; the failing app server
			// leaves its configuration broken.
			require.NoError(t, os.WriteFile(dbMarker, []byte("tx-2\n"), 0o644))
		})
	})
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if info.ActivityType.Name == contract.StartAndWaitReady && err != nil {
			require.NoError(t, os.WriteFile(appConfig, []byte("half-written"), 0o644))
		}
	})
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	_, rep := failoverReport(t, env)

	cfg, err := os.ReadFile(appConfig)
	require.NoError(t, err)
	require.Equal(t, `{"db":"127.0.2.1:50000","me":"127.0.2.1:7276"}`, string(cfg), "re-created from the point and rewritten for dc2")
	marker, err := os.ReadFile(dbMarker)
	require.NoError(t, err, "the database's data is not restored again")
	require.Equal(t, "tx-2\n", string(marker))
	step, ok := stepNamed(rep, "failure policy recreate: app")
	require.True(t, ok, "the report names the policy that acted")
	require.Equal(t, OutcomeOK, step.Outcome)
	require.Contains(t, step.Detail, "re-created app from point "+pt.ID)
	require.Empty(t, rep.Gates[1:], "only start-secondary was asked")
}

func TestTakeoverPolicyPromotesTheStandby(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.plan.Components[0].OnFailure = plan.PolicyTakeover
	e.cell.failStarts["dc2/db"] = startAttempts
	env := e.env()
	env.RegisterActivityWithOptions(func(context.Context, contract.ReplicaInput) (contract.ReplicaResult, error) {
		return contract.ReplicaResult{}, nil
	}, activity.RegisterOptions{Name: contract.ReplicaPromote, DisableAlreadyRegisteredCheck: true})
	env.OnActivity(contract.ReplicaPromote, mock.Anything, mock.MatchedBy(func(in contract.ReplicaInput) bool {
		return in.Component.Name == "db" && in.Primary.Site.Site.Name == "dc1" && in.Standby.Site.Site.Name == "dc2"
	})).Return(contract.ReplicaResult{Component: "db", Action: "promote", Position: "0/3000060"}, nil).Once()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	env.AssertExpectations(t)
	_, rep := failoverReport(t, env)
	step, ok := stepNamed(rep, "failure policy takeover: db")
	require.True(t, ok)
	require.Equal(t, OutcomeOK, step.Outcome)
	require.Contains(t, step.Detail, "promoted the standby of db at dc2")
	require.Contains(t, step.Detail, "0/3000060")
}
