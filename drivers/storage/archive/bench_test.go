package archive

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// writeCPU is the CPU time spent so far by this process and by the
// kernel's threads (children of kthreadd, pid 2), which do the page cache's
// writeback: what writing costs the machine, without the other processes
// that share it.
func writeCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Skip("needs /proc")
	}
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ... utime(14) stime(15); comm may hold spaces.
		_, rest, ok := strings.Cut(string(raw), ") ")
		f := strings.Fields(rest)
		if !ok || len(f) < 13 || (f[1] != "2" && e.Name() != "2") {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return total + time.Duration(ticks)*10*time.Millisecond // USER_HZ is 100 on Linux
}

// BenchmarkSinkDirectVsPageCache writes 512 MiB through a sink with
// O_DIRECT and through the page cache (the same sink with O_DIRECT off),
// each up to its fsync, and reports the CPU seconds of each (this process
// and the kernel's threads): what writing an archive costs the cores
// beside compression.
func BenchmarkSinkDirectVsPageCache(b *testing.B) {
	const size = 512 << 20
	data := make([]byte, 8<<20)
	fillRandom(rand.New(rand.NewPCG(1, 2)), data)
	dir := b.TempDir()
	write := func(direct bool) (wall, cpu time.Duration) {
		old := directFlag
		if !direct {
			directFlag = 0
		}
		defer func() { directFlag = old }()
		p := filepath.Join(dir, "a.tmp")
		settle()
		c, t := writeCPU(b), time.Now()
		s, err := createSink(p)
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < size; n += len(data) {
			if err := s.add(data); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.commit(); err != nil {
			b.Fatal(err)
		}
		wall, cpu = time.Since(t), writeCPU(b)-c
		_ = os.Remove(p)
		return wall, cpu
	}
	var dw, dc, bw, bc time.Duration
	for i := 0; i < b.N; i++ {
		w, c := write(true)
		dw, dc = dw+w, dc+c
		w, c = write(false)
		bw, bc = bw+w, bc+c
	}
	n := float64(b.N)
	b.ReportMetric(dc.Seconds()/n, "direct-cpu-s")
	b.ReportMetric(bc.Seconds()/n, "pagecache-cpu-s")
	b.ReportMetric(float64(size)*n/dw.Seconds()/1e6, "direct-MB/s")
	b.ReportMetric(float64(size)*n/bw.Seconds()/1e6, "pagecache-MB/s")
	if dc > 0 {
		b.ReportMetric(bc.Seconds()/dc.Seconds(), "cpu-ratio")
	}
}
