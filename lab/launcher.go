package lab

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lab servers are detached OS processes: their own session, output to a log
// file, a pid file beside the site's data root. They outlive whoever started
// them, as real servers outlive the orchestrator.

// EnvExe overrides the executable the launcher runs as "EXE lab serve ...".
const EnvExe = "DROVER_LAB_EXE"

// LeanExe is the lab-only program (cmd/drover-lab) the launcher prefers
// when it lies beside the running executable and was built from the same
// source: it starts in a fraction of drover's time.
const LeanExe = "drover-lab"

// ServerExecutable is the program the launcher runs for a lab server:
// EnvExe if set; else LeanExe beside this executable if it was built from
// the same module version and revision with the same Go; else this
// executable itself (drover, or a test binary that calls RunIfServer).
func ServerExecutable() (string, error) {
	if exe := os.Getenv(EnvExe); exe != "" {
		return exe, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the drover executable: %w", err)
	}
	lean := filepath.Join(filepath.Dir(self), LeanExe)
	if lean != self && sameBuild(self, lean) {
		return lean, nil
	}
	return self, nil
}

// sameBuild reports whether two executables were built from the same
// source: a stale drover-lab left beside a newer drover must not run the
// newer lab's servers.
func sameBuild(a, b string) bool {
	ia, err := buildinfo.ReadFile(a)
	if err != nil {
		return false
	}
	ib, err := buildinfo.ReadFile(b)
	if err != nil {
		return false
	}
	if ia.GoVersion != ib.GoVersion || ia.Main.Path != ib.Main.Path || ia.Main.Version != ib.Main.Version || ia.Main.Sum != ib.Main.Sum {
		return false
	}
	setting := func(bi *debug.BuildInfo, key string) string {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
		return ""
	}
	rev := setting(ia, "vcs.revision")
	// Without a revision, or from a modified tree, nothing proves the two
	// builds saw the same source.
	return rev != "" && rev == setting(ib, "vcs.revision") &&
		setting(ia, "vcs.modified") == "false" && setting(ib, "vcs.modified") == "false"
}

