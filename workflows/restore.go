package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// pointRef is a catalog point as the report names it.
func pointRef(p contract.Point) *report.Point {
	rp := &report.Point{ID: p.ID, Mode: string(p.Mode), BaseID: p.BaseID, Captured: p.Instant,
		Consistency: string(p.Consistency), Validity: string(p.Validity.State), Bytes: p.Size, Cold: p.Cold, Quiesce: p.Quiesce}
	if c := p.Configuration; c != nil {
		rp.Configuration, rp.ConfigurationSince = c.Fingerprint, c.FirstSeen
	}
	return rp
}

// choosePoint reads the catalog for the point to restore.
func choosePoint(ctx workflow.Context, r *run, store contract.StoreRef, in contract.ChooseInput) (contract.Point, error) {
	return choosePointWith(ctx, r, store, in, r.shortStep)
}

// stepRunner runs a short step at a place, as an activity or a local
// activity.
type stepRunner func(ctx workflow.Context, timeout time.Duration, attempts int32, where contract.Placement, fn string, args ...any) workflow.Future

// shortStep runs a short step as an activity with shortOptions.
func (r *run) shortStep(ctx workflow.Context, timeout time.Duration, attempts int32, where contract.Placement, fn string, args ...any) workflow.Future {
	return r.act(shortOptions(ctx, timeout, attempts), where, fn, args...)
}

func choosePointWith(ctx workflow.Context, r *run, store contract.StoreRef, in contract.ChooseInput, runStep stepRunner) (contract.Point, error) {
	step := r.begin(ctx, "choose recovery point")
	in.Store = store
	var pt contract.Point
	if err := runStep(ctx, 2*time.Minute, 3, store.At, contract.ChoosePoint, in).Get(ctx, &pt); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return pt, err
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%s (%s, captured %s, %s, %s)", pt.ID, pt.Mode,
		pt.Instant.UTC().Format(time.RFC3339), pt.Consistency, pt.Validity.State))
	return pt, nil
}

// restoreSite is the BPM seed's steps 3 to 6 at one site: restore the
// configuration and runtime data of every group from the same point, apply
// the environment-specific changes, and check the resources outside the
// recovery scope answer.
func restoreSite(ctx workflow.Context, r *run, p *plan.Plan, store contract.StoreRef, pointID string, target contract.SiteRef, fromRole string) error {
	r.phase(ctx, "restore")
	if r.safe {
		if err := nothingRunsAt(ctx, r, p, target); err != nil {
			return err
		}
	}
	kind := r.status.Kind
	if err := userSteps(ctx, r, p, phaseAt{kind: kind, phase: plan.PhaseRestore, site: target}); err != nil {
		return err
	}
	if _, err := forEachGroup(ctx, r, p.Storage.Groups, "restore", func(ctx workflow.Context, g plan.ConsistencyGroup) workflow.Future {
		where, host := groupAt(target, g)
		return r.act(storageOptions(ctx), where, contract.RestoreGroup, contract.RestoreInput{
			Store: store, PointID: pointID, Site: target, Host: host, Group: g,
		})
	}); err != nil {
		return fmt.Errorf("restore point %s into %s: %w", pointID, target.Site.Name, err)
	}
	if r.safe {
		// A copy taken while a component held its writes may need the
		// product's own step before it starts (DB2: db2inidb as snapshot).
		if _, _, err := forEachComponent(ctx, r, quiesceTargets(p), "prepare restored data of", func(ctx workflow.Context, c plan.Component) workflow.Future {
			where, host := componentAt(target, c)
			return r.act(shortOptions(ctx, 30*time.Minute, 3), where, contract.AfterRestore,
				contract.ComponentInput{Plan: p.Name, Site: target, Host: host, Component: c})
		}); err != nil {
			return fmt.Errorf("prepare the restored data at %s: %w", target.Site.Name, err)
		}
	}
	if err := userSteps(ctx, r, p, phaseAt{kind: kind, phase: plan.PhaseRestore, after: true, site: target}); err != nil {
		return err
	}

	if err := userSteps(ctx, r, p, phaseAt{kind: kind, phase: plan.PhaseEnvironment, site: target}); err != nil {
		return err
	}
	if len(p.Environment) > 0 {
		r.phase(ctx, "environment")
		step := r.begin(ctx, "apply environment changes")
		r.placeStep(step, siteAt(target))
		var rws []contract.RewriteResult
		if err := r.act(shortOptions(ctx, 10*time.Minute, 3), siteAt(target), contract.ApplyEnvironment, contract.EnvironmentInput{
			Plan: p.Name, Site: target, FromRole: fromRole, Rewrites: p.Environment,
		}).Get(ctx, &rws); err != nil {
			r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return fmt.Errorf("environment changes at %s: %w", target.Site.Name, err)
		}
		var parts []string
		for _, rw := range rws {
			parts = append(parts, rw.Summary())
		}
		r.end(ctx, step, OutcomeOK, 1, strings.Join(parts, "; "))
	}
	if err := userSteps(ctx, r, p, phaseAt{kind: kind, phase: plan.PhaseEnvironment, after: true, site: target}); err != nil {
		return err
	}

	if len(p.External) > 0 {
		r.phase(ctx, "connectivity")
		step := r.begin(ctx, "connectivity outside the recovery scope")
		checks := runChecks(ctx, r, VerifyInput{Plan: *p, Site: target}, "external", p.External)
		var failed []string
		for _, c := range checks {
			if !c.Result.Passed {
				failed = append(failed, c.Name+": "+c.Result.Summary)
			}
		}
		if len(failed) > 0 {
			r.end(ctx, step, OutcomeFailed, 1, strings.Join(failed, "; "))
			return fmt.Errorf("resources outside the recovery scope do not answer from %s: %s", target.Site.Name, strings.Join(failed, "; "))
		}
		r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d checks passed", len(checks)))
	}
	return nil
}

