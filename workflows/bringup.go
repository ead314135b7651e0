package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// BringUpInput asks to start a site and verify it.
type BringUpInput struct {
	Plan plan.Plan        `json:"plan"`
	Site contract.SiteRef `json:"site"`
}

// BringUpResult holds the restart and the verification.
type BringUpResult struct {
	Restart RestartResult `json:"restart"`
	Verify  VerifyResult  `json:"verify"`
}

// BringUpWorkflow starts a site in the plan's order and verifies it at the six
// levels, each as a child workflow so the Web UI shows them apart. It is the
// tail of every failover, failback and drill, and runs alone for a cold start.
func BringUpWorkflow(ctx workflow.Context, in BringUpInput) (_ BringUpResult, err error) {
	r, err := newRun(ctx, contract.KindBringUp, in.Plan.Name)
	if err != nil {
		return BringUpResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	if r.tells {
		r.setSite(ctx, in.Site.Site.Name)
	}
	var res BringUpResult
	id := workflow.GetInfo(ctx).WorkflowExecution.ID

	r.phase(ctx, "restart")
	step := r.begin(ctx, "restart "+in.Site.Site.Name)
	cctx := workflow.WithChildOptions(ctx, r.childOptions(ctx, id+"/restart", contract.KindRestart, "Restart "+in.Site.Site.Name+" tier by tier"))
	if err := workflow.ExecuteChildWorkflow(cctx, RestartWorkflow, RestartInput{Plan: in.Plan, Site: in.Site}).Get(ctx, &res.Restart); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		r.phase(ctx, "failed")
		return res, fmt.Errorf("restart %s: %w", in.Site.Site.Name, err)
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d components in %d tiers", len(res.Restart.Components), len(res.Restart.Tiers)))

	r.phase(ctx, "verify")
	step = r.begin(ctx, "verify "+in.Site.Site.Name)
	cctx = workflow.WithChildOptions(ctx, r.childOptions(ctx, id+"/verify", contract.KindVerify, "Verify "+in.Site.Site.Name+" level by level"))
	if err := workflow.ExecuteChildWorkflow(cctx, VerifyWorkflow, VerifyInput(in)).Get(ctx, &res.Verify); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		r.phase(ctx, "failed")
		return res, fmt.Errorf("verify %s: %w", in.Site.Site.Name, err)
	}
	outcome := OutcomeOK
	if !res.Verify.Valid {
		outcome = OutcomeFailed
	}
	r.end(ctx, step, outcome, 1, fmt.Sprintf("valid=%v findings=%d", res.Verify.Valid, len(res.Verify.Findings)))
	if !res.Verify.Valid {
		r.phase(ctx, "invalid")
		return res, fmt.Errorf("verification of %s failed at the %s level", in.Site.Site.Name, res.Verify.FailedLevel)
	}
	r.phase(ctx, "done")
	return res, nil
}

func errVerification(v VerifyResult) error {
	return fmt.Errorf("verification of %s failed at the %s level", v.Site, v.FailedLevel)
}
