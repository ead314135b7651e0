package exec

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

// The SSH tests run the driver's commands through a real sshd on loopback.
// The "remote" host is this machine, so the tests can look at the
// processes and files the commands left behind.
var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

func remoteTarget(srv *sshdtest.Server, settings map[string]any, ssh map[string]any) drivers.Target {
	tg := target(settings)
	tg.Host = srv.Host("app1", ssh)
	return tg
}

func TestLifecycleOverSSH(t *testing.T) {
	srv := sshd.Get(t)
	f := newFixture(t)
	d := newDriver()
	t.Cleanup(func() { _ = d.pool.Close() })
	tg := remoteTarget(srv, f.settings(), nil)
	ctx := context.Background()
	where := "app1 (ssh " + srv.User + "@127.0.0.1:" + strconv.Itoa(srv.Port) + ")"
	accepted := srv.Accepted()

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Equal(t, where, st.Evidence.Host)

	ev, err := d.Start(ctx, tg)
	require.NoError(t, err)
	assert.False(t, ev.AlreadyDone)
	assert.Contains(t, ev.Output, "started web on dc1")
	assert.Equal(t, where, ev.Host, "evidence says where it ran")
	assert.Contains(t, ev.Action, "sleep 300", "the action is the plan's command, not the SSH wrapper")
	assert.NotContains(t, ev.Action, "setsid")

	pid, err := readPIDFile(f.pidfile)
	require.NoError(t, err)
	assert.True(t, cmdrun.Alive(pid), "the server started over SSH outlives the session")

	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)

	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)

	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.Equal(t, where, ev.Host)
	assert.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond)

	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Equal(t, []string{"start", "stop"}, f.ops(t))

	assert.EqualValues(t, 1, d.pool.Dials(), "every command of every call went over one connection")
	assert.Equal(t, accepted+1, srv.Accepted())
}

func TestPidfileOverSSH(t *testing.T) {
	srv := sshd.Get(t)
	f := newFixture(t)
	d := newDriver()
	t.Cleanup(func() { _ = d.pool.Close() })
	s := f.settings()
	delete(s, "status")
	s["pidfile"] = "{{.Vars.pidfile}}"
	s["killGrace"] = "1s"
	// A server that ignores SIGTERM, in its own group as a daemon is.
	s["start"] = `echo start >> {{shquote .Vars.log}}; setsid sh -c 'trap "" TERM; sleep 300' > /dev/null 2>&1 & echo $! > {{shquote .Vars.pidfile}}`
	tg := remoteTarget(srv, s, nil)
	ctx := context.Background()

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "no pidfile")

	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	pid, err := readPIDFile(f.pidfile)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err = d.Status(ctx, tg)
		return err == nil && st.State == drivers.StateRunning
	}, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, pid, st.PID)

	ev, err := d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Action, "kill -TERM -")
	assert.Contains(t, ev.Output, "SIGKILL", "the server ignored SIGTERM")
	assert.False(t, cmdrun.Alive(pid))

	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "is not running")
}

func TestStartTimeoutOverSSHKillsRemoteGroup(t *testing.T) {
	srv := sshd.Get(t)
	gpid := filepath.Join(t.TempDir(), "grandchild.pid")
	s := map[string]any{
		"start":     `sleep 1000 & echo $! > {{shquote .Vars.gpid}}; echo hanging; wait`,
		"stop":      "true",
		"status":    "exit 1",
		"timeouts":  map[string]any{"start": "3s"},
		"killGrace": "1s",
		"vars":      map[string]any{"gpid": gpid},
	}
	ev, err := newDriver().Start(context.Background(), remoteTarget(srv, s, nil))
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Contains(t, err.Error(), "on app1 (ssh ")
	assert.Contains(t, err.Error(), "remote process group")
	assert.Contains(t, ev.Output, "hanging")
	pid, perr := readPIDFile(gpid)
	require.NoError(t, perr)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.False(t, cmdrun.Alive(pid), "grandchild %d outlived the start timeout", pid)
}

func TestSecretEnvOverSSHIsRedacted(t *testing.T) {
	srv := sshd.Get(t)
	dir := t.TempDir()
	const envSecret = "s3cr3t-over-ssh"
	t.Setenv("DROVER_EXEC_SSH_TEST_PW", envSecret)
	seen := filepath.Join(dir, "seen")
	s := map[string]any{
		"start":  `printf '%s' "$DB_PASSWORD" > {{shquote .Vars.seen}}; echo "password is $DB_PASSWORD"; exit 1`,
		"stop":   "true",
		"status": "exit 1",
		"env":    map[string]any{"DB_PASSWORD": "env:DROVER_EXEC_SSH_TEST_PW"},
		"vars":   map[string]any{"seen": seen},
	}
	ev, err := newDriver().Start(context.Background(), remoteTarget(srv, s, nil))
	require.Error(t, err)
	b, rerr := os.ReadFile(seen)
	require.NoError(t, rerr)
	assert.Equal(t, envSecret, string(b), "the remote command got the value")
	assert.Contains(t, ev.Output, "password is [redacted]")
	assert.NotContains(t, ev.Output, envSecret)
	assert.NotContains(t, ev.Action, envSecret)
	assert.NotContains(t, err.Error(), envSecret)
	assert.NotContains(t, srv.Log(), envSecret)
}

func TestChangedHostKeyRefusesToStart(t *testing.T) {
	srv := sshd.Get(t)
	f := newFixture(t)
	dir := t.TempDir()
	other, err := sshdtest.WriteKey(filepath.Join(dir, "other"))
	require.NoError(t, err)
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(t, sshdtest.WriteKnownHosts(kh, srv.Address, srv.Port, other))

	_, err = newDriver().Start(context.Background(), remoteTarget(srv, f.settings(), map[string]any{"knownHosts": kh}))
	require.ErrorIs(t, err, sshrun.ErrHostKeyChanged)
	assert.True(t, drivers.Permanent(err), "a retry must not run it either")
	assert.Contains(t, err.Error(), "HOST KEY HAS CHANGED")
	assert.Empty(t, f.ops(t), "nothing ran")

	require.NoError(t, CheckHost(srv.Host("app1", nil)))
	require.NoError(t, CheckHost(drivers.Host{Name: "local"}))
	err = CheckHost(srv.Host("app1", map[string]any{"user": nil}))
	require.ErrorContains(t, err, "host app1: ssh user: required")
	assert.True(t, drivers.Permanent(err))

	_, err = newDriver().Status(context.Background(), remoteTarget(srv, f.settings(), map[string]any{"pasword": "x"}))
	require.ErrorContains(t, err, `host app1: ssh unknown field "pasword"`)
	assert.True(t, drivers.Permanent(err))
}
