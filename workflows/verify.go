package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// VerifyInput asks to verify a site at the six levels.
type VerifyInput struct {
	Plan plan.Plan        `json:"plan"`
	Site contract.SiteRef `json:"site"`
}

// VerifyResult is the six-level table with evidence.
type VerifyResult = report.Verification

// LevelResult is one level's checks.
type LevelResult = report.Level

const defaultCheckTimeout = 2 * time.Minute

// VerifyWorkflow is the seed's step 8: the six levels in order (system,
// application, instance, consistency, SCA, monitoring), the checks of a
// level in parallel. A system- or application-level failure makes the site
// invalid and stops the verification there; later levels' failures are
// findings.
func VerifyWorkflow(ctx workflow.Context, in VerifyInput) (_ VerifyResult, err error) {
	r, err := newRun(ctx, contract.KindVerify, in.Plan.Name)
	if err != nil {
		return VerifyResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	r.setSite(ctx, in.Site.Site.Name)
	return verify(ctx, r, in)
}

func verify(ctx workflow.Context, r *run, in VerifyInput) (VerifyResult, error) {
	res := VerifyResult{Site: in.Site.Site.Name, Valid: true, Started: workflow.Now(ctx)}
	stop := false
	for _, level := range plan.Levels {
		lr := LevelResult{Level: level, Fatal: level.Fatal(), Passed: true}
		checks := in.Plan.Verification.Checks(level)
		if stop || len(checks) == 0 {
			res.Levels = append(res.Levels, lr)
			continue
		}
		lr.Ran = true
		r.phase(ctx, "verify:"+string(level))
		step := r.begin(ctx, "verify "+string(level))
		r.placeStep(step, siteAt(in.Site))
		lr.Started = workflow.Now(ctx)
		lr.Checks = runChecks(ctx, r, in, level, checks)
		lr.Ended = workflow.Now(ctx)
		failed := 0
		for _, c := range lr.Checks {
			if !c.Result.Passed {
				failed++
				lr.Passed = false
				if !level.Fatal() {
					res.Findings = append(res.Findings, fmt.Sprintf("%s/%s: %s", level, c.Name, c.Result.Summary))
				}
			}
		}
		outcome := OutcomeOK
		if !lr.Passed {
			outcome = OutcomeFailed
		}
		r.end(ctx, step, outcome, 1, fmt.Sprintf("%d of %d checks passed", len(lr.Checks)-failed, len(lr.Checks)))
		res.Levels = append(res.Levels, lr)
		if !lr.Passed && level.Fatal() {
			res.Valid = false
			res.FailedLevel = level
			stop = true
		}
	}
	res.Ended = workflow.Now(ctx)
	return res, nil
}

// runChecks runs one level's checks at once. A check whose activity failed
// after its retries counts as a failed check with the error as its summary:
// verification reports, it does not crash.
func runChecks(ctx workflow.Context, r *run, in VerifyInput, level plan.Level, checks []plan.DriverCheck) []contract.CheckOutput {
	futures := make([]workflow.Future, len(checks))
	for i, c := range checks {
		timeout := c.Timeout.D()
		if timeout <= 0 {
			timeout = defaultCheckTimeout
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: timeout,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval:        time.Second,
				MaximumAttempts:        3,
				NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings},
			},
		})
		futures[i] = r.actOwn(actx, siteAt(in.Site), contract.RunCheck, contract.CheckInput{
			Plan: in.Plan.Name, Site: in.Site, Level: level, Check: c,
		})
	}
	out := make([]contract.CheckOutput, len(checks))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			out[i] = contract.FailedCheck(level, checks[i].Name, "check could not run: "+rootMessage(err))
		}
	}
	return out
}
