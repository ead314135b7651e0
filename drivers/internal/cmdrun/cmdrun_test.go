package cmdrun

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readPID waits for a script to write a pid file and kills that pid when the
// test ends, so a failing test leaves no process behind.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, 5*time.Second, 10*time.Millisecond, "pid file %s", path)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// runGuarded fails the test instead of hanging it if Run does not return.
func runGuarded(t *testing.T, ctx context.Context, s Spec) (Result, error) {
	t.Helper()
	type out struct {
		r   Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, err := Run(ctx, s)
		ch <- out{r, err}
	}()
	select {
	case o := <-ch:
		return o.r, o.err
	case <-time.After(30 * time.Second):
		t.Fatalf("Run(%v) hung", s.Argv)
		return Result{}, nil
	}
}

func TestRunCapturesExitAndOutput(t *testing.T) {
	dir := t.TempDir()
	res, err := Run(context.Background(), Spec{
		Argv: []string{"/bin/sh", "-c", `echo out; echo err >&2; echo "$GREETING"; pwd; exit 3`},
		Dir:  dir,
		Env:  []string{"GREETING=hello from env"},
	})
	require.NoError(t, err)
	assert.Equal(t, 3, res.ExitCode)
	assert.Empty(t, res.Signal)
	assert.Contains(t, res.Output, "out\n")
	assert.Contains(t, res.Output, "err\n")
	assert.Contains(t, res.Output, "hello from env")
	assert.Contains(t, res.Output, dir)
	assert.False(t, res.TimedOut)
	assert.Positive(t, res.Duration)
	assert.Equal(t, "exit 3", res.ExitSummary())
}

