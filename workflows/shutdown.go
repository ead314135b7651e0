package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// ShutdownInput asks to stop a site's components in reverse order.
type ShutdownInput struct {
	Plan plan.Plan        `json:"plan"`
	Site contract.SiteRef `json:"site"`
	// Immediate kills instead of stopping gracefully.
	Immediate bool `json:"immediate,omitempty"`
}

// ShutdownResult records each stop.
type ShutdownResult struct {
	Components []ComponentOutcome `json:"components"`
}

const defaultStopTimeout = 10 * time.Minute

// ShutdownWorkflow stops a site in the reverse of the restart order (app →
// support → messaging → node agents → dmgr → database), the members of a
// tier in parallel, so no server loses what it depends on while it drains.
func ShutdownWorkflow(ctx workflow.Context, in ShutdownInput) (_ ShutdownResult, err error) {
	r, err := newRun(ctx, contract.KindShutdown, in.Plan.Name)
	if err != nil {
		return ShutdownResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	r.setSite(ctx, in.Site.Site.Name)
	return shutdown(ctx, r, in)
}

func shutdown(ctx workflow.Context, r *run, in ShutdownInput) (ShutdownResult, error) {
	var res ShutdownResult
	tiers, err := order(&in.Plan)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadPlan, err)
	}
	for _, t := range slices.Backward(tiers) {
		r.phase(ctx, fmt.Sprintf("shutdown:tier-%d", t.Index))
		futures := make([]workflow.Future, len(t.Components))
		steps := make([]int, len(t.Components))
		for i, name := range t.Components {
			c, ok := findComponent(&in.Plan, name)
			if !ok {
				return res, fmt.Errorf("tier %d names unknown component %q", t.Index, name)
			}
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: defaultStopTimeout,
				RetryPolicy: &temporal.RetryPolicy{
					InitialInterval:        time.Second,
					MaximumAttempts:        3,
					NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings},
				},
			})
			steps[i] = r.begin(ctx, "stop "+name)
			where, host := componentAt(in.Site, c)
			futures[i] = r.actOptional(actx, where, c.Optional, contract.StopComponent, contract.ComponentInput{
				Plan: in.Plan.Name, Site: in.Site, Host: host, Component: c, Immediate: in.Immediate,
			})
		}
		var errs []error
		for i, f := range futures {
			var sr contract.StepResult
			out := ComponentOutcome{Name: t.Components[i], Tier: t.Index, Started: r.status.Steps[steps[i]].Started}
			if err := f.Get(ctx, &sr); err != nil {
				out.Outcome, out.Detail = OutcomeFailed, rootMessage(err)
				errs = append(errs, fmt.Errorf("stop %s: %w", t.Components[i], err))
			} else {
				out.Outcome, out.Attempts = OutcomeOK, sr.Attempt
			}
			r.end(ctx, steps[i], out.Outcome, out.Attempts, out.Detail)
			res.Components = append(res.Components, out)
		}
		// A tier that did not stop leaves its dependencies running: the
		// data below it is still in use.
		if err := errors.Join(errs...); err != nil {
			return res, err
		}
	}
	r.phase(ctx, "stopped")
	return res, nil
}
