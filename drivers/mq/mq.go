// Package mq is the middleware driver for an IBM MQ queue manager: strmqm,
// endmqm (controlled, immediate or preemptive) and dspmq, including
// multi-instance queue managers (strmqm -x permits a standby; endmqm -s ends
// the active instance and lets the standby take over; endmqm -x ends only a
// standby).
//
// Settings (the component's settings in the plan):
//
//	queueManager:  the queue manager's name (required)
//	multiInstance: start with strmqm -x, so this instance becomes the standby
//	               when the active runs elsewhere (default false)
//	switchover:    a stop of the active instance uses endmqm -s, so the
//	               standby takes over (multi-instance only; default false)
//	immediateMode: what an immediate stop does: immediate (endmqm -i, the
//	               default) or preemptive (endmqm -p)
//	binDir:        directory of the MQ control commands (e.g. /opt/mqm/bin);
//	               default: found on PATH
//	runAs:         run the commands through `su - USER -c` (e.g. mqm); default:
//	               as the worker's user
//	timeout:       per-command timeout, default 10m
//	timeouts:      per-operation overrides {start, stop, status}
//	killGrace:     SIGTERM→SIGKILL grace when a command is cut short, default 10s
package mq

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/hostrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// Operation names, as used in settings.timeouts.
const (
	OpStart  = "start"
	OpStop   = "stop"
	OpStatus = "status"
)

var operations = []string{OpStart, OpStop, OpStatus}

// Defaults.
const (
	DefaultTimeout   = 10 * time.Minute
	DefaultKillGrace = 10 * time.Second
)

// Immediate stop modes.
const (
	ImmediateImmediate  = "immediate"
	ImmediatePreemptive = "preemptive"
)

type settings struct {
	QueueManager  string                      `json:"queueManager"`
	MultiInstance bool                        `json:"multiInstance"`
	Switchover    bool                        `json:"switchover"`
	ImmediateMode string                      `json:"immediateMode"`
	BinDir        string                      `json:"binDir"`
	RunAs         string                      `json:"runAs"`
	Timeout       drivers.Duration            `json:"timeout"`
	Timeouts      map[string]drivers.Duration `json:"timeouts"`
	KillGrace     drivers.Duration            `json:"killGrace"`
}

type config struct {
	settings
	timeouts  map[string]time.Duration
	killGrace time.Duration
}

var (
	// Queue manager names: up to 48 of A-Z a-z 0-9 . / _ %.
	qmNameRE = regexp.MustCompile(`^[A-Za-z0-9._/%]{1,48}$`)
	userRE   = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// Driver is the MQ middleware driver. It holds no state between calls.
type Driver struct {
	logger *zap.Logger
	hosts  *hostrun.Hosts
}

var (
	_ drivers.Middleware      = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the MQ driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger, hosts: hostrun.NewHosts(logger.Named("ssh"))}
}

// CheckSettings checks the settings without running anything.
func (d *Driver) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("mq driver %w", err)
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	switch {
	case s.QueueManager == "":
		bad("queueManager: required")
	case !qmNameRE.MatchString(s.QueueManager):
		bad("queueManager: %q is not a queue manager name (up to 48 of A-Z a-z 0-9 . / _ %%)", s.QueueManager)
	}
	if s.Switchover && !s.MultiInstance {
		bad("switchover: needs multiInstance (only a multi-instance queue manager has a standby to switch to)")
	}
	switch s.ImmediateMode {
	case "":
		s.ImmediateMode = ImmediateImmediate
	case ImmediateImmediate, ImmediatePreemptive:
	default:
		bad("immediateMode: %q is not %s or %s", s.ImmediateMode, ImmediateImmediate, ImmediatePreemptive)
	}
	if s.BinDir != "" && !filepath.IsAbs(s.BinDir) {
		bad("binDir: %q is not an absolute path", s.BinDir)
	}
	if s.RunAs != "" && !userRE.MatchString(s.RunAs) {
		bad("runAs: %q is not a user name", s.RunAs)
	}
	timeouts, err := hostrun.Timeouts(s.Timeout, DefaultTimeout, s.Timeouts, operations)
	if err != nil {
		bad("%v", err)
	}
	if s.KillGrace < 0 {
		bad("killGrace: must be positive")
	}
	if len(errs) > 0 {
		return nil, drivers.BadSettingsf("mq driver settings: %s", strings.Join(errs, "; "))
	}
	c := &config{settings: s, timeouts: timeouts, killGrace: s.KillGrace.D()}
	if c.killGrace == 0 {
		c.killGrace = DefaultKillGrace
	}
	return c, nil
}

