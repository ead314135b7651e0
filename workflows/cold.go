package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// ColdBackupInput asks for one cold (offline) backup of the whole scope.
type ColdBackupInput struct {
	Plan plan.Plan `json:"plan"`
	// Site is where the cell runs; the primary when empty.
	Site *contract.SiteRef `json:"site,omitempty"`
}

// ColdBackupResult is the point taken and how the cell came back.
type ColdBackupResult struct {
	Backup  BackupResult         `json:"backup"`
	BringUp BringUpResult        `json:"bringUp"`
	Report  contract.ReportPaths `json:"report"`
}

// ColdBackupWorkflow is the seed's simple server backup (000 §2.3.2.1): no
// work may run anywhere in the recovery scope while it is captured, so the
// cell is stopped in reverse order (after the cold-backup gate when the plan
// asks for approval), every group captured, shipped and verified as one
// point marked cold, and the cell started again in order and verified,
// whatever the capture did: a cell left stopped is an outage drover caused.
func ColdBackupWorkflow(ctx workflow.Context, in ColdBackupInput) (ColdBackupResult, error) {
	var res ColdBackupResult
	r, err := newRun(ctx, contract.KindColdBackup, in.Plan.Name)
	if err != nil {
		return res, err
	}
	p := &in.Plan
	site := siteRef(p, plan.SitePrimary)
	if in.Site != nil {
		site = *in.Site
	}
	r.setSite(ctx, site.Site.Name)
	gk := startGateKeeper(ctx, r, p)
	r.tell(ctx, contract.NotifyEvent{Type: eventRunStarted, Message: "cold backup of plan " + p.Name + " started"}, false)
	store := storeRef(p, nil)
	rep := report.Report{}
	id := workflow.GetInfo(ctx).WorkflowExecution.ID

	// The cell may have moved since the schedule was set: a cold backup
	// never stops (and restarts) a site the cell no longer runs at.
	r.phase(ctx, "preflight")
	step := r.begin(ctx, "where the cell runs")
	var l contract.Lifecycle
	if err := r.act(shortOptions(ctx, time.Minute, 3), store.At, contract.PlanLifecycle, store).Get(ctx, &l); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		res.Report = finishReport(ctx, r, store, &rep, err)
		r.phase(ctx, "failed")
		return res, err
	}
	if l.Primary != "" && l.Primary != site.Site.Name {
		err := temporal.NewNonRetryableApplicationError(fmt.Sprintf("the cell runs at %s, not at %s: no cold backup of %s", l.Primary, site.Site.Name, site.Site.Name), contract.ErrTypeBadPlan, nil)
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		rep.Sites = []report.SiteState{{Role: site.Role, Site: site.Site.Name, State: "untouched"}}
		res.Report = finishReport(ctx, r, store, &rep, err)
		r.phase(ctx, "failed")
		return res, err
	}
	r.end(ctx, step, OutcomeOK, 1, "the cell runs at "+site.Site.Name)

	if sc := p.Storage.Schedule.Cold; sc != nil && sc.Approve {
		r.phase(ctx, "approval")
		decision, err := gk.wait(ctx, gateRequest{Name: contract.GateColdBackup,
			Detail: fmt.Sprintf("stop the whole cell at %s for a cold backup, then start it again", site.Site.Name)})
		if err == nil && decision != contract.DecisionApprove {
			err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("gate %s: %s", contract.GateColdBackup, decision), contract.ErrTypeGateRefused, nil)
		}
		if err != nil {
			rep.Sites = []report.SiteState{{Role: site.Role, Site: site.Site.Name, State: "untouched (running)"}}
			res.Report = finishReport(ctx, r, store, &rep, err)
			r.phase(ctx, "failed")
			return res, err
		}
	}

	r.phase(ctx, "stop")
	runErr := shutdownSite(ctx, r, p, site, false, id+"/stop")
	if runErr == nil {
		res.Backup, runErr = backup(ctx, r, BackupInput{Plan: *p, Site: &site, Reason: "cold", Cold: true})
		if runErr == nil {
			rep.Point = pointRef(res.Backup.Point)
		}
	}

	// Start again in order, also after a failed capture or a cancel.
	bctx := ctx
	if ctx.Err() != nil {
		bctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	var upErr error
	res.BringUp, upErr = bringUpChildren(bctx, r, p, site, id, bringUp{})
	if len(res.BringUp.Verify.Levels) > 0 {
		rep.Verification = &res.BringUp.Verify
	}
	if upErr == nil && !res.BringUp.Verify.Valid {
		upErr = errVerification(res.BringUp.Verify)
	}
	state := "started again and verified"
	if upErr != nil {
		state = "not verified after the cold backup: " + rootMessage(upErr)
	}
	rep.Sites = []report.SiteState{{Role: site.Role, Site: site.Site.Name, State: state}}
	err = errors.Join(runErr, upErr)
	res.Report = finishReport(ctx, r, store, &rep, err)
	if err != nil {
		r.phase(ctx, "failed")
		return res, err
	}
	r.phase(ctx, "done")
	return res, nil
}
