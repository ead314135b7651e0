package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// A lab site has a drover worker like a real site: a process of its own,
// placed at the site, killed with the site's servers in a disaster. The lab
// only starts and stops it; what it runs is the caller's command line
// (drover worker --site SITE ...).

// WorkerPidFile is the pid file of a site's drover worker.
func (l Layout) WorkerPidFile(site string) string { return filepath.Join(l.RunDir(site), "worker.pid") }

// WorkerLog is the log of a site's drover worker.
func (l Layout) WorkerLog(site string) string {
	return filepath.Join(l.SiteDir(site), "logs", "worker.log")
}

// StartWorker starts argv (a drover worker for site) detached, unless the
// site's worker already runs, and returns its pid.
func (l *Lab) StartWorker(site string, argv []string) (int, error) {
	if _, ok := l.Topo.Site(site); !ok {
		return 0, fmt.Errorf("no site %q in the lab", site)
	}
	if len(argv) == 0 {
		return 0, fmt.Errorf("start worker of %s: no command", site)
	}
	pidPath, logPath := l.L.WorkerPidFile(site), l.L.WorkerLog(site)
	if p, err := readPidFile(pidPath); err == nil && p.life() == procAlive {
		return p.PID, nil
	}
	for _, dir := range []string{filepath.Dir(pidPath), filepath.Dir(logPath)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open worker log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start worker of %s: %w", site, err)
	}
	go func() { _ = cmd.Wait() }()
	_, ticks, err := procState(cmd.Process.Pid)
	if err != nil {
		return 0, fmt.Errorf("worker of %s exited at once; see %s", site, logPath)
	}
	info := &pidInfo{PID: cmd.Process.Pid, StartTicks: ticks, Server: "worker", Site: site, StartedAt: time.Now().UTC()}
	if err := writePidFile(pidPath, info); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return 0, err
	}
	l.log.Info("site worker started", zap.String("site", site), zap.Int("pid", cmd.Process.Pid))
	return cmd.Process.Pid, nil
}

// WorkerRunning reports whether the site's worker process is alive.
func (l *Lab) WorkerRunning(site string) bool {
	p, err := readPidFile(l.L.WorkerPidFile(site))
	return err == nil && p.life() == procAlive
}

// StopWorker stops the site's worker: SIGTERM (the worker finishes what it
// runs and leaves), or SIGKILL when immediate (a lost site).
func (l *Lab) StopWorker(site string, immediate bool) {
	p, err := readPidFile(l.L.WorkerPidFile(site))
	if err != nil {
		return
	}
	if p.life() != procGone {
		sig := syscall.SIGTERM
		if immediate {
			sig = syscall.SIGKILL
		}
		_ = signalGroup(p, sig)
		if !waitGone(p, 30*time.Second) {
			_ = signalGroup(p, syscall.SIGKILL)
			waitGone(p, 5*time.Second)
		}
	}
	_ = os.Remove(l.L.WorkerPidFile(site))
}
