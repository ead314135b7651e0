package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/drivers/secret"
	"github.com/drover-dr/drover/plan"
)

// The fleet's plan is valid, one component per tier, its group restorable.
func TestFleetPlanValidates(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteFleetPlan(dir, "fleet-001", nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "fleet-001.yaml"), path, "a folder of plan files, as failover --all reads")
	p, err := plan.LoadAndValidate(path, builtin.Registry(nil))
	require.NoError(t, err)
	tiers, err := plan.Tiers(p)
	require.NoError(t, err)
	assert.Len(t, tiers, len(fleetComponents))
	require.Len(t, p.Storage.Groups, 1)
	assert.Equal(t, filepath.Join(dir, "fleet-001", "dc2", "run"), p.Sites.Secondary.Settings["runDir"])
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 50; i++ {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	assert.Equal(t, 25*time.Second, percentile(ds, 50))
	assert.Equal(t, 50*time.Second, percentile(ds, 99))
	assert.Equal(t, time.Second, percentile(ds[:1], 99))
	assert.Equal(t, time.Duration(0), percentile(nil, 50))
}

func TestPortOfURL(t *testing.T) {
	assert.Equal(t, 5433, portOfURL("postgres://u@127.0.0.1:5433/temporal?sslmode=disable"))
	assert.Equal(t, 5432, portOfURL("postgres://u@db.example/temporal"))
	assert.Equal(t, 0, portOfURL("postgres://u@h:x/temporal"))
}

// The bend names the phase that grew most, and the goal is judged on p99.
func TestFleetRowJudgesAndNamesTheBend(t *testing.T) {
	run := func(rto, crit, dispatch time.Duration) fleetRun {
		return fleetRun{rto: rto, work: rtoWork{Start: crit}, overhead: rtoOverhead{Dispatch: dispatch, DispatchMean: dispatch, Activities: 10}}
	}
	lone := fleetBatchResult{runs: []fleetRun{run(2*time.Second, 1500*time.Millisecond, 100*time.Millisecond)}, all: 2 * time.Second,
		cpu: FleetCPU{Server: 0.2, Worker: 0.1}}
	batch := fleetBatchResult{all: 4 * time.Second, cpu: FleetCPU{Server: 2, Worker: 1}}
	for i := 0; i < 10; i++ {
		batch.runs = append(batch.runs, run(3*time.Second, 1600*time.Millisecond, 1200*time.Millisecond))
	}
	r := fleetMakeRow(10, lone, batch, 2)
	assert.InDelta(t, 1.5, r.P99Ratio, 1e-9)
	assert.False(t, r.GoalMet)
	assert.InDelta(t, 4/1.6, r.OverheadRatio, 1e-9)
	assert.InDelta(t, 0.2, r.CPU.Server, 1e-9)
	assert.InDelta(t, 3.0/8, r.Utilisation, 1e-9)
	assert.Contains(t, r.Bend, "activity dispatch")
	assert.Contains(t, r.Bend, "--activity-pollers")

	same := fleetMakeRow(1, lone, lone, 2)
	assert.True(t, same.GoalMet)
	assert.Contains(t, same.Bend, "does not bend")
}

// The fleet benchmark end to end at 2 plans on a real PostgreSQL: every
// figure is there and consistent with the others; no timing is asserted.
func TestBenchFleetSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Temporal on PostgreSQL and three failovers")
	}
	c := pg.Get(t)
	pgRef := c.PasswordEnv(t, "DROVER_BENCH_TEST_PG_PASSWORD")
	doc, err := Fleet(context.Background(), testEnv(t), FleetOptions{Counts: []int{2}, Dir: t.TempDir(), Timeout: 10 * time.Minute,
		Postgres: &devserver.Postgres{Host: c.Host, Port: c.Port, User: c.User, Database: "temporal", Password: secret.Ref(pgRef)}})
	require.NoError(t, err)
	require.Len(t, doc.Rows, 1)
	r := doc.Rows[0]
	assert.Equal(t, 2, r.Plans)
	assert.Positive(t, r.LoneRTOSeconds)
	assert.Positive(t, r.SlowestCriticalSeconds)
	assert.LessOrEqual(t, r.RTOP50Seconds, r.RTOP99Seconds)
	assert.LessOrEqual(t, r.RTOP99Seconds, r.AllRedirectedSeconds+0.001, "no plan is redirected after the last one")
	assert.LessOrEqual(t, r.SlowestCriticalSeconds, r.AllRedirectedSeconds, "the critical path is inside the batch")
	assert.InDelta(t, r.RTOP99Seconds/r.LoneRTOSeconds, r.P99Ratio, 1e-9)
	assert.Positive(t, r.CPU.Server, "the server's goroutines are labelled")
	assert.Positive(t, r.CPU.Worker, "the worker's goroutines are labelled")
	assert.Positive(t, r.CPU.Persistence, "PostgreSQL worked")
	assert.Positive(t, r.LoneCPU.Server)
	assert.Positive(t, r.Phase.Critical)
	assert.NotEmpty(t, r.Bend)
	var b bytes.Buffer
	doc.Print(&b)
	assert.Contains(t, b.String(), "p99/lone")
	assert.Contains(t, b.String(), "goal: 2 plans with per-plan RTO within 10% of a lone plan's")
}
