// Package exec is the generic middleware driver: start, stop and status are
// commands the plan writes, as Go templates over the plan, the site and the
// component. It runs them with a timeout, each in its own process group
// (killed whole on timeout or cancellation), and keeps their output short
// in the evidence.
//
// Where commands run. A target whose host is the worker's own machine
// (drivers.Host without SSH settings) runs them locally, as it always did.
// A target whose host has SSH settings (Host.Remote) runs them on that host
// over SSH (see drivers/internal/sshrun for the host's settings: user, key
// reference, port, knownHosts checked strictly, connectTimeout) with the
// same guarantees: the remote process group is killed whole on a timeout,
// output is bounded, secret env values travel on the session's stdin and
// are redacted from output. The driver keeps one connection per host, so
// the status and start of one call share it; an idle connection is closed.
// The pidfile, workdir and env settings then refer to the remote host
// (reading a pidfile remotely needs Linux's /proc there). Evidence.Host
// names the host when it is not the worker's own.
//
// Settings (the component's settings in the plan):
//
//	start:         command (required)
//	stop:          command (required)
//	stopImmediate: command (optional, see Stop)
//	status:        command (required unless pidfile is given)
//	quiesce:       command (optional, with resume: pause writes)
//	resume:        command
//	pidfile:       path template of the server's pid file (optional)
//	timeout:       per-command timeout, default 5m
//	timeouts:      per-operation overrides {start, stop, stopImmediate, status, quiesce, resume}
//	killGrace:     SIGTERM→SIGKILL grace when a command is cut short, default 10s
//	workdir:       working directory template
//	env:           NAME: value; a value "env:NAME" or "file:PATH" is a secret
//	               reference resolved at call time and redacted from output;
//	               anything else is a non-secret literal template, refused
//	               under names that look secret (PASSWORD, TOKEN, ...)
//	vars:          free-form values for templates ({{.Vars.x}})
//	statusRunning: exit codes of status meaning running, default [0]
//	statusStopped: exit codes meaning stopped; default: any code not running.
//	               When given, other codes report state "unknown".
//
// A command is one string, run by /bin/sh -c, or a list of argv strings run
// directly. Use {{shquote ...}} when pasting values into a shell string.
package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// Defaults.
const (
	DefaultTimeout   = 5 * time.Minute
	DefaultKillGrace = 10 * time.Second
	// EvidenceLimit bounds command output kept in evidence (workflow history).
	EvidenceLimit = 2000
	// errorOutputLimit bounds output quoted in an error message.
	errorOutputLimit = 500
)

// Operation names, as used in settings.timeouts.
const (
	OpStart         = "start"
	OpStop          = "stop"
	OpStopImmediate = "stopImmediate"
	OpStatus        = "status"
	OpQuiesce       = "quiesce"
	OpResume        = "resume"
)

var operations = []string{OpStart, OpStop, OpStopImmediate, OpStatus, OpQuiesce, OpResume}

// settings is the strict shape of the driver's settings. Commands are `any`
// so each can be a string or a list and errors can name the field.
type settings struct {
	Start         any                         `json:"start"`
	Stop          any                         `json:"stop"`
	StopImmediate any                         `json:"stopImmediate"`
	Status        any                         `json:"status"`
	Quiesce       any                         `json:"quiesce"`
	Resume        any                         `json:"resume"`
	Pidfile       string                      `json:"pidfile"`
	Timeout       drivers.Duration            `json:"timeout"`
	Timeouts      map[string]drivers.Duration `json:"timeouts"`
	KillGrace     drivers.Duration            `json:"killGrace"`
	Workdir       string                      `json:"workdir"`
	Env           map[string]any              `json:"env"`
	Vars          map[string]any              `json:"vars"`
	StatusRunning []int                       `json:"statusRunning"`
	StatusStopped []int                       `json:"statusStopped"`
}

// config is settings checked and parsed.
type config struct {
	cmds          map[string]*tmpl.Command
	pidfile       *tmpl.Template
	timeouts      map[string]time.Duration
	killGrace     time.Duration
	workdir       *tmpl.Template
	env           *tmpl.Values
	vars          map[string]any
	statusRunning []int
	statusStopped []int
}

