package tests

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/workflows"
)

// TestMetricsDuringAndAfterBackupAndFailover runs the lab with a worker
// process per site; dc2's worker (the store's site) serves /metrics. The
// figures are scraped before anything ran, during and after a backup, while
// a failover waits at a gate, after the failover, and again from a new dc2
// worker process: each time they must match what the catalog and Temporal
// say at that moment, so they cannot come from counters kept in memory.
func TestMetricsDuringAndAfterBackupAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	metricsAddr := freeLoopbackAddr(t, "127.0.0.27")
	e := newLabEnv(t, envOptions{name: "metrics", siteWorkers: true, siteWorkerArgs: func(e *labEnv, site string) []string {
		if site != "dc2" {
			return nil
		}
		// The lab's server holds an idle poll 10s: a worker that stopped
		// is not counted 25s later.
		return []string{"--metrics-address", metricsAddr, "--metrics-plan", e.planPath, "--poller-freshness", "25s"}
	}})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Scheduled backups would race the test's own: the figures are
	// compared with the catalog either way, but the test's points stay the
	// newest ones.
	pauseBackups(t, ctx, e)
	// The schedule carries the plan's search attributes: a filter by plan
	// finds it.
	require.Eventually(t, func() bool {
		it, err := e.c.ScheduleClient().List(ctx, client.ScheduleListOptions{Query: "DroverPlan = 'metrics' AND DroverKind = 'backup'"})
		if err != nil {
			return false
		}
		for it.HasNext() {
			if s, err := it.Next(); err == nil && s.ID == contract.BackupScheduleID(e.p.Name) {
				return true
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond, "the backup schedule listed by DroverPlan")
	url := "http://" + metricsAddr + "/metrics"
	waitMetrics(t, ctx, url)
	for _, site := range []string{"dc1", "dc2", "sandbox"} {
		waitPollers(t, ctx, e.c, contract.SiteQueue(site), true)
	}

	m := e.checkMetrics(t, ctx, url, "before any backup")
	assert.Equal(t, 300.0, m.one("drover_rpo_target_seconds", "plan=metrics"), "the plan's RPO (5m)")
	assert.Equal(t, map[string]float64{"plan=metrics,validity=invalid": 0, "plan=metrics,validity=unreadable": 0,
		"plan=metrics,validity=unverified": 0, "plan=metrics,validity=valid": 0}, m.series("drover_points"))
	assert.Empty(t, m.series("drover_rpo_age_seconds"), "no point: no RPO age")
	for _, site := range []string{"dc1", "dc2", "sandbox"} {
		assert.Equal(t, 1.0, m.one("drover_site_workers", "site="+site+",task_queue="+contract.SiteQueue(site)), site)
	}

	// During the backup: every scrape answers with the figures of that
	// moment.
	done := make(chan contract.Point, 1)
	go func() { done <- e.backup(ctx, e.p, contract.ModeFull, "first") }()
	var during int
	var pt contract.Point
	for waiting := true; waiting; {
		select {
		case pt = <-done:
			waiting = false
		case <-time.After(300 * time.Millisecond):
			e.checkMetrics(t, ctx, url, "during the backup")
			during++
		}
	}
	require.Positive(t, during, "scrapes during the backup")
	m = e.checkMetrics(t, ctx, url, "after the backup")
	assert.Equal(t, 1.0, m.one("drover_points", "plan=metrics,validity=unverified"))
	assert.InDelta(t, unixSeconds(pt.Instant), m.one("drover_point_captured_timestamp_seconds", "plan=metrics,trust=intact"), 1e-3)
	assert.GreaterOrEqual(t, m.one("drover_runs_total", "kind=backup,outcome=completed,plan=metrics"), 1.0)

	v := e.validate(ctx, e.p, pt.ID)
	require.True(t, v.Valid, "point %s: %s", pt.ID, v.Reason)
	m = e.checkMetrics(t, ctx, url, "after the validation")
	assert.Equal(t, 1.0, m.one("drover_points", "plan=metrics,validity=valid"))
	assert.InDelta(t, unixSeconds(pt.Instant), m.one("drover_point_captured_timestamp_seconds", "plan=metrics,trust=validated"), 1e-3)
	assert.GreaterOrEqual(t, m.one("drover_runs_total", "kind=validate,outcome=completed,plan=metrics"), 1.0)

	// A planned failover: while it waits at its first gate the gate is a
	// series with the time it opened; approved, it is gone.
	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, Planned: true})
	require.NoError(t, err)
	gate := waitAnyGate(t, ctx, e.c, id, 2*time.Minute)
	m = e.checkMetrics(t, ctx, url, "while the failover waits at "+gate.Name)
	assert.InDelta(t, unixSeconds(gate.Opened), m.one("drover_gate_open_since_timestamp_seconds",
		fmt.Sprintf("gate=%s,plan=metrics,workflow_id=%s", gate.Name, id)), 1e-3)
	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "planned failover")
	// The failover resumed the schedule at dc2.
	pauseBackups(t, ctx, e)

	m = e.checkMetrics(t, ctx, url, "after the failover")
	assert.Empty(t, m.series("drover_gate_open_since_timestamp_seconds"), "no gate waits")
	assert.Equal(t, 1.0, m.one("drover_runs_total", "kind=failover,outcome=completed,plan=metrics"))
	assert.GreaterOrEqual(t, m.one("drover_runs_total", "kind=backup,outcome=completed,plan=metrics"), 2.0, "the test's backup and the failover's final one")
	assert.InDelta(t, unixSeconds(res.Point.Instant), m.one("drover_point_captured_timestamp_seconds", "plan=metrics,trust=intact"), 1e-3,
		"the failover's final backup is the newest intact point")
	before := m
	requireRunsEndOnPhase(t, ctx, e)

	// A new dc2 worker process: the same figures, read again from the
	// store and from Temporal.
	e.l.StopWorker("dc2", false)
	e.startSiteWorker("dc2")
	waitMetrics(t, ctx, url)
	m = e.checkMetrics(t, ctx, url, "after the worker restart")
	for _, name := range []string{"drover_rpo_target_seconds", "drover_points", "drover_point_captured_timestamp_seconds", "drover_runs_total"} {
		assert.Equal(t, before.series(name), m.series(name), "%s after the worker restart", name)
	}
	for _, name := range []string{"drover_backup_duration_seconds", "drover_backup_bytes"} {
		assert.Equal(t, before.histograms(name), m.histograms(name), "%s after the worker restart", name)
	}
	assert.Greater(t, m.one("drover_rpo_age_seconds", "plan=metrics"), before.one("drover_rpo_age_seconds", "plan=metrics"), "the point only ages")
	// The stopped worker's poller is still listed by the server for
	// minutes; it stops counting once it is stale.
	require.Eventually(t, func() bool {
		return e.scrape(t, ctx, url).one("drover_site_workers", "site=dc2,task_queue="+contract.SiteQueue("dc2")) == 1
	}, time.Minute, time.Second, "dc2 counts its one live worker")
}

