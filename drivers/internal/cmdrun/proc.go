package cmdrun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stat is the part of /proc/PID/stat drover reads.
type Stat struct {
	PID   int
	State byte // R, S, D, Z, T, X...
	PPID  int
	PGRP  int
	// StartTicks is the start time in clock ticks after boot.
	StartTicks uint64
}

// Dead reports whether the process has exited (a zombie waiting for its
// parent to reap it is dead for our purposes: it runs nothing).
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' || s.State == 'x' }

// ParseStat parses the content of /proc/PID/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Stat{}, errors.New("proc stat: no (comm) field")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid <= 0 {
		return Stat{}, fmt.Errorf("proc stat: bad pid %q", bytes.TrimSpace(b[:open]))
	}
	f := strings.Fields(string(b[end+1:]))
	// state(3) ppid(4) pgrp(5) ... starttime(22): indexes 0, 1, 2, 19.
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("proc stat: %d fields after comm, want at least 20", len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat: bad state %q", f[0])
	}
	s := Stat{PID: pid, State: f[0][0]}
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("proc stat: bad ppid %q", f[1])
	}
	if s.PGRP, err = strconv.Atoi(f[2]); err != nil {
		return Stat{}, fmt.Errorf("proc stat: bad pgrp %q", f[2])
	}
	if s.StartTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("proc stat: bad starttime %q", f[19])
	}
	return s, nil
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// Alive reports whether pid names a process that has not exited.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if st, err := ReadStat(pid); err == nil {
		return !st.Dead()
	}
	// No /proc: the signal test is all we have.
	return true
}

// GroupAlive reports whether a process of group pgid is still running.
// Zombies do not count: in a container whose init does not reap orphans
// they would otherwise make every kill wait out its full grace.
func GroupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue
		}
		if st.PGRP == pgid && !st.Dead() {
			return true
		}
	}
	return false
}

// clockTicks is USER_HZ, which Linux fixes at 100 on every architecture Go
// runs on (sysconf(_SC_CLK_TCK) would need cgo).
const clockTicks = 100

var bootOnce struct {
	sync.Once
	t   time.Time
	err error
}

// bootTime reads btime from /proc/stat.
func bootTime() (time.Time, error) {
	bootOnce.Do(func() {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			bootOnce.err = err
			return
		}
		bootOnce.t, bootOnce.err = ParseBootTime(b)
	})
	return bootOnce.t, bootOnce.err
}

// ParseBootTime finds the btime line of /proc/stat.
func ParseBootTime(b []byte) (time.Time, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || secs <= 0 {
				return time.Time{}, fmt.Errorf("proc stat: bad btime %q", v)
			}
			return time.Unix(secs, 0), nil
		}
	}
	return time.Time{}, errors.New("proc stat: no btime line")
}

// StartTime returns when pid started, to the second (btime's precision).
func StartTime(pid int) (time.Time, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return time.Time{}, err
	}
	boot, err := bootTime()
	if err != nil {
		return time.Time{}, err
	}
	return boot.Add(time.Duration(st.StartTicks) * time.Second / clockTicks), nil
}
