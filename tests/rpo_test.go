package tests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/workflows"
)

// TestScheduledPointsAndRPOBreach (issue 4): the plan is enabled with
// `drover plan apply` (RPO monitor, backup schedule validating every new
// point); one scheduled run later `drover points list` shows the point with
// its validity; then the schedule is paused, and once the newest valid point
// is older than the RPO the monitor says so: its query, DroverRPOStatus in
// visibility, an alert in the log and `drover plan status`.
func TestScheduledPointsAndRPOBreach(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	const rpo = 40 * time.Second
	e := newLabEnv(t, envOptions{name: "rpo", edit: func(s string) string {
		s = strings.Replace(s, "\nrpo: 5m\n", fmt.Sprintf("\nrpo: %s\n", rpo), 1)
		return strings.Replace(s, "\n  schedule:\n    validate: none\n", "\n  schedule:\n    validate: every\n", 1)
	}})
	require.Equal(t, rpo, e.p.RPO.D())
	require.Equal(t, "every", e.p.Storage.Schedule.Validate)
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// The schedule is paused, then runs once on demand (as `temporal
	// schedule trigger` does), and never again.
	ld := e.startLoad(10)
	sched := e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name))
	require.NoError(t, sched.Pause(ctx, client.SchedulePauseOptions{Note: "end-to-end test: let the RPO lapse"}))
	desc, err := sched.Describe(ctx)
	require.NoError(t, err)
	require.True(t, desc.Schedule.State.Paused)
	// A run the schedule fired on its own before the pause, if any.
	before := len(desc.Info.RecentActions)
	require.NoError(t, sched.Trigger(ctx, client.ScheduleTriggerOptions{}))

	var pt catalog.Point
	require.Eventually(t, func() bool {
		pts, err := e.store.List(e.p.Name)
		if err != nil || len(pts) == 0 {
			return false
		}
		pt = pts[len(pts)-1]
		return pt.Validity.State != catalog.Unverified && pt.Validity.State != ""
	}, 90*time.Second, 250*time.Millisecond, "the scheduled run's point was never validated")
	rep := ld.stop()
	t.Logf("scheduled point %s captured %s: %s; load %s", pt.ID, pt.Instant.Format("15:04:05.000"), pt.Validity.State, rep.String())
	require.Equal(t, catalog.Valid, pt.Validity.State, "scheduled point: %s", pt.Validity.Reason)

	out, err := e.drover("points", "list", "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("drover points list:\n%s", out)
	assert.Regexp(t, pt.ID+` +\d+s +full +quiesced +\S+ +valid`, out)
	out, err = e.drover("--output", "json", "points", "list", "--plan", e.planPath)
	require.NoError(t, err)
	assert.Contains(t, out, `"state": "valid"`)

	// The monitor sees the fresh point first, then the RPO lapse.
	var st workflows.RPOStatus
	sawOK := false
	require.Eventually(t, func() bool {
		v, err := e.c.QueryWorkflow(ctx, contract.MonitorID(e.p.Name), "", contract.QueryRPO)
		if err != nil || v.Get(&st) != nil {
			return false
		}
		if st.Status == contract.RPOOk && st.PointID == pt.ID {
			sawOK = true
		}
		return st.Status == contract.RPOBreached
	}, rpo+time.Minute, time.Second, "the RPO monitor never reported the breach: %+v", st)
	t.Logf("RPO monitor: %+v", st)
	assert.True(t, sawOK, "the monitor reported ok while the point was fresh")
	assert.Equal(t, pt.ID, st.PointID)
	assert.Greater(t, st.Age, rpo)
	assert.Equal(t, rpo, st.RPO)
	assert.False(t, st.BreachedSince.IsZero())
	assert.False(t, st.BreachedSince.Before(pt.Instant.Add(rpo)), "breach reported before the RPO passed")

	// The Web UI's list filters on the search attribute.
	query := fmt.Sprintf(`WorkflowId = %q AND DroverRPOStatus = "breached"`, contract.MonitorID(e.p.Name))
	require.Eventually(t, func() bool {
		resp, err := e.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: e.srv.Namespace(), Query: query})
		return err == nil && len(resp.Executions) == 1
	}, 30*time.Second, 250*time.Millisecond, "no run found by %s", query)

	alerts := e.logs.FilterMessage("ALERT: RPO breached").FilterField(zap.String("status", contract.RPOBreached)).Len()
	assert.Positive(t, alerts, "no alert logged for the breach")

	desc, err = sched.Describe(ctx)
	require.NoError(t, err)
	assert.Len(t, desc.Info.RecentActions, before+1, "the paused schedule ran on its own")

	out, err = e.drover("plan", "status", e.planPath)
	require.NoError(t, err)
	t.Logf("drover plan status:\n%s", out)
	assert.Regexp(t, `backup schedule drover/\S+/backup-schedule: paused`, out)
	assert.Regexp(t, `RPO 40s: breached, the point a failover would use: `+pt.ID+` \(validated\)`, out)
	assert.Contains(t, out, "primary site: dc1")
}