func (c *config) argv(cmd string, args ...string) []string {
	if c.BinDir != "" {
		cmd = filepath.Join(c.BinDir, cmd)
	}
	argv := append([]string{cmd}, args...)
	if c.RunAs != "" {
		return []string{"su", "-", c.RunAs, "-c", tmpl.Display(argv)}
	}
	return argv
}

func (d *Driver) run(ctx context.Context, c *config, t drivers.Target, op string, argv []string) (drivers.Evidence, string, int, error) {
	r, err := d.hosts.For(t.Host)
	if err != nil {
		return drivers.Evidence{}, "", -1, err
	}
	ev, res, err := hostrun.Run(ctx, r, hostrun.Call{Op: "mq " + op, Argv: argv, Timeout: c.timeouts[op], KillGrace: c.killGrace})
	d.logger.Debug("mq command", zap.String("op", op), zap.String("component", t.Component.Name),
		zap.String("site", t.Site.Name), zap.String("command", ev.Action), zap.String("result", res.ExitSummary()),
		zap.Duration("took", res.Duration))
	return ev, res.Output, res.ExitCode, err
}

// dspmq output, as documented for dspmq (display queue managers, IBM MQ 9.3,
// https://www.ibm.com/docs/SSFKSJ_9.3.0/refadmin/q083180_.html), one line per
// queue manager:
//
//	QMNAME(QM1)                                               STATUS(Running)
//	QMNAME(QM1)                                               STATUS(Running as standby)
//
// with STATUS one of Starting, Running, Running as standby, Running
// elsewhere, Quiescing, Ending immediately, Ending preemptively, Ended
// normally, Ended immediately, Ended unexpectedly, Ended preemptively,
// Status not available. For an unknown name it says
//
//	AMQ7048E: The queue manager name is either not valid or not known.
var (
	dspmqLine = regexp.MustCompile(`QMNAME\(([^)]*)\)\s+STATUS\(([^)]*)\)`)
	amqID     = regexp.MustCompile(`\bAMQ(\d{4})[A-Z]?\b`)
)

// Documented statuses.
const (
	StatusStarting         = "Starting"
	StatusRunning          = "Running"
	StatusRunningStandby   = "Running as standby"
	StatusRunningElsewhere = "Running elsewhere"
	StatusQuiescing        = "Quiescing"
	StatusNotAvailable     = "Status not available"
)

// ErrQueueManagerNotFound is AMQ7048 (dspmq) or AMQ8118 (strmqm, endmqm):
// the plan names a queue manager this installation does not know.
var ErrQueueManagerNotFound = errors.New("queue manager does not exist")

// QMStatus is dspmq's answer for one queue manager.
type QMStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Standby reports whether this is the standby instance of a
// multi-instance queue manager.
func (s QMStatus) Standby() bool { return s.Status == StatusRunningStandby }

// State maps the documented status to a driver state. A standby is
// starting (it becomes the active when the active instance ends); running
// elsewhere and ended are stopped here.
func (s QMStatus) State() drivers.State {
	switch {
	case s.Status == StatusRunning:
		return drivers.StateRunning
	case s.Status == StatusStarting, s.Status == StatusRunningStandby:
		return drivers.StateStarting
	case s.Status == StatusRunningElsewhere, strings.HasPrefix(s.Status, "Ended "):
		return drivers.StateStopped
	}
	return drivers.StateUnknown
}

