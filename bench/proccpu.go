package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's CPU times.
const clockTicks = 100

// postgresCPU is the CPU time of the PostgreSQL server listening on port of
// this machine: its postmaster (with the children it has reaped: ended
// connections) and its live children (backends, writer, WAL writer). -1
// when no postmaster started with "-p PORT" is found.
func postgresCPU(port int) time.Duration {
	if port <= 0 {
		return -1
	}
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return -1
	}
	want := strconv.Itoa(port)
	type proc struct {
		ppid            int
		self, reaped    time.Duration
		isPostmasterFor bool
	}
	all := map[int]proc{}
	master := -1
	for _, dir := range procs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		ppid, self, reaped, comm, ok := readStat(dir)
		if !ok || comm != "postgres" {
			continue
		}
		all[pid] = proc{ppid: ppid, self: self, reaped: reaped}
		if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
			for i := 0; i+1 < len(args); i++ {
				if args[i] == "-p" && args[i+1] == want {
					master = pid
				}
			}
		}
	}
	m, ok := all[master]
	if !ok {
		return -1
	}
	total := m.self + m.reaped
	for _, p := range all {
		if p.ppid == master {
			total += p.self
		}
	}
	return total
}

// readStat reads a /proc/PID/stat: the parent, the process's own CPU time
// (utime+stime), its reaped children's (cutime+cstime) and its command name.
func readStat(dir string) (ppid int, self, reaped time.Duration, comm string, ok bool) {
	data, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, 0, 0, "", false
	}
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return 0, 0, 0, "", false
	}
	comm = s[open+1 : close]
	// After the command: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	f := strings.Fields(s[close+1:])
	if len(f) < 15 {
		return 0, 0, 0, "", false
	}
	num := func(i int) int64 {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return v
	}
	tick := time.Second / clockTicks
	ppid = int(num(1))
	self = time.Duration(num(11)+num(12)) * tick
	reaped = time.Duration(num(13)+num(14)) * tick
	return ppid, self, reaped, comm, true
}
