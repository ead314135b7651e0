package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

func TestMain(m *testing.M) { labtest.Main(m) }

func TestUpRunsAWorkloadAndDown(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	st, err := l.StatusAll(ctx)
	require.NoError(t, err)
	for _, s := range st.Sites[0].Servers {
		require.Equal(t, lab.StatusRunning, s.State, "%s: %s", s.Server, s.Detail)
	}
	rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 50, Duration: 2 * time.Second})
	require.NoError(t, err)
	t.Log(rep.String(), rep.Errors)
	require.Zero(t, rep.Failed)
	c := waitQuiet(t, l, "dc1")
	n := int64(len(rep.Orders))
	require.Equal(t, n, c.Instances["OrderHandling/completed"], "every order completes")
	require.Equal(t, n, c.Instances["CheckCustomerAccountStatus/completed"], "each checked its customer once")

	// Monitor agrees with BPM: every instance monitored, every step seen,
	// the dashboard counts every order started and finished.
	require.EqualValues(t, 2*n, c.Monitored)
	mon := openSiteDB(t, l, "dc1", lab.DBMonitor)
	counter := func(name string) int64 {
		var v int64
		require.NoError(t, mon.QueryRow("SELECT coalesce((SELECT value FROM counters WHERE name = ?), 0)", name).Scan(&v))
		return v
	}
	require.Equal(t, n, counter("started.OrderHandling"))
	require.Equal(t, n, counter("finished.OrderHandling"))
	require.Equal(t, n, counter("outcome.completed.OrderHandling")+counter("outcome.cancelled.OrderHandling"))
	var seen int64
	require.NoError(t, mon.QueryRow("SELECT coalesce(sum(steps_seen), 0) FROM monitored").Scan(&seen))
	require.Equal(t, c.Steps, seen)
	res, err := l.Probe(ctx, "dc1", lab.LevelConsistency, lab.ProbeOptions{})
	require.NoError(t, err)
	require.True(t, res.Passed, "%v", res.Problems)

	require.NoError(t, l.Down())
	st, err = l.StatusAll(ctx)
	require.NoError(t, err)
	for _, s := range st.Sites[0].Servers {
		require.Equal(t, lab.StatusStopped, s.State, s.Server)
	}
	require.Equal(t, lab.StatusStopped, st.FrontDoor.State)
}

// BenchmarkWorkload measures the cell's sustained rate of process steps
// (each a two-phase commit through the database server plus messages
// through an engine) beside raw SQLite transactions on the same machine:
//
//	go test -run '^$' -bench Workload -benchtime 1x ./lab/
func BenchmarkWorkload(b *testing.B) {
	l := labtest.Up(b)
	ctx := context.Background()
	b.ResetTimer()
	var rep lab.BenchReport
	for i := 0; i < b.N; i++ {
		var err error
		rep, err = l.Bench(ctx, lab.BenchOptions{Rate: 100, Warmup: 2 * time.Second, Duration: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.Log(rep.String())
	b.ReportMetric(rep.StepsPerSecond, "steps/s")
	b.ReportMetric(rep.Baseline, "baseline-tx/s")
	b.ReportMetric(rep.Ratio, "ratio")
}
