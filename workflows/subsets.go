package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// versionSubsets marks failovers that may bring up a subset of the cell
// by priority class and complete it in a follow-up run.
const versionSubsets = "dr-subsets"

// chooseSubset decides which components this failover starts (seed 003:
// servers come up in priority order at the alternate site): the classes
// asked for, else the ones the plan marks first, else all. Runs without
// classes asked for, nor marked, start everything as before.
func (f *failover) chooseSubset(ctx workflow.Context, res *FailoverResult) error {
	in, p := f.in, f.p
	if len(in.Only) == 0 && in.Continue == "" && len(p.FirstClasses()) == 0 {
		return nil
	}
	if workflow.GetVersion(ctx, versionSubsets, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	classes := in.Only
	if len(classes) == 0 && in.Continue == "" {
		classes = p.FirstClasses()
	}
	known := make([]string, 0, len(p.PriorityClasses()))
	for _, pc := range p.PriorityClasses() {
		known = append(known, pc.Name)
	}
	for _, cl := range classes {
		if !slices.Contains(known, cl) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown priority class %q (the plan's classes: %s)", cl, strings.Join(known, ", ")),
				contract.ErrTypeBadPlan, nil)
		}
	}
	f.continued = in.Continue != ""
	if len(classes) == 0 {
		// A follow-up without classes brings up the rest: everything, the
		// components already running being left as they are.
		return nil
	}
	f.only = p.ComponentsOf(classes)
	if len(f.only) == 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no component is in the priority classes %s", strings.Join(classes, ", ")),
			contract.ErrTypeBadPlan, nil)
	}
	for _, c := range p.Components {
		if !slices.Contains(f.only, c.Name) {
			res.Deferred = append(res.Deferred, c.Name)
		}
	}
	if len(res.Deferred) > 0 && !f.continued {
		f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("DR subset: classes %s brought up; %s wait for a follow-up run from the same point (drover failover --continue %s)",
			strings.Join(classes, ", "), strings.Join(res.Deferred, ", "), workflow.GetInfo(ctx).WorkflowExecution.RunID))
	}
	return nil
}

// continueSubset completes an earlier subset failover: the same point,
// nothing restored again (the earlier run restored every group and the
// running components use it), the rest started in the plan's order, the
// site verified and in-flight work recovered. Traffic already points here.
func (f *failover) continueSubset(ctx workflow.Context) (contract.Point, BringUpResult, error) {
	if f.in.PointID == "" {
		return contract.Point{}, BringUpResult{}, temporal.NewNonRetryableApplicationError(
			"a follow-up run continues from the earlier run's point: give its point id", contract.ErrTypeBadPlan, nil)
	}
	f.r.phase(ctx, "preflight")
	pt, err := choosePointWith(ctx, f.r, f.store, contract.ChooseInput{PointID: f.in.PointID}, f.quick)
	if err != nil {
		return pt, BringUpResult{}, err
	}
	starting := "the rest of the cell"
	if len(f.only) > 0 {
		starting = strings.Join(f.only, ", ")
	}
	f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("continues failover %s from point %s: nothing restored again; starting %s", f.in.Continue, pt.ID, starting))
	secondary := siteRef(f.p, plan.SiteSecondary)
	up, err := bringUpChildren(ctx, f.r, f.p, secondary, workflow.GetInfo(ctx).WorkflowExecution.ID+"/continue", bringUp{
		point: &PointSource{Store: f.store, PointID: pt.ID, FromRole: plan.SitePrimary}, only: f.only})
	if err != nil {
		return pt, up, err
	}
	if !up.Verify.Valid {
		return pt, up, errVerification(up.Verify)
	}
	return pt, up, f.recoverInFlight(ctx)
}

// versionSubsetVerify marks subset failovers that do not judge the point by
// a verification of the part of the cell they started.
const versionSubsetVerify = "dr-subset-verify"

// partialVerification reports whether a failed verification of a subset
// run is to be taken as expected: the plan's checks look at the whole
// cell, and the deferred components are down on purpose. The point is then
// not marked invalid nor rolled back from; the report says so, and the
// follow-up run verifies the whole cell.
func (f *failover) partialVerification(ctx workflow.Context, v VerifyResult) bool {
	var deferred []string
	for _, c := range f.p.Components {
		if !slices.Contains(f.only, c.Name) {
			deferred = append(deferred, c.Name)
		}
	}
	if len(f.only) == 0 || f.continued || len(deferred) == 0 {
		return false
	}
	if workflow.GetVersion(ctx, versionSubsetVerify, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false
	}
	f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("DR subset: verification of %s failed at the %s level while %s wait for the follow-up run: the point is not judged by a partial cell; the follow-up verifies the whole cell",
		v.Site, v.FailedLevel, strings.Join(deferred, ", ")))
	return true
}
