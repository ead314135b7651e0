package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

func TestASubsetFailoverThenAFollowUpFromTheSamePoint(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.plan.Priorities = []plan.PriorityClass{{Name: "critical", First: true}, {Name: "deferred"}}
	e.plan.Components[1].Priority = "deferred"

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	first, rep := failoverReport(t, env)
	require.Equal(t, []string{"dc2/db"}, e.cell.starts, "only the class marked first starts")
	require.Equal(t, []string{"app"}, first.Deferred)
	require.Equal(t, "dc2", e.cell.pointsAt, "the critical part serves traffic")
	noted := false
	for _, n := range rep.Notes {
		noted = noted || strings.Contains(n, "app wait for a follow-up run from the same point")
	}
	require.True(t, noted, "the report says what waits: %v", rep.Notes)

	env = e.env()
	restores := 0
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == contract.RestoreGroup {
			restores++
		}
	})
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Continue: "run-2", PointID: first.Point.ID, Only: []string{"deferred"}})
	require.NoError(t, env.GetWorkflowError())
	next, rep := failoverReport(t, env)
	require.Equal(t, first.Point.ID, next.Point.ID, "the same point")
	require.Zero(t, restores, "nothing restored again")
	require.Equal(t, []string{"dc2/db", "dc2/app"}, e.cell.starts, "the rest started, the database not again")
	require.Contains(t, rep.Notes, "continues failover run-2 from point "+first.Point.ID+": nothing restored again; starting app")
}

func TestASubsetOfAnUnknownClassIsRefused(t *testing.T) {
	e := newDREnv(t)
	env := e.env()
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Only: []string{"urgent"}})
	require.Error(t, env.GetWorkflowError())
	require.Contains(t, env.GetWorkflowError().Error(), `unknown priority class "urgent" (the plan's classes: critical, important, deferred)`)
	require.Empty(t, e.cell.starts)
}
