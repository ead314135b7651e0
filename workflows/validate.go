package workflows

import (
	"time"

	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// ValidateInput asks to validate one recovery point.
type ValidateInput struct {
	Plan plan.Plan `json:"plan"`
	// PointID names the point; empty takes the newest usable one.
	PointID string `json:"pointId,omitempty"`
}

// ValidateResult is the verdict and where the report is.
type ValidateResult struct {
	Point  contract.Point       `json:"point"`
	Valid  bool                 `json:"valid"`
	Reason string               `json:"reason,omitempty"`
	Verify VerifyResult         `json:"verify"`
	Report contract.ReportPaths `json:"report"`
}

// ValidateWorkflow is the BPM seed's Figure 3 and its configuration and
// runtime DR tests: restore a point into the isolated sandbox, start the
// cell in order, verify the six levels, and record the point valid or
// invalid (a system- or application-level failure makes it invalid;
// instance-level findings are kept on a valid point). The sandbox is torn
// down whatever happened.
func ValidateWorkflow(ctx workflow.Context, in ValidateInput) (_ ValidateResult, err error) {
	r, err := newRun(ctx, contract.KindValidate, in.Plan.Name)
	if err != nil {
		return ValidateResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	r.setSite(ctx, siteName(in.Plan.Sites.Sandbox))
	var res ValidateResult
	p := &in.Plan
	store := storeRef(p, nil)
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	rep := report.Report{}

	r.phase(ctx, "preflight")
	pt, err := choosePoint(ctx, r, store, contract.ChooseInput{PointID: in.PointID, AllowUnverified: true})
	if err != nil {
		res.Report = finishReport(ctx, r, store, &rep, err)
		return res, err
	}
	res.Point = pt
	rep.Point = pointRef(pt)

	tr, terr := trial(ctx, r, p, store, pt, id, true)
	res.Verify = tr.BringUp.Verify
	if len(tr.BringUp.Verify.Levels) > 0 {
		rep.Verification = &res.Verify
	}
	validity := contract.Validity{Run: id, At: workflow.Now(ctx), Findings: res.Verify.Findings}
	switch {
	case len(tr.BringUp.Verify.Levels) > 0 && !res.Verify.Valid:
		validity.State = contract.StateInvalid
		validity.Reason = fmt.Sprintf("verification failed at the %s level", res.Verify.FailedLevel)
	case len(tr.BringUp.Verify.Levels) > 0:
		validity.State = contract.StateValid
	case terr != nil && restoreRefusedDamage(ctx, terr):
		validity.State = contract.StateInvalid
		validity.Reason = damageReason(ctx, r, store, pt.ID, terr)
	case terr != nil && isRestoreOrStartFailure(tr):
		// The cell could not even be brought up from this point: as
		// unusable as a failed system level.
		validity.State = contract.StateInvalid
		validity.Reason = "the cell did not come up from this point: " + rootMessage(terr)
	}
	if validity.State != "" {
		res.Valid, res.Reason = validity.State == contract.StateValid, validity.Reason
		r.phase(ctx, "record")
		if err := recordValidity(ctx, r, store, pt.ID, validity); err != nil {
			terr = err
		}
		rep.Point.Validity = string(validity.State)
	}
	rep.RTO = report.Measure(p.RTO.D(), tr.RTO)
	res.Report = finishReport(ctx, r, store, &rep, terr)
	if terr != nil && validity.State == "" {
		r.phase(ctx, "failed")
		return res, terr
	}
	r.phase(ctx, "done")
	return res, nil
}

// recordValidity records a point valid or invalid as a step of the run.
func recordValidity(ctx workflow.Context, r *run, store contract.StoreRef, pointID string, v contract.Validity) error {
	step := r.begin(ctx, "record point "+pointID+" "+string(v.State))
	if err := r.act(shortOptions(ctx, 2*time.Minute, 5), store.At, contract.SetValidity, contract.ValidityInput{
		Store: store, PointID: pointID, Validity: v,
	}).Get(ctx, nil); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return err
	}
	r.end(ctx, step, OutcomeOK, 1, v.Reason)
	return nil
}

// damageReason is why a point whose restore refused damaged data is
// invalid. When the damage is in the full point it builds on, that full is
// recorded invalid here (and with it every cumulative point on it).
func damageReason(ctx workflow.Context, r *run, store contract.StoreRef, pointID string, err error) string {
	reason := "restore refused damaged data: " + rootMessage(err)
	if d, _ := damagedPoint(err); d.Point != "" && d.Point != pointID {
		_ = recordValidity(ctx, r, store, d.Point, contract.Validity{State: contract.StateInvalid,
			Reason: reason, Run: workflow.GetInfo(ctx).WorkflowExecution.ID, At: workflow.Now(ctx)})
		return fmt.Sprintf("its full point %s is damaged: %s", d.Point, rootMessage(err))
	}
	return reason
}

// invalidateDamaged records a point invalid after its restore refused
// damaged data (and its full, when the damage is there).
func invalidateDamaged(ctx workflow.Context, r *run, store contract.StoreRef, pointID string, err error) {
	reason := damageReason(ctx, r, store, pointID, err)
	_ = recordValidity(ctx, r, store, pointID, contract.Validity{State: contract.StateInvalid,
		Reason: reason, Run: workflow.GetInfo(ctx).WorkflowExecution.ID, At: workflow.Now(ctx)})
}

// restoreRefusedDamage reports whether the trial failed because the point's
// data is damaged: that point is invalid, whatever else is true of it.
// Runs from before this change left such a point unverified.
func restoreRefusedDamage(ctx workflow.Context, err error) bool {
	if _, damaged := damagedPoint(err); !damaged {
		return false
	}
	return workflow.GetVersion(ctx, "invalid-on-damaged-restore", workflow.DefaultVersion, 1) == 1
}

// isRestoreOrStartFailure tells a point that could not be brought up (its
// fault) from a run that could not reach the sandbox at all (not its fault):
// only when restore finished is the point to blame.
func isRestoreOrStartFailure(tr trialResult) bool {
	return !tr.Restored.IsZero()
}
