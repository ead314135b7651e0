package cmdrun

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	line := "4242 (my (odd) prog) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615\n"
	st, err := ParseStat([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, Stat{PID: 4242, State: 'S', PPID: 1, PGRP: 4240, StartTicks: 987654}, st)
	assert.False(t, st.Dead())

	zombie := "7 (z) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n"
	st, err = ParseStat([]byte(zombie))
	require.NoError(t, err)
	assert.True(t, st.Dead())

	for _, bad := range []string{"", "12", "x (a) S 1 2 3", "12 (a) S 1 2", "12 (a) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		_, err := ParseStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestReadStatOfSelfAndChild(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), st.PID)
	assert.Equal(t, os.Getppid(), st.PPID)

	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	started, err := StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	// btime has one-second precision.
	assert.WithinDuration(t, time.Now(), started, 3*time.Second)
	assert.True(t, Alive(cmd.Process.Pid))
}

func TestParseBootTime(t *testing.T) {
	bt, err := ParseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(1700000000), bt.Unix())
	_, err = ParseBootTime([]byte("cpu 1\n"))
	assert.Error(t, err)
	_, err = ParseBootTime([]byte("btime x\n"))
	assert.Error(t, err)
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n"))
	f.Add([]byte("99 (a) b) (c) R 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err == nil && st.PID <= 0 {
			t.Fatalf("accepted pid %d from %q", st.PID, b)
		}
	})
}

func FuzzParseBootTime(f *testing.F) {
	f.Add([]byte("btime 1700000000\n"))
	f.Add([]byte("cpu 1\nbtime -5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := ParseBootTime(b)
		if err == nil && bt.Unix() <= 0 {
			t.Fatalf("accepted boot time %v from %q", bt, b)
		}
	})
}
