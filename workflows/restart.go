package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// RestartInput asks to bring a site's components up in the plan's order.
type RestartInput struct {
	Plan plan.Plan        `json:"plan"`
	Site contract.SiteRef `json:"site"`
	// Only limits the restart to these components (still in plan order);
	// empty means all.
	Only []string `json:"only,omitempty"`
	// Unattended runs have nobody to decide the start-failed gate (a
	// validation of a point): a start that keeps failing fails the restart
	// at once, and the point is judged by that.
	Unattended bool `json:"unattended,omitempty"`
	// Point is the point the run restored at the site, for components
	// whose failure policy re-creates them; nil when nothing was restored.
	Point *PointSource `json:"point,omitempty"`
	// For is the kind of run the restart is part of (failover, drill...):
	// the plan's user steps around tiers run in the kinds they name.
	For string `json:"for,omitempty"`
}

// RestartResult tells what each component did.
type RestartResult struct {
	Tiers      []plan.Tier        `json:"tiers"`
	Components []ComponentOutcome `json:"components"`
	Started    time.Time          `json:"started"`
	Ended      time.Time          `json:"ended"`
	// Steps and Gates are the restart's own record, for the report of the
	// run that started it.
	Steps []StepRecord `json:"steps,omitempty"`
	Gates []GateRecord `json:"gates,omitempty"`
}

