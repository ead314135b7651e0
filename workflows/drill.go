package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// DrillInput asks for a non-disruptive DR test.
type DrillInput struct {
	Plan    plan.Plan `json:"plan"`
	PointID string    `json:"pointId,omitempty"`
}

// DrillResult is what the drill measured.
type DrillResult struct {
	Point  contract.Point       `json:"point"`
	Verify VerifyResult         `json:"verify"`
	RTO    report.Objective     `json:"rto"`
	Report contract.ReportPaths `json:"report"`
}

// DrillWorkflow is the seed's configuration and runtime DR test (SRM's test
// recovery): restore the newest valid point into the isolated sandbox while
// the primary keeps running and backups keep going, restart, verify the six
// levels, measure the RTO, report, and always clean the sandbox up, also
// when verification fails or the drill is cancelled.
func DrillWorkflow(ctx workflow.Context, in DrillInput) (_ DrillResult, err error) {
	r, err := newRun(ctx, contract.KindDrill, in.Plan.Name)
	if err != nil {
		return DrillResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	r.setSite(ctx, siteName(in.Plan.Sites.Sandbox))
	r.notifyWith(&in.Plan)
	askAtManualSteps(ctx, r, &in.Plan, contract.KindDrill)
	r.tell(ctx, contract.NotifyEvent{Type: eventRunStarted, Message: "drill of plan " + in.Plan.Name + " started"}, false)
	var res DrillResult
	p := &in.Plan
	store := storeRef(p, nil)
	rep := report.Report{}
	r.phase(ctx, "preflight")
	pt, err := choosePoint(ctx, r, store, contract.ChooseInput{PointID: in.PointID})
	if err != nil {
		res.Report = finishReport(ctx, r, store, &rep, err)
		return res, err
	}
	res.Point, rep.Point = pt, pointRef(pt)
	tr, err := trial(ctx, r, p, store, pt, workflow.GetInfo(ctx).WorkflowExecution.ID, false)
	res.Verify = tr.BringUp.Verify
	if len(res.Verify.Levels) > 0 {
		rep.Verification = &res.Verify
	}
	if err != nil && restoreRefusedDamage(ctx, err) {
		// A drill that finds a point damaged has validated it: invalid.
		invalidateDamaged(ctx, r, store, pt.ID, err)
		rep.Point.Validity = string(contract.StateInvalid)
	}
	if err == nil && !res.Verify.Valid {
		err = errVerification(res.Verify)
	}
	if err == nil {
		res.RTO = report.Measure(p.RTO.D(), tr.RTO)
		rep.RTO = res.RTO
	}
	rep.Sites = []report.SiteState{
		{Role: "primary", Site: siteName(p.Sites.Primary), State: "untouched (running)"},
		{Role: "sandbox", Site: siteName(p.Sites.Sandbox), State: "torn down"},
	}
	res.Report = finishReport(ctx, r, store, &rep, err)
	if err != nil {
		r.phase(ctx, "failed")
		return res, err
	}
	r.phase(ctx, "done")
	return res, nil
}

func siteName(s *plan.Site) string {
	if s == nil {
		return ""
	}
	return s.Name
}