// bringUp says how a site is brought up after a restore.
type bringUp struct {
	// unattended: nobody decides the start-failed gate.
	unattended bool
	// point is what was restored, to re-create a component from.
	point *PointSource
	// only limits the restart to these components (a DR subset).
	only []string
}

// bringUpChildren runs the restart and the verification as child
// workflows, so the Web UI shows them apart and each keeps its own history.
func bringUpChildren(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef, idPrefix string, how bringUp) (BringUpResult, error) {
	var res BringUpResult
	r.phase(ctx, "restart")
	step := r.begin(ctx, "restart "+site.Site.Name)
	r.placeStep(step, siteAt(site))
	cctx := workflow.WithChildOptions(ctx, r.childOptions(ctx, idPrefix+"/restart", contract.KindRestart, "Restart "+site.Site.Name+" tier by tier"))
	r.status.Child = idPrefix + "/restart"
	defer func() { r.status.Child = "" }()
	if err := workflow.ExecuteChildWorkflow(cctx, RestartWorkflow, RestartInput{Plan: *p, Site: site, Unattended: how.unattended, Point: how.point, For: r.status.Kind, Only: how.only}).Get(ctx, &res.Restart); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		if rec, ok := recordOf(err); ok {
			r.absorb(idPrefix+"/restart", rec.Steps, rec.Gates)
		}
		return res, fmt.Errorf("restart %s: %w", site.Site.Name, err)
	}
	r.absorb(idPrefix+"/restart", res.Restart.Steps, res.Restart.Gates)
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d components in %d tiers", len(res.Restart.Components), len(res.Restart.Tiers)))

	r.phase(ctx, "verify")
	if err := userSteps(ctx, r, p, phaseAt{kind: r.status.Kind, phase: plan.PhaseVerify, site: site}); err != nil {
		return res, err
	}
	step = r.begin(ctx, "verify "+site.Site.Name)
	r.placeStep(step, siteAt(site))
	cctx = workflow.WithChildOptions(ctx, r.childOptions(ctx, idPrefix+"/verify", contract.KindVerify, "Verify "+site.Site.Name+" level by level"))
	if err := workflow.ExecuteChildWorkflow(cctx, VerifyWorkflow, VerifyInput{Plan: *p, Site: site}).Get(ctx, &res.Verify); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return res, fmt.Errorf("verify %s: %w", site.Site.Name, err)
	}
	outcome := OutcomeOK
	if !res.Verify.Valid {
		outcome = OutcomeFailed
	}
	r.end(ctx, step, outcome, 1, fmt.Sprintf("valid=%v findings=%d", res.Verify.Valid, len(res.Verify.Findings)))
	if err := userSteps(ctx, r, p, phaseAt{kind: r.status.Kind, phase: plan.PhaseVerify, after: true, site: site}); err != nil {
		return res, err
	}
	return res, nil
}