// freeLoopbackAddr picks a free port on ip (this helper's own loopback
// address when it can listen there).
func freeLoopbackAddr(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
	}
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func pauseBackups(t *testing.T, ctx context.Context, e *labEnv) {
	t.Helper()
	h := e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name))
	require.NoError(t, h.Pause(ctx, client.SchedulePauseOptions{Note: "the metrics test takes its own backups"}))
}

// waitMetrics waits until url answers.
func waitMetrics(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "metrics at %s", url)
}

func waitAnyGate(t *testing.T, ctx context.Context, c client.Client, id string, within time.Duration) workflows.GateRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if st, err := queryStatus(ctx, c, id); err == nil {
			for _, g := range st.Gates {
				if g.Outcome == workflows.OutcomePending {
					return g
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no gate of %s opened within %s", id, within)
	return workflows.GateRecord{}
}

// scraped is one scrape, parsed.
type scraped map[string]*dto.MetricFamily

func (e *labEnv) scrape(t *testing.T, ctx context.Context, url string) scraped {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// labels is a metric's labels as "a=x,b=y", sorted by name.
func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// series is a gauge or counter family by labels.
func (s scraped) series(name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range s[name].GetMetric() {
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.GetCounter().GetValue()
		}
		out[labels(m)] = v
	}
	return out
}

// one is one series' value; NaN when it is missing.
func (s scraped) one(name, labelSet string) float64 {
	if v, ok := s.series(name)[labelSet]; ok {
		return v
	}
	return math.NaN()
}

// histSummary is what the test compares of a histogram.
type histSummary struct {
	Count uint64
	Sum   float64
}

func (s scraped) histograms(name string) map[string]histSummary {
	out := map[string]histSummary{}
	for _, m := range s[name].GetMetric() {
		out[labels(m)] = histSummary{m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()}
	}
	return out
}

// truth is what the catalog and Temporal say the figures are.
type truth struct {
	points     map[string]float64
	captured   map[string]float64
	failoverAt time.Time
	durations  map[string]histSummary
	sizes      map[string]histSummary
	runs       map[string]float64
}

func (a truth) equal(b truth) bool {
	return fmt.Sprint(a.points, a.captured, a.failoverAt, a.durations, a.sizes, a.runs) ==
		fmt.Sprint(b.points, b.captured, b.failoverAt, b.durations, b.sizes, b.runs)
}

// truthNow reads the plan's points from the catalog and its closed runs
// from Temporal's list of executions.
func (e *labEnv) truthNow(t *testing.T, ctx context.Context) truth {
	t.Helper()
	name := e.p.Name
	pts, err := e.store.List(name)
	require.NoError(t, err)
	tr := truth{
		points: map[string]float64{}, captured: map[string]float64{},
		durations: map[string]histSummary{}, sizes: map[string]histSummary{}, runs: map[string]float64{},
	}
	for _, v := range []string{"valid", "unverified", "invalid", "unreadable"} {
		tr.points["plan="+name+",validity="+v] = 0
	}
	byID := catalog.ByID(pts)
	var intact, validated *catalog.Point
	for i := range pts {
		p := &pts[i]
		if p.Problem != "" {
			tr.points["plan="+name+",validity=unreadable"]++
			continue
		}
		tr.points["plan="+name+",validity="+string(p.Validity.State)]++
		if catalog.Unrestorable(byID, *p) == "" {
			if intact == nil || p.Instant.After(intact.Instant) {
				intact = p
			}
			if p.Validity.State == catalog.Valid && (validated == nil || p.Instant.After(validated.Instant)) {
				validated = p
			}
		}
		key := "mode=" + string(p.Mode) + ",plan=" + name
		d, s := tr.durations[key], tr.sizes[key]
		d.Count++
		d.Sum += p.Ended.Sub(p.Started).Seconds()
		s.Count++
		s.Sum += float64(p.Size)
		tr.durations[key], tr.sizes[key] = d, s
	}
	if intact != nil {
		tr.captured["plan="+name+",trust=intact"] = unixSeconds(intact.Instant)
		tr.failoverAt = intact.Instant
	}
	if validated != nil {
		tr.captured["plan="+name+",trust=validated"] = unixSeconds(validated.Instant)
		tr.failoverAt = validated.Instant
	}

	// Closed runs, counted from the list of executions (not from a count
	// query, which is what the worker asks).
	q := fmt.Sprintf("%s = '%s' AND ExecutionStatus != 'Running'", contract.SAPlan.GetName(), name)
	var token []byte
	for {
		resp, err := e.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: e.srv.Namespace(), Query: q, NextPageToken: token})
		require.NoError(t, err)
		for _, ex := range resp.GetExecutions() {
			outcome, ok := map[enumspb.WorkflowExecutionStatus]string{
				enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:  "completed",
				enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:     "failed",
				enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:   "cancelled",
				enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED: "terminated",
				enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:  "timed_out",
			}[ex.GetStatus()]
			if !ok {
				continue // continued as new: not a closed run
			}
			var kind string
			p := ex.GetSearchAttributes().GetIndexedFields()[contract.SAKind.GetName()]
			require.NotNil(t, p, "%s has no %s", ex.GetExecution().GetWorkflowId(), contract.SAKind.GetName())
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &kind))
			tr.runs["kind="+kind+",outcome="+outcome+",plan="+name]++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return tr
}