// AMQMessages returns the AMQ message numbers in output, in order.
func AMQMessages(out string) []string {
	var ids []string
	for _, m := range amqID.FindAllStringSubmatch(out, -1) {
		ids = append(ids, "AMQ"+m[1])
	}
	return ids
}

func hasAMQ(out string, ids ...string) bool {
	for _, got := range AMQMessages(out) {
		for _, id := range ids {
			if got == id {
				return true
			}
		}
	}
	return false
}

// ParseDspmq finds the queue manager's line in dspmq output.
func ParseDspmq(out, qm string) (QMStatus, error) {
	for _, m := range dspmqLine.FindAllStringSubmatch(out, -1) {
		if m[1] == qm {
			return QMStatus{Name: m[1], Status: strings.TrimSpace(m[2])}, nil
		}
	}
	if hasAMQ(out, "AMQ7048", "AMQ8118") {
		return QMStatus{Name: qm}, drivers.BadSettings(fmt.Errorf("%w: %s", ErrQueueManagerNotFound, qm))
	}
	return QMStatus{Name: qm}, fmt.Errorf("no QMNAME(%s) line in dspmq output", qm)
}

// QueueManager reads dspmq for the queue manager.
func (d *Driver) QueueManager(ctx context.Context, t drivers.Target) (QMStatus, drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return QMStatus{}, drivers.Evidence{}, err
	}
	return d.dspmq(ctx, c, t)
}

func (d *Driver) dspmq(ctx context.Context, c *config, t drivers.Target) (QMStatus, drivers.Evidence, error) {
	ev, out, code, err := d.run(ctx, c, t, OpStatus, c.argv("dspmq", "-m", c.QueueManager))
	if err != nil {
		return QMStatus{Name: c.QueueManager}, ev, err
	}
	s, err := ParseDspmq(out, c.QueueManager)
	if err != nil {
		return s, ev, fmt.Errorf("mq status of %s: %w (exit %d): %s", c.QueueManager, err, code, hostrun.Short(ev.Output))
	}
	return s, ev, nil
}

// Status reports the queue manager's state here.
func (d *Driver) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	s, ev, err := d.QueueManager(ctx, t)
	st := drivers.Status{State: drivers.StateUnknown, Evidence: ev}
	if err != nil {
		return st, err
	}
	st.State = s.State()
	st.Detail = fmt.Sprintf("queue manager %s: %s", s.Name, s.Status)
	return st, nil
}

// strmqm and endmqm return codes, as documented for the commands:
// strmqm 0 started, 5 queue manager running, 16 queue manager does not
// exist; endmqm 0 ended, 16 does not exist, 40 queue manager not available
// (not running). Output, for example (endmqm -w, then strmqm):
//
//	Waiting for queue manager 'QM1' to end.
//	IBM MQ queue manager 'QM1' ended.
//	IBM MQ queue manager 'QM1' starting.
//	IBM MQ queue manager 'QM1' started using V9.3.0.0.
//	A standby instance of queue manager 'QM1' has been started. The active instance is running elsewhere.
//	AMQ8118E: IBM MQ queue manager does not exist.
//	AMQ8146E: IBM MQ queue manager not available.
const (
	rcRunning      = 5
	rcNotExist     = 16
	rcNotAvailable = 40
)

