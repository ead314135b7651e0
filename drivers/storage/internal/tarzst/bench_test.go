package tarzst_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/archive"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// BenchmarkCaptureVsTarZstd times a full capture of the bench's data set
// (archive.GenerateDataset, seed 42, as `drover bench backup` makes it)
// beside `tar -cf - | zstd -1 -T0` on the same data in the same run
// (ratio, wall clock; cpu-ratio, CPU seconds, which other work on a shared
// machine disturbs less), and measures both compressors' per-core rates on
// the same bytes: ceiling-MB/s is cores × ours, of-ceiling how close the
// capture comes to it, and ceiling-ratio the best capture ratio possible
// when both sides are compressor-bound on the same cores.
//
//	go test -run '^$' -bench CaptureVsTarZstd -benchtime 3x ./drivers/storage/internal/tarzst/
//
// DROVER_BENCH_MB sets the data set's size (default 128).
func BenchmarkCaptureVsTarZstd(b *testing.B) {
	size := int64(128)
	if v := os.Getenv("DROVER_BENCH_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("DROVER_BENCH_MB=%q: want a positive number of MB", v)
		}
		size = n
	}
	zstdCLI, err := exec.LookPath("zstd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal("zstd CLI missing: the baseline needs it (apt-get install zstd)")
		}
		b.Skip("zstd CLI missing: the baseline needs it (apt-get install zstd)")
	}
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	ds, err := archive.GenerateDataset(data, size<<20, nil, 42)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o755); err != nil {
		b.Fatal(err)
	}
	st, err := catalog.Open(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	baseOut := filepath.Join(dir, "base.tar.zst")

	var capture, base, captureCPU, baseCPU time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("p%d", i)
		req := storage.Request{Plan: "bench", PointID: id, Mode: catalog.ModeFull,
			Site: drivers.Site{Settings: map[string]any{"dataRoot": data}}, Group: storage.Group{Name: "g", Driver: "archive"}}
		settle()
		cpu0, t0 := selfCPU(), time.Now()
		if _, _, err := tarzst.WriteGroup(context.Background(), st, req, tarzst.WriteSpec{Root: data, Members: ds.Members,
			Method: "tar+zstd", Driver: "archive", Consistency: catalog.ConsistencyQuiesced, Instant: t0}, nil); err != nil {
			b.Fatal(err)
		}
		capture += time.Since(t0)
		captureCPU += selfCPU() - cpu0
		if err := os.RemoveAll(st.StagingDir("bench", id)); err != nil {
			b.Fatal(err)
		}

		settle()
		cpu0, t0 = childCPU(), time.Now()
		script := fmt.Sprintf("tar -cf - -C %q . | %q -q -1 -T0 > %q", data, zstdCLI, baseOut)
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", script, err, out)
		}
		base += time.Since(t0)
		baseCPU += childCPU() - cpu0
	}
	b.StopTimer()

	// The compressors alone, on one core each, timed in CPU seconds so
	// other work on the machine does not count: ours (the capture's own
	// encoder, with its raw frames for incompressible runs) on the data
	// set's bytes read into memory first, and zstd -1 -T1 on a tar of the
	// same data. No capture can beat cores × its compressor's per-core
	// rate, and when both sides are compressor-bound on the same cores the
	// best capture ratio is the ratio of the two per-core rates.
	mem := make([]byte, 0, ds.Bytes)
	for _, f := range ds.Files {
		c, err := os.ReadFile(filepath.Join(data, f))
		if err != nil {
			b.Fatal(err)
		}
		mem = append(mem, c...)
	}
	var core time.Duration
	for range b.N {
		core += onOneThread(func() { tarzst.EncodeChunks(mem) })
	}
	mem = nil
	tarFile := filepath.Join(dir, "data.tar")
	if out, err := exec.Command("tar", "-cf", tarFile, "-C", data, ".").CombinedOutput(); err != nil {
		b.Fatalf("tar: %v: %s", err, out)
	}
	var zstdCore time.Duration
	for range b.N {
		cpu0 := childCPU()
		if out, err := exec.Command("sh", "-c", fmt.Sprintf("%q -q -1 -T1 -c %q > /dev/null", zstdCLI, tarFile)).CombinedOutput(); err != nil {
			b.Fatalf("zstd -1 -T1: %v: %s", err, out)
		}
		zstdCore += childCPU() - cpu0
	}

	n := float64(b.N)
	mbps := func(d time.Duration) float64 { return float64(ds.Bytes) * n / d.Seconds() / 1e6 }
	cores := float64(runtime.GOMAXPROCS(0))
	ceiling := mbps(core) * cores
	b.ReportMetric(mbps(capture), "capture-MB/s")
	b.ReportMetric(mbps(base), "tarzstd-MB/s")
	b.ReportMetric(base.Seconds()/capture.Seconds(), "ratio")
	b.ReportMetric(baseCPU.Seconds()/captureCPU.Seconds(), "cpu-ratio")
	b.ReportMetric(mbps(core), "encoder-core-MB/s")
	b.ReportMetric(mbps(zstdCore), "zstd1-core-MB/s")
	b.ReportMetric(ceiling, "ceiling-MB/s")
	b.ReportMetric(mbps(capture)/ceiling, "of-ceiling")
	b.ReportMetric(zstdCore.Seconds()/core.Seconds(), "ceiling-ratio")
	gb := float64(ds.Bytes) * n / 1e9
	b.ReportMetric(captureCPU.Seconds()/gb, "capture-cpu-s/GB")
	b.ReportMetric(baseCPU.Seconds()/gb, "tarzstd-cpu-s/GB")
}

// onOneThread runs fn on a goroutine locked to its thread and returns the
// CPU time that thread spent.
func onOneThread(fn func()) time.Duration {
	done := make(chan time.Duration)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		t0 := rusage(unix.RUSAGE_THREAD)
		fn()
		done <- rusage(unix.RUSAGE_THREAD) - t0
	}()
	return <-done
}

func settle() { _ = exec.Command("sync").Run() }

func selfCPU() time.Duration  { return rusage(unix.RUSAGE_SELF) }
func childCPU() time.Duration { return rusage(unix.RUSAGE_CHILDREN) }

func rusage(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
