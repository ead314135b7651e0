package devserver

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/temporaltest"
)

// BenchmarkStart measures how long Start takes until the server is usable
// (frontend answers, namespace and search attributes in place, UI serving),
// and how long Stop takes, for each kind of start. The baseline is the
// upstream in-process test server (temporaltest, SQLite in memory, ringpop
// membership) until its namespace answers DescribeNamespace; every figure is
// also reported as a ratio to it. Run:
//
//	go test -run '^$' -bench Start -benchtime 3x ./devserver/
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	var sum = map[string]time.Duration{}

	measure := func(name string, o Options) {
		began := time.Now()
		s, err := Start(ctx, o)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		sum[name+"-start"] += time.Since(began)
		began = time.Now()
		if err := s.Stop(); err != nil {
			b.Fatalf("%s: stop: %v", name, err)
		}
		sum[name+"-stop"] += time.Since(began)
	}

	// The first server in a process pays one-time initialisation (~200ms on
	// 2 cores) that a later one does not; pay it before measuring, so the
	// baseline, measured first in each round, does not carry it.
	warm, err := Start(ctx, Options{UIPort: -1})
	if err != nil {
		b.Fatal(err)
	}
	_ = warm.Stop()

	for i := 0; b.Loop(); i++ {
		began := time.Now()
		ts := temporaltest.NewServer()
		_, err := ts.GetDefaultClient().WorkflowService().DescribeNamespace(ctx,
			&workflowservice.DescribeNamespaceRequest{Namespace: ts.GetDefaultNamespace()})
		if err != nil {
			b.Fatalf("baseline: %v", err)
		}
		sum["baseline-start"] += time.Since(began)
		began = time.Now()
		ts.Stop()
		sum["baseline-stop"] += time.Since(began)

		measure("memory", Options{UIPort: -1, SearchAttributes: testSearchAttributes})
		measure("memory+ui", Options{SearchAttributes: testSearchAttributes})
		file := filepath.Join(dir, "bench-"+strconv.Itoa(i)+".db")
		measure("newfile", Options{UIPort: -1, DBFile: file, SearchAttributes: testSearchAttributes})
		measure("existingfile", Options{UIPort: -1, DBFile: file, SearchAttributes: testSearchAttributes})
	}
	b.StopTimer()

	n := float64(b.N)
	base := float64(sum["baseline-start"]) / n
	for _, k := range []string{"baseline", "memory", "memory+ui", "newfile", "existingfile"} {
		start := float64(sum[k+"-start"]) / n
		b.ReportMetric(start/float64(time.Millisecond), k+"-start-ms")
		b.ReportMetric(float64(sum[k+"-stop"])/n/float64(time.Millisecond), k+"-stop-ms")
		if k != "baseline" {
			b.ReportMetric(start/base, k+"-start/baseline")
		}
	}
	b.ReportMetric(0, "ns/op") // the per-loop total mixes five servers; the metrics above are the figures
}
