package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// Cmd is one command a snapshot driver runs (lvcreate, mount, btrfs send).
type Cmd struct {
	Name string
	Args []string
	// Stdin feeds the command (btrfs receive); nil for none.
	Stdin io.Reader
	// Stdout receives the command's output stream (btrfs send); when nil,
	// stdout is captured with stderr into the returned output.
	Stdout io.Writer
}

// String is the command line, for evidence and errors.
func (c Cmd) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Runner runs commands. Drivers take one so tests can record the exact
// commands and inject failures; ExecRunner runs them for real.
type Runner interface {
	// Run runs c to completion. The output (stderr, plus stdout when
	// c.Stdout is nil) is returned bounded; a non-zero exit is an error
	// that carries the command line and the output.
	Run(ctx context.Context, c Cmd) (output string, err error)
}

// ExecRunner runs commands as processes in their own process group, so a
// cancelled context kills the whole group (btrfs send and its helpers).
type ExecRunner struct {
	// KillGrace is how long the group has between SIGTERM and SIGKILL.
	KillGrace time.Duration
}

const maxOutput = 16 << 10

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, c Cmd) (string, error) {
	grace := r.KillGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = grace
	out := &boundedBuffer{max: maxOutput}
	cmd.Stdin = c.Stdin
	cmd.Stderr = out
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = out
	}
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the group left behind goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	text := strings.TrimSpace(out.String())
	if err != nil {
		if ctx.Err() != nil {
			return text, fmt.Errorf("%s: %w", c, ctx.Err())
		}
		if text != "" {
			return text, fmt.Errorf("%s: %w: %s", c, err, drivers.Truncate(text, 2000))
		}
		return text, fmt.Errorf("%s: %w", c, err)
	}
	return text, nil
}

// boundedBuffer keeps the head of the output up to max bytes.
type boundedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) <= room {
			b.buf.Write(p)
		} else {
			b.buf.Write(p[:room])
			b.dropped += len(p) - room
		}
	} else {
		b.dropped += len(p)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return b.buf.String() + fmt.Sprintf("\n…[%d bytes dropped]", b.dropped)
	}
	return b.buf.String()
}
