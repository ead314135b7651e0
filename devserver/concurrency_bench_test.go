package devserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// BenchmarkConcurrentWorkflows starts a batch of workflows at once (one
// activity and a short timer each) and waits for all of them, on PostgreSQL
// and, as the same-run baseline, on a SQLite file. It reports each store's
// wall time for the batch, their ratio, and how many workflows failed (SQLite
// holds one connection; large batches time out there, Temporal issue 9686).
// Run:
//
//	go test -run '^$' -bench ConcurrentWorkflows -benchtime 1x ./devserver/
//
// DEVSERVER_BENCH_WORKFLOWS sets the batch size (default 300).
func BenchmarkConcurrentWorkflows(b *testing.B) {
	n := 300
	if v := os.Getenv("DEVSERVER_BENCH_WORKFLOWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("DEVSERVER_BENCH_WORKFLOWS=%q is not a positive number", v)
		}
	}
	c := pg.Get(b)
	b.Setenv(pgPasswordEnv, c.Password)
	dir := b.TempDir()
	sum := map[string]time.Duration{}
	failed := map[string]int{}

	batch := func(name string, o Options) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		o.UIPort = -1
		s, err := Start(ctx, o)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		defer s.Stop()
		cl, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: s.Namespace(), Logger: sdkLogger{s.logger.Sugar()}})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		tq := "bench-" + name
		w := worker.New(cl, tq, worker.Options{})
		w.RegisterWorkflowWithOptions(fanWorkflow, workflow.RegisterOptions{Name: "fan"})
		w.RegisterActivityWithOptions(stepActivity, activity.RegisterOptions{Name: "step"})
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		defer w.Stop()

		began := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%d", tq, i), TaskQueue: tq}, "fan", i)
				if err == nil {
					err = run.Get(ctx, nil)
				}
				if err != nil {
					mu.Lock()
					failed[name]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		sum[name] += time.Since(began)
	}

	for i := 0; b.Loop(); i++ {
		batch("sqlite", Options{DBFile: filepath.Join(dir, fmt.Sprintf("bench-%d.db", i))})
		batch("postgres", Options{Postgres: &Postgres{URL: c.URL(fmt.Sprintf("bench_%d", i)), Password: "env:" + pgPasswordEnv}})
	}
	b.StopTimer()
	rounds := float64(b.N)
	for _, k := range []string{"sqlite", "postgres"} {
		b.ReportMetric(float64(sum[k].Milliseconds())/rounds, k+"-batch-ms")
		b.ReportMetric(float64(failed[k])/rounds, k+"-failed")
	}
	b.ReportMetric(float64(sum["postgres"])/float64(sum["sqlite"]), "postgres/sqlite")
	b.ReportMetric(0, "ns/op") // the loop runs both stores; the metrics above are the figures
}
