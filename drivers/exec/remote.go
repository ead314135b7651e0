package exec

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// onHost is the " on HOST" part of an error for a command that ran on a
// remote host, and nothing for the worker's own.
func onHost(where string) string {
	if where == "" {
		return ""
	}
	return " on " + where
}

// redactedErr shows err with the secret values replaced, keeping errors.Is.
type redactedErr struct {
	err     error
	secrets []string
}

func (e redactedErr) Error() string { return tmpl.Redact(e.err.Error(), e.secrets) }
func (e redactedErr) Unwrap() error { return e.err }

// pidfileScript reports what the exec driver needs to judge a pidfile on a
// remote Linux host: the file's mtime, the boot time, the /proc stat line
// of the pid it names, then (after a "content" line) its first bytes. The
// verdict is made in Go, by the same rules as for a local pidfile.
const pidfileScript = `f=$1; [ -f "$f" ] || { echo none; exit 0; }; ` +
	`echo "mtime $(stat -c %Y "$f")"; echo "btime $(sed -n 's/^btime //p' /proc/stat)"; ` +
	`p=$(head -c 64 "$f" | tr -d ' \t\r\n'); case "$p" in ''|*[!0-9]*) p=;; esac; st=; ` +
	`if [ -n "$p" ] && [ ${#p} -le 10 ] && [ -r "/proc/$p/stat" ]; then { read -r st < "/proc/$p/stat"; } 2>/dev/null; fi; ` +
	`echo "stat $st"; echo content; head -c 64 "$f"`

// remotePID is a pidfile's verdict on a remote host: pid is 0 when no live
// process is named, and note says why.
type remotePID struct {
	pid, pgid int
	note      string
}

func (d *Driver) readRemotePidfile(ctx context.Context, c *config, t drivers.Target) (remotePID, error) {
	path, err := c.pidfile.Render(tmpl.ForTarget(t, c.vars))
	if err != nil {
		return remotePID{}, fmt.Errorf("exec driver: %w", err)
	}
	res, err := d.pool.Run(ctx, t.Host, cmdrun.Spec{
		Argv:    []string{"/bin/sh", "-c", pidfileScript, "drover-pidfile", path},
		Timeout: c.timeouts[OpStatus], KillGrace: c.killGrace, PipeWait: d.pipeWait,
	})
	if err != nil {
		return remotePID{}, fmt.Errorf("exec driver: pidfile %s%s: %w", path, onHost(sshrun.Where(t.Host)), err)
	}
	if res.ExitCode != 0 {
		return remotePID{}, fmt.Errorf("exec driver: pidfile %s%s: reading it exited %d: %s", path, onHost(sshrun.Where(t.Host)), res.ExitCode, shortOutput(res.Output))
	}
	return judgeRemotePidfile(path, res.Output)
}

// judgeRemotePidfile reads pidfileScript's output.
func judgeRemotePidfile(path, out string) (remotePID, error) {
	if strings.TrimSpace(out) == "none" {
		return remotePID{note: "no pidfile " + path}, nil
	}
	head, content, ok := strings.Cut(out, "\ncontent\n")
	if !ok {
		return remotePID{}, fmt.Errorf("exec driver: pidfile %s: unexpected answer from the host: %s", path, shortOutput(out))
	}
	fields := map[string]string{}
	for line := range strings.SplitSeq(head, "\n") {
		k, v, _ := strings.Cut(line, " ")
		fields[k] = strings.TrimSpace(v)
	}
	pid, err := ParsePID([]byte(content))
	if err != nil {
		return remotePID{note: fmt.Sprintf("pidfile %s: %v", path, err)}, nil
	}
	notRunning := remotePID{note: fmt.Sprintf("pid %d from %s is not running", pid, path)}
	if fields["stat"] == "" {
		return notRunning, nil
	}
	st, err := cmdrun.ParseStat([]byte(fields["stat"]))
	if err != nil || st.PID != pid {
		return remotePID{}, fmt.Errorf("exec driver: pidfile %s: unreadable /proc stat for pid %d: %q", path, pid, fields["stat"])
	}
	if st.Dead() {
		return notRunning, nil
	}
	mtime, err1 := strconv.ParseInt(fields["mtime"], 10, 64)
	btime, err2 := strconv.ParseInt(fields["btime"], 10, 64)
	// USER_HZ is 100 on every Linux architecture (see cmdrun.StartTime).
	if err1 == nil && err2 == nil && btime > 0 {
		started := time.Unix(btime, 0).Add(time.Duration(st.StartTicks) * time.Second / 100)
		if started.After(time.Unix(mtime, 0).Add(2 * time.Second)) {
			return remotePID{note: fmt.Sprintf("pid %d from %s was reused by a process started after the pidfile was written", pid, path)}, nil
		}
	}
	return remotePID{pid: pid, pgid: st.PGRP, note: fmt.Sprintf("pid %d from %s is running", pid, path)}, nil
}

// killRemotePidfile is killPidfile on a remote host: the pidfile process's
// group gets SIGTERM, then SIGKILL after killGrace, by a command run there.
func (d *Driver) killRemotePidfile(ctx context.Context, c *config, t drivers.Target) (drivers.Evidence, error) {
	start := time.Now()
	rp, err := d.readRemotePidfile(ctx, c, t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: "terminate pidfile process group", Host: sshrun.Where(t.Host)}
	if rp.pid == 0 {
		ev.Output, ev.AlreadyDone = rp.note, true
		return ev, nil
	}
	if rp.pgid <= 1 {
		return ev, fmt.Errorf("exec driver: pid %d%s has no process group of its own to terminate", rp.pid, onHost(ev.Host))
	}
	ev.Action = fmt.Sprintf("kill -TERM -%d, then -KILL after %s (%s)", rp.pgid, c.killGrace, rp.note)
	res, err := d.pool.Run(ctx, t.Host, cmdrun.Spec{
		Argv:    sshrun.KillGroupArgv(rp.pgid, c.killGrace),
		Timeout: c.killGrace + time.Minute, KillGrace: time.Second, PipeWait: d.pipeWait,
	})
	ev.Output = drivers.Truncate(strings.TrimSpace(res.Output), EvidenceLimit)
	ev.Duration = time.Since(start)
	if err != nil {
		return ev, fmt.Errorf("exec driver: immediate stop%s: %w", onHost(ev.Host), err)
	}
	if res.ExitCode != 0 {
		return ev, fmt.Errorf("exec driver: immediate stop%s: %s", onHost(ev.Host), shortOutput(res.Output))
	}
	return ev, nil
}
