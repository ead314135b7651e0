package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// versionUserSteps marks runs that run the plan's own steps around their
// phases. Runs from before ran none.
const versionUserSteps = "user-steps"

// versionDrillManualSteps lets a drill ask at its manual steps' gates. Drills
// from before had nobody to ask and failed such a step.
const versionDrillManualSteps = "drill-manual-steps"

// askAtManualSteps gives a run with no gates of its own (a drill) someone to
// ask at the manual user steps the plan gives its kind of run.
func askAtManualSteps(ctx workflow.Context, r *run, p *plan.Plan, kind string) {
	manual := false
	for _, s := range p.Steps {
		manual = manual || s.Gate != "" && s.RunsIn(kind)
	}
	if manual && workflow.GetVersion(ctx, versionDrillManualSteps, workflow.DefaultVersion, 1) == 1 {
		r.stepGates = listenForApprovals(ctx, r, p)
	}
}

// defaultUserStepTimeout bounds a user step's driver call when the plan
// sets no timeout.
const defaultUserStepTimeout = 10 * time.Minute

// userStepLevel is the level a user step's probe call reports under.
const userStepLevel plan.Level = "step"

// phaseAt names where user steps run: before or after a phase (a tier's
// name for the tier phase) of a run of kind, at site.
type phaseAt struct {
	kind  string
	phase string
	tier  string
	after bool
	site  contract.SiteRef
}

// userSteps runs, in plan order, the plan's steps for one phase of this
// run. A step that fails ends the phase with an error unless its policy is
// continue (recorded, the run goes on) or gate (step-failed: retry, skip or
// abort).
func userSteps(ctx workflow.Context, r *run, p *plan.Plan, at phaseAt) error {
	var steps []plan.UserStep
	if slices.Contains(plan.StepRuns, at.kind) {
		for _, s := range p.Steps {
			phase, after := s.Phase()
			if phase == at.phase && after == at.after && s.Tier == at.tier && s.RunsIn(at.kind) {
				steps = append(steps, s)
			}
		}
	}
	if len(steps) == 0 {
		return nil
	}
	if workflow.GetVersion(ctx, versionUserSteps, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	for _, s := range steps {
		if err := userStep(ctx, r, p, s, at); err != nil {
			return err
		}
	}
	return nil
}

func userStep(ctx workflow.Context, r *run, p *plan.Plan, s plan.UserStep, at phaseAt) error {
	when := "before"
	if at.after {
		when = "after"
	}
	where := at.phase
	if at.tier != "" {
		where += " " + at.tier
	}
	step := r.begin(ctx, "user step "+s.Name)
	place, host := hostAt(at.site, s.Host)
	r.placeStep(step, place)
	for attempt := 1; ; attempt++ {
		detail, err := runUserStep(ctx, r, p, s, at, place, host, step)
		if err == nil {
			r.end(ctx, step, OutcomeOK, attempt, fmt.Sprintf("%s %s: %s", when, where, detail))
			return nil
		}
		failure := fmt.Sprintf("user step %s (%s %s at %s) failed: %s", s.Name, when, where, place, rootMessage(err))
		switch {
		case ctx.Err() != nil:
			r.end(ctx, step, OutcomeFailed, attempt, failure)
			return err
		case s.OnFailure == plan.StepContinue:
			r.end(ctx, step, OutcomeFailed, attempt, failure+"; going on (onFailure: continue)")
			return nil
		case s.OnFailure == plan.StepGate && r.gk != nil:
			decision, gerr := r.stepFailed(ctx, failure, true)
			switch {
			case gerr != nil:
				r.end(ctx, step, OutcomeFailed, attempt, failure)
				return fmt.Errorf("%s: %w", failure, gerr)
			case decision == contract.DecisionRetry:
				continue
			case decision == contract.DecisionSkip:
				r.end(ctx, step, OutcomeSkipped, attempt, failure+"; skipped at gate "+contract.GateStepFailed)
				return nil
			}
			failure += fmt.Sprintf("; gate %s: %s", contract.GateStepFailed, decision)
		}
		r.end(ctx, step, OutcomeFailed, attempt, failure)
		return temporal.NewNonRetryableApplicationError(failure, contract.ErrTypeUserStepFailed, err)
	}
}

// runUserStep makes one attempt: a manual step waits at its gate, a driver
// step calls its probe at the step's place. It returns what to report.
func runUserStep(ctx workflow.Context, r *run, p *plan.Plan, s plan.UserStep, at phaseAt, place contract.Placement, host plan.Host, step int) (string, error) {
	if s.Gate != "" {
		gk := r.gk
		if gk == nil {
			gk = r.stepGates
		}
		if gk == nil {
			return "", fmt.Errorf("manual step at gate %s, but this run has nobody to ask", s.Gate)
		}
		decision, err := gk.wait(ctx, gateRequest{Name: s.Gate, Checklist: s.Checklist,
			Detail: fmt.Sprintf("user step %s at %s: work through the checklist, then approve", s.Name, at.site.Site.Name)})
		if err != nil {
			return "", err
		}
		if decision != contract.DecisionApprove {
			return "", fmt.Errorf("gate %s: %s", s.Gate, decision)
		}
		return "done by hand, approved at gate " + s.Gate, nil
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = defaultUserStepTimeout
	}
	// One attempt: an operator's command need not be safe to repeat; the
	// step's own policy decides what follows a failure.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var out contract.CheckOutput
	err := r.actOwn(actx, place, contract.RunCheck, contract.CheckInput{
		Plan: p.Name, Site: at.site, Level: userStepLevel, Host: host,
		Check: plan.DriverCheck{Name: s.Name, Driver: s.Driver, Settings: s.Settings, Timeout: s.Timeout},
	}).Get(ctx, &out)
	if err != nil {
		return "", err
	}
	r.output(step, out.Result.Evidence)
	if out.Worker != "" {
		r.ranAt(step, contract.Ran{Site: place.Site, Host: place.Host, Worker: out.Worker})
	}
	if !out.Result.Passed {
		return "", fmt.Errorf("%s", out.Result.Summary)
	}
	return out.Result.Summary, nil
}