// pidInfo is a pid file's content. StartTicks (from /proc) tells our process
// from another that reused the pid.
type pidInfo struct {
	PID        int       `json:"pid"`
	StartTicks uint64    `json:"startTicks"`
	Server     string    `json:"server"`
	Site       string    `json:"site,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
}

func readPidFile(path string) (*pidInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p pidInfo
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("pid file %s: %w", path, err)
	}
	return &p, nil
}

// procState returns a process's state letter (R, S, T, Z...) and start time
// in clock ticks since boot.
func procState(pid int) (byte, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses; fields resume
	// after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(data[i+2:]))
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return fields[0][0], ticks, nil
}

// procLife is what a pid file's process is doing now.
type procLife int

const (
	procGone procLife = iota
	procAlive
	procFrozen
)

func (p *pidInfo) life() procLife {
	if p == nil || p.PID <= 0 {
		return procGone
	}
	state, ticks, err := procState(p.PID)
	if err != nil || ticks != p.StartTicks || state == 'Z' || state == 'X' {
		return procGone
	}
	if state == 'T' || state == 't' {
		return procFrozen
	}
	return procAlive
}

// launch starts "EXE lab serve args..." detached, writes the pid file and
// returns what it wrote and the log offset where the process's output
// begins. The pid file can only follow the start: a starter killed in
// between leaves a server no pid file names, which the next start adopts
// (see Lab.findServer) instead of launching a second one.
func launch(pidPath, logPath, server, site string, args []string) (*pidInfo, int64, error) {
	exe, err := ServerExecutable()
	if err != nil {
		return nil, 0, err
	}
	for _, dir := range []string{filepath.Dir(pidPath), filepath.Dir(logPath)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, 0, err
		}
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s%s start %s\n", launchMarker, time.Now().Format(time.RFC3339Nano), server)
	offset, _ := logf.Seek(0, 2)
	cmd := exec.Command(exe, append([]string{"lab", "serve"}, args...)...)
	cmd.Env = append(os.Environ(), EnvServe+"=1")
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("start %s: %w", server, err)
	}
	// Reap the child when it exits while we are still around; if we exit
	// first, init adopts it.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	_, ticks, err := procState(cmd.Process.Pid)
	if err != nil {
		// It exited already; the caller reads why from the log.
		<-exited
	}
	info := &pidInfo{PID: cmd.Process.Pid, StartTicks: ticks, Server: server, Site: site, StartedAt: time.Now().UTC()}
	if err := writePidFile(pidPath, info); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return nil, 0, err
	}
	exitedCmds.Store(cmd.Process.Pid, exited)
	return info, offset, nil
}

func writePidFile(path string, p *pidInfo) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o644)
}

// launchMarker begins the line the launcher writes to a server's log before
// each launch (counts.go counts them).
const launchMarker = "==== "

// lastLaunchOffset is where the output of the newest launch begins in a
// server's log (0 when the log holds no launch line): an adopted server's
// refusal is read from there, not from an older launch's.
func lastLaunchOffset(logPath string) int64 {
	f, err := os.Open(logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var pos, last int64
	for {
		line, err := r.ReadString('\n')
		pos += int64(len(line))
		if strings.HasPrefix(line, launchMarker) && strings.Contains(line, " start ") && strings.HasSuffix(line, "\n") {
			last = pos
		}
		if err != nil {
			return last
		}
	}
}

// lockServer serializes the starts and stops of one server across
// processes (a worker and its retry, the CLI): the look for a running
// server and the launch that follows must not interleave with another
// starter's, or both launch. flock ends with its process, so a starter
// killed while holding it leaves nothing held.
func lockServer(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another start or stop holds it: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exitedCmds maps the pids this process launched to a channel closed when
// they exit, so a start can tell "exited" from "still starting" at once.
var exitedCmds sync.Map // int → chan struct{}

// startFailure reads what a server printed since offset and picks the line
// that says why it stopped.
func startFailure(logPath string, offset int64) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return ""
	}
	var last, reason string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		last = line
		if reason == "" && strings.HasPrefix(line, "panic:") {
			reason = line
		}
		if strings.Contains(line, "cannot start") || strings.Contains(line, ": failed:") {
			reason = line
		}
	}
	if reason != "" {
		return reason
	}
	return last
}

// signalGroup sends sig to a server's process group (the server leads its
// own session).
func signalGroup(p *pidInfo, sig syscall.Signal) error {
	err := syscall.Kill(-p.PID, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(p.PID, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// waitGone waits until the process is gone or the timeout passes.
func waitGone(p *pidInfo, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if p.life() == procGone {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serverProc is a lab server process found by its command line.
type serverProc struct {
	PID    int
	Site   string
	Server string
}

// serverProcs finds the lab server processes of this lab dir by reading
// each process's command line: only processes started as
// "lab serve ... --lab-dir DIR" match (the front door has no --site).
// site and server, when not empty, narrow the search. Zombies are left out:
// they are dead, only not yet reaped.
func serverProcs(dir, site, server string) []serverProc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []serverProc
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(args) < 3 || args[1] != "lab" || args[2] != "serve" {
			continue
		}
		flags := map[string]string{}
		for i := 3; i+1 < len(args); i++ {
			if strings.HasPrefix(args[i], "--") {
				flags[args[i]] = args[i+1]
			}
		}
		if flags["--lab-dir"] != dir || site != "" && flags["--site"] != site || server != "" && flags["--server"] != server {
			continue
		}
		if st, _, err := procState(pid); err != nil || st == 'Z' || st == 'X' {
			continue
		}
		out = append(out, serverProc{PID: pid, Site: flags["--site"], Server: flags["--server"]})
	}
	return out
}

// strayServers finds lab server processes of this lab dir that no pid file
// names (a pid file lost with its site, a launch cut short).
func strayServers(dir string) []int {
	var out []int
	for _, p := range serverProcs(dir, "", "") {
		out = append(out, p.PID)
	}
	return out
}
