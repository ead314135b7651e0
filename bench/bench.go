// Package bench measures drover on the same stack, drivers and plans it runs
// in production and prints every figure beside a baseline measured in the
// same run, as a ratio. The CLI (`drover bench ...`) only parses flags and
// writes what these functions return.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/stack"
)

// ErrBadInput marks errors in what the caller gave (a folder, a path): the
// CLI exits with its bad-input code for them.
var ErrBadInput = errors.New("bad input")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}

// Env is what every benchmark gets from its caller.
type Env struct {
	Logger    *zap.Logger
	Namespace string
	// Dial connects to an embedded server's frontend with the caller's
	// client settings (data converter, logger).
	Dial func(address string) (client.Client, error)
	// Progress receives a line per step of a long benchmark; nil for none.
	Progress io.Writer
}

func (e Env) log() *zap.Logger {
	if e.Logger == nil {
		return zap.NewNop()
	}
	return e.Logger
}

func (e Env) progress(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, format+"\n", args...)
	}
}

// benchSites are the sites of the benchmarks' plans, served by the
// benchmark's own worker.
var benchSites = []contract.Placement{{Site: "dc1"}, {Site: "dc2"}, {Site: "sandbox"}}

// startStack is drover's stack without a UI, its worker serving the
// benchmark plans' sites, with o's instrumentation and tuning.
func (e Env) startStack(ctx context.Context, o stack.Options) (*stack.Stack, error) {
	o.UIPort, o.Namespace, o.Logger, o.Dial = -1, e.Namespace, e.log(), e.Dial
	if o.Sites == nil {
		o.Sites = benchSites
	}
	return stack.Start(ctx, o)
}

// Figure is one measured figure, its baseline and their ratio.
type Figure struct {
	Name     string  `json:"name"`
	Ours     string  `json:"ours"`
	Baseline string  `json:"baseline"`
	Ratio    float64 `json:"ratio,omitempty"`
	// Meaning says how to read the ratio.
	Meaning string `json:"meaning"`
	Skipped string `json:"skipped,omitempty"`
	// Note explains the figure, where the run measured why.
	Note string `json:"note,omitempty"`
	// Seconds and bytes behind the figure, for scripts.
	OursSeconds     float64 `json:"oursSeconds,omitempty"`
	BaselineSeconds float64 `json:"baselineSeconds,omitempty"`
	// CPU seconds (user+system) of the best run, where measured: a figure
	// that depends less on what else the machine runs.
	OursCPUSeconds     float64 `json:"oursCpuSeconds,omitempty"`
	BaselineCPUSeconds float64 `json:"baselineCpuSeconds,omitempty"`
	Bytes              int64   `json:"bytes,omitempty"`
}

// printFigures writes figures as the text of `drover bench backup`.
func printFigures(out io.Writer, figs []Figure) {
	for _, f := range figs {
		fmt.Fprintf(out, "\n%s\n", f.Name)
		if f.Ours != "" {
			fmt.Fprintf(out, "  drover:   %s\n", f.Ours)
		}
		if f.Baseline != "" {
			fmt.Fprintf(out, "  baseline: %s\n", f.Baseline)
		}
		if f.Ratio != 0 {
			fmt.Fprintf(out, "  ratio:    %.2fx  (%s)\n", f.Ratio, f.Meaning)
		}
		if f.Skipped != "" {
			fmt.Fprintf(out, "  skipped:  %s\n", f.Skipped)
		}
		if f.Note != "" {
			fmt.Fprintf(out, "  note:     %s\n", f.Note)
		}
	}
}

// ParseSize reads "1GiB", "512MiB", "64M", "1G" (binary units) or bytes.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "iB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 1GiB, 256MiB)", s)
	}
	return int64(v * float64(mult)), nil
}

func mbps(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/d.Seconds()/1e6)
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// selfCPU and childCPU are the user+system time of this process and of
// its waited-for children.
func selfCPU() time.Duration  { return rusage(syscall.RUSAGE_SELF) }
func childCPU() time.Duration { return rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle flushes dirty pages before a timed run, so no run pays for the
// writeback of the one before it (drover fsyncs its archives; the
// baselines do not, and would leave their output for the next run to wait
// behind).
func settle() { _ = exec.Command("sync").Run() }

// loadAverage is the 1-minute load average (0 where /proc/loadavg is
// missing).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}

// alternate runs rounds of measure(0) and measure(1), swapping their
// order every round, so neither side always runs first (after the sync,
// on a colder cache) or always second.
func alternate(rounds int, measure func(side int) error) error {
	for r := 0; r < rounds; r++ {
		order := [2]int{0, 1}
		if r%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, side := range order {
			if err := measure(side); err != nil {
				return err
			}
		}
	}
	return nil
}

// median of ds (sorted in place); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if n := len(ds); n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[len(ds)/2]
}

// workDir is a benchmark's work folder: the caller's --dir (made absolute,
// created, kept), or a new temporary folder that cleanup removes unless
// keep.
func workDir(dir string, keep bool, prefix string) (string, func(), error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", prefix)
		if err != nil {
			return "", nil, err
		}
		if keep {
			return tmp, func() {}, nil
		}
		return tmp, func() { _ = os.RemoveAll(tmp) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, badInput("--dir: %v", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, badInput("--dir: %v", err)
	}
	return abs, func() {}, nil
}