// ComponentOutcome is one component's start.
type ComponentOutcome struct {
	Name     string    `json:"name"`
	Tier     int       `json:"tier"`
	Outcome  string    `json:"outcome"`
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started"`
	Ready    time.Time `json:"ready,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// Policy is the failure policy that acted on a start that failed.
	Policy string `json:"policy,omitempty"`
}

// Defaults for starting a component when the plan says nothing.
const (
	defaultStartTimeout = 10 * time.Minute
	// startAttempts is how often one start activity is tried before the
	// start-failed gate asks a person.
	startAttempts = 3
)

// RestartWorkflow is the seed's step 7: start the cell tier by tier in the
// plan's derived order (database, dmgr and node agents, then per product
// messaging, support and app servers), the members of a tier in parallel.
// Each start is the driver's start followed by a readiness check; a start
// that still fails after its retries raises the start-failed gate.
func RestartWorkflow(ctx workflow.Context, in RestartInput) (_ RestartResult, err error) {
	r, err := newRun(ctx, contract.KindRestart, in.Plan.Name)
	if err != nil {
		return RestartResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	r.setSite(ctx, in.Site.Site.Name)
	gk := startGateKeeper(ctx, r, &in.Plan)
	res, err := restart(ctx, r, gk, in)
	res.Steps, res.Gates = r.status.Steps, r.status.Gates
	if err != nil && r.safe {
		// A failed run returns no result: its record rides on the error,
		// so the parent's report still tells what happened here.
		typ := contract.ErrTypeStartFailed
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() != "" {
			typ = app.Type()
		}
		return res, temporal.NewApplicationErrorWithOptions(rootMessage(err), typ, temporal.ApplicationErrorOptions{
			NonRetryable: true, Cause: err, Details: []any{childRecord{Steps: res.Steps, Gates: res.Gates}}})
	}
	return res, err
}

// childRecord is a child run's steps and gates, carried on its failure.
type childRecord struct {
	Steps []StepRecord `json:"steps,omitempty"`
	Gates []GateRecord `json:"gates,omitempty"`
}

// recordOf reads the record a failed child run carried, if any.
func recordOf(err error) (childRecord, bool) {
	var app *temporal.ApplicationError
	var rec childRecord
	if errors.As(err, &app) && app.HasDetails() && app.Details(&rec) == nil {
		return rec, len(rec.Steps) > 0 || len(rec.Gates) > 0
	}
	return rec, false
}

func restart(ctx workflow.Context, r *run, gk *gateKeeper, in RestartInput) (RestartResult, error) {
	res := RestartResult{Started: workflow.Now(ctx)}
	tiers, err := order(&in.Plan)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadPlan, err)
	}
	for _, t := range tiers {
		members := t.Components
		if len(in.Only) > 0 {
			members = slices.DeleteFunc(slices.Clone(members), func(n string) bool { return !slices.Contains(in.Only, n) })
		}
		if len(members) == 0 {
			continue
		}
		res.Tiers = append(res.Tiers, plan.Tier{Index: t.Index, Components: members})
		r.phase(ctx, fmt.Sprintf("restart:tier-%d", t.Index))
		at := phaseAt{kind: in.For, phase: plan.PhaseTier, tier: plan.TierName(&in.Plan, t), site: in.Site}
		if err := userSteps(ctx, r, &in.Plan, at); err != nil {
			res.Ended = workflow.Now(ctx)
			return res, err
		}
		outcomes, err := startTier(ctx, r, gk, in, t.Index, members)
		res.Components = append(res.Components, outcomes...)
		if err != nil {
			res.Ended = workflow.Now(ctx)
			return res, err
		}
		at.after = true
		if err := userSteps(ctx, r, &in.Plan, at); err != nil {
			res.Ended = workflow.Now(ctx)
			return res, err
		}
	}
	res.Ended = workflow.Now(ctx)
	return res, nil
}

// startTier starts every member at once and waits for all of them; the next
// tier must not begin while one member of this one is still coming up.
func startTier(ctx workflow.Context, r *run, gk *gateKeeper, in RestartInput, tier int, members []string) ([]ComponentOutcome, error) {
	outcomes := make([]ComponentOutcome, len(members))
	errs := make([]error, len(members))
	wg := workflow.NewWaitGroup(ctx)
	for i, name := range members {
		c, ok := findComponent(&in.Plan, name)
		if !ok {
			return nil, fmt.Errorf("tier %d names unknown component %q", tier, name)
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			outcomes[i], errs[i] = startComponent(ctx, r, gk, in, tier, c)
		})
	}
	wg.Wait(ctx)
	return outcomes, errors.Join(errs...)
}

// startComponent runs start + readiness until it succeeds or a person at
// the start-failed gate says skip or abort.
func startComponent(ctx workflow.Context, r *run, gk *gateKeeper, in RestartInput, tier int, c plan.Component) (ComponentOutcome, error) {
	out := ComponentOutcome{Name: c.Name, Tier: tier, Started: workflow.Now(ctx)}
	step := r.begin(ctx, "start "+c.Name)
	policyDone := false
	for {
		attempts, ran, ev, err := startAndWaitReady(ctx, r, in, c)
		r.ranAt(step, ran)
		r.output(step, ev)
		out.Attempts += attempts
		if err == nil {
			out.Outcome = OutcomeOK
			out.Ready = workflow.Now(ctx)
			if policyDone && out.Policy != "" {
				out.Detail = "started after failure policy " + out.Policy + " acted"
			}
			r.end(ctx, step, OutcomeOK, out.Attempts, out.Detail)
			return out, nil
		}
		if temporal.IsCanceledError(err) || ctx.Err() != nil {
			out.Outcome = "cancelled"
			r.end(ctx, step, OutcomeFailed, out.Attempts, "cancelled")
			return out, err
		}
		detail := fmt.Sprintf("%s did not start at %s: %s", c.Name, in.Site.Site.Name, rootMessage(err))
		if isBadSettings(err) {
			out.Outcome = OutcomeFailed
			out.Detail = detail
			r.end(ctx, step, OutcomeFailed, out.Attempts, detail)
			return out, err
		}
		if !policyDone {
			policyDone = true
			switch applyFailurePolicy(ctx, r, in, c, &out, detail) {
			case policyActed:
				continue
			case policyFailed:
				detail += fmt.Sprintf("; failure policy %s did not help", out.Policy)
			}
		} else if out.Policy != "" && out.Policy != string(plan.PolicyGate) {
			detail += fmt.Sprintf(" (again, after failure policy %s)", out.Policy)
		}
		if in.Unattended {
			out.Outcome = OutcomeFailed
			out.Detail = detail + " (unattended run: no start-failed gate)"
			r.end(ctx, step, OutcomeFailed, out.Attempts, out.Detail)
			return out, temporal.NewNonRetryableApplicationError(out.Detail, contract.ErrTypeStartFailed, nil)
		}
		options := []string{contract.DecisionRetry, contract.DecisionAbort}
		if c.Optional {
			options = []string{contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort}
		}
		decision, gerr := gk.wait(ctx, gateRequest{Name: contract.GateStartFailed, Detail: detail, Options: options})
		if gerr != nil {
			out.Outcome = OutcomeFailed
			out.Detail = detail + "; " + gerr.Error()
			r.end(ctx, step, OutcomeFailed, out.Attempts, out.Detail)
			return out, fmt.Errorf("%s: %w", detail, gerr)
		}
		switch decision {
		case contract.DecisionRetry:
			continue
		case contract.DecisionSkip:
			out.Outcome = OutcomeSkipped
			out.Detail = detail + "; skipped at gate " + contract.GateStartFailed
			r.end(ctx, step, OutcomeSkipped, out.Attempts, out.Detail)
			return out, nil
		default:
			out.Outcome = OutcomeFailed
			out.Detail = fmt.Sprintf("%s; gate %s: %s", detail, contract.GateStartFailed, decision)
			r.end(ctx, step, OutcomeFailed, out.Attempts, out.Detail)
			return out, temporal.NewNonRetryableApplicationError(out.Detail, contract.ErrTypeStartFailed, nil)
		}
	}
}

// startAndWaitReady is one round of the start policy: the start activity with
// its retries, then the readiness wait. It returns how many start attempts
// the activity took.
func startAndWaitReady(ctx workflow.Context, r *run, in RestartInput, c plan.Component) (int, contract.Ran, contract.Evidence, error) {
	timeout := c.StartTimeout.D()
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	where, host := componentAt(in.Site, c)
	cin := contract.ComponentInput{Plan: in.Plan.Name, Site: in.Site, Host: host, Component: c}
	// Version 1 starts and waits in one activity: one round trip through
	// the server per member instead of two, which is most of the
	// orchestration overhead `drover bench rto` measured. Runs that began
	// with two activities replay on the old path.
	if workflow.GetVersion(ctx, "start-and-wait-ready", workflow.DefaultVersion, 1) == 1 {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: timeout,
			HeartbeatTimeout:    30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval:        time.Second,
				BackoffCoefficient:     2,
				MaximumInterval:        30 * time.Second,
				MaximumAttempts:        startAttempts,
				NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings, contract.ErrTypeNotReady},
			},
		})
		var ready contract.ReadyResult
		if err := r.actOwn(actx, where, contract.StartAndWaitReady, contract.ReadyInput{ComponentInput: cin}).Get(ctx, &ready); err != nil {
			return startAttempts, contract.Ran{Site: where.Site, Host: where.Host}, contract.Evidence{}, err
		}
		var ev contract.Evidence
		if ready.Start != nil {
			ev = ready.Start.Evidence
		}
		return max(ready.StartAttempt, 1), ready.Ran, ev, nil
	}
	startCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        startAttempts,
			NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings},
		},
	})
	var started contract.StepResult
	if err := r.actOwn(startCtx, where, contract.StartComponent, cin).Get(ctx, &started); err != nil {
		return startAttempts, contract.Ran{}, contract.Evidence{}, err
	}
	readyCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// Readiness heartbeats every check; a worker that dies mid-wait is
		// noticed within this, not at the end of the start timeout.
		HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumAttempts:        2,
			NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings, contract.ErrTypeNotReady},
		},
	})
	var ready contract.ReadyResult
	err := r.actOwn(readyCtx, where, contract.WaitReady, contract.ReadyInput{ComponentInput: cin}).Get(ctx, &ready)
	return max(started.Attempt, 1), ready.Ran, started.Evidence, err
}

// order is the plan's restart tiers, derived when the plan was loaded and
// carried in the run. Inputs from before plans carried them (a schedule
// made by an older drover) derive them here, as those runs always did: a
// pure function of the plan that sorts what it collects from maps.
func order(p *plan.Plan) ([]plan.Tier, error) {
	if len(p.Order) > 0 {
		return p.Order, nil
	}
	return plan.Tiers(p) //workflowcheck:ignore
}

func findComponent(p *plan.Plan, name string) (plan.Component, bool) {
	for _, c := range p.Components {
		if c.Name == name {
			return c, true
		}
	}
	return plan.Component{}, false
}

func isBadSettings(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == contract.ErrTypeBadSettings
}

// rootMessage returns the innermost message of a Temporal error chain, which
// is what a person needs at a gate ("exit status 1: connection refused"),
// not the activity-task wrapper around it.
func rootMessage(err error) string {
	msg := err.Error()
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
		msg = err.Error()
	}
	return strings.TrimSpace(msg)
}