// checkMetrics scrapes and compares every store and run figure with the
// catalog and Temporal read just before and just after the scrape (read
// again when something changed in between), and the RPO age with the
// scrape's time. It returns the scrape.
func (e *labEnv) checkMetrics(t *testing.T, ctx context.Context, url, when string) scraped {
	t.Helper()
	for attempt := 0; ; attempt++ {
		before := e.truthNow(t, ctx)
		t0 := time.Now()
		m := e.scrape(t, ctx, url)
		t1 := time.Now()
		after := e.truthNow(t, ctx)
		if !before.equal(after) && attempt < 20 {
			continue
		}
		name := e.p.Name
		assert.Equal(t, after.points, m.series("drover_points"), "drover_points %s", when)
		assert.Equal(t, after.captured, m.series("drover_point_captured_timestamp_seconds"), "drover_point_captured_timestamp_seconds %s", when)
		assert.Equal(t, after.runs, m.series("drover_runs_total"), "drover_runs_total %s", when)
		for metric, want := range map[string]map[string]histSummary{"drover_backup_duration_seconds": after.durations, "drover_backup_bytes": after.sizes} {
			got := m.histograms(metric)
			require.Len(t, got, len(want), "%s %s", metric, when)
			for k, w := range want {
				assert.Equal(t, w.Count, got[k].Count, "%s{%s} count %s", metric, k, when)
				assert.InDelta(t, w.Sum, got[k].Sum, 1e-6*max(1, w.Sum), "%s{%s} sum %s", metric, k, when)
			}
		}
		if after.failoverAt.IsZero() {
			assert.Empty(t, m.series("drover_rpo_age_seconds"), "drover_rpo_age_seconds %s", when)
		} else {
			age := m.one("drover_rpo_age_seconds", "plan="+name)
			assert.GreaterOrEqual(t, age, t0.Sub(after.failoverAt).Seconds()-1e-3, "drover_rpo_age_seconds %s", when)
			assert.LessOrEqual(t, age, t1.Sub(after.failoverAt).Seconds()+1e-3, "drover_rpo_age_seconds %s", when)
		}
		assert.Empty(t, m.series("drover_scrape_errors"), "sources the worker could not read %s", when)
		return m
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// requireRunsEndOnPhase checks that every closed run of the plan, child runs
// included, ended on the phase done or failed (matching how it closed) and
// names the site it acted on.
func requireRunsEndOnPhase(t *testing.T, ctx context.Context, e *labEnv) {
	t.Helper()
	q := fmt.Sprintf("%s = '%s' AND ExecutionStatus != 'Running'", contract.SAPlan.GetName(), e.p.Name)
	resp, err := e.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: e.srv.Namespace(), Query: q, PageSize: 1000})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, ex := range resp.GetExecutions() {
		id := ex.GetExecution().GetWorkflowId()
		if ex.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
			continue
		}
		fields := ex.GetSearchAttributes().GetIndexedFields()
		str := func(name string) string {
			var v string
			if p := fields[name]; p != nil {
				require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &v))
			}
			return v
		}
		want := workflows.PhaseDone
		if ex.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			want = workflows.PhaseFailed
		}
		kind := str(contract.SAKind.GetName())
		kinds[kind]++
		assert.Equal(t, want, str(contract.SAPhase.GetName()), "%s (%s, %s) ends on", id, kind, ex.GetStatus())
		if kind != contract.KindMonitor {
			assert.NotEmpty(t, str(contract.SASite.GetName()), "%s (%s) names its site", id, kind)
		}
	}
	t.Logf("closed runs by kind: %v", kinds)
	for _, kind := range []string{contract.KindBackup, contract.KindValidate, contract.KindFailover, contract.KindRestart, contract.KindVerify} {
		assert.Positive(t, kinds[kind], "closed %s runs", kind)
	}
}
