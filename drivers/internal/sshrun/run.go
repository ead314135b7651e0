package sshrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
)

// Run runs s on host: over SSH through the pool when the host is remote,
// locally with cmdrun otherwise. Result and error read as cmdrun's do.
func (p *Pool) Run(ctx context.Context, host drivers.Host, s cmdrun.Spec) (cmdrun.Result, error) {
	if !host.Remote() {
		return cmdrun.Run(ctx, s)
	}
	c, err := Parse(host)
	if err != nil {
		return cmdrun.Result{ExitCode: -1}, err
	}
	return p.RunSSH(ctx, c, s)
}

// Where names the host a command runs on for evidence: empty for the
// worker's own host, so local evidence reads as it always did.
func Where(host drivers.Host) string {
	if !host.Remote() {
		return ""
	}
	c, err := Parse(host)
	if err != nil {
		return host.Name
	}
	return c.Where()
}

// wrapper is the remote side of a run. $1 is the run's nonce, $2 the working
// directory, the rest the command's argv. See the package comment. wait's
// stderr is dropped: dash reports a job ended by a signal there
// ("Terminated"), which the command never printed.
const wrapper = `n=$1; d=$2; shift 2; nl=$(printf '\n.'); nl=${nl%.}; s=; ` +
	`while IFS= read -r l; do [ "$l" = "$n" ] && break; s="$s$l$nl"; done; eval "$s"; s=; ` +
	`if [ -n "$d" ]; then cd "$d" || { echo "$n exit 126" >&2; exit 126; }; fi; ` +
	`command -v setsid >/dev/null 2>&1 || { echo "setsid: not found on this host (util-linux); drover needs it to stop a command whole" >&2; exit 127; }; ` +
	`setsid "$@" </dev/null 2>&1 & p=$!; echo "$n pid $p" >&2; wait "$p" 2>/dev/null; c=$?; echo "$n exit $c" >&2; exit "$c"`

// killScript ends process group $1: SIGTERM, then SIGKILL after $2 steps of
// 50ms. A zombie does not count as alive: where the host's init does not
// reap orphans it would make every kill wait out the grace.
const killScript = `g=$1; n=$2; ` +
	`alive() { kill -0 -"$g" 2>/dev/null || return 1; [ -r /proc/self/stat ] || return 0; ` +
	`for f in /proc/[0-9]*/stat; do { read -r l < "$f"; } 2>/dev/null || continue; r=${l##*) }; set -- $r; ` +
	`[ "$3" = "$g" ] && [ "$1" != Z ] && [ "$1" != X ] && return 0; done; return 1; }; ` +
	`alive || { echo "process group $g already gone"; exit 0; }; kill -TERM -"$g" 2>/dev/null; i=0; ` +
	`while alive; do if [ "$i" -ge "$n" ]; then kill -KILL -"$g" 2>/dev/null; sleep 0.1; ` +
	`if alive; then echo "process group $g still alive after SIGKILL"; exit 1; fi; echo "process group $g killed by SIGKILL after the grace"; exit 0; fi; ` +
	`sleep 0.05; i=$((i+1)); done; echo "process group $g ended after SIGTERM"`

// KillGroupArgv is a command that ends process group pgid on a Linux host
// the way a timed-out command's group is ended: SIGTERM, then SIGKILL to
// what is left after grace. It prints what happened and exits 1 only when
// the group survived SIGKILL.
func KillGroupArgv(pgid int, grace time.Duration) []string {
	return []string{"/bin/sh", "-c", killScript, "drover-kill", strconv.Itoa(pgid), strconv.Itoa(int(grace / (50 * time.Millisecond)))}
}

