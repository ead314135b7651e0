package workflows

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// userStepsOf lists the report's user steps in order, by name.
func userStepsOf(rep report.Report) []report.Step {
	var out []report.Step
	for _, s := range rep.Steps {
		if strings.HasPrefix(s.Name, "user step ") {
			out = append(out, s)
		}
	}
	return out
}

func TestUserStepsRunAroundEveryPhaseOfAFailover(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	step := func(name, when, phase, tier string) plan.UserStep {
		s := plan.UserStep{Name: name, Driver: "cell", Tier: tier}
		if when == "before" {
			s.Before = phase
		} else {
			s.After = phase
		}
		return s
	}
	e.plan.Steps = []plan.UserStep{
		step("catalog-db", "after", plan.PhaseRestore, ""),
		step("reapply-values", "after", plan.PhaseEnvironment, ""),
		step("before-app", "before", plan.PhaseTier, "bpm-app"),
		step("after-db", "after", plan.PhaseTier, "database"),
		step("pre-verify", "before", plan.PhaseVerify, ""),
		step("announce", "after", plan.PhaseRedirect, ""),
		{Name: "drill-only", Before: plan.PhaseRestore, Driver: "cell", Runs: []string{"drill"}},
	}
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	_, rep := failoverReport(t, env)
	var names []string
	for _, s := range userStepsOf(rep) {
		names = append(names, s.Name)
		require.Equal(t, OutcomeOK, s.Outcome, s.Name)
		require.Equal(t, "dc2", s.Site, "%s runs at the site the phase acts on", s.Name)
	}
	require.Equal(t, []string{"user step catalog-db", "user step reapply-values", "user step after-db", "user step before-app",
		"user step pre-verify", "user step announce"}, names, "in phase order; the drill's step is not run")
	s, _ := stepNamed(rep, "user step after-db")
	require.Contains(t, s.Detail, "after tier database: after-db ok at dc2")
}

func TestAFailingUserStepAbortsContinuesOrAsks(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		wantErr bool
		outcome string
	}{
		{plan.StepAbort, true, OutcomeFailed},
		{plan.StepContinue, false, OutcomeFailed},
		{plan.StepGate, false, OutcomeSkipped},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e := newDREnv(t)
			pt := e.backup("").Point
			e.setValidity(pt.ID, catalog.Valid)
			e.withGate(contract.GateStepFailed)
			e.cell.failCheck["dc2/license-keys"] = true
			e.plan.Steps = []plan.UserStep{{Name: "license-keys", After: plan.PhaseRestore, Driver: "cell", OnFailure: tc.policy}}
			env := e.env()
			e.approve(env, time.Minute, contract.GateStartSecondary)
			e.decide(env, 30*time.Minute, contract.GateStepFailed, contract.DecisionSkip)
			env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
			if tc.wantErr {
				require.Error(t, env.GetWorkflowError())
				require.Contains(t, env.GetWorkflowError().Error(), "user step license-keys (after restore at dc2) failed: license-keys failed at dc2")
				require.Empty(t, e.cell.starts, "nothing started after the failed step")
				reports, err := filepath.Glob(filepath.Join(e.dir, "store", "cell", "reports", "*.json"))
				require.NoError(t, err)
				require.Len(t, reports, 1)
				rep, err := report.Read(reports[0])
				require.NoError(t, err)
				require.Contains(t, rep.Error, "user step license-keys (after restore at dc2) failed", "the report names the step that failed the run")
				return
			}
			require.NoError(t, env.GetWorkflowError())
			_, rep := failoverReport(t, env)
			s, ok := stepNamed(rep, "user step license-keys")
			require.True(t, ok)
			require.Equal(t, tc.outcome, s.Outcome)
			require.Contains(t, e.cell.starts, "dc2/app", "the run went on")
		})
	}
}

func TestAManualUserStepWaitsAtItsGateWithItsChecklist(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: "post-restore", Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
	e.plan.Steps = []plan.UserStep{{Name: "system-values", After: plan.PhaseEnvironment, Gate: "post-restore",
		Checklist: []string{"re-apply system values and passwords", "add the license keys"}}}
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	e.approve(env, 2*time.Minute, "post-restore")
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	_, rep := failoverReport(t, env)
	var gate *report.Gate
	for i := range rep.Gates {
		if rep.Gates[i].Name == "post-restore" {
			gate = &rep.Gates[i]
		}
	}
	require.NotNil(t, gate)
	require.Equal(t, []string{"re-apply system values and passwords", "add the license keys"}, gate.Checklist)
	s, ok := stepNamed(rep, "user step system-values")
	require.True(t, ok)
	require.Equal(t, OutcomeOK, s.Outcome)
}

func TestUserStepsAroundABackupsCapture(t *testing.T) {
	e := newDREnv(t)
	e.plan.Steps = []plan.UserStep{{Name: "flush-queues", Before: plan.PhaseCapture, Driver: "cell", Runs: []string{"backup"}}}
	res := e.backup("")
	require.NotEmpty(t, res.Point.ID)
	e.cell.failCheck["dc1/flush-queues"] = true
	env := e.env()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	require.Len(t, e.points(), 1, "no point when the step before the capture failed")
}

// A drill has no gates of its own, yet a manual step the plan gives drills
// asks at its gate; without the approval the drill does not go on.
func TestADrillAsksAtItsManualUserStep(t *testing.T) {
	for _, approved := range []bool{true, false} {
		t.Run(fmt.Sprintf("approved=%v", approved), func(t *testing.T) {
			e := newDREnv(t)
			pt := e.backup("").Point
			e.setValidity(pt.ID, catalog.Valid)
			e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: "drill-check", Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
			e.plan.Steps = []plan.UserStep{{Name: "look-at-sandbox", After: plan.PhaseVerify, Gate: "drill-check", Runs: []string{"drill"},
				Checklist: []string{"log in to the sandbox's console"}}}
			env := e.env()
			if approved {
				e.approve(env, time.Minute, "drill-check")
			}
			env.ExecuteWorkflow(DrillWorkflow, DrillInput{Plan: e.plan})
			if !approved {
				require.Error(t, env.GetWorkflowError())
				require.Contains(t, env.GetWorkflowError().Error(), "drill-check")
				return
			}
			require.NoError(t, env.GetWorkflowError())
			var res DrillResult
			require.NoError(t, env.GetWorkflowResult(&res))
			rep, err := report.Read(res.Report.JSON)
			require.NoError(t, err)
			s, ok := stepNamed(rep, "user step look-at-sandbox")
			require.True(t, ok)
			require.Equal(t, OutcomeOK, s.Outcome, s.Detail)
			require.Contains(t, s.Detail, "approved at gate drill-check")
		})
	}
}
