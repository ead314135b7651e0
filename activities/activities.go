// Package activities turns one runbook step into one driver call. Each
// activity resolves its driver from the registry by the name the plan uses,
// calls it, and returns the driver's evidence. Activities are written to be
// retried: drivers make start of a started server and stop of a stopped one
// no-ops, and long waits heartbeat so a dead worker is noticed.
package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/plan"
)

// Activities holds what every activity needs. Tests build one with fake
// drivers in the registry, never with a fake Temporal.
type Activities struct {
	Registry *drivers.Registry
	Logger   *zap.Logger
	// Worker is the identity of the worker these activities run in,
	// recorded with each step's result for the report.
	Worker string
	// Workers answers whether a site's queue has workers; only the
	// orchestrator's activities need it.
	Workers WorkerLister
	// Schedules changes the plans' backup schedules; orchestrator only.
	Schedules ScheduleControl
	// NotifyDir records which notifications were sent, so a retried
	// activity tells nobody twice; orchestrator only.
	NotifyDir string
}

// New returns activities that resolve drivers from registry.
func New(registry *drivers.Registry, logger *zap.Logger) *Activities {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Activities{Registry: registry, Logger: logger}
}

// ran says where and by whom a step ran, for the report.
func (a *Activities) ran(site contract.SiteRef, host plan.Host) contract.Ran {
	return contract.Ran{Site: site.Site.Name, Host: host.Name, Worker: a.Worker}
}

func driverSite(s contract.SiteRef) drivers.Site {
	return drivers.Site{Name: s.Site.Name, Role: s.Role, Settings: s.Site.Settings}
}

func driverHost(h plan.Host) drivers.Host {
	return drivers.Host{Name: h.Name, Address: h.Address, SSH: h.SSH}
}

// Target is the driver's view of a component at a site and host: what every
// middleware, quiescer and post-restore call receives.
func Target(in contract.ComponentInput) drivers.Target {
	return drivers.Target{
		Plan: in.Plan,
		Site: driverSite(in.Site),
		Host: driverHost(in.Host),
		Component: drivers.Component{
			Name:     in.Component.Name,
			Role:     string(in.Component.Role),
			Product:  in.Component.Product,
			Settings: in.Component.Settings,
		},
	}
}

// evidence is a driver's evidence as the contract carries it.
func evidence(e drivers.Evidence) contract.Evidence {
	return contract.Evidence{Action: e.Action, Output: e.Output, ExitCode: e.ExitCode, Duration: e.Duration, AlreadyDone: e.AlreadyDone}
}

func checkResult(r drivers.CheckResult) contract.CheckResult {
	return contract.CheckResult{Passed: r.Passed, Summary: r.Summary, Details: r.Details, Evidence: evidence(r.Evidence)}
}

func status(s drivers.Status) contract.Status {
	return contract.Status{State: string(s.State), PID: s.PID, Detail: s.Detail, Evidence: evidence(s.Evidence)}
}

// classify marks errors a retry cannot fix as non-retryable, so a plan
// mistake fails fast instead of burning the retry budget.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if drivers.Permanent(err) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), contract.ErrTypeBadSettings, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// StartComponent starts one server through its middleware driver.
func (a *Activities) StartComponent(ctx context.Context, in contract.ComponentInput) (contract.StepResult, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return contract.StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	log := a.Logger.With(zap.String("component", in.Component.Name), zap.String("site", in.Site.Site.Name))
	log.Info("starting component", zap.Int32("attempt", activity.GetInfo(ctx).Attempt))
	ev, err := d.Start(ctx, Target(in))
	if err != nil {
		return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Ran: a.ran(in.Site, in.Host)}, classify(fmt.Sprintf("start %s on %s", in.Component.Name, in.Site.Site.Name), err)
	}
	log.Info("component started", zap.Bool("alreadyRunning", ev.AlreadyDone), zap.Duration("took", ev.Duration))
	return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Attempt: int(activity.GetInfo(ctx).Attempt), Ran: a.ran(in.Site, in.Host)}, nil
}

// StopComponent stops one server, gracefully or immediately.
func (a *Activities) StopComponent(ctx context.Context, in contract.ComponentInput) (contract.StepResult, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return contract.StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	mode := drivers.StopGraceful
	if in.Immediate {
		mode = drivers.StopImmediate
	}
	a.Logger.Info("stopping component", zap.String("component", in.Component.Name), zap.String("mode", string(mode)))
	ev, err := d.Stop(ctx, Target(in), mode)
	if err != nil {
		return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Ran: a.ran(in.Site, in.Host)}, classify(fmt.Sprintf("stop %s on %s", in.Component.Name, in.Site.Site.Name), err)
	}
	return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Attempt: int(activity.GetInfo(ctx).Attempt), Ran: a.ran(in.Site, in.Host)}, nil
}