// RunSSH runs s on the host c over a pooled connection.
func (p *Pool) RunSSH(ctx context.Context, c Config, s cmdrun.Spec) (cmdrun.Result, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return cmdrun.Result{ExitCode: -1}, errors.New("no command to run")
	}
	stdin, err := envBlock(s.Env)
	if err != nil {
		return cmdrun.Result{ExitCode: -1}, err
	}
	if err := ctx.Err(); err != nil {
		return cmdrun.Result{ExitCode: -1}, fmt.Errorf("not started: %w", err)
	}
	s = withDefaults(s)
	nonce := newNonce()
	stdin = append(stdin, nonce+"\n"...)

	start := time.Now()
	e, client, err := p.acquire(ctx, c)
	if err != nil {
		return cmdrun.Result{ExitCode: -1, Duration: time.Since(start)}, err
	}
	defer p.release(e)
	sess, err := client.NewSession()
	if err != nil {
		// The connection died between the check and now; the next call redials.
		p.discard(e, client)
		return cmdrun.Result{ExitCode: -1, Duration: time.Since(start)}, fmt.Errorf("ssh to %s: open session: %w", c.Endpoint(), err)
	}
	defer sess.Close()

	buf := cmdrun.NewBoundedBuffer(s.MaxOutput)
	ctl := newControl(nonce, buf)
	sess.Stdin = bytes.NewReader(stdin)
	sess.Stdout = buf
	sess.Stderr = ctl
	if err := sess.Start(remoteCommand(nonce, s.Dir, s.Argv)); err != nil {
		return cmdrun.Result{ExitCode: -1, Duration: time.Since(start)}, fmt.Errorf("ssh to %s: start %s: %w", c.Endpoint(), s.Argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	timer := time.NewTimer(s.Timeout)
	defer timer.Stop()
	var res cmdrun.Result
	var killNote string
	var killErr error
	select {
	case <-done:
	case <-ctl.exited:
		// The command ended; a daemon it started may hold the output.
		select {
		case <-done:
		case <-time.After(s.PipeWait):
			res.PipeHeld = true
			abandon(sess, done)
		}
	case <-timer.C:
		res.TimedOut = true
		killNote, killErr = p.killRemote(c, e, client, ctl, s.KillGrace)
	case <-ctx.Done():
		res.Canceled = true
		killNote, killErr = p.killRemote(c, e, client, ctl, s.KillGrace)
	}
	if res.TimedOut || res.Canceled {
		// The wrapper ends once its group is gone; do not wait on a
		// stuck channel longer than that.
		select {
		case <-done:
		case <-time.After(s.PipeWait):
			abandon(sess, done)
		}
	}
	ctl.flush()
	res.Duration = time.Since(start)
	res.Output = buf.String()
	res.OutputBytes = buf.Total()
	res.ExitCode = -1
	pid, code, reported := ctl.result()
	if reported {
		res.ExitCode = code
		if (res.TimedOut || res.Canceled) && code > 128 {
			res.ExitCode = -1
			res.Signal = syscall.Signal(code - 128).String()
		}
	}
	where := fmt.Sprintf("remote process group %d on %s", pid, c.Endpoint())
	switch {
	case res.TimedOut || res.Canceled:
		what := "killed (" + killNote + ")"
		if killErr != nil {
			what = "NOT confirmed killed: " + killErr.Error()
		}
		if res.TimedOut {
			return res, fmt.Errorf("%w after %s; %s %s", cmdrun.ErrTimeout, s.Timeout, where, what)
		}
		return res, fmt.Errorf("cancelled after %s; %s %s: %w", res.Duration.Round(time.Millisecond), where, what, ctx.Err())
	case !reported:
		// The wrapper never reported an exit: the connection broke, or
		// the login shell could not run it.
		if pid > 0 {
			return res, fmt.Errorf("ssh to %s: the session ended before %s reported an exit status; it may still run", c.Endpoint(), where)
		}
		return res, fmt.Errorf("ssh to %s: the command was not started: %s", c.Endpoint(), drivers.Truncate(strings.TrimSpace(res.Output), 300))
	}
	return res, nil
}

// closeWait bounds how long a closed session is waited for.
const closeWait = 2 * time.Second

// abandon closes a session whose channel is still open and waits briefly
// for it to end. Closing does not end it while a remote process the kill
// could not reach still runs; the run must return all the same. The wait
// goroutine then ends when the pool closes the idle connection.
func abandon(sess *ssh.Session, done <-chan error) {
	_ = sess.Close()
	select {
	case <-done:
	case <-time.After(closeWait):
	}
}

// killRemote ends the command's process group over a second session on
// the same connection, or a new one if that connection is gone. It runs on
// its own deadline: the caller's context may be what was cancelled.
func (p *Pool) killRemote(c Config, e *entry, client *ssh.Client, ctl *control, grace time.Duration) (string, error) {
	pid := ctl.waitPID(grace)
	if pid <= 0 {
		return "", errors.New("its pid never arrived, so it could not be signalled")
	}
	var quoted []string
	for _, a := range KillGroupArgv(pid, grace) {
		quoted = append(quoted, shQuote(a))
	}
	cmd := strings.Join(quoted, " ")
	ctx, cancel := context.WithTimeout(context.Background(), grace+c.ConnectTimeout+10*time.Second)
	defer cancel()
	out, err := runSimple(ctx, client, cmd)
	if err != nil {
		// This connection may be what failed; try once more on a new one.
		p.discard(e, client)
		e2, client2, derr := p.acquire(ctx, c)
		if derr != nil {
			return "", fmt.Errorf("kill over ssh: %v; reconnect: %w", err, derr)
		}
		defer p.release(e2)
		out, err = runSimple(ctx, client2, cmd)
	}
	out = strings.TrimSpace(out)
	if err != nil {
		return out, fmt.Errorf("kill over ssh: %w: %s", err, out)
	}
	return out, nil
}

// runSimple runs a command on client and returns its combined output.
func runSimple(ctx context.Context, client *ssh.Client, cmd string) (string, error) {
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	// Stdout and stderr are copied by two goroutines: a buffer safe for both.
	out := cmdrun.NewBoundedBuffer(16 << 10)
	sess.Stdout, sess.Stderr = out, out
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err := <-done:
		return out.String(), err
	case <-ctx.Done():
		_ = sess.Close()
		return out.String(), ctx.Err()
	}
}