// Driver is the exec middleware driver. The only state it keeps between
// calls is its pool of SSH connections to remote hosts.
type Driver struct {
	logger *zap.Logger
	pool   *sshrun.Pool
	// pipeWait is how long output is read after a command exits (tests
	// shorten it).
	pipeWait time.Duration
}

var (
	_ drivers.Middleware      = (*Driver)(nil)
	_ drivers.Quiescer        = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the exec driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger, pool: sshrun.NewPool(logger.Named("ssh"), 0)}
}

// CheckHost checks a host's SSH settings (see drivers/internal/sshrun)
// without connecting, so a plan with a bad host is rejected before a
// workflow starts. A host without SSH settings is the worker's own: nothing
// to check.
func CheckHost(h drivers.Host) error {
	if !h.Remote() {
		return nil
	}
	_, err := sshrun.Parse(h)
	return err
}

// Close closes the driver's SSH connections (they also close on their own
// once idle), for a worker that shuts down.
func (d *Driver) Close() error { return d.pool.Close() }

// CheckSettings parses everything (commands, templates, env) without running
// anything, so a plan with a typo is rejected before a workflow starts.
func (d *Driver) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("exec driver %w", err)
	}
	c, err := s.compile()
	if err != nil {
		return nil, drivers.BadSettingsf("exec driver settings: %w", err)
	}
	return c, nil
}

