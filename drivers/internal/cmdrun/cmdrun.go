// Package cmdrun runs one command for a driver the way a DR runbook needs:
// in its own process group, bounded in time, with its output captured in a
// bounded buffer, and with nothing left behind when it is cut short.
//
// On a timeout or a cancelled context the whole process group gets SIGTERM,
// then SIGKILL after a grace period, so a grandchild (a sleep in a script, a
// half-started server) does not survive. A command that exits normally is
// never killed: a start script that launches a daemon into its group must
// leave the daemon running. A daemon that keeps the output pipe open does not
// hang the run: output is read for at most PipeWait after the command exits.
//
// A process that leaves the group on purpose (setsid) is out of reach; that
// is what daemons do, and why a stop command exists.
package cmdrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults used when a Spec leaves a field zero.
const (
	DefaultTimeout   = 5 * time.Minute
	DefaultKillGrace = 5 * time.Second
	DefaultPipeWait  = 2 * time.Second
	DefaultMaxOutput = 64 << 10
)

// ErrTimeout is returned (wrapped) when a command ran past its timeout.
var ErrTimeout = errors.New("timed out")

// Spec is one command to run.
type Spec struct {
	// Argv is the program and its arguments; Argv[0] is looked up in PATH.
	Argv []string
	Dir  string
	// Env is added to the worker's environment (later entries win).
	Env []string
	// Timeout bounds the run; the context may end it sooner.
	Timeout time.Duration
	// KillGrace is how long the group has between SIGTERM and SIGKILL.
	KillGrace time.Duration
	// PipeWait is how long output is still read after the command exits, in
	// case a background process it started holds the pipe.
	PipeWait time.Duration
	// MaxOutput bounds the bytes of combined stdout+stderr kept: the head
	// and the tail, with a marker for what was dropped between.
	MaxOutput int
	// Credential, when set, runs the command as that user and group (the
	// worker must be root): servers such as PostgreSQL refuse to run as root.
	Credential *syscall.Credential
}

// Result is what a run did.
type Result struct {
	// ExitCode is the command's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended the command, if one did.
	Signal string
	// Output is stdout and stderr interleaved, bounded by MaxOutput.
	Output string
	// OutputBytes counts every byte the command wrote, kept or not.
	OutputBytes int64
	Duration    time.Duration
	// TimedOut and Canceled say why the group was killed.
	TimedOut bool
	Canceled bool
	// PipeHeld is set when a process the command left behind still held the
	// output pipe after PipeWait; the pipe was closed on our side.
	PipeHeld bool
}

// Run runs s. A command that ran and exited (whatever its status) returns a
// nil error; the caller reads ExitCode. An error means it could not start,
// timed out (ErrTimeout) or was cancelled (the context's error); Result is
// filled as far as it got.
func Run(ctx context.Context, s Spec) (Result, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Result{ExitCode: -1}, errors.New("no command to run")
	}
	if err := ctx.Err(); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("not started: %w", err)
	}
	s = withDefaults(s)

	buf := NewBoundedBuffer(s.MaxOutput)
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	cmd.Stdout = buf // one pipe for both, so the interleaving is kept
	cmd.Stderr = buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.Credential}
	cmd.WaitDelay = s.PipeWait

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{ExitCode: -1, Duration: time.Since(start)}, fmt.Errorf("start %s: %w", s.Argv[0], err)
	}
	pgid := cmd.Process.Pid // Setpgid: the child leads a new group
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(s.Timeout)
	defer timer.Stop()
	var res Result
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timer.C:
		res.TimedOut = true
		waitErr = killGroup(pgid, s.KillGrace, done)
	case <-ctx.Done():
		res.Canceled = true
		waitErr = killGroup(pgid, s.KillGrace, done)
	}
	res.Duration = time.Since(start)
	res.Output = buf.String()
	res.OutputBytes = buf.Total()
	res.ExitCode = -1
	if st := cmd.ProcessState; st != nil {
		res.ExitCode = st.ExitCode()
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal().String()
		}
	}
	if errors.Is(waitErr, exec.ErrWaitDelay) {
		res.PipeHeld = true
	}
	switch {
	case res.TimedOut:
		return res, fmt.Errorf("%w after %s; process group %d killed", ErrTimeout, s.Timeout, pgid)
	case res.Canceled:
		return res, fmt.Errorf("cancelled after %s; process group %d killed: %w", res.Duration.Round(time.Millisecond), pgid, ctx.Err())
	}
	return res, nil
}