func withDefaults(s cmdrun.Spec) cmdrun.Spec {
	if s.Timeout <= 0 {
		s.Timeout = cmdrun.DefaultTimeout
	}
	if s.KillGrace <= 0 {
		s.KillGrace = cmdrun.DefaultKillGrace
	}
	if s.PipeWait <= 0 {
		s.PipeWait = cmdrun.DefaultPipeWait
	}
	if s.MaxOutput <= 0 {
		s.MaxOutput = cmdrun.DefaultMaxOutput
	}
	return s
}

// remoteCommand is the command line the login shell runs: the wrapper and
// the argv, each quoted. It holds no secret.
func remoteCommand(nonce, dir string, argv []string) string {
	var b strings.Builder
	b.WriteString("sh -c " + shQuote(wrapper) + " drover-ssh " + shQuote(nonce) + " " + shQuote(dir))
	for _, a := range argv {
		b.WriteString(" " + shQuote(a))
	}
	return b.String()
}

// envBlock turns NAME=value pairs into the export lines the wrapper reads
// from stdin. Names are checked here as well as in the plan: they are
// evaluated by the remote shell.
func envBlock(env []string) ([]byte, error) {
	var b bytes.Buffer
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !validName(name) {
			n := name
			if !ok {
				n = "(no '=')"
			}
			return nil, fmt.Errorf("environment entry %s: not NAME=value with a valid variable name", n)
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("environment variable %s: value holds a NUL byte", name)
		}
		b.WriteString("export " + name + "=" + shQuote(value) + "\n")
	}
	return b.Bytes(), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newNonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "drover-" + hex.EncodeToString(b)
}

// control reads the wrapper's stderr: lines that start with the nonce are
// its reports (pid, exit), anything else is output (a cd that failed).
type control struct {
	nonce string
	out   *cmdrun.BoundedBuffer

	mu       sync.Mutex
	partial  []byte
	pid      int
	code     int
	reported bool
	gotPID   chan struct{}
	exited   chan struct{}
}

func newControl(nonce string, out *cmdrun.BoundedBuffer) *control {
	return &control{nonce: nonce, out: out, gotPID: make(chan struct{}), exited: make(chan struct{})}
}

func (c *control) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(c.partial[:i+1])
		c.partial = c.partial[i+1:]
	}
	// A chatty wrapper without newlines must not grow this without bound.
	if len(c.partial) > 4096 {
		_, _ = c.out.Write(c.partial)
		c.partial = nil
	}
	return len(p), nil
}

func (c *control) line(l []byte) {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(string(l), "\n"), c.nonce+" ")
	if !ok {
		_, _ = c.out.Write(l)
		return
	}
	kind, num, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		return
	}
	switch kind {
	case "pid":
		if c.pid == 0 {
			c.pid = n
			close(c.gotPID)
		}
	case "exit":
		if !c.reported {
			c.code, c.reported = n, true
			close(c.exited)
		}
	}
}

func (c *control) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.line(c.partial)
		c.partial = nil
	}
}

func (c *control) waitPID(max time.Duration) int {
	select {
	case <-c.gotPID:
	case <-c.exited:
	case <-time.After(max):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

func (c *control) result() (pid, code int, reported bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid, c.code, c.reported
}
