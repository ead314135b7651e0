package mq

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

type install struct {
	bin, state string
}

func newInstall(t *testing.T, qms ...string) *install {
	t.Helper()
	fake, err := filepath.Abs("testdata/fakemq.sh")
	require.NoError(t, err)
	dir := t.TempDir()
	in := &install{bin: filepath.Join(dir, "bin"), state: filepath.Join(dir, "state")}
	require.NoError(t, os.MkdirAll(in.bin, 0o755))
	require.NoError(t, os.MkdirAll(in.state, 0o755))
	for _, tool := range []string{"strmqm", "endmqm", "dspmq"} {
		require.NoError(t, os.Symlink(fake, filepath.Join(in.bin, tool)))
	}
	for _, qm := range qms {
		in.write(t, qm+".defined", "")
	}
	return in
}

func (in *install) write(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(in.state, name), []byte(content), 0o644))
}

func (in *install) calls(t *testing.T, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.state, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (in *install) target(extra map[string]any) drivers.Target {
	s := map[string]any{"queueManager": "QM1", "binDir": in.bin}
	for k, v := range extra {
		s[k] = v
	}
	return drivers.Target{Plan: "bpm", Site: drivers.Site{Name: "dc2", Role: "secondary"},
		Component: drivers.Component{Name: "mq", Role: "messaging", Product: "mq", Settings: s}}
}

func TestParseDspmq(t *testing.T) {
	out := "QMNAME(QM0)                                               STATUS(Ended normally)\n" +
		"QMNAME(QM1)                                               STATUS(Running as standby)\n"
	s, err := ParseDspmq(out, "QM1")
	require.NoError(t, err)
	assert.Equal(t, QMStatus{Name: "QM1", Status: StatusRunningStandby}, s)
	assert.True(t, s.Standby())
	assert.Equal(t, drivers.StateStarting, s.State())

	for status, want := range map[string]drivers.State{
		"Running": drivers.StateRunning, "Starting": drivers.StateStarting, "Running elsewhere": drivers.StateStopped,
		"Ended normally": drivers.StateStopped, "Ended immediately": drivers.StateStopped, "Ended unexpectedly": drivers.StateStopped,
		"Ended preemptively": drivers.StateStopped, "Quiescing": drivers.StateUnknown, "Ending immediately": drivers.StateUnknown,
		"Status not available": drivers.StateUnknown,
	} {
		s, err := ParseDspmq("QMNAME(QM1)    STATUS("+status+")\n", "QM1")
		require.NoError(t, err)
		assert.Equal(t, want, s.State(), status)
	}

	_, err = ParseDspmq("AMQ7048E: The queue manager name is either not valid or not known.\n", "QM9")
	require.ErrorIs(t, err, ErrQueueManagerNotFound)
	assert.True(t, drivers.Permanent(err))
	_, err = ParseDspmq(out, "QM2")
	require.Error(t, err)
	assert.False(t, drivers.Permanent(err))
	assert.Equal(t, []string{"AMQ8118", "AMQ8146"}, AMQMessages("AMQ8118E: IBM MQ queue manager does not exist.\nAMQ8146: IBM MQ queue manager not available."))
}

func TestStartStopIdempotent(t *testing.T) {
	in := newInstall(t, "QM1")
	d, ctx, tg := New(nil), context.Background(), in.target(nil)

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)

	ev, err := d.Start(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "started using")
	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, 1, in.calls(t, "strmqm"))

	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "endmqm -w QM1")
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, 1, in.calls(t, "endmqm"))

	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Action, "endmqm -i QM1")
	assert.Contains(t, ev.Output, "Ended immediately")

	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	ev, err = d.Stop(ctx, in.target(map[string]any{"immediateMode": "preemptive"}), drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Output, "Ended preemptively")
}

func TestUnknownQueueManagerIsPermanent(t *testing.T) {
	in := newInstall(t, "QM1")
	_, err := New(nil).Start(context.Background(), in.target(map[string]any{"queueManager": "QM9"}))
	require.ErrorIs(t, err, ErrQueueManagerNotFound)
	assert.True(t, drivers.Permanent(err))
}

func TestMultiInstance(t *testing.T) {
	in := newInstall(t, "QM1")
	in.write(t, "QM1.elsewhere", "")
	d, ctx := New(nil), context.Background()
	tg := in.target(map[string]any{"multiInstance": true, "switchover": true})

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "Running elsewhere")

	// strmqm -x here, while the active runs elsewhere: a standby.
	ev, err := d.Start(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "strmqm -x QM1")
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStarting, st.State)
	assert.Contains(t, st.Detail, "Running as standby")
	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)

	// Stopping the standby ends it alone.
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "endmqm -x QM1")

	// Active here, standby elsewhere: stop switches over.
	require.NoError(t, os.Remove(filepath.Join(in.state, "QM1.elsewhere")))
	in.write(t, "QM1.standby-elsewhere", "")
	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "endmqm -w -s QM1")
	assert.Contains(t, ev.Output, "permitting switchover")
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Contains(t, st.Detail, "Running elsewhere")

	// Without -x, strmqm cannot start here while the active runs elsewhere.
	_, err = d.Start(ctx, in.target(nil))
	require.ErrorContains(t, err, "Running elsewhere")
}

func TestHangingCommandIsKilled(t *testing.T) {
	in := newInstall(t, "QM1")
	in.write(t, "hang-strmqm", "")
	tg := in.target(map[string]any{"timeouts": map[string]any{"start": "300ms"}, "killGrace": "200ms"})
	start := time.Now()
	_, err := New(nil).Start(context.Background(), tg)
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Less(t, time.Since(start), 30*time.Second)
}

func TestBadSettings(t *testing.T) {
	d := New(nil)
	for name, tc := range map[string]struct {
		settings map[string]any
		want     string
	}{
		"unknown field":  {map[string]any{"queueManager": "QM1", "qmgr": "x"}, `"qmgr"`},
		"no qm":          {map[string]any{}, "queueManager: required"},
		"bad qm":         {map[string]any{"queueManager": "QM 1"}, "queueManager:"},
		"switchover":     {map[string]any{"queueManager": "QM1", "switchover": true}, "switchover:"},
		"immediate mode": {map[string]any{"queueManager": "QM1", "immediateMode": "brutal"}, "immediateMode:"},
		"bin dir":        {map[string]any{"queueManager": "QM1", "binDir": "mqm/bin"}, "binDir:"},
		"run as":         {map[string]any{"queueManager": "QM1", "runAs": "mq m"}, "runAs:"},
	} {
		t.Run(name, func(t *testing.T) {
			err := d.CheckSettings(tc.settings)
			require.Error(t, err)
			assert.True(t, errors.Is(err, drivers.ErrBadSettings))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRunAs(t *testing.T) {
	c, err := parse(map[string]any{"queueManager": "QM1", "runAs": "mqm", "binDir": "/opt/mqm/bin"})
	require.NoError(t, err)
	assert.Equal(t, []string{"su", "-", "mqm", "-c", "/opt/mqm/bin/strmqm -x QM1"}, c.argv("strmqm", "-x", "QM1"))
}

var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

func TestOverSSH(t *testing.T) {
	in := newInstall(t, "QM1")
	tg := in.target(nil)
	tg.Host = sshd.Get(t).Host("mq1", nil)
	d := New(nil)
	ev, err := d.Start(context.Background(), tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "on mq1 (ssh ")
	st, err := d.Status(context.Background(), tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	_, err = d.Stop(context.Background(), tg, drivers.StopImmediate)
	require.NoError(t, err)
}