func (s settings) compile() (*config, error) {
	sample := tmpl.MiddlewareData{}
	c := &config{cmds: map[string]*tmpl.Command{}, timeouts: map[string]time.Duration{}, vars: s.Vars}
	var errs []error
	for op, v := range map[string]any{
		OpStart: s.Start, OpStop: s.Stop, OpStopImmediate: s.StopImmediate,
		OpStatus: s.Status, OpQuiesce: s.Quiesce, OpResume: s.Resume,
	} {
		cmd, err := tmpl.ParseCommand(op, v, sample)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cmd != nil {
			c.cmds[op] = cmd
		}
	}
	if s.Start == nil {
		errs = append(errs, errors.New("start: required"))
	}
	if s.Stop == nil {
		errs = append(errs, errors.New("stop: required"))
	}
	if s.Status == nil && s.Pidfile == "" {
		errs = append(errs, errors.New("status: required unless pidfile is given"))
	}
	if (s.Quiesce == nil) != (s.Resume == nil) {
		errs = append(errs, errors.New("quiesce and resume: give both or neither"))
	}
	if s.Pidfile != "" {
		t, err := tmpl.Parse("pidfile", s.Pidfile, sample)
		if err != nil {
			errs = append(errs, err)
		}
		c.pidfile = t
	}
	if s.Workdir != "" {
		t, err := tmpl.Parse("workdir", s.Workdir, sample)
		if err != nil {
			errs = append(errs, err)
		}
		c.workdir = t
	}
	env, err := tmpl.ParseValues("env", s.Env, sample, tmpl.EnvNameErr)
	if err != nil {
		errs = append(errs, err)
	}
	c.env = env

	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", s.Timeout.D()))
	}
	def := s.Timeout.D()
	if def <= 0 {
		def = DefaultTimeout
	}
	for _, op := range operations {
		c.timeouts[op] = def
	}
	for op, d := range s.Timeouts {
		if !slices.Contains(operations, op) {
			errs = append(errs, fmt.Errorf("timeouts.%s: unknown operation (known: %s)", op, strings.Join(operations, ", ")))
			continue
		}
		if d.D() <= 0 {
			errs = append(errs, fmt.Errorf("timeouts.%s: must be positive", op))
			continue
		}
		c.timeouts[op] = d.D()
	}
	c.killGrace = s.KillGrace.D()
	if s.KillGrace < 0 {
		errs = append(errs, errors.New("killGrace: must be positive"))
	}
	if c.killGrace <= 0 {
		c.killGrace = DefaultKillGrace
	}

	c.statusRunning = s.StatusRunning
	if len(c.statusRunning) == 0 {
		c.statusRunning = []int{0}
	}
	c.statusStopped = s.StatusStopped
	for _, code := range c.statusStopped {
		if slices.Contains(c.statusRunning, code) {
			errs = append(errs, fmt.Errorf("statusStopped: exit code %d is also in statusRunning", code))
		}
	}
	for _, code := range append(append([]int(nil), c.statusRunning...), c.statusStopped...) {
		if code < 0 || code > 255 {
			errs = append(errs, fmt.Errorf("status exit code %d: must be 0..255", code))
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		slices.Sort(msgs) // map order would make the message differ run to run
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

// run renders and runs one operation's command. A non-zero exit is not an
// error here; callers decide what it means.
func (d *Driver) run(ctx context.Context, c *config, op string, t drivers.Target) (drivers.Evidence, cmdrun.Result, error) {
	data := tmpl.ForTarget(t, c.vars)
	argv, err := c.cmds[op].Argv(data)
	if err != nil {
		return drivers.Evidence{}, cmdrun.Result{}, fmt.Errorf("exec driver: %w", err)
	}
	ev := drivers.Evidence{Action: tmpl.Display(argv), Host: sshrun.Where(t.Host)}
	var dir string
	if c.workdir != nil {
		if dir, err = c.workdir.Render(data); err != nil {
			return ev, cmdrun.Result{}, fmt.Errorf("exec driver: %w", err)
		}
	}
	env, err := c.env.Resolve(data)
	if err != nil {
		return ev, cmdrun.Result{}, fmt.Errorf("exec driver: %w", err)
	}
	envList := make([]string, 0, len(env.Pairs))
	for _, p := range env.Pairs {
		envList = append(envList, p[0]+"="+p[1])
	}
	res, runErr := d.pool.Run(ctx, t.Host, cmdrun.Spec{
		Argv:      argv,
		Dir:       dir,
		Env:       envList,
		Timeout:   c.timeouts[op],
		KillGrace: c.killGrace,
		PipeWait:  d.pipeWait,
	})
	out := tmpl.Redact(res.Output, env.Secrets)
	if res.PipeHeld {
		out += "\n[note: a background process kept the output pipe open; redirect a daemon's output to a file]"
	}
	ev.Output = drivers.Truncate(out, EvidenceLimit)
	ev.ExitCode = res.ExitCode
	ev.Duration = res.Duration
	d.logger.Debug("exec driver command",
		zap.String("op", op), zap.String("component", t.Component.Name), zap.String("site", t.Site.Name),
		zap.String("host", ev.Host), zap.String("command", ev.Action), zap.String("result", res.ExitSummary()),
		zap.Duration("took", res.Duration))
	if runErr != nil {
		// runErr names no secret: argv comes from templates, which see
		// none, and sshrun's errors name key references, not keys. The
		// output it may quote is redacted all the same.
		return ev, res, fmt.Errorf("exec driver: %s command %s%s: %w: %s", op, ev.Action, onHost(ev.Host),
			redactedErr{runErr, env.Secrets}, shortOutput(out))
	}
	return ev, res, nil
}

// shortOutput is output quoted in an error: short, one line per line.
func shortOutput(out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return "(no output)"
	}
	return drivers.Truncate(out, errorOutputLimit)
}

// runChecked runs op and treats a non-zero exit as an error.
func (d *Driver) runChecked(ctx context.Context, c *config, op string, t drivers.Target) (drivers.Evidence, error) {
	ev, res, err := d.run(ctx, c, op, t)
	if err != nil {
		return ev, err
	}
	if res.ExitCode != 0 {
		return ev, fmt.Errorf("exec driver: %s command %s%s: %s: %s", op, ev.Action, onHost(ev.Host), res.ExitSummary(), shortOutput(ev.Output))
	}
	return ev, nil
}

// Start runs the start command unless status says the server already runs.
func (d *Driver) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	st, err := d.status(ctx, c, t)
	if err != nil {
		return st.Evidence, fmt.Errorf("status before start: %w", err)
	}
	if st.State == drivers.StateRunning {
		ev := st.Evidence
		ev.AlreadyDone = true
		ev.Output = drivers.Truncate("already running ("+st.Detail+"); start not run\n"+ev.Output, EvidenceLimit)
		return ev, nil
	}
	return d.runChecked(ctx, c, OpStart, t)
}

