package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// commit makes a real point in the store: one group, one artifact of size
// bytes, captured at `at`, taking `took`.
func commit(t *testing.T, s *catalog.Store, plan, id string, mode catalog.Mode, base string, at time.Time, took time.Duration, size int) {
	t.Helper()
	dir, err := s.ResetGroup(plan, id, "g1")
	require.NoError(t, err)
	data := strings.Repeat("x", size)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.tar"), []byte(data), 0o640))
	h := catalog.NewHash()
	h.Write([]byte(data))
	require.NoError(t, s.WriteGroup(plan, id, catalog.Group{
		Name: "g1", Driver: "archive", Method: "tar", Consistency: catalog.ConsistencyQuiesced, Instant: at,
		Members:   []catalog.Member{{Name: "m", Artifact: "g1/m.tar"}},
		Artifacts: []catalog.Artifact{{Name: "g1/m.tar", Size: int64(size), Checksum: catalog.FormatChecksum(h.Sum64())}},
		Size:      int64(size), DataSize: int64(size),
	}))
	_, err = s.Commit(plan, id, catalog.CommitInfo{Mode: mode, BaseID: base, Started: at, Ended: at.Add(took), Groups: []string{"g1"}})
	require.NoError(t, err)
}

type fakeVisibility struct {
	runs    map[string][]RunCount
	gates   map[string][]OpenGate
	pollers map[string]int
	fail    error
}

func (f *fakeVisibility) RunCounts(_ context.Context, plan string) ([]RunCount, error) {
	return f.runs[plan], f.fail
}
func (f *fakeVisibility) OpenGates(_ context.Context, plan string) ([]OpenGate, error) {
	return f.gates[plan], f.fail
}
func (f *fakeVisibility) Pollers(_ context.Context, q string) (int, error) {
	return f.pollers[q], f.fail
}

type fakeReplication map[string]Lag

func (f fakeReplication) Lag(_ context.Context, plan string) (Lag, bool, error) {
	l, ok := f[plan]
	return l, ok, nil
}

// scrape serves the registry over HTTP and parses what Prometheus would read.
func scrape(t *testing.T, reg *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// series returns label-string → value of a gauge/counter family.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string) map[string]float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return nil
	}
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(parts)
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.GetCounter().GetValue()
		}
		out[strings.Join(parts, ",")] = v
	}
	return out
}

