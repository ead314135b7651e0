package storage

import (
	"bytes"
	"context"
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

func TestExecRunnerOutputAndErrors(t *testing.T) {
	r := ExecRunner{}
	out, err := r.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo created; echo warn >&2"}})
	require.NoError(t, err)
	assert.Contains(t, out, "created")
	assert.Contains(t, out, "warn")

	_, err = r.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "echo 'Volume group vg0 not found' >&2; exit 5"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sh -c")
	assert.Contains(t, err.Error(), "exit status 5")
	assert.Contains(t, err.Error(), "Volume group vg0 not found")

	// Streams: stdin in, stdout out, stderr still captured.
	var stdout bytes.Buffer
	out, err = r.Run(context.Background(), Cmd{Name: "sh", Args: []string{"-c", "tr a-z A-Z; echo done >&2"},
		Stdin: strings.NewReader("stream"), Stdout: &stdout})
	require.NoError(t, err)
	assert.Equal(t, "STREAM", stdout.String())
	assert.Equal(t, "done", out)
}

func TestExecRunnerCancelKillsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ExecRunner{KillGrace: time.Second}.Run(ctx, Cmd{Name: "sh", Args: []string{"-c", "sleep 30 & echo $! > " + pidFile + "; wait"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !alive(pid) }, 3*time.Second, 20*time.Millisecond,
		"the background sleep died with its group")
}

func TestBoundedOutput(t *testing.T) {
	b := &boundedBuffer{max: 10}
	b.Write([]byte("0123456789abc"))
	b.Write([]byte("def"))
	assert.Equal(t, "0123456789\n…[6 bytes dropped]", b.String())
}

func TestCounterIsMonotonic(t *testing.T) {
	var got []int64
	c := Progress(func(n int64) { got = append(got, n) }).Counter()
	c(5)
	c(0)
	c(7)
	assert.Equal(t, []int64{5, 12}, got)
	Progress(nil).Counter()(3) // a nil Progress is fine
}

// alive reports whether pid runs; a zombie waiting for a reaper is dead.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}
