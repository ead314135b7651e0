// Package hostrun is the seam through which the product drivers (websphere,
// db2, mq) run their commands: locally through cmdrun, or through sshrun
// when a target's host is reached over SSH (drivers.Host.Remote). It also turns one run into
// evidence: the command line and output with secrets redacted, bounded, and
// how long it took.
package hostrun

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// Limits of what a run leaves in evidence and errors.
const (
	// EvidenceLimit bounds command output kept in evidence (workflow history).
	EvidenceLimit = 2000
	// ErrorOutputLimit bounds output quoted in an error message.
	ErrorOutputLimit = 500
)

// Runner runs one command on the host a driver acts on.
type Runner interface {
	Run(ctx context.Context, spec cmdrun.Spec) (cmdrun.Result, error)
	// Where names the host for evidence; empty for the worker's own.
	Where() string
}

// Local runs commands on the worker's own machine.
type Local struct{}

// Run runs spec with cmdrun: own process group, bounded time and output.
func (Local) Run(ctx context.Context, spec cmdrun.Spec) (cmdrun.Result, error) {
	return cmdrun.Run(ctx, spec)
}

// Where is empty: local evidence reads as the command alone.
func (Local) Where() string { return "" }

// Hosts picks the runner for a target's host: local, or over SSH through
// one connection pool per driver (the commands of one call share a
// connection). It is safe for concurrent use.
type Hosts struct {
	pool *sshrun.Pool
}

// NewHosts returns the runners of one driver.
func NewHosts(logger *zap.Logger) *Hosts {
	return &Hosts{pool: sshrun.NewPool(logger, 0)}
}

// For returns the runner for host h. A remote host's SSH settings are
// checked here, so a bad setting fails before anything runs.
func (hs *Hosts) For(h drivers.Host) (Runner, error) {
	if !h.Remote() {
		return Local{}, nil
	}
	if _, err := sshrun.Parse(h); err != nil {
		return nil, err
	}
	return remote{pool: hs.pool, host: h}, nil
}

type remote struct {
	pool *sshrun.Pool
	host drivers.Host
}

func (r remote) Run(ctx context.Context, spec cmdrun.Spec) (cmdrun.Result, error) {
	return r.pool.Run(ctx, r.host, spec)
}

func (r remote) Where() string { return sshrun.Where(r.host) }

// Call is one command a driver runs.
type Call struct {
	// Op names the operation in errors and logs (start, status, takeover).
	Op   string
	Argv []string
	Env  []string
	// Timeout and KillGrace bound the run (see cmdrun.Spec).
	Timeout   time.Duration
	KillGrace time.Duration
	// Secrets are values (passwords) redacted from the action, the output
	// and every error.
	Secrets []string
}

// Run runs c and returns its evidence. A command that ran returns a nil
// error whatever its exit code: the driver reads the output and decides. An
// error means it could not start, timed out or was cancelled; the message
// names the operation and quotes the redacted output.
func Run(ctx context.Context, r Runner, c Call) (drivers.Evidence, cmdrun.Result, error) {
	action := Redact(tmpl.Display(c.Argv), c.Secrets)
	if where := r.Where(); where != "" {
		action = "on " + where + ": " + action
	}
	ev := drivers.Evidence{Action: action}
	res, err := r.Run(ctx, cmdrun.Spec{Argv: c.Argv, Env: c.Env, Timeout: c.Timeout, KillGrace: c.KillGrace})
	res.Output = Redact(res.Output, c.Secrets)
	ev.Output = drivers.Truncate(res.Output, EvidenceLimit)
	ev.ExitCode = res.ExitCode
	ev.Duration = res.Duration
	if err != nil {
		return ev, res, &redactedError{msg: fmt.Sprintf("%s: %s: %s: %s", c.Op, action, Redact(err.Error(), c.Secrets), Short(res.Output)), err: err}
	}
	return ev, res, nil
}

// redactedError carries a message with secrets hidden while errors.Is still
// finds the cause (cmdrun.ErrTimeout, context.Canceled).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Redact hides every secret in s, whatever its length (a password of three
// characters is still a password).
func Redact(s string, secrets []string) string {
	var long []string
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if len(sec) < 4 {
			s = strings.ReplaceAll(s, sec, tmpl.Redacted)
			continue
		}
		long = append(long, sec)
	}
	return tmpl.Redact(s, long)
}

// Short is output quoted in an error: trimmed and bounded.
func Short(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return "(no output)"
	}
	return drivers.Truncate(out, ErrorOutputLimit)
}

// Combine joins the evidence of several commands run for one call (status,
// then start, then status again) into one record: every action, every
// output, the total time.
func Combine(evs ...drivers.Evidence) drivers.Evidence {
	var out drivers.Evidence
	var actions, outputs []string
	for _, ev := range evs {
		if ev.Action == "" && ev.Output == "" {
			continue
		}
		actions = append(actions, ev.Action)
		outputs = append(outputs, "$ "+ev.Action+"\n"+strings.TrimRight(ev.Output, "\n"))
		out.Duration += ev.Duration
		out.ExitCode = ev.ExitCode
		out.AlreadyDone = ev.AlreadyDone
	}
	out.Action = strings.Join(actions, " ; ")
	out.Output = drivers.Truncate(strings.Join(outputs, "\n"), EvidenceLimit)
	return out
}

// Timeouts resolves per-operation timeouts: a default for all, overrides
// by operation name, each checked against the known operations.
func Timeouts(def drivers.Duration, fallback time.Duration, overrides map[string]drivers.Duration, ops []string) (map[string]time.Duration, error) {
	if def < 0 {
		return nil, fmt.Errorf("timeout: must be positive, got %s", def.D())
	}
	d := def.D()
	if d == 0 {
		d = fallback
	}
	out := make(map[string]time.Duration, len(ops))
	for _, op := range ops {
		out[op] = d
	}
	for op, v := range overrides {
		if _, ok := out[op]; !ok {
			return nil, fmt.Errorf("timeouts.%s: unknown operation (known: %s)", op, strings.Join(ops, ", "))
		}
		if v.D() <= 0 {
			return nil, fmt.Errorf("timeouts.%s: must be positive", op)
		}
		out[op] = v.D()
	}
	return out, nil
}
