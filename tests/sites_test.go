package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// TestSiteWorkersFailover runs the lab the way a real estate runs: the
// orchestrator here, and one drover worker process per site (dc1, dc2,
// sandbox). A backup captures at dc1 on dc1's worker; then dc1 is destroyed
// with its worker, and dc2's worker is killed too. The unplanned failover
// stops at site-unreachable within about a minute; once dc2's worker is back
// and someone says retry, every restore, restart and verify step runs on
// dc2's worker, and nothing is sent to dc1's queue after the disaster.
func TestSiteWorkersFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "sites", siteWorkers: true})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	waitPollers(t, ctx, e.c, contract.SiteQueue("dc1"), true)
	waitPollers(t, ctx, e.c, contract.SiteQueue("dc2"), true)
	pt := e.backup(ctx, e.p, contract.ModeFull, "at-dc1")
	v := e.validate(ctx, e.p, pt.ID)
	require.True(t, v.Valid, "point %s: %s", pt.ID, v.Reason)
	dc1Worker := workerIdentity(t, e.l, "dc1")
	dc2Worker := workerIdentity(t, e.l, "dc2")
	sandboxWorker := workerIdentity(t, e.l, "sandbox")

	// The backup's captures ran at dc1, its catalog steps where the store is
	// (dc2); the validation's restore and start in the sandbox.
	backups := listRuns(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "sites" AND DroverKind = "backup"`)
	require.NotEmpty(t, backups)
	acts := activitiesOf(t, ctx, e.c, backups...)
	requireRanAt(t, acts, contract.CaptureGroup, contract.SiteQueue("dc1"), dc1Worker)
	requireRanAt(t, acts, contract.CommitPoint, contract.SiteQueue("dc2"), dc2Worker)
	validations := listRuns(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "sites" AND DroverKind IN ("validate", "restart", "verify")`)
	acts = activitiesOf(t, ctx, e.c, validations...)
	requireRanAt(t, acts, contract.RestoreGroup, contract.SiteQueue("sandbox"), sandboxWorker)
	requireRanAt(t, acts, contract.StartAndWaitReady, contract.SiteQueue("sandbox"), sandboxWorker)

	// The disaster takes dc1's worker with its servers; dc2's worker dies too.
	_, err := e.l.Disaster("dc1")
	require.NoError(t, err)
	require.False(t, e.l.WorkerRunning("dc1"), "the disaster killed dc1's worker")
	e.l.StopWorker("dc2", true)
	waitPollers(t, ctx, e.c, contract.SiteQueue("dc1"), false)
	declared := time.Now()

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, DeclaredAt: declared})
	require.NoError(t, err)
	gate := waitGate(t, ctx, e.c, id, contract.GateSiteUnreachable, 90*time.Second)
	t.Logf("site-unreachable opened %s after the start: %s", gate.Opened.Sub(declared).Round(time.Second), gate.Detail)
	assert.Contains(t, gate.Detail, "dc2")
	assert.Less(t, gate.Opened.Sub(declared), 75*time.Second, "a site with no worker is a gate within about a minute")

	// dc2's worker is back: retry, and the run goes on at dc2.
	e.startSiteWorker("dc2")
	dc2Worker = workerIdentity(t, e.l, "dc2")
	waitPollers(t, ctx, e.c, contract.SiteQueue("dc2"), true)
	for _, who := range []string{"alice"} {
		payload, err := labkeys.Payload(ctx, e.c, id, contract.GateSiteUnreachable, who, contract.DecisionRetry, "dc2's worker is back")
		require.NoError(t, err)
		require.NoError(t, e.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload))
	}
	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "unplanned failover")

	// From the history: every step of the failover and its children that
	// acts at a site ran on dc2's worker; none was sent to dc1's queue.
	runs := listRuns(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "sites" AND DroverKind IN ("failover", "restart", "verify")`)
	var after []activity
	for _, a := range activitiesOf(t, ctx, e.c, runs...) {
		if a.scheduled.After(declared) {
			after = append(after, a)
			assert.NotEqual(t, contract.SiteQueue("dc1"), a.queue, "%s was sent to dc1's queue after the disaster", a.name)
		}
	}
	for _, name := range []string{contract.RestoreGroup, contract.ApplyEnvironment, contract.StartAndWaitReady, contract.RunCheck, contract.Redirect} {
		requireRanAt(t, after, name, contract.SiteQueue("dc2"), dc2Worker)
	}

	// From the report: the same, step by step.
	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	byName := map[string]report.Step{}
	for _, s := range r.Steps {
		byName[s.Name] = s
	}
	for _, name := range []string{"restore group cell", "redirect traffic to dc2"} {
		s, ok := byName[name]
		require.True(t, ok, "report step %q", name)
		assert.Equal(t, "dc2", s.Site, name)
		assert.Equal(t, dc2Worker, s.Worker, name)
	}
	route, err := e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc2", route)
	// The Web UI filters runs by the site they act on.
	require.NotEmpty(t, listRuns(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "sites" AND DroverKind = "failover" AND DroverSite = "dc2"`),
		"the failover carries DroverSite = dc2")
	recordHistoriesOf(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "sites"`,
		[]string{"FailoverWorkflow", "BackupWorkflow", "ValidateWorkflow"}, os.Getenv("DROVER_RECORD_SUFFIX"))
}

// workerIdentity is the identity the site's worker process polls with.
func workerIdentity(t *testing.T, l *lab.Lab, site string) string {
	t.Helper()
	data, err := os.ReadFile(l.L.WorkerPidFile(site))
	require.NoError(t, err)
	var pid struct {
		PID int `json:"pid"`
	}
	require.NoError(t, json.Unmarshal(data, &pid))
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s/%s", pid.PID, host, contract.SiteQueue(site))
}

// waitPollers waits until queue has a live worker (want) or none.
func waitPollers(t *testing.T, ctx context.Context, c client.Client, queue string, want bool) {
	t.Helper()
	deadline := time.Now().Add(2 * devserver.PollerFreshness)
	for {
		resp, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		require.NoError(t, err)
		live := false
		for _, p := range resp.GetPollers() {
			if time.Since(p.GetLastAccessTime().AsTime()) <= devserver.PollerFreshness {
				live = true
			}
		}
		if live == want {
			return
		}
		require.True(t, time.Now().Before(deadline), "queue %s: live workers %v, want %v", queue, live, want)
		time.Sleep(500 * time.Millisecond)
	}
}

// waitGate waits until the run's gate opens and returns it.
func waitGate(t *testing.T, ctx context.Context, c client.Client, id, gate string, within time.Duration) report.Gate {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if st, err := queryStatus(ctx, c, id); err == nil {
			for _, g := range st.Gates {
				if g.Name == gate && g.Outcome == workflows.OutcomePending {
					return g
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("gate %s of %s did not open within %s", gate, id, within)
	return report.Gate{}
}

type runRef struct{ id, runID string }

func listRuns(t *testing.T, ctx context.Context, c client.Client, namespace, query string) []runRef {
	t.Helper()
	var out []runRef
	// Visibility lags the runs a moment.
	for i := 0; i < 20; i++ {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		require.NoError(t, err)
		out = out[:0]
		for _, e := range resp.Executions {
			out = append(out, runRef{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()})
		}
		if len(out) > 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return out
}

// activity is one activity execution as the history tells it.
type activity struct {
	name, queue, worker string
	scheduled           time.Time
}

func activitiesOf(t *testing.T, ctx context.Context, c client.Client, runs ...runRef) []activity {
	t.Helper()
	var out []activity
	for _, r := range runs {
		byEvent := map[int64]int{}
		it := c.GetWorkflowHistory(ctx, r.id, r.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				a := ev.GetActivityTaskScheduledEventAttributes()
				byEvent[ev.GetEventId()] = len(out)
				out = append(out, activity{name: a.GetActivityType().GetName(), queue: a.GetTaskQueue().GetName(), scheduled: ev.GetEventTime().AsTime()})
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				a := ev.GetActivityTaskStartedEventAttributes()
				if i, ok := byEvent[a.GetScheduledEventId()]; ok {
					out[i].worker = a.GetIdentity()
				}
			}
		}
	}
	return out
}

// requireRanAt checks every execution of activity name ran on queue, by
// worker, and that there was at least one.
func requireRanAt(t *testing.T, acts []activity, name, queue, worker string) {
	t.Helper()
	n := 0
	for _, a := range acts {
		if a.name != name {
			continue
		}
		n++
		assert.Equal(t, queue, a.queue, "%s scheduled on", name)
		assert.True(t, a.worker == "" || a.worker == worker, "%s ran on %s, want %s", name, a.worker, worker)
		if a.worker != "" && !strings.HasSuffix(a.worker, "/"+queue) {
			t.Errorf("%s ran on a worker of another queue: %s", name, a.worker)
		}
	}
	require.Positive(t, n, "no %s in the history", name)
}
