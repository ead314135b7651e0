package lab_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

// configured is a lab whose primary is configured and runs nothing.
func configured(t *testing.T) (*lab.Lab, context.Context) {
	t.Helper()
	l := labtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	_, err := l.Configure(ctx, "dc1")
	require.NoError(t, err)
	return l, ctx
}

func launches(t *testing.T, l *lab.Lab, server string) int {
	t.Helper()
	c, err := l.Counts()
	require.NoError(t, err)
	return c["dc1"][server].Launches
}

// requirePidFile checks the pid file names pid with its real start time,
// so the pid-reuse check holds for an adopted server too.
func requirePidFile(t *testing.T, l *lab.Lab, server string, pid int) {
	t.Helper()
	got, ticks, err := lab.PidFileOf(l, "dc1", server)
	require.NoError(t, err)
	require.Equal(t, pid, got)
	want, err := lab.ProcStartTicks(pid)
	require.NoError(t, err)
	require.Equal(t, want, ticks)
}

// A start retried after its starter died between the launch and the pid
// file finds the server answering and adopts it; a stop without a pid file
// still stops it.
func TestStartAdoptsARunningServerNoPidFileNames(t *testing.T) {
	l, ctx := configured(t)
	first, err := l.Start(ctx, "dc1", "db")
	require.NoError(t, err)
	require.False(t, first.AlreadyRunning)
	require.NoError(t, lab.RemovePidFileOf(l, "dc1", "db"))

	again, err := l.Start(ctx, "dc1", "db")
	require.NoError(t, err)
	require.True(t, again.AlreadyRunning, "the running server is adopted")
	require.Equal(t, first.PID, again.PID)
	require.Equal(t, 1, launches(t, l, "db"), "no second server is launched for one name")
	requirePidFile(t, l, "db", first.PID)

	require.NoError(t, lab.RemovePidFileOf(l, "dc1", "db"))
	stop, err := l.Stop(ctx, "dc1", "db", false)
	require.NoError(t, err)
	require.False(t, stop.AlreadyStopped, "a server no pid file names still runs")
	require.Equal(t, first.PID, stop.PID)
	_, err = lab.ProcStartTicks(first.PID)
	require.Error(t, err, "process %d still runs after the stop", first.PID)
}

// The same when the starter died so early that its server does not answer
// yet: the process started for the server is found by its command line.
func TestStartAdoptsAServerThatDoesNotAnswerYet(t *testing.T) {
	l, ctx := configured(t)
	pid, err := lab.LaunchUnrecorded(l, "dc1", "db", t.TempDir())
	require.NoError(t, err)

	res, err := l.Start(ctx, "dc1", "db")
	require.NoError(t, err)
	require.True(t, res.AlreadyRunning)
	require.Equal(t, pid, res.PID)
	require.Equal(t, 1, launches(t, l, "db"), "no second server is launched for one name")
	requirePidFile(t, l, "db", pid)
	st, err := l.Status(ctx, "dc1", "db")
	require.NoError(t, err)
	require.Equal(t, lab.StatusRunning, st.State)
	require.Equal(t, pid, st.Health.PID)
}

// Readiness is the answer of the process the start waits for, not of
// whichever process answers on the address.
func TestStartCountsOnlyItsOwnProcessAsRunning(t *testing.T) {
	l, ctx := configured(t)
	res, err := l.Start(ctx, "dc1", "db")
	require.NoError(t, err)

	// The pid file names a live process that is not the server.
	other := exec.Command("sleep", "60")
	require.NoError(t, other.Start())
	t.Cleanup(func() {
		_ = other.Process.Kill()
		_ = other.Wait()
	})
	require.NoError(t, lab.WritePidFileOf(l, "dc1", "db", other.Process.Pid))

	_, err = l.Start(ctx, "dc1", "db")
	require.Error(t, err, "process %d is not the server", other.Process.Pid)
	require.Contains(t, err.Error(), fmt.Sprintf("process %d answers as db", res.PID))
	require.Contains(t, err.Error(), fmt.Sprintf("not process %d", other.Process.Pid))
	require.Equal(t, 1, launches(t, l, "db"))
}
