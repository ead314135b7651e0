package hostrun

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

func TestRunRedactsEverywhere(t *testing.T) {
	const pw = "pw9"
	ev, res, err := Run(context.Background(), Local{}, Call{Op: "status", Argv: []string{"/bin/sh", "-c", `echo "password is $0"`, pw}, Secrets: []string{pw}})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.NotContains(t, ev.Action, pw)
	assert.NotContains(t, ev.Output, pw)
	assert.Contains(t, ev.Output, "password is [redacted]")

	_, _, err = Run(context.Background(), Local{}, Call{Op: "stop", Argv: []string{"/bin/sh", "-c", `echo "$0"; sleep 5`, pw},
		Timeout: 100 * time.Millisecond, KillGrace: 100 * time.Millisecond, Secrets: []string{pw}})
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.NotContains(t, err.Error(), pw)
	assert.True(t, strings.HasPrefix(err.Error(), "stop: "), err.Error())
}

func TestEvidenceIsBounded(t *testing.T) {
	ev, _, err := Run(context.Background(), Local{}, Call{Op: "status", Argv: []string{"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"}})
	require.NoError(t, err)
	assert.LessOrEqual(t, len(ev.Output), EvidenceLimit)
	all := Combine(ev, ev, ev)
	assert.LessOrEqual(t, len(all.Output), EvidenceLimit)
	assert.Equal(t, 3*ev.Duration, all.Duration)
}

var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

func TestHostsLocalAndSSH(t *testing.T) {
	hosts := NewHosts(nil)
	r, err := hosts.For(drivers.Host{Name: "machine1"})
	require.NoError(t, err)
	assert.IsType(t, Local{}, r)

	// A bad SSH setting fails before anything runs.
	_, err = hosts.For(drivers.Host{Name: "machine1", Address: "127.0.0.1", SSH: map[string]any{"user": "root"}})
	require.Error(t, err)
	assert.True(t, errors.Is(err, drivers.ErrBadSettings), err)

	srv := sshd.Get(t)
	r, err = hosts.For(srv.Host("machine2", nil))
	require.NoError(t, err)
	const pw = "remote-secret"
	ev, res, err := Run(context.Background(), r, Call{Op: "status", Argv: []string{"/bin/sh", "-c", `echo "on $(hostname) with $0"`, pw}, Secrets: []string{pw}})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.True(t, strings.HasPrefix(ev.Action, "on machine2 (ssh "), ev.Action)
	assert.Contains(t, ev.Output, "with [redacted]")
	assert.NotContains(t, ev.Action+ev.Output, pw)

	// The remote command is cut short like a local one.
	start := time.Now()
	_, _, err = Run(context.Background(), r, Call{Op: "stop", Argv: []string{"sleep", "30"}, Timeout: 2 * time.Second, KillGrace: 200 * time.Millisecond})
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Less(t, time.Since(start), 20*time.Second)
}

func TestTimeouts(t *testing.T) {
	ops := []string{"start", "stop"}
	got, err := Timeouts(0, time.Minute, map[string]drivers.Duration{"stop": drivers.Duration(time.Second)}, ops)
	require.NoError(t, err)
	assert.Equal(t, map[string]time.Duration{"start": time.Minute, "stop": time.Second}, got)
	_, err = Timeouts(0, time.Minute, map[string]drivers.Duration{"boot": drivers.Duration(time.Second)}, ops)
	require.ErrorContains(t, err, "timeouts.boot: unknown operation")
	_, err = Timeouts(drivers.Duration(-time.Second), time.Minute, nil, ops)
	require.ErrorContains(t, err, "timeout: must be positive")
}