// ComponentStatus reports one server's state.
func (a *Activities) ComponentStatus(ctx context.Context, in contract.ComponentInput) (contract.Status, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return contract.Status{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	st, err := d.Status(ctx, Target(in))
	return status(st), classify(fmt.Sprintf("status of %s on %s", in.Component.Name, in.Site.Site.Name), err)
}

// StartAndWaitReady starts a server and waits until it is ready, in one
// activity: a retry after a crash starts it again (a no-op when it runs)
// and waits again. A start that fails is retried by the policy; a server
// that started and never became ready is NotReady, for the start-failed
// gate.
func (a *Activities) StartAndWaitReady(ctx context.Context, in contract.ReadyInput) (contract.ReadyResult, error) {
	started, err := a.StartComponent(ctx, in.ComponentInput)
	if err != nil {
		return contract.ReadyResult{Component: in.Component.Name, Start: &started, Ran: a.ran(in.Site, in.Host)}, err
	}
	res, err := a.WaitReady(ctx, in)
	res.Start, res.StartAttempt = &started, started.Attempt
	return res, err
}

// WaitReady polls the component's readiness probe (or its driver status when
// the plan gives no probe) until it passes, heartbeating each attempt. It
// gives up a little before the activity's deadline, with the last thing the
// probe said, and early when the server process has gone (status stopped
// three checks in a row): waiting out the timeout for a dead process only
// delays the start-failed gate.
func (a *Activities) WaitReady(ctx context.Context, in contract.ReadyInput) (contract.ReadyResult, error) {
	interval := in.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	deadline := activity.GetInfo(ctx).Deadline.Add(-2 * time.Second)
	res := contract.ReadyResult{Component: in.Component.Name, Ran: a.ran(in.Site, in.Host)}
	var last string
	stoppedInARow := 0
	notReady := func(why string) error {
		return temporal.NewApplicationError(
			fmt.Sprintf("%s on %s not ready after %d checks: %s", in.Component.Name, in.Site.Site.Name, res.Attempts, why),
			contract.ErrTypeNotReady)
	}
	for {
		res.Attempts++
		ok, summary, err := a.readyOnce(ctx, in, &res)
		if err != nil {
			return res, err
		}
		if ok {
			return res, nil
		}
		last = summary
		if in.Component.Readiness != nil && a.processGone(ctx, in.ComponentInput) {
			stoppedInARow++
			if stoppedInARow >= 3 {
				return res, notReady("the server is not running any more (its status says stopped); last check: " + last)
			}
		} else {
			stoppedInARow = 0
		}
		activity.RecordHeartbeat(ctx, res.Attempts)
		if time.Now().Add(interval).After(deadline) {
			return res, notReady(last)
		}
		select {
		case <-ctx.Done():
			return res, notReady(last)
		case <-time.After(interval):
		}
	}
}

// processGone asks the middleware driver whether the server stopped.
func (a *Activities) processGone(ctx context.Context, in contract.ComponentInput) bool {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return false
	}
	st, err := d.Status(ctx, Target(in))
	return err == nil && (st.State == drivers.StateStopped || st.State == drivers.StateFailed)
}

func (a *Activities) readyOnce(ctx context.Context, in contract.ReadyInput, res *contract.ReadyResult) (bool, string, error) {
	if rc := in.Component.Readiness; rc != nil {
		p, err := a.Registry.Probe(rc.Driver)
		if err != nil {
			return false, "", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout(*rc, 10*time.Second))
		defer cancel()
		r, err := p.Check(cctx, drivers.CheckRequest{Plan: in.Plan, Site: driverSite(in.Site), Host: driverHost(in.Host), Level: "readiness", Name: rc.Name, Settings: rc.Settings})
		if err != nil {
			if drivers.Permanent(err) {
				return false, "", classify("readiness of "+in.Component.Name, err)
			}
			return false, err.Error(), nil
		}
		res.Check = checkResult(r)
		return r.Passed, r.Summary, nil
	}
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return false, "", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	st, err := d.Status(ctx, Target(in.ComponentInput))
	if err != nil {
		if drivers.Permanent(err) {
			return false, "", classify("status of "+in.Component.Name, err)
		}
		return false, err.Error(), nil
	}
	cs := status(st)
	res.Status = &cs
	return st.State == drivers.StateRunning, fmt.Sprintf("state %s %s", st.State, st.Detail), nil
}

// RunCheck runs one verification check. A check that ran and failed is a
// result, not an error: only a check that could not run is retried.
func (a *Activities) RunCheck(ctx context.Context, in contract.CheckInput) (contract.CheckOutput, error) {
	p, err := a.Registry.Probe(in.Check.Driver)
	if err != nil {
		return contract.CheckOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	r, err := p.Check(ctx, drivers.CheckRequest{
		Plan: in.Plan, Site: driverSite(in.Site), Host: driverHost(in.Host), Level: string(in.Level), Name: in.Check.Name, Settings: in.Check.Settings,
	})
	if err != nil {
		return contract.CheckOutput{}, classify(fmt.Sprintf("check %s (%s level)", in.Check.Name, in.Level), err)
	}
	a.Logger.Info("check done", zap.String("check", in.Check.Name), zap.String("level", string(in.Level)), zap.Bool("passed", r.Passed))
	return contract.CheckOutput{Level: in.Level, Name: in.Check.Name, Result: checkResult(r), Worker: a.Worker}, nil
}

func checkTimeout(c plan.DriverCheck, def time.Duration) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout.D()
	}
	return def
}
