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
	require.Eventually(t, func() bool {
		st, err := l.StatusAll(ctx)
		require.NoError(t, err)
		c := st.Sites[0].Counts
		t.Logf("%+v", c)
		return c != nil && c.Instances["OrderHandling/running"] == 0 && c.Messages["mon.events"] == 0
	}, 30*time.Second, 500*time.Millisecond)
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