// shutdownSite stops a site in reverse order as a child workflow.
func shutdownSite(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef, immediate bool, id string) error {
	step := r.begin(ctx, "stop "+site.Site.Name)
	r.placeStep(step, siteAt(site))
	cctx := workflow.WithChildOptions(ctx, r.childOptions(ctx, id, contract.KindShutdown, "Stop "+site.Site.Name+" in reverse order"))
	var res ShutdownResult
	if err := workflow.ExecuteChildWorkflow(cctx, ShutdownWorkflow, ShutdownInput{Plan: *p, Site: site, Immediate: immediate}).Get(ctx, &res); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return fmt.Errorf("stop %s: %w", site.Site.Name, err)
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d components stopped", len(res.Components)))
	return nil
}

// tearDownSandbox stops whatever runs in the sandbox and empties it. It
// runs on a disconnected context: a cancelled drill still cleans up.
func tearDownSandbox(ctx workflow.Context, r *run, p *plan.Plan, sandbox contract.SiteRef, idPrefix string) error {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	r.phase(dctx, "teardown")
	var errs []error
	if err := shutdownSite(dctx, r, p, sandbox, true, idPrefix+"/teardown"); err != nil {
		errs = append(errs, err)
	}
	step := r.begin(dctx, "wipe sandbox "+sandbox.Site.Name)
	r.placeStep(step, siteAt(sandbox))
	if err := r.act(shortOptions(dctx, 10*time.Minute, 5), siteAt(sandbox), contract.WipeSite, sandbox).Get(dctx, nil); err != nil {
		r.end(dctx, step, OutcomeFailed, 1, rootMessage(err))
		errs = append(errs, err)
	} else {
		r.end(dctx, step, OutcomeOK, 1, "")
	}
	return errors.Join(errs...)
}

// trialResult is what a restore into the sandbox showed.
type trialResult struct {
	BringUp  BringUpResult
	Restored time.Time
	// RTO is from the start of the restore to a verified cell.
	RTO time.Duration
}

// trial restores a point into the isolated sandbox while the primary keeps
// running, starts the cell in order and verifies it at the six levels; the
// sandbox is always torn down afterwards, whatever happened.
func trial(ctx workflow.Context, r *run, p *plan.Plan, store contract.StoreRef, point contract.Point, idPrefix string, unattended bool) (res trialResult, err error) {
	sandbox := siteRef(p, "sandbox")
	if p.Sites.Sandbox == nil {
		return res, fmt.Errorf("plan %s has no sandbox site for drills and validation", p.Name)
	}
	defer func() {
		if terr := tearDownSandbox(ctx, r, p, sandbox, idPrefix); terr != nil {
			err = errors.Join(err, fmt.Errorf("sandbox teardown: %w", terr))
		}
	}()
	started := workflow.Now(ctx)
	step := r.begin(ctx, "prepare sandbox "+sandbox.Site.Name)
	r.placeStep(step, siteAt(sandbox))
	if err := r.act(shortOptions(ctx, 10*time.Minute, 3), siteAt(sandbox), contract.WipeSite, sandbox).Get(ctx, nil); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return res, err
	}
	r.end(ctx, step, OutcomeOK, 1, "")
	if err := restoreSite(ctx, r, p, store, point.ID, sandbox, "primary"); err != nil {
		return res, err
	}
	res.Restored = workflow.Now(ctx)
	res.BringUp, err = bringUpChildren(ctx, r, p, sandbox, idPrefix, bringUp{unattended: unattended,
		point: &PointSource{Store: store, PointID: point.ID, FromRole: plan.SitePrimary}})
	res.RTO = workflow.Now(ctx).Sub(started)
	return res, err
}

// versionStepFailure makes a run failed by a user step say which step in its
// report. Runs from before gave only the command's own message.
const versionStepFailure = "user-step-failure"

