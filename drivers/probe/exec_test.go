package probe

import (
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

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
)

func TestExecProbePassAndFail(t *testing.T) {
	p := NewExec(nil)
	res, err := p.Check(context.Background(), request(map[string]any{
		"command": []any{"/bin/sh", "-c", `echo "checking $1 at level $2"; echo "all 6 queues empty"`, "sh", "{{.Check.Name}}", "{{.Check.Level}}"},
	}))
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Equal(t, "passed: all 6 queues empty", res.Summary)
	assert.Contains(t, res.Evidence.Output, "checking portal at level system")
	assert.Equal(t, 0, res.Evidence.ExitCode)

	res, err = p.Check(context.Background(), request(map[string]any{
		"command": `echo "queue SCA.SYSTEM has 12 messages" >&2; exit 2`,
	}))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Equal(t, "failed (exit 2): queue SCA.SYSTEM has 12 messages", res.Summary)
	assert.Equal(t, 2, res.Evidence.ExitCode)
	assert.Equal(t, "/bin/sh -c 'echo \"queue SCA.SYSTEM has 12 messages\" >&2; exit 2'", res.Evidence.Action)
}

func TestExecProbeTimeoutFailsAndKills(t *testing.T) {
	gpid := filepath.Join(t.TempDir(), "g.pid")
	res, err := NewExec(nil).Check(context.Background(), request(map[string]any{
		"command":   `sleep 1000 & echo $! > {{shquote .Vars.gpid}}; echo still checking; wait`,
		"timeout":   "300ms",
		"killGrace": "1s",
		"vars":      map[string]any{"gpid": gpid},
	}))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Contains(t, res.Summary, "no verdict within 300ms")
	assert.Contains(t, res.Summary, "still checking")
	b, err := os.ReadFile(gpid)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond)
}

func TestExecProbeSecretEnv(t *testing.T) {
	t.Setenv("DROVER_PROBE_EXEC_PW", "pr0be-secret")
	want := filepath.Join(t.TempDir(), "want")
	require.NoError(t, os.WriteFile(want, []byte("pr0be-secret"), 0o600))
	res, err := NewExec(nil).Check(context.Background(), request(map[string]any{
		"command": `echo "connecting with $DB2_PASSWORD to $DB_HOST"; test "$DB2_PASSWORD" = "$(cat {{shquote .Vars.want}})"`,
		"env":     map[string]any{"DB2_PASSWORD": "env:DROVER_PROBE_EXEC_PW", "DB_HOST": `{{index .Site.Settings "host"}}`},
		"vars":    map[string]any{"want": want},
	}))
	require.NoError(t, err)
	assert.True(t, res.Passed, "the command did not receive the secret")
	assert.Contains(t, res.Evidence.Output, "connecting with [redacted] to 127.0.0.1")
	assert.NotContains(t, res.Summary+res.Evidence.Output+res.Evidence.Action, "pr0be-secret")
}

func TestExecProbeErrors(t *testing.T) {
	p := NewExec(nil)
	for want, s := range map[string]map[string]any{
		"command: required":        {},
		`unknown field "cmd"`:      {"cmd": "true"},
		"command: empty command":   {"command": ""},
		"env.API_TOKEN looks like": {"command": "true", "env": map[string]any{"API_TOKEN": "abc"}},
	} {
		err := p.CheckSettings(s)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		assert.ErrorIs(t, err, drivers.ErrBadSettings)
	}
	// A program that does not exist: the check could not run.
	_, err := p.Check(context.Background(), request(map[string]any{"command": []any{"/nonexistent/check"}}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/check")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Check(ctx, request(map[string]any{"command": "true"}))
	assert.ErrorIs(t, err, context.Canceled)
}