func withDefaults(s Spec) Spec {
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.KillGrace <= 0 {
		s.KillGrace = DefaultKillGrace
	}
	if s.PipeWait <= 0 {
		s.PipeWait = DefaultPipeWait
	}
	if s.MaxOutput <= 0 {
		s.MaxOutput = DefaultMaxOutput
	}
	return s
}

// killGroup sends SIGTERM to the group, waits for the command and for the
// rest of the group up to grace, then sends SIGKILL to whatever is left.
func killGroup(pgid int, grace time.Duration, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	var waitErr error
	select {
	case waitErr = <-done:
		// The leader is gone; give the rest of the group the remaining grace.
		for GroupAlive(pgid) {
			select {
			case <-deadline.C:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				return waitErr
			case <-time.After(20 * time.Millisecond):
			}
		}
		return waitErr
	case <-deadline.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

// ExitSummary says in a few words how a run ended.
func (r Result) ExitSummary() string {
	var parts []string
	switch {
	case r.TimedOut:
		parts = append(parts, "timed out")
	case r.Canceled:
		parts = append(parts, "cancelled")
	}
	if r.Signal != "" {
		parts = append(parts, "killed by "+r.Signal)
	} else {
		parts = append(parts, fmt.Sprintf("exit %d", r.ExitCode))
	}
	if r.PipeHeld {
		parts = append(parts, "output pipe held by a background process")
	}
	return strings.Join(parts, ", ")
}

// BoundedBuffer keeps the first and last bytes written to it, up to a
// limit, and counts the rest. It is safe for concurrent writers.
type BoundedBuffer struct {
	mu    sync.Mutex
	max   int
	head  []byte
	tail  []byte // ring of capacity max-len(head) once head is full
	pos   int    // next write position in tail when the ring is full
	full  bool
	total int64
}

// NewBoundedBuffer returns a buffer that keeps at most max bytes.
func NewBoundedBuffer(max int) *BoundedBuffer {
	if max < 2 {
		max = 2
	}
	return &BoundedBuffer{max: max}
}

// Write keeps what fits; it never fails, so a chatty command is never
// blocked or broken by its own output.
func (b *BoundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	headMax := b.max / 2
	if len(b.head) < headMax {
		k := min(headMax-len(b.head), len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	tailMax := b.max - headMax
	if len(p) >= tailMax {
		// Only the last tailMax bytes of p can survive.
		b.tail = append(b.tail[:0], p[len(p)-tailMax:]...)
		b.pos, b.full = 0, true
		return n, nil
	}
	for len(p) > 0 {
		if !b.full {
			k := min(tailMax-len(b.tail), len(p))
			b.tail = append(b.tail, p[:k]...)
			p = p[k:]
			if len(b.tail) == tailMax {
				b.full, b.pos = true, 0
			}
			continue
		}
		k := copy(b.tail[b.pos:], p)
		p = p[k:]
		b.pos = (b.pos + k) % tailMax
	}
	return n, nil
}

// Total is the number of bytes written, kept or not.
func (b *BoundedBuffer) Total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// String returns the kept bytes in order, with a marker where bytes were
// dropped, as valid UTF-8.
func (b *BoundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	sb.Write(b.head)
	kept := int64(len(b.head) + len(b.tail))
	if dropped := b.total - kept; dropped > 0 {
		fmt.Fprintf(&sb, "\n…[%d bytes dropped]…\n", dropped)
	}
	if b.full {
		sb.Write(b.tail[b.pos:])
		sb.Write(b.tail[:b.pos])
	} else {
		sb.Write(b.tail)
	}
	return strings.ToValidUTF8(sb.String(), "\uFFFD")
}
