package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// FailbackInput asks to return the cell to the primary site.
type FailbackInput struct {
	Plan plan.Plan `json:"plan"`
}

// FailbackResult is what the failback did.
type FailbackResult struct {
	Point      contract.Point       `json:"point"`
	Verify     VerifyResult         `json:"verify"`
	RTO        report.Objective     `json:"rto"`
	Redirected time.Time            `json:"redirected,omitzero"`
	Report     contract.ReportPaths `json:"report"`
}

// FailbackWorkflow is the BPM seed's 4.4: the primary is back. After the
// failback gate, drain the now-live secondary, shut it down cleanly in
// reverse order, back it up (cold: nothing writes) and ship it, restore at
// the primary, restart in order, verify, redirect back, report. Nothing
// committed at the secondary is lost: the backup is taken of the stopped
// cell.
func FailbackWorkflow(ctx workflow.Context, in FailbackInput) (res FailbackResult, err error) {
	r, err := newRun(ctx, contract.KindFailback, in.Plan.Name)
	if err != nil {
		return res, err
	}
	r.setSite(ctx, siteName(in.Plan.Sites.Primary))
	gk := startGateKeeper(ctx, r, &in.Plan)
	r.tell(ctx, contract.NotifyEvent{Type: eventRunStarted, Message: r.status.Kind + " of plan " + in.Plan.Name + " started"}, false)
	p := &in.Plan
	store := storeRef(p, nil)
	primary, secondary := siteRef(p, "primary"), siteRef(p, "secondary")
	started := workflow.GetInfo(ctx).WorkflowStartTime
	rep := report.Report{Planned: true, Declared: started}
	st := sites{}
	st.set("secondary", p.Sites.Secondary, "live (serving traffic)")
	st.set("primary", p.Sites.Primary, "back, idle")
	f := &failover{r: r, gk: gk, p: p, store: store, sites: &st, rep: &rep, from: secondary.Site.Name, in: FailoverInput{Planned: true}}
	f.repl = usesReplication(ctx, p)
	defer func() {
		f.resumeIfUntouched(ctx)
		rep.Sites = st.states
		res.Report = finishReport(ctx, r, store, &rep, err)
		if err != nil {
			r.phase(ctx, "failed")
		} else {
			r.phase(ctx, "done")
		}
	}()
	id := workflow.GetInfo(ctx).WorkflowExecution.ID

	// People approve the switch first: it stops the live site. Then drain,
	// stop the secondary in reverse order, and back up the stopped cell, so
	// the point holds everything committed there.
	if err := f.gate(ctx, contract.GateFailback, fmt.Sprintf("stop %s and move the cell back to %s", secondary.Site.Name, primary.Site.Name), r.safe); err != nil {
		return res, err
	}
	if r.safe {
		f.pauseBackups(ctx, &err)
		f.moved = true // the live site stops next
	}
	if f.repl {
		// The primary's replicated components follow the live ones again
		// (rewound where they can be) and catch up while traffic flows.
		st.set("primary", p.Sites.Primary, "reseeding the replicated components")
		if err := f.reseedAndCatchUp(ctx, "secondary", "primary"); err != nil {
			st.set("primary", p.Sites.Primary, "reseed failed: "+rootMessage(err))
			return res, err
		}
		st.set("primary", p.Sites.Primary, "replicated components caught up as standbys")
	}
	drain(ctx, r, p, secondary)
	r.phase(ctx, "stop-secondary")
	if err := shutdownSite(ctx, r, f.restPlan(), secondary, false, id+"/stop-secondary"); err != nil {
		st.set("secondary", p.Sites.Secondary, "stop failed: "+rootMessage(err))
		return res, err
	}
	st.set("secondary", p.Sites.Secondary, "stopped in reverse order")
	var bk BackupResult
	if !f.pointless() {
		r.phase(ctx, "backup-secondary")
		step := r.begin(ctx, "backup of "+secondary.Site.Name)
		opts := r.childOptions(ctx, id+"/backup-secondary", contract.KindBackup, "Cold full backup of "+secondary.Site.Name+" before the failback")
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
		if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), BackupWorkflow, BackupInput{
			Plan: *p, Site: &secondary, Mode: contract.ModeFull, Reason: "failback", Cold: true,
		}).Get(ctx, &bk); err != nil {
			r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return res, fmt.Errorf("backup of the secondary: %w", err)
		}
		r.end(ctx, step, OutcomeOK, 1, "point "+bk.Point.ID)
		res.Point, rep.Point = bk.Point, pointRef(bk.Point)
	}
	if f.repl {
		if err := f.switchover(ctx, "secondary", "primary"); err != nil {
			st.set("secondary", p.Sites.Secondary, "switchover failed: "+rootMessage(err))
			return res, err
		}
		st.set("secondary", p.Sites.Secondary, "stopped in reverse order; replicated components switched over, now standbys")
	}

	if bk.Point.ID != "" {
		st.set("primary", p.Sites.Primary, "restoring point "+bk.Point.ID)
	}
	if err := restoreSite(ctx, r, f.restPlan(), store, bk.Point.ID, primary, "secondary"); err != nil {
		st.set("primary", p.Sites.Primary, "partly restored: "+rootMessage(err))
		return res, err
	}
	up, err := bringUpChildren(ctx, r, p, primary, id+"/primary", bringUp{
		point: &PointSource{Store: store, PointID: bk.Point.ID, FromRole: plan.SiteSecondary}})
	res.Verify = up.Verify
	if len(up.Verify.Levels) > 0 {
		rep.Verification = &res.Verify
	}
	if err != nil {
		st.set("primary", p.Sites.Primary, "start failed: "+rootMessage(err))
		return res, err
	}
	if !up.Verify.Valid {
		st.set("primary", p.Sites.Primary, "running, verification failed")
		return res, errVerification(up.Verify)
	}
	st.set("primary", p.Sites.Primary, "running, verified")
	if len(p.Recovery) > 0 {
		if err := waitRecovery(ctx, r, gk, p, primary); err != nil {
			return res, err
		}
	}
	if err := redirectTo(ctx, r, p, primary); err != nil {
		return res, err
	}
	res.Redirected = workflow.Now(ctx)
	rep.Redirected = res.Redirected
	st.set("primary", p.Sites.Primary, "live (serving traffic)")
	if r.safe {
		// Back home: backups of the primary into the plan's store.
		f.reprotect(ctx, primary, nil, plan.StoreSite{})
	}
	res.RTO = report.Measure(p.RTO.D(), res.Redirected.Sub(started))
	rep.RTO = res.RTO
	rep.RPO = report.Measure(p.RPO.D(), 0)
	return res, nil
}