func TestRunMissingProgram(t *testing.T) {
	_, err := Run(context.Background(), Spec{Argv: []string{"/nonexistent/drover-test-prog"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/drover-test-prog")
}

func TestRunTimeoutKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	gpid := filepath.Join(dir, "grandchild.pid")
	res, err := runGuarded(t, context.Background(), Spec{
		Argv:      []string{"/bin/sh", "-c", `sleep 1000 & echo $! > "$1"; echo waiting; wait`, "sh", gpid},
		Timeout:   300 * time.Millisecond,
		KillGrace: 2 * time.Second,
	})
	require.ErrorIs(t, err, ErrTimeout)
	assert.True(t, res.TimedOut)
	assert.Equal(t, -1, res.ExitCode)
	assert.Equal(t, "terminated", res.Signal)
	assert.Contains(t, res.Output, "waiting")
	pid := readPID(t, gpid)
	assert.Eventually(t, func() bool { return !Alive(pid) }, 5*time.Second, 20*time.Millisecond,
		"grandchild %d survived the timeout", pid)
}

func TestRunTimeoutEscalatesToSIGKILL(t *testing.T) {
	dir := t.TempDir()
	gpid := filepath.Join(dir, "grandchild.pid")
	// Ignored signals stay ignored across fork and exec, so both the shell
	// and its sleep shrug off SIGTERM and only SIGKILL ends them.
	res, err := runGuarded(t, context.Background(), Spec{
		Argv:      []string{"/bin/sh", "-c", `trap '' TERM; sleep 1000 & echo $! > "$1"; wait; wait`, "sh", gpid},
		Timeout:   200 * time.Millisecond,
		KillGrace: 300 * time.Millisecond,
	})
	require.ErrorIs(t, err, ErrTimeout)
	assert.Equal(t, "killed", res.Signal)
	pid := readPID(t, gpid)
	assert.Eventually(t, func() bool { return !Alive(pid) }, 5*time.Second, 20*time.Millisecond,
		"grandchild %d ignoring SIGTERM survived", pid)
}

func TestRunContextCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	gpid := filepath.Join(dir, "grandchild.pid")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the grandchild exists (no t.Fatal off the test goroutine).
		for i := 0; i < 500; i++ {
			if b, err := os.ReadFile(gpid); err == nil && len(b) > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	res, err := runGuarded(t, ctx, Spec{
		Argv:    []string{"/bin/sh", "-c", `sleep 1000 & echo $! > "$1"; wait`, "sh", gpid},
		Timeout: time.Minute,
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, res.Canceled)
	pid := readPID(t, gpid)
	assert.Eventually(t, func() bool { return !Alive(pid) }, 5*time.Second, 20*time.Millisecond,
		"grandchild %d survived cancellation", pid)
}

func TestRunCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Spec{Argv: []string{"/bin/true"}})
	require.ErrorIs(t, err, context.Canceled)
}

func TestRunDaemonHoldingPipeDoesNotHang(t *testing.T) {
	dir := t.TempDir()
	dpid := filepath.Join(dir, "daemon.pid")
	// The background sleep inherits stdout and keeps the pipe open after
	// the shell exits, as a carelessly started server would.
	res, err := runGuarded(t, context.Background(), Spec{
		Argv:     []string{"/bin/sh", "-c", `sleep 60 & echo $! > "$1"; echo started`, "sh", dpid},
		PipeWait: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.True(t, res.PipeHeld)
	assert.Contains(t, res.Output, "started")
	pid := readPID(t, dpid)
	// A command that exited normally is not killed: the daemon lives on.
	assert.True(t, Alive(pid), "daemon %d was killed although its start command succeeded", pid)
}

func TestRunBoundsOutput(t *testing.T) {
	res, err := Run(context.Background(), Spec{
		Argv:      []string{"/bin/sh", "-c", `echo FIRST; i=0; while [ $i -lt 20000 ]; do echo "line $i of noise"; i=$((i+1)); done; echo LAST`},
		MaxOutput: 1000,
	})
	require.NoError(t, err)
	assert.Greater(t, res.OutputBytes, int64(200000))
	assert.LessOrEqual(t, len(res.Output), 1100)
	assert.True(t, strings.HasPrefix(res.Output, "FIRST\n"), res.Output)
	assert.True(t, strings.HasSuffix(res.Output, "LAST\n"), res.Output)
	assert.Contains(t, res.Output, "bytes dropped")
}

// reference keeps everything and cuts the same way the buffer should.
func reference(all []byte, max int) string {
	if max < 2 {
		max = 2
	}
	headMax := max / 2
	tailMax := max - headMax
	if len(all) <= max {
		return string(all)
	}
	var b bytes.Buffer
	b.Write(all[:headMax])
	b.WriteString("\n…[" + strconv.Itoa(len(all)-max) + " bytes dropped]…\n")
	b.Write(all[len(all)-tailMax:])
	return b.String()
}

func TestBoundedBufferMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		max := 2 + r.IntN(64)
		b := NewBoundedBuffer(max)
		var all []byte
		for w := r.IntN(20); w > 0; w-- {
			p := make([]byte, r.IntN(3*max))
			for i := range p {
				p[i] = 'a' + byte(r.IntN(26))
			}
			n, err := b.Write(p)
			require.NoError(t, err)
			require.Equal(t, len(p), n)
			all = append(all, p...)
		}
		require.Equal(t, reference(all, max), b.String(), "max=%d len=%d", max, len(all))
		require.Equal(t, int64(len(all)), b.Total())
	}
}

func FuzzBoundedBuffer(f *testing.F) {
	f.Add(10, []byte("hello world, this is long"), 3)
	f.Add(2, []byte("ab"), 1)
	f.Add(64, []byte{}, 5)
	f.Fuzz(func(t *testing.T, max int, data []byte, chunk int) {
		if max < 2 || max > 1<<16 || chunk < 1 {
			t.Skip()
		}
		b := NewBoundedBuffer(max)
		for p := data; len(p) > 0; {
			k := min(chunk, len(p))
			_, _ = b.Write(p[:k])
			p = p[k:]
		}
		want := strings.ToValidUTF8(reference(data, max), "\uFFFD")
		if got := b.String(); got != want {
			t.Fatalf("max=%d chunk=%d: got %q want %q", max, chunk, got, want)
		}
	})
}