// runFailure is the one line a report gives for why the run failed: the
// root cause, or a failed user step's whole line (its name, phase and site
// before the command's message).
func runFailure(ctx workflow.Context, err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == contract.ErrTypeUserStepFailed &&
		workflow.GetVersion(ctx, versionStepFailure, workflow.DefaultVersion, 1) == 1 {
		return app.Message()
	}
	return rootMessage(err)
}

// finishReport fills the parts of a report every run shares and stores it.
func finishReport(ctx workflow.Context, r *run, store contract.StoreRef, rep *report.Report, runErr error) contract.ReportPaths {
	info := workflow.GetInfo(ctx)
	rep.Kind, rep.Plan = r.status.Kind, r.status.Plan
	rep.WorkflowID, rep.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
	rep.Started, rep.Ended = info.WorkflowStartTime, workflow.Now(ctx)
	rep.Outcome = "completed"
	if runErr != nil {
		rep.Outcome, rep.Error = "failed", runFailure(ctx, runErr)
		if ctx.Err() != nil {
			rep.Outcome = "cancelled"
		}
	}
	rep.Steps, rep.Gates, rep.Ignored = r.status.Steps, r.status.Gates, r.status.Ignored
	end := contract.NotifyEvent{Type: eventRunCompleted, Message: rep.Kind + " of plan " + rep.Plan + " completed"}
	if runErr != nil {
		end = contract.NotifyEvent{Type: eventRunFailed, Message: rep.Kind + " of plan " + rep.Plan + " " + rep.Outcome, Error: rep.Error}
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var paths contract.ReportPaths
	if err := r.act(shortOptions(dctx, 2*time.Minute, 5), store.At, contract.WriteReport, contract.ReportInput{Store: store, Report: *rep}).Get(dctx, &paths); err != nil {
		workflow.GetLogger(ctx).Error("report not written", "error", err)
	}
	if paths.Markdown != "" {
		end.Message += "; report " + paths.Markdown
	}
	r.tell(dctx, end, true)
	return paths
}

// nothingRunsAt refuses to restore over a site where a component still
// answers as running: the restore would replace the data it is using. The
// step-failed gate lets a person stop it and retry, or abort.
func nothingRunsAt(ctx workflow.Context, r *run, p *plan.Plan, target contract.SiteRef) error {
	step := r.begin(ctx, "nothing runs at "+target.Site.Name)
	r.placeStep(step, siteAt(target))
	for {
		futures := make([]workflow.Future, len(p.Components))
		for i, c := range p.Components {
			where, host := componentAt(target, c)
			futures[i] = r.actOwn(shortOptions(ctx, 2*time.Minute, 3), where, contract.ComponentStatus,
				contract.ComponentInput{Plan: p.Name, Site: target, Host: host, Component: c})
		}
		var running []string
		for i, f := range futures {
			var st contract.Status
			if err := f.Get(ctx, &st); err != nil {
				r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
				return fmt.Errorf("status of %s at %s before the restore: %w", p.Components[i].Name, target.Site.Name, err)
			}
			if st.State == contract.StateRunning {
				running = append(running, p.Components[i].Name)
			}
		}
		if len(running) == 0 {
			r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d components stopped", len(p.Components)))
			return nil
		}
		detail := fmt.Sprintf("%s still answer as running at %s: a restore would replace the data they use; stop them first",
			strings.Join(running, ", "), target.Site.Name)
		refused := temporal.NewNonRetryableApplicationError(detail, contract.ErrTypeTargetRunning, nil)
		if r.gk == nil {
			r.end(ctx, step, OutcomeFailed, 1, detail)
			return refused
		}
		if _, ok := findGate(r.gk.plan, contract.GateStepFailed); !ok {
			r.end(ctx, step, OutcomeFailed, 1, detail)
			return refused
		}
		decision, err := r.stepFailed(ctx, detail, false)
		if err != nil || decision != contract.DecisionRetry {
			r.end(ctx, step, OutcomeFailed, 1, detail)
			if err == nil {
				err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s; gate %s: %s", detail, contract.GateStepFailed, decision), contract.ErrTypeGateRefused, refused)
			}
			return err
		}
	}
}