// Start runs strmqm (strmqm -x for a multi-instance queue manager) unless
// the queue manager runs here, or, multi-instance, its standby runs here.
func (d *Driver) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	s, before, err := d.dspmq(ctx, c, t)
	if err != nil {
		return before, fmt.Errorf("status before start of %s: %w", c.QueueManager, err)
	}
	if s.Status == StatusRunning || (c.MultiInstance && s.Standby()) {
		before.AlreadyDone = true
		before.Output = drivers.Truncate("already "+s.Status+"; strmqm not run\n"+before.Output, hostrun.EvidenceLimit)
		return before, nil
	}
	args := []string{c.QueueManager}
	if c.MultiInstance {
		args = []string{"-x", c.QueueManager}
	}
	ev, out, code, err := d.run(ctx, c, t, OpStart, c.argv("strmqm", args...))
	all := hostrun.Combine(before, ev)
	if err != nil {
		return all, err
	}
	if code == rcNotExist || hasAMQ(out, "AMQ8118") {
		return all, drivers.BadSettings(fmt.Errorf("strmqm %s: %w (AMQ8118)", c.QueueManager, ErrQueueManagerNotFound))
	}
	if code != 0 && code != rcRunning {
		return all, fmt.Errorf("strmqm %s: exit %d: %s", c.QueueManager, code, hostrun.Short(ev.Output))
	}
	after, ev2, err := d.dspmq(ctx, c, t)
	all = hostrun.Combine(all, ev2)
	if err != nil {
		return all, err
	}
	if after.Status == StatusRunning || (c.MultiInstance && after.Standby()) {
		all.AlreadyDone = code == rcRunning
		return all, nil
	}
	return all, fmt.Errorf("strmqm %s: exit %d but dspmq says %s", c.QueueManager, code, after.Status)
}

// Stop ends the queue manager: endmqm -w (controlled, waiting for the end)
// for a graceful stop, -i or -p for an immediate one, with -s for the
// active instance of a multi-instance queue manager when switchover is set.
// A standby instance is ended alone with endmqm -x. Ended or running
// elsewhere counts as stopped here.
func (d *Driver) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if mode != drivers.StopGraceful && mode != drivers.StopImmediate {
		return drivers.Evidence{}, drivers.BadSettingsf("mq driver: unknown stop mode %q (want %s or %s)", mode, drivers.StopGraceful, drivers.StopImmediate)
	}
	s, before, err := d.dspmq(ctx, c, t)
	if err != nil {
		return before, fmt.Errorf("status before stop of %s: %w", c.QueueManager, err)
	}
	if s.State() == drivers.StateStopped {
		before.AlreadyDone = true
		before.Output = drivers.Truncate("already stopped here ("+s.Status+"); endmqm not run\n"+before.Output, hostrun.EvidenceLimit)
		return before, nil
	}
	var args []string
	switch {
	case mode == drivers.StopGraceful:
		args = append(args, "-w")
	case c.ImmediateMode == ImmediatePreemptive:
		args = append(args, "-p")
	default:
		args = append(args, "-i")
	}
	switch {
	case s.Standby():
		// Only the standby ends; the active instance elsewhere keeps running.
		args = []string{"-x"}
	case c.Switchover:
		args = append(args, "-s")
	}
	args = append(args, c.QueueManager)
	ev, out, code, err := d.run(ctx, c, t, OpStop, c.argv("endmqm", args...))
	all := hostrun.Combine(before, ev)
	if err != nil {
		return all, err
	}
	switch {
	case code == rcNotExist || hasAMQ(out, "AMQ8118"):
		return all, drivers.BadSettings(fmt.Errorf("endmqm %s: %w (AMQ8118)", c.QueueManager, ErrQueueManagerNotFound))
	case code == rcNotAvailable || hasAMQ(out, "AMQ8146"):
		// Ended between our dspmq and endmqm.
		all.AlreadyDone = true
		return all, nil
	case code != 0:
		return all, fmt.Errorf("endmqm %s: exit %d: %s", strings.Join(args, " "), code, hostrun.Short(ev.Output))
	}
	after, ev2, err := d.dspmq(ctx, c, t)
	all = hostrun.Combine(all, ev2)
	if err != nil {
		return all, err
	}
	if after.State() != drivers.StateStopped {
		return all, fmt.Errorf("endmqm %s: exit 0 but dspmq says %s", strings.Join(args, " "), after.Status)
	}
	return all, nil
}
