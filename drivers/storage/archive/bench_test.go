package archive

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

// The benchmarks below time the archive path beside a same-run baseline
// (the tar and zstd CLIs on the same data) and report both throughputs and
// their ratio as metrics. `drover bench backup` does the same at 1 GiB.

const benchSize = 64 << 20

type benchEnv struct {
	dir, data, store string
	ds               *Dataset
	d                *Driver
	zstd             string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	dir := b.TempDir()
	e := &benchEnv{dir: dir, data: filepath.Join(dir, "data"), store: filepath.Join(dir, "store"), d: New(nil)}
	if err := os.MkdirAll(e.store, 0o755); err != nil {
		b.Fatal(err)
	}
	ds, err := GenerateDataset(e.data, benchSize, nil, 42)
	if err != nil {
		b.Fatal(err)
	}
	e.ds = ds
	e.zstd, _ = exec.LookPath("zstd")
	return e
}

func (e *benchEnv) req(id string, mode catalog.Mode, base string) storage.Request {
	return storage.Request{Plan: "bench", PointID: id, Store: e.store, Mode: mode, BaseID: base, Quiesced: true,
		Site:  drivers.Site{Settings: map[string]any{"dataRoot": e.data}},
		Group: storage.Group{Name: "g", Driver: "archive", Components: e.ds.Members}}
}

func (e *benchEnv) full(b *testing.B, id string) time.Duration {
	b.Helper()
	settle()
	t := time.Now()
	if _, err := e.d.Capture(context.Background(), e.req(id, catalog.ModeFull, ""), nil); err != nil {
		b.Fatal(err)
	}
	st, err := catalog.Open(e.store)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"g"}}); err != nil {
		b.Fatal(err)
	}
	return time.Since(t)
}

func settle() { _ = exec.Command("sync").Run() }

func shell(b *testing.B, script string) time.Duration {
	b.Helper()
	settle()
	t := time.Now()
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v: %s", script, err, out)
	}
	return time.Since(t)
}

func report(b *testing.B, bytes int64, ours, base time.Duration, name string) {
	b.ReportMetric(float64(bytes)/ours.Seconds()/1e6, "drover-MB/s")
	if base > 0 {
		b.ReportMetric(float64(bytes)/base.Seconds()/1e6, name+"-MB/s")
		b.ReportMetric(base.Seconds()/ours.Seconds(), "ratio")
	}
}

func BenchmarkFullBackupVsTarZstd(b *testing.B) {
	e := newBenchEnv(b)
	var ours, base time.Duration
	for i := 0; i < b.N; i++ {
		ours += e.full(b, fmt.Sprintf("f%d", i))
		if e.zstd != "" {
			base += shell(b, fmt.Sprintf("tar -cf - -C %q . | %q -q -1 -T0 > %q", e.data, e.zstd, filepath.Join(e.dir, "base.tar.zst")))
		}
	}
	report(b, e.ds.Bytes*int64(b.N), ours, base, "tarzstd")
}

func BenchmarkCumulativeVsFull(b *testing.B) {
	e := newBenchEnv(b)
	st, _ := catalog.Open(e.store)
	var full, cum time.Duration
	for i := 0; i < b.N; i++ {
		fid := fmt.Sprintf("f%d", i)
		full += e.full(b, fid)
		if _, _, err := ChangeFiles(e.ds, 0.01, uint64(i)); err != nil {
			b.Fatal(err)
		}
		cid := fmt.Sprintf("c%d", i)
		settle()
		t := time.Now()
		if _, err := e.d.Capture(context.Background(), e.req(cid, catalog.ModeCumulative, fid), nil); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Commit("bench", cid, catalog.CommitInfo{Mode: catalog.ModeCumulative, BaseID: fid, Groups: []string{"g"}}); err != nil {
			b.Fatal(err)
		}
		cum += time.Since(t)
	}
	b.ReportMetric(float64(cum.Microseconds())/float64(b.N), "cumulative-µs/op")
	b.ReportMetric(float64(full.Microseconds())/float64(b.N), "full-µs/op")
	b.ReportMetric(full.Seconds()/cum.Seconds(), "times-faster")
}

func BenchmarkRestoreVsZstdTar(b *testing.B) {
	e := newBenchEnv(b)
	e.full(b, "f0")
	st, _ := catalog.Open(e.store)
	m, err := st.Load("bench", "f0")
	if err != nil {
		b.Fatal(err)
	}
	var ours, base time.Duration
	for i := 0; i < b.N; i++ {
		target := filepath.Join(e.dir, "restore")
		_ = os.RemoveAll(target)
		settle()
		t := time.Now()
		if _, err := e.d.Restore(context.Background(), storage.RestoreRequest{Plan: "bench", PointID: "f0", Store: e.store,
			Site: drivers.Site{Settings: map[string]any{"dataRoot": target}}, Group: storage.Group{Name: "g", Driver: "archive"}}, nil); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t)
		_ = os.RemoveAll(target)
		if e.zstd != "" {
			var script []string
			for _, mem := range m.Groups[0].Members {
				md := filepath.Join(target, mem.Name)
				script = append(script, fmt.Sprintf("mkdir -p %q && %q -q -d -c %q | tar -xf - -C %q", md, e.zstd,
					filepath.Join(st.PointDir("bench", "f0"), mem.Artifact), md))
			}
			base += shell(b, strings.Join(script, " && "))
			_ = os.RemoveAll(target)
		}
	}
	report(b, e.ds.Bytes*int64(b.N), ours, base, "zstdtar")
}
