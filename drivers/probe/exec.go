package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// DefaultExecTimeout bounds a check command.
const DefaultExecTimeout = time.Minute

// Exec is the exec probe: a command whose exit status decides (0 passes).
// It runs like the exec middleware driver's commands: own process group,
// killed whole at its timeout, output bounded and kept short.
//
// A check whose host has SSH settings (req.Host.Remote) runs its command on
// that host over SSH, as the exec middleware driver does (see
// drivers/internal/sshrun); the evidence names the host. A host that cannot
// be reached fails the check (Passed=false, the summary says why); a host
// key that is unknown or changed, a refused key or bad SSH settings are
// errors a retry cannot fix.
//
// Settings:
//
//	command:   one string (run by /bin/sh -c) or a list of argv strings (required)
//	timeout:   default 1m; a command still running then fails the check
//	killGrace: SIGTERM→SIGKILL grace, default 5s
//	workdir:   working directory template
//	env:       as the exec middleware driver: "env:NAME"/"file:PATH" values
//	           are secret references, other values non-secret literals
//	vars:      free-form values for templates
type Exec struct {
	logger   *zap.Logger
	pipeWait time.Duration
	// pool keeps one SSH connection per remote host between checks.
	pool *sshrun.Pool
}

// NewExec returns the exec probe.
func NewExec(logger *zap.Logger) *Exec {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Exec{logger: logger, pool: sshrun.NewPool(logger.Named("ssh"), 0)}
}

type execSettings struct {
	Command   any              `json:"command"`
	Timeout   drivers.Duration `json:"timeout"`
	KillGrace drivers.Duration `json:"killGrace"`
	Workdir   string           `json:"workdir"`
	Env       map[string]any   `json:"env"`
	Vars      map[string]any   `json:"vars"`
}

type execConfig struct {
	command   *tmpl.Command
	timeout   time.Duration
	killGrace time.Duration
	workdir   *tmpl.Template
	env       *tmpl.Values
	vars      map[string]any
}

// Close closes the probe's SSH connections (they also close on their own
// once idle), for a worker that shuts down.
func (p *Exec) Close() error { return p.pool.Close() }

// CheckSettings parses the settings without running anything.
func (p *Exec) CheckSettings(s map[string]any) error {
	_, err := parseExec(s)
	return err
}

func parseExec(raw map[string]any) (*execConfig, error) {
	var s execSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, badSettings("exec", err)
	}
	c, err := s.compile()
	if err != nil {
		return nil, badSettings("exec", fmt.Errorf("settings: %w", err))
	}
	return c, nil
}

func (s execSettings) compile() (*execConfig, error) {
	sample := tmpl.ProbeData{}
	c := &execConfig{vars: s.Vars}
	var err error
	if s.Command == nil {
		return nil, errors.New("command: required")
	}
	if c.command, err = tmpl.ParseCommand("command", s.Command, sample); err != nil {
		return nil, err
	}
	if c.timeout, err = timeoutOr(s.Timeout, DefaultExecTimeout); err != nil {
		return nil, err
	}
	if s.KillGrace < 0 {
		return nil, errors.New("killGrace: must be positive")
	}
	c.killGrace = s.KillGrace.D()
	if s.Workdir != "" {
		if c.workdir, err = tmpl.Parse("workdir", s.Workdir, sample); err != nil {
			return nil, err
		}
	}
	if c.env, err = tmpl.ParseValues("env", s.Env, sample, tmpl.EnvNameErr); err != nil {
		return nil, err
	}
	return c, nil
}

// Check runs the command; exit 0 passes.
func (p *Exec) Check(ctx context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	c, err := parseExec(req.Settings)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	data := tmpl.ForCheck(req, c.vars)
	argv, err := c.command.Argv(data)
	if err != nil {
		return drivers.CheckResult{}, badSettings("exec", err)
	}
	var dir string
	if c.workdir != nil {
		if dir, err = c.workdir.Render(data); err != nil {
			return drivers.CheckResult{}, badSettings("exec", err)
		}
	}
	env, err := c.env.Resolve(data)
	if err != nil {
		return drivers.CheckResult{}, fmt.Errorf("exec probe: %w", err)
	}
	envList := make([]string, 0, len(env.Pairs))
	for _, kv := range env.Pairs {
		envList = append(envList, kv[0]+"="+kv[1])
	}
	run, runErr := p.pool.Run(ctx, req.Host, cmdrun.Spec{
		Argv: argv, Dir: dir, Env: envList,
		Timeout: c.timeout, KillGrace: c.killGrace, PipeWait: p.pipeWait,
	})
	out := tmpl.Redact(run.Output, env.Secrets)
	res := drivers.CheckResult{
		Evidence: drivers.Evidence{
			Action:   tmpl.Display(argv),
			Host:     sshrun.Where(req.Host),
			Output:   drivers.Truncate(out, OutputEvidenceLimit),
			ExitCode: run.ExitCode,
			Duration: run.Duration,
		},
		Details: map[string]string{"exit": run.ExitSummary()},
	}
	p.logger.Debug("exec probe", zap.String("check", req.Name), zap.String("host", res.Evidence.Host),
		zap.String("command", res.Evidence.Action), zap.String("result", run.ExitSummary()), zap.Duration("took", run.Duration))
	switch {
	case errors.Is(runErr, cmdrun.ErrTimeout):
		res.Summary = fmt.Sprintf("no verdict within %s (process group killed)", c.timeout)
		if line := lastLine(out); line != "" {
			res.Summary += "; last output: " + line
		}
		return res, nil
	case runErr != nil:
		if cerr := callerDone(ctx); cerr != nil {
			return res, cerr
		}
		msg := tmpl.Redact(runErr.Error(), env.Secrets)
		if req.Host.Remote() && !drivers.Permanent(runErr) {
			// The host did not answer or the session broke: what a check
			// is there to find, like a refused TCP connection.
			res.Summary = short("could not run on " + res.Evidence.Host + ": " + msg)
			return res, nil
		}
		// It could not start (program not found, a host key refused):
		// the check did not run.
		return res, fmt.Errorf("exec probe: %w", redactedErr{runErr, msg})
	}
	res.Passed = run.ExitCode == 0
	verdict := "passed"
	if !res.Passed {
		verdict = "failed (" + run.ExitSummary() + ")"
	}
	res.Summary = verdict
	if line := lastLine(out); line != "" {
		res.Summary += ": " + line
	}
	return res, nil
}

// lastLine is the command's last non-empty output line: scripts print their
// conclusion last.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return short(s)
}

// redactedErr shows err's message with secret values replaced, keeping
// errors.Is (a permanent error stays permanent).
type redactedErr struct {
	err error
	msg string
}

func (e redactedErr) Error() string { return e.msg }
func (e redactedErr) Unwrap() error { return e.err }
