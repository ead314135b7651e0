package probe

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

// The exec probe's SSH tests run their commands through a real sshd on
// loopback; the "remote" host is this machine.
var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

func remoteRequest(srv *sshdtest.Server, settings, ssh map[string]any) drivers.CheckRequest {
	req := request(settings)
	req.Host = srv.Host("db1", ssh)
	return req
}

func TestExecProbeOverSSH(t *testing.T) {
	srv := sshd.Get(t)
	p := NewExec(nil)
	t.Cleanup(func() { _ = p.pool.Close() })
	where := "db1 (ssh " + srv.User + "@127.0.0.1:" + strconv.Itoa(srv.Port) + ")"

	res, err := p.Check(context.Background(), remoteRequest(srv, map[string]any{
		"command": []any{"/bin/sh", "-c", `echo "checking $1 over $SSH_CONNECTION"; echo "all 6 queues empty"`, "sh", "{{.Check.Name}}"},
	}, nil))
	require.NoError(t, err)
	assert.True(t, res.Passed)
	assert.Equal(t, "passed: all 6 queues empty", res.Summary)
	assert.Contains(t, res.Evidence.Output, "checking portal over 127.0.0.1 ")
	assert.Equal(t, where, res.Evidence.Host)

	res, err = p.Check(context.Background(), remoteRequest(srv, map[string]any{
		"command": `echo "queue SCA.SYSTEM has 12 messages" >&2; exit 2`,
	}, nil))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Equal(t, "failed (exit 2): queue SCA.SYSTEM has 12 messages", res.Summary)
	assert.EqualValues(t, 1, p.pool.Dials(), "both checks used one connection")
}

func TestExecProbeOverSSHTimeoutKillsRemoteGroup(t *testing.T) {
	srv := sshd.Get(t)
	gpid := filepath.Join(t.TempDir(), "g.pid")
	res, err := NewExec(nil).Check(context.Background(), remoteRequest(srv, map[string]any{
		"command":   `sleep 1000 & echo $! > {{shquote .Vars.gpid}}; echo still checking; wait`,
		"timeout":   "3s",
		"killGrace": "1s",
		"vars":      map[string]any{"gpid": gpid},
	}, nil))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Contains(t, res.Summary, "no verdict within 3s")
	assert.Contains(t, res.Summary, "still checking")
	b, err := os.ReadFile(gpid)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.False(t, cmdrun.Alive(pid), "the remote grandchild %d outlived the check", pid)
}

func TestExecProbeOverSSHSecretEnv(t *testing.T) {
	srv := sshd.Get(t)
	t.Setenv("DROVER_PROBE_SSH_PW", "pr0be-ssh-secret")
	want := filepath.Join(t.TempDir(), "want")
	require.NoError(t, os.WriteFile(want, []byte("pr0be-ssh-secret"), 0o600))
	res, err := NewExec(nil).Check(context.Background(), remoteRequest(srv, map[string]any{
		"command": `echo "connecting with $DB2_PASSWORD"; test "$DB2_PASSWORD" = "$(cat {{shquote .Vars.want}})"`,
		"env":     map[string]any{"DB2_PASSWORD": "env:DROVER_PROBE_SSH_PW"},
		"vars":    map[string]any{"want": want},
	}, nil))
	require.NoError(t, err)
	assert.True(t, res.Passed, "the remote command did not receive the secret")
	assert.Contains(t, res.Evidence.Output, "connecting with [redacted]")
	assert.NotContains(t, res.Summary+res.Evidence.Output+res.Evidence.Action, "pr0be-ssh-secret")
}

func TestExecProbeOverSSHUnreachableAndRefused(t *testing.T) {
	srv := sshd.Get(t)
	// Nothing listens on port 1: the check ran and found the host down.
	res, err := NewExec(nil).Check(context.Background(), remoteRequest(srv, map[string]any{"command": "true"},
		map[string]any{"port": 1, "connectTimeout": "2s"}))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Contains(t, res.Summary, "could not run on db1 (ssh ")

	// A host key nobody vouched for: an error no retry fixes.
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(t, os.WriteFile(kh, nil, 0o600))
	_, err = NewExec(nil).Check(context.Background(), remoteRequest(srv, map[string]any{"command": "true"},
		map[string]any{"knownHosts": kh}))
	require.ErrorIs(t, err, sshrun.ErrUnknownHost)
	assert.True(t, drivers.Permanent(err))
}