func TestScrapeFromCatalog(t *testing.T) {
	st, err := catalog.Open(t.TempDir())
	require.NoError(t, err)
	// bpm: full p1 (valid), cumulative p2 on p1 (unverified), full p3
	// (invalid), then an unreadable p4.
	commit(t, st, "bpm", "p1", catalog.ModeFull, "", t0, 90*time.Second, 3<<20)
	commit(t, st, "bpm", "p2", catalog.ModeCumulative, "p1", t0.Add(10*time.Minute), 20*time.Second, 1<<20)
	commit(t, st, "bpm", "p3", catalog.ModeFull, "", t0.Add(20*time.Minute), 100*time.Second, 3<<20)
	require.NoError(t, st.SetValidity("bpm", "p1", catalog.Validity{State: catalog.Valid, Run: "v1", At: t0.Add(5 * time.Minute)}))
	require.NoError(t, st.SetValidity("bpm", "p3", catalog.Validity{State: catalog.Invalid, Reason: "torn", At: t0.Add(25 * time.Minute)}))
	commit(t, st, "bpm", "p4", catalog.ModeFull, "", t0.Add(30*time.Minute), time.Second, 10)
	require.NoError(t, os.WriteFile(filepath.Join(st.PointDir("bpm", "p4"), catalog.ManifestFile), []byte("{not json"), 0o640))
	_, err = st.Transition("bpm", catalog.StateEnabled, "secondary", "", t0.Add(-time.Hour))
	require.NoError(t, err)
	_, err = st.Transition("bpm", catalog.StateEnabled, "primary", "", t0.Add(-time.Minute))
	require.NoError(t, err)
	// other: known from the store only (no plan file), no validated point.
	commit(t, st, "other", "o1", catalog.ModeFull, "", t0.Add(5*time.Minute), 2*time.Second, 100)

	now := t0.Add(45 * time.Minute)
	vis := &fakeVisibility{
		runs: map[string][]RunCount{"bpm": {
			{Kind: "backup", Outcome: OutcomeCompleted, Count: 7}, {Kind: "backup", Outcome: OutcomeFailed, Count: 2},
			{Kind: "failover", Outcome: OutcomeCompleted, Count: 1},
		}},
		gates:   map[string][]OpenGate{"bpm": {{Gate: "start-secondary", Since: t0.Add(40 * time.Minute), WorkflowID: "failover-bpm-1"}}},
		pollers: map[string]int{"drover-dc1": 2, "drover-dc2": 0},
	}
	c := NewCollector(Config{
		Plans:       []Plan{{Name: "bpm", RPO: 15 * time.Minute, Store: st, Reminders: map[string]time.Duration{"start-secondary": 10 * time.Minute}}},
		Stores:      []*catalog.Store{st},
		Visibility:  vis,
		SiteQueues:  map[string]string{"dc1": "drover-dc1", "dc2": "drover-dc2"},
		Replication: fakeReplication{"bpm": {Seconds: 4.5, Bytes: 8192}},
		Now:         func() time.Time { return now },
	})
	reg, err := NewRegistry(nil)
	require.NoError(t, err)
	require.NoError(t, reg.Register(c))
	fams := scrape(t, reg)

	// The point a failover uses is p1 (valid, the newest restorable
	// validated one): p2 is unverified, p3 invalid, p4 unreadable. other
	// has no validated point: its failover would take the intact o1.
	assert.Equal(t, map[string]float64{"plan=bpm": (45 * time.Minute).Seconds(), "plan=other": (40 * time.Minute).Seconds()},
		series(t, fams, "drover_rpo_age_seconds"))
	assert.Equal(t, map[string]float64{"plan=bpm": 900}, series(t, fams, "drover_rpo_target_seconds"))
	assert.Equal(t, map[string]float64{
		"plan=bpm,trust=validated": float64(t0.Unix()),
		"plan=bpm,trust=intact":    float64(t0.Add(10 * time.Minute).Unix()),
		"plan=other,trust=intact":  float64(t0.Add(5 * time.Minute).Unix()),
	}, series(t, fams, "drover_point_captured_timestamp_seconds"))
	assert.Equal(t, map[string]float64{
		"plan=bpm,validity=valid": 1, "plan=bpm,validity=unverified": 1, "plan=bpm,validity=invalid": 1, "plan=bpm,validity=unreadable": 1,
		"plan=other,validity=valid": 0, "plan=other,validity=unverified": 1, "plan=other,validity=invalid": 0, "plan=other,validity=unreadable": 0,
	}, series(t, fams, "drover_points"))
	assert.Equal(t, map[string]float64{"plan=bpm": float64(t0.Add(-time.Hour).Unix())}, series(t, fams, "drover_plan_enabled_timestamp_seconds"))
	assert.Equal(t, map[string]float64{
		"kind=backup,outcome=completed,plan=bpm": 7, "kind=backup,outcome=failed,plan=bpm": 2, "kind=failover,outcome=completed,plan=bpm": 1,
	}, series(t, fams, "drover_runs_total"))
	assert.Equal(t, map[string]float64{"gate=start-secondary,plan=bpm,workflow_id=failover-bpm-1": float64(t0.Add(40 * time.Minute).Unix())},
		series(t, fams, "drover_gate_open_since_timestamp_seconds"))
	assert.Equal(t, map[string]float64{"gate=start-secondary,plan=bpm": 600}, series(t, fams, "drover_gate_reminder_seconds"))
	assert.Equal(t, map[string]float64{"site=dc1,task_queue=drover-dc1": 2, "site=dc2,task_queue=drover-dc2": 0}, series(t, fams, "drover_site_workers"))
	assert.Equal(t, map[string]float64{"plan=bpm": 4.5}, series(t, fams, "drover_replication_lag_seconds"))
	assert.Equal(t, map[string]float64{"plan=bpm": 8192}, series(t, fams, "drover_replication_lag_bytes"))
	assert.Nil(t, series(t, fams, "drover_scrape_errors"))

	// Histograms: bpm's full points took 90s and 100s (3 MiB each), its
	// cumulative 20s (1 MiB); p4 is unreadable and not counted.
	hist := func(name, mode string) *dto.Histogram {
		for _, m := range fams[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["plan"] == "bpm" && labels["mode"] == mode {
				return m.GetHistogram()
			}
		}
		t.Fatalf("no %s{plan=bpm,mode=%s}", name, mode)
		return nil
	}
	full := hist("drover_backup_duration_seconds", "full")
	assert.EqualValues(t, 2, full.GetSampleCount())
	assert.InDelta(t, 190, full.GetSampleSum(), 1e-9)
	for _, b := range full.GetBucket() {
		switch b.GetUpperBound() {
		case 64:
			assert.EqualValues(t, 0, b.GetCumulativeCount())
		case 256:
			assert.EqualValues(t, 2, b.GetCumulativeCount())
		}
	}
	cum := hist("drover_backup_bytes", "cumulative")
	assert.EqualValues(t, 1, cum.GetSampleCount())
	assert.InDelta(t, 1<<20, cum.GetSampleSum(), 1e-9)
	assert.EqualValues(t, 1, cum.GetBucket()[0].GetCumulativeCount(), "1 MiB falls in the first (1 MiB) bucket")

	// A second collector over the same store (a restarted worker) reports
	// the same figures: nothing was only in memory.
	reg2, err := NewRegistry(nil)
	require.NoError(t, err)
	require.NoError(t, reg2.Register(NewCollector(Config{
		Plans: []Plan{{Name: "bpm", RPO: 15 * time.Minute, Store: st}}, Stores: []*catalog.Store{st}, Visibility: vis,
		Now: func() time.Time { return now },
	})))
	fams2 := scrape(t, reg2)
	assert.Equal(t, series(t, fams, "drover_rpo_age_seconds"), series(t, fams2, "drover_rpo_age_seconds"))
	assert.Equal(t, series(t, fams, "drover_points"), series(t, fams2, "drover_points"))
	assert.Equal(t, series(t, fams, "drover_runs_total"), series(t, fams2, "drover_runs_total"))
}