// Stop runs the stop command unless status says the server is stopped. A
// status command that fails or times out does not prevent the stop (a wedged
// server has a wedged status); the evidence notes it. Start, by contrast,
// fails when status fails, rather than risk a second instance.
//
// An immediate stop runs stopImmediate when given. Without it, and with a
// pidfile, it terminates the pidfile process's group (SIGTERM, then SIGKILL
// after killGrace). Without either it falls back to the graceful stop
// command and says so in the evidence.
func (d *Driver) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if mode != drivers.StopGraceful && mode != drivers.StopImmediate {
		return drivers.Evidence{}, drivers.BadSettingsf("exec driver: unknown stop mode %q (want %s or %s)", mode, drivers.StopGraceful, drivers.StopImmediate)
	}
	st, err := d.status(ctx, c, t)
	var note string
	switch {
	case drivers.Permanent(err), ctx.Err() != nil:
		return st.Evidence, fmt.Errorf("status before stop: %w", err)
	case err != nil:
		// A wedged server often has a wedged status command too; that is
		// no reason not to stop it.
		note = "note: status failed, stopping anyway: " + shortOutput(err.Error()) + "\n"
	}
	if st.State == drivers.StateStopped {
		ev := st.Evidence
		ev.AlreadyDone = true
		ev.Output = drivers.Truncate("already stopped ("+st.Detail+"); stop not run\n"+ev.Output, EvidenceLimit)
		return ev, nil
	}
	var ev drivers.Evidence
	switch {
	case mode == drivers.StopGraceful:
		ev, err = d.runChecked(ctx, c, OpStop, t)
	case c.cmds[OpStopImmediate] != nil:
		ev, err = d.runChecked(ctx, c, OpStopImmediate, t)
	case c.pidfile != nil:
		ev, err = d.killPidfile(ctx, c, t)
	default:
		ev, err = d.runChecked(ctx, c, OpStop, t)
		note += "note: no stopImmediate command and no pidfile; ran the graceful stop command\n"
	}
	if note != "" {
		ev.Output = drivers.Truncate(note+ev.Output, EvidenceLimit)
	}
	return ev, err
}

// Status runs the status command and maps its exit code to a state. With a
// pidfile and no status command, the pidfile's process decides.
func (d *Driver) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Status{}, err
	}
	return d.status(ctx, c, t)
}

func (d *Driver) status(ctx context.Context, c *config, t drivers.Target) (drivers.Status, error) {
	var pid int
	var pidNote string
	if c.pidfile != nil {
		var err error
		if t.Host.Remote() {
			var rp remotePID
			rp, err = d.readRemotePidfile(ctx, c, t)
			pid, pidNote = rp.pid, rp.note
		} else {
			pid, pidNote, err = readPidfile(c, t)
		}
		if err != nil {
			return drivers.Status{}, err
		}
	}
	if c.cmds[OpStatus] == nil {
		st := drivers.Status{State: drivers.StateStopped, Detail: pidNote, Evidence: drivers.Evidence{Action: "check pidfile", Host: sshrun.Where(t.Host)}}
		if pid > 0 {
			st.State, st.PID = drivers.StateRunning, pid
		}
		st.Evidence.Output = pidNote
		return st, nil
	}
	ev, res, err := d.run(ctx, c, OpStatus, t)
	st := drivers.Status{Evidence: ev, State: drivers.StateUnknown}
	if err != nil {
		return st, err
	}
	if res.Signal != "" {
		return st, fmt.Errorf("exec driver: status command %s%s: %s: %s", ev.Action, onHost(ev.Host), res.ExitSummary(), shortOutput(ev.Output))
	}
	code := res.ExitCode
	switch {
	case slices.Contains(c.statusRunning, code):
		st.State = drivers.StateRunning
		st.PID = pid
	case len(c.statusStopped) == 0 || slices.Contains(c.statusStopped, code):
		st.State = drivers.StateStopped
	}
	st.Detail = fmt.Sprintf("status exit %d", code)
	if st.State == drivers.StateUnknown {
		st.Detail = fmt.Sprintf("status exit %d is in neither statusRunning %v nor statusStopped %v", code, c.statusRunning, c.statusStopped)
	}
	if line := lastLine(ev.Output); line != "" {
		st.Detail += ": " + line
	}
	return st, nil
}

