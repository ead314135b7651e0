package lab

import (
	"os"
	"path/filepath"
	"strconv"
)

// LaunchUnrecorded launches a server as Start does but writes its pid file
// into dir instead of the site's run dir: what a starter killed between
// the launch and the pid file leaves behind. It returns the pid.
func LaunchUnrecorded(l *Lab, site, server, dir string) (int, error) {
	args := []string{"--lab-dir", l.Dir, "--site", site, "--server", server,
		"--time-scale", strconv.FormatFloat(l.Topo.TimeScale, 'g', -1, 64)}
	p, _, err := launch(filepath.Join(dir, server+".pid"), l.L.LogFile(site, server), server, site, args)
	if err != nil {
		return 0, err
	}
	return p.PID, nil
}

// PidFileOf is the pid and start ticks a server's pid file holds.
func PidFileOf(l *Lab, site, server string) (int, uint64, error) {
	p, err := readPidFile(l.L.PidFile(site, server))
	if err != nil {
		return 0, 0, err
	}
	return p.PID, p.StartTicks, nil
}

// WritePidFileOf makes a server's pid file name another process.
func WritePidFileOf(l *Lab, site, server string, pid int) error {
	_, ticks, err := procState(pid)
	if err != nil {
		return err
	}
	return writePidFile(l.L.PidFile(site, server), &pidInfo{PID: pid, StartTicks: ticks, Server: server, Site: site})
}

// ProcStartTicks is a process's start time in clock ticks since boot.
func ProcStartTicks(pid int) (uint64, error) {
	_, ticks, err := procState(pid)
	return ticks, err
}

// RemovePidFileOf deletes a server's pid file, as a start killed before
// writing it leaves none.
func RemovePidFileOf(l *Lab, site, server string) error {
	return os.Remove(l.L.PidFile(site, server))
}