func TestScrapeErrorsAreExported(t *testing.T) {
	st, err := catalog.Open(t.TempDir())
	require.NoError(t, err)
	commit(t, st, "bpm", "p1", catalog.ModeFull, "", t0, time.Second, 10)
	c := NewCollector(Config{
		Plans:      []Plan{{Name: "bpm", RPO: time.Hour, Store: st}},
		Visibility: &fakeVisibility{fail: errors.New("frontend unavailable")},
		SiteQueues: map[string]string{"dc1": "q1"},
		Now:        func() time.Time { return t0 },
	})
	reg, err := NewRegistry(nil)
	require.NoError(t, err)
	require.NoError(t, reg.Register(c))
	fams := scrape(t, reg)
	assert.Equal(t, map[string]float64{
		"plan=bpm,source=visibility": 1, "plan=bpm,source=gates": 1, "plan=,source=pollers": 1,
	}, series(t, fams, "drover_scrape_errors"))
	// The store figures are still there.
	assert.Equal(t, map[string]float64{"plan=bpm,trust=intact": float64(t0.Unix())}, series(t, fams, "drover_point_captured_timestamp_seconds"))
	assert.Equal(t, map[string]float64{"plan=bpm": 0}, series(t, fams, "drover_rpo_age_seconds"), "no validated point: the intact one's age")
}

func TestSDKMetricsAreServed(t *testing.T) {
	reg, err := NewRegistry(nil)
	require.NoError(t, err)
	h := reg.SDKHandler().WithTags(map[string]string{"task_queue": "drover"})
	h.Counter("temporal_request").Inc(3)
	h.Gauge("temporal_num_pollers").Update(2)
	h.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	fams := scrape(t, reg)
	assert.Equal(t, map[string]float64{"task_queue=drover": 3}, series(t, fams, "temporal_request_total"))
	assert.Equal(t, map[string]float64{"task_queue=drover": 2}, series(t, fams, "temporal_num_pollers"))
	var names []string
	for n := range fams {
		if strings.HasPrefix(n, "temporal_activity_execution_latency") {
			names = append(names, n)
		}
	}
	assert.NotEmpty(t, names, "the SDK's timer is exported")
	assert.Contains(t, fams, "go_goroutines")
}

func TestEnabledSince(t *testing.T) {
	lc := catalog.Lifecycle{State: catalog.StateEnabled, History: []catalog.LifecycleEvent{
		{At: t0, State: catalog.StateEnabled}, {At: t0.Add(time.Hour), State: catalog.StateDisabled},
		{At: t0.Add(2 * time.Hour), State: catalog.StateEnabled}, {At: t0.Add(3 * time.Hour), State: catalog.StateEnabled},
	}}
	got, ok := enabledSince(lc)
	assert.True(t, ok)
	assert.Equal(t, t0.Add(2*time.Hour), got)
	lc.State = catalog.StateDisabled
	_, ok = enabledSince(lc)
	assert.False(t, ok)
}

func TestServeUntilCancelled(t *testing.T) {
	reg, err := NewRegistry(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addr, done, err := reg.Serve(ctx, "127.0.0.1:0")
	require.NoError(t, err)
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the metrics server did not stop")
	}
	_, _, err = reg.Serve(context.Background(), "not-an-address")
	require.ErrorContains(t, err, "--metrics-address not-an-address")
}