// Quiesce runs the quiesce command (for example db2 set write suspend).
func (d *Driver) Quiesce(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	return d.quiesceOrResume(ctx, t, OpQuiesce)
}

// Resume runs the resume command (for example db2 set write resume).
func (d *Driver) Resume(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	return d.quiesceOrResume(ctx, t, OpResume)
}

func (d *Driver) quiesceOrResume(ctx context.Context, t drivers.Target, op string) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if c.cmds[op] == nil {
		return drivers.Evidence{}, drivers.Unsupported(fmt.Errorf("exec driver: component %s has no %s command in its settings", t.Component.Name, op))
	}
	return d.runChecked(ctx, c, op, t)
}

// readPidfile returns the pid of a live process named by the pidfile, or 0
// with a note saying why there is none. A pid whose process started after
// the pidfile was written is a reused pid, not the server.
func readPidfile(c *config, t drivers.Target) (int, string, error) {
	path, err := c.pidfile.Render(tmpl.ForTarget(t, c.vars))
	if err != nil {
		return 0, "", fmt.Errorf("exec driver: %w", err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, "no pidfile " + path, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("exec driver: pidfile: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", fmt.Errorf("exec driver: pidfile: %w", err)
	}
	pid, err := ParsePID(b)
	if err != nil {
		return 0, fmt.Sprintf("pidfile %s: %v", path, err), nil
	}
	if !cmdrun.Alive(pid) {
		return 0, fmt.Sprintf("pid %d from %s is not running", pid, path), nil
	}
	if started, err := cmdrun.StartTime(pid); err == nil && started.After(fi.ModTime().Add(2*time.Second)) {
		return 0, fmt.Sprintf("pid %d from %s was reused by a process started after the pidfile was written", pid, path), nil
	}
	return pid, fmt.Sprintf("pid %d from %s is running", pid, path), nil
}

// ParsePID reads a pid file's content: a positive decimal number, optionally
// surrounded by white space.
func ParsePID(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > 10 {
		return 0, fmt.Errorf("not a pid: %q", drivers.Truncate(s, 40))
	}
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("not a pid: %q", s)
	}
	return pid, nil
}

// killPidfile terminates the process group of the pidfile's process:
// SIGTERM, then SIGKILL after killGrace. If that group is the worker's own,
// only the process is signalled.
func (d *Driver) killPidfile(ctx context.Context, c *config, t drivers.Target) (drivers.Evidence, error) {
	if t.Host.Remote() {
		return d.killRemotePidfile(ctx, c, t)
	}
	start := time.Now()
	pid, note, err := readPidfile(c, t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: "terminate pidfile process group"}
	if pid == 0 {
		ev.Output, ev.AlreadyDone = note, true
		return ev, nil
	}
	target := -pid
	if pgid, err := syscall.Getpgid(pid); err == nil {
		target = -pgid
		if pgid == syscall.Getpgrp() {
			target = pid
		}
	}
	ev.Action = fmt.Sprintf("kill -TERM %d, then -KILL after %s (%s)", target, c.killGrace, note)
	_ = syscall.Kill(target, syscall.SIGTERM)
	gone := func() bool {
		if target < 0 {
			return !cmdrun.GroupAlive(-target)
		}
		return !cmdrun.Alive(pid)
	}
	deadline := time.Now().Add(c.killGrace)
	for !gone() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(target, syscall.SIGKILL)
			return ev, fmt.Errorf("exec driver: immediate stop cancelled, sent SIGKILL: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	ev.Output = "terminated by SIGTERM"
	if !gone() {
		_ = syscall.Kill(target, syscall.SIGKILL)
		ev.Output = fmt.Sprintf("still running after %s; sent SIGKILL", c.killGrace)
	}
	ev.Duration = time.Since(start)
	return ev, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return drivers.Truncate(strings.TrimSpace(s), 200)
}
