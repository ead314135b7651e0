package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// versionSafe marks runs with the safe defaults (see run.safe).
const versionSafe = "safe-defaults"

// defaultRecoveryWindow is how long the recovery checks may take to pass
// when none of them sets a timeout.
const defaultRecoveryWindow = 10 * time.Minute

// FailoverInput asks to move the cell to the secondary site.
type FailoverInput struct {
	Plan plan.Plan `json:"plan"`
	// Planned leaves the primary on purpose: drain, final backup, orderly
	// stop. Unplanned assumes the primary is gone.
	Planned bool `json:"planned"`
	// PointID forces a recovery point; empty takes the newest valid one.
	PointID string `json:"pointId,omitempty"`
	// DeclaredAt is when the disaster was declared; the run's start when
	// zero. RPO and RTO are measured from it.
	DeclaredAt time.Time `json:"declaredAt,omitzero"`
	// Only brings up the components of these priority classes; the rest
	// waits for a follow-up run. Empty takes the classes the plan marks
	// first, or every class.
	Only []string `json:"only,omitempty"`
	// Continue names the earlier failover (its workflow run) whose subset
	// this run completes: from its point (PointID), with nothing restored
	// again.
	Continue string `json:"continue,omitempty"`
}

// FailoverResult is what the failover achieved.
type FailoverResult struct {
	Point      contract.Point       `json:"point"`
	Verify     VerifyResult         `json:"verify"`
	RPO        report.Objective     `json:"rpo"`
	RTO        report.Objective     `json:"rto"`
	Redirected time.Time            `json:"redirected,omitzero"`
	Report     contract.ReportPaths `json:"report"`
	// Deferred are the components a subset run left for a follow-up.
	Deferred []string `json:"deferred,omitempty"`
}

// sites tracks the state each site is left in, for the report.
type sites struct{ states []report.SiteState }

func (s *sites) set(role string, site *plan.Site, state string) {
	for i := range s.states {
		if s.states[i].Role == role {
			s.states[i].State = state
			return
		}
	}
	s.states = append(s.states, report.SiteState{Role: role, Site: siteName(site), State: state})
}

// FailoverWorkflow is the restore runbook of the BPM seed (steps 1–10) with
// the PureApplication seed's planned and unplanned failover around it:
// preflight → (planned: drain, final invocation backup, orderly stop of the
// primary, manual actions) → gate start-secondary → restore → restart →
// verify (rolling back to an older point when verification fails) →
// recover in-flight work → redirect → report.
func FailoverWorkflow(ctx workflow.Context, in FailoverInput) (res FailoverResult, err error) {
	r, err := newRun(ctx, contract.KindFailover, in.Plan.Name)
	if err != nil {
		return res, err
	}
	r.setSite(ctx, siteName(in.Plan.Sites.Secondary))
	gk := startGateKeeper(ctx, r, &in.Plan)
	r.tell(ctx, contract.NotifyEvent{Type: eventRunStarted, Message: r.status.Kind + " of plan " + in.Plan.Name + " started"}, false)
	p := &in.Plan
	store := storeRef(p, nil)
	declared := in.DeclaredAt
	if declared.IsZero() {
		declared = workflow.GetInfo(ctx).WorkflowStartTime
	}
	rep := report.Report{Planned: in.Planned, Declared: declared}
	var st sites
	st.set("primary", p.Sites.Primary, "running (untouched)")
	if !in.Planned {
		st.set("primary", p.Sites.Primary, "lost (disaster declared)")
	}
	st.set("secondary", p.Sites.Secondary, "idle (untouched)")
	var f *failover
	defer func() {
		if f != nil {
			f.resumeIfUntouched(ctx)
		}
		rep.Sites = st.states
		res.Report = finishReport(ctx, r, store, &rep, err)
		if err != nil {
			r.phase(ctx, "failed")
		} else {
			r.phase(ctx, "done")
		}
	}()

	f = &failover{r: r, gk: gk, p: p, store: store, in: in, sites: &st, rep: &rep,
		local: workflow.GetVersion(ctx, "local-preflight", workflow.DefaultVersion, 1) == 1}
	f.repl = usesReplication(ctx, p)
	if err := f.chooseSubset(ctx, &res); err != nil {
		return res, err
	}
	if f.continued {
		pt, up, err := f.continueSubset(ctx)
		res.Point, rep.Point, res.Verify = pt, pointRef(pt), up.Verify
		if len(up.Verify.Levels) > 0 {
			rep.Verification = &res.Verify
		}
		if err == nil {
			st.set("secondary", p.Sites.Secondary, "live (the rest of the cell started)")
		}
		return res, err
	}
	if err := f.preflight(ctx); err != nil {
		return res, err
	}
	if f.repl && !in.Planned {
		// What the standby had replayed when the disaster was declared,
		// measured before anything changes: the data the promotion loses.
		f.measureLag(ctx, "primary", "secondary")
	}
	if err := f.siteChecks(ctx); err != nil {
		return res, err
	}
	if r.safe {
		f.pauseBackups(ctx, &err)
	}
	invocation, err := f.primarySide(ctx)
	if err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var pt contract.Point
	if !f.pointless() {
		pointID := in.PointID
		if pointID == "" {
			pointID = invocation
		}
		pt, err = choosePointWith(ctx, r, store, contract.ChooseInput{PointID: pointID, PreferValidated: r.safe}, f.quick)
		if err != nil {
			return res, err
		}
		if err := f.acceptTrust(ctx, pt, pointID); err != nil {
			return res, err
		}
		if err := f.acceptDataLoss(ctx, pt, declared); err != nil {
			return res, err
		}
	}
	if f.repl && !in.Planned {
		if err := f.acceptReplicaLoss(ctx); err != nil {
			return res, err
		}
	}
	// Seed 001: the secondary starts only once a person says so.
	if err := f.gate(ctx, contract.GateStartSecondary, "start the cell at "+siteName(p.Sites.Secondary), r.safe); err != nil {
		return res, err
	}

	pt, up, err := f.restoreAndVerify(ctx, pt)
	res.Point, res.Verify = pt, up.Verify
	if pt.ID != "" {
		rep.Point = pointRef(pt)
	}
	if len(up.Verify.Levels) > 0 {
		rep.Verification = &res.Verify
	}
	if err != nil {
		return res, err
	}
	if err := f.recoverInFlight(ctx); err != nil {
		return res, err
	}
	if err := f.redirect(ctx, siteRef(p, "secondary")); err != nil {
		return res, err
	}
	res.Redirected = workflow.Now(ctx)
	rep.Redirected = res.Redirected
	st.set("secondary", p.Sites.Secondary, "live (serving traffic)")
	if r.safe {
		f.reprotect(ctx, siteRef(p, "secondary"), p.Storage.ReverseStore, p.Storage.ReverseStoreAt)
	}
	res.RPO = f.achievedRPO(pt, declared)
	res.RTO = report.Measure(p.RTO.D(), res.Redirected.Sub(declared))
	rep.RPO, rep.RTO = res.RPO, res.RTO
	return res, nil
}

type failover struct {
	r     *run
	gk    *gateKeeper
	p     *plan.Plan
	store contract.StoreRef
	in    FailoverInput
	sites *sites
	rep   *report.Report
	// tried are points abandoned after failed verification in this run.
	tried []string
	// moved is set once the run changed the secondary (a restore began):
	// a failure after it leaves the backups paused, the cell being between
	// sites.
	moved bool
	// mustFence says the primary still answered: stop it before the
	// secondary starts.
	mustFence bool
	// from is the site a failback leaves.
	from string
	// resumeOnFailure is the run's error while backups are paused by it.
	resumeOnFailure *error
	// only are the components this run starts (nil: all); continued says
	// it completes an earlier subset run.
	only      []string
	continued bool
	// local runs the quick read-only preflight steps as local activities:
	// each saves a round trip through the server on the way to the restore
	// (drover bench rto). Runs from before keep their contract.
	local bool
	// repl says the run moves the replicated components by replication;
	// promoted is set once their standbys took over.
	repl     bool
	promoted bool
}

// achievedRPO is the data the failover lost: the point's age at the
// declaration, the replicas' lag at declaration (a planned switchover
// loses nothing), whichever is larger; unknown when a lag is.
func (f *failover) achievedRPO(pt contract.Point, declared time.Time) report.Objective {
	var lost time.Duration
	if pt.ID != "" {
		lost = max(declared.Sub(pt.Instant), 0)
	}
	if f.repl && !f.in.Planned {
		lag, known := f.replicaDataLoss()
		if !known {
			return report.Objective{Target: f.p.RPO.D()}
		}
		lost = max(lost, lag)
	}
	return report.Measure(f.p.RPO.D(), lost)
}

// quick runs a short read-only step (it reads the store or asks a site):
// as a local activity when f.local, else as an activity with shortOptions.
func (f *failover) quick(ctx workflow.Context, timeout time.Duration, attempts int32, where contract.Placement, fn string, args ...any) workflow.Future {
	if f.r.placed {
		// A quick read at a site is still a read at that site.
		return f.r.act(shortOptions(ctx, timeout, attempts), where, fn, args...)
	}
	if !f.local {
		return f.r.shortStep(ctx, timeout, attempts, where, fn, args...)
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy:         shortRetry(attempts),
	})
	return workflow.ExecuteLocalActivity(lctx, fn, args...)
}

// gate waits for a gate; optional gates the plan does not define are
// passed with a note, required ones fail the run.
func (f *failover) gate(ctx workflow.Context, name, detail string, required bool) error {
	spec, ok := findGate(f.p, name)
	if !ok && !required {
		f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("gate %s not defined in the plan: passed without approval", name))
		return nil
	}
	if ok && spec.NoApproval && f.r.safe {
		step := f.r.begin(ctx, "gate "+name)
		f.r.end(ctx, step, OutcomeOK, 1, "no approval required by the plan (approvers: none)")
		f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("gate %s: no approval required by the plan", name))
		return nil
	}
	decision, err := f.gk.wait(ctx, gateRequest{Name: name, Detail: detail})
	if err != nil {
		return err
	}
	if decision != contract.DecisionApprove {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("gate %s: %s", name, decision), contract.ErrTypeGateRefused, nil)
	}
	return nil
}

// preflight is step 1: the plan must be enabled (or a person forces it at
// a gate) and the installations of both sites must match.
func (f *failover) preflight(ctx workflow.Context) error {
	f.r.phase(ctx, "preflight")
	step := f.r.begin(ctx, "plan lifecycle")
	var l contract.Lifecycle
	if err := f.quick(ctx, time.Minute, 3, f.store.At, contract.PlanLifecycle, f.store).Get(ctx, &l); err != nil {
		f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return err
	}
	if l.State != contract.StateEnabled {
		detail := fmt.Sprintf("plan %s is %s, not enabled (drover plan apply): force the failover?", f.p.Name, l.State)
		f.r.end(ctx, step, OutcomeFailed, 1, detail)
		if err := f.gate(ctx, contract.GatePlanNotEnabled, detail, true); err != nil {
			return err
		}
	} else {
		f.r.end(ctx, step, OutcomeOK, 1, "enabled")
	}
	step = f.r.begin(ctx, "compare installation manifests")
	var inst contract.InstallationResult
	in := contract.InstallationInput{Store: f.store, Reference: siteRef(f.p, "primary"), Target: siteRef(f.p, "secondary")}
	if f.r.placed {
		// The primary's manifest is read at the primary, if it answers;
		// else the comparison uses the copy the last backup kept.
		var m contract.Manifest
		if err := f.r.look(shortOptions(ctx, time.Minute, 2), siteAt(in.Reference), contract.ReadInstallation, in.Reference).Get(ctx, &m); err != nil {
			in.ReferenceFromStore = true
		} else {
			in.ReferenceManifest = m.Data
		}
	}
	err := f.quick(ctx, 2*time.Minute, 3, siteAt(in.Target), contract.CompareInstallation, in).Get(ctx, &inst)
	if err != nil {
		f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return err
	}
	if inst.Match {
		f.r.end(ctx, step, OutcomeOK, 1, "match ("+inst.ReferenceFrom+")")
		return nil
	}
	detail := "installations differ: " + strings.Join(inst.Differences, "; ")
	f.r.end(ctx, step, OutcomeFailed, 1, detail)
	return f.gate(ctx, contract.GateInstallationMismatch, detail, true)
}

// primarySide is step 2. Planned: the people at the primary agree first
// (planned-failover-primary: a reject or a timeout leaves the primary
// untouched), then drain new work, stop the primary in reverse order
// (in-flight work finishes and is written), then take the final invocation
// backup of the stopped cell and wait until it is shipped and verified, so
// nothing committed is lost. Unplanned: when the primary still answers,
// take the invocation backup; it is fenced before the secondary starts, so
// two sites never serve at once. It returns the invocation point's id, or "" when there is none.
func (f *failover) primarySide(ctx workflow.Context) (string, error) {
	p := f.p
	primary := siteRef(p, "primary")
	if !f.in.Planned {
		f.r.phase(ctx, "primary")
		if !f.primaryAnswers(ctx) {
			f.rep.Notes = append(f.rep.Notes, "primary did not answer: no invocation backup")
			return "", nil
		}
		if f.pointless() {
			// Nothing to back up: the replicated components are fenced
			// before their standbys are promoted, the rest stopped.
			f.mustFence = f.r.safe
			return "", nil
		}
		id, err := f.invocationBackup(ctx, 15*time.Minute, false)
		if err != nil {
			f.rep.Notes = append(f.rep.Notes, "invocation backup failed, going on with the catalog: "+rootMessage(err))
		}
		// It is fenced once the restore at the secondary succeeded, before
		// anything starts there: a failover that stops earlier (a refused
		// gate, a damaged point) leaves the primary running.
		f.mustFence = f.r.safe
		return id, nil
	}

	if f.r.safe {
		detail := fmt.Sprintf("planned failover: %s will be drained, stopped in reverse order and backed up, then the cell starts at %s",
			siteName(p.Sites.Primary), siteName(p.Sites.Secondary))
		if err := f.gate(ctx, contract.GatePlannedPrimary, detail, false); err != nil {
			f.sites.set("primary", p.Sites.Primary, "running (untouched: "+rootMessage(err)+")")
			return "", err
		}
	}
	drain(ctx, f.r, p, primary)
	f.sites.set("primary", p.Sites.Primary, "drained")
	f.r.phase(ctx, "stop-primary")
	cold := true
	if err := shutdownSite(ctx, f.r, f.restPlan(), primary, false, workflow.GetInfo(ctx).WorkflowExecution.ID+"/stop-primary"); err != nil {
		f.rep.Notes = append(f.rep.Notes, "orderly stop of the primary failed: "+rootMessage(err))
		f.sites.set("primary", p.Sites.Primary, "stop failed: "+rootMessage(err))
		cold = false
	} else {
		f.sites.set("primary", p.Sites.Primary, "stopped in reverse order (planned)")
	}
	var id string
	if !f.pointless() {
		var err error
		if id, err = f.invocationBackup(ctx, 0, cold); err != nil {
			f.rep.Notes = append(f.rep.Notes, "final invocation backup failed: "+rootMessage(err))
		}
	}
	if f.repl {
		// The replicated components stop last, by their switchover: the
		// standby replays everything the primary wrote, then takes over.
		if err := f.switchover(ctx, "primary", "secondary"); err != nil {
			f.sites.set("primary", p.Sites.Primary, "switchover failed: "+rootMessage(err))
			return "", err
		}
		f.sites.set("primary", p.Sites.Primary, "stopped in reverse order (planned); replicated components switched over, now standbys")
	}
	if !f.r.safe {
		// Runs from before asked here, after the stop, and went on whatever
		// the answer.
		_ = f.gate(ctx, contract.GatePlannedPrimary, "manual actions at "+siteName(p.Sites.Primary)+" before the secondary starts", false)
	}
	return id, nil
}

// fencePrimary stops a primary that still answers during an unplanned
// failover, so the secondary never starts beside it (split brain). A stop
// that fails opens primary-alive: a person fences it by other means and
// approves, or rejects and the failover ends.
func (f *failover) fencePrimary(ctx workflow.Context) error {
	p := f.p
	f.r.phase(ctx, "fence-primary")
	err := shutdownSite(ctx, f.r, f.restPlan(), siteRef(p, "primary"), true, workflow.GetInfo(ctx).WorkflowExecution.ID+"/fence-primary")
	if err == nil {
		f.sites.set("primary", p.Sites.Primary, "fenced: it still answered, stopped at once before the secondary started")
		f.rep.Notes = append(f.rep.Notes, "the primary still answered: stopped (fenced) before the secondary started")
		return nil
	}
	detail := fmt.Sprintf("the primary %s still answers and could not be stopped (%s): fence it (power, network, storage) before the secondary starts",
		siteName(p.Sites.Primary), rootMessage(err))
	f.sites.set("primary", p.Sites.Primary, "still answers; stop failed: "+rootMessage(err))
	return f.gate(ctx, contract.GatePrimaryAlive, detail, true)
}

// primaryAnswers asks the primary's database whether it runs, briefly: an
// unplanned failover must not wait on a site that is gone.
func (f *failover) primaryAnswers(ctx workflow.Context) bool {
	var db *plan.Component
	for i := range f.p.Components {
		if f.p.Components[i].Role == plan.RoleDatabase {
			db = &f.p.Components[i]
			break
		}
	}
	if db == nil {
		return false
	}
	step := f.r.begin(ctx, "probe primary "+db.Name)
	var status struct {
		State string `json:"state"`
	}
	// One attempt: an unplanned failover must not wait on a site that is gone.
	primary := siteRef(f.p, "primary")
	where, host := componentAt(primary, *db)
	in := contract.ComponentInput{Plan: f.p.Name, Site: primary, Host: host, Component: *db}
	var err error
	if f.r.placed {
		err = f.r.look(shortOptions(ctx, 15*time.Second, 1), where, contract.ComponentStatus, in).Get(ctx, &status)
	} else {
		err = f.quick(ctx, 15*time.Second, 1, where, contract.ComponentStatus, in).Get(ctx, &status)
	}
	up := err == nil && status.State == "running"
	detail := "state " + status.State
	if err != nil {
		detail = rootMessage(err)
	}
	f.r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("answers=%v (%s)", up, detail))
	return up
}

// invocationBackup is the LVLT4i seed's final save when a disaster is
// declared: a backup child run, waited for until shipped and verified.
func (f *failover) invocationBackup(ctx workflow.Context, timeout time.Duration, cold bool) (string, error) {
	f.r.phase(ctx, "invocation-backup")
	step := f.r.begin(ctx, "invocation backup")
	opts := f.r.childOptions(ctx, workflow.GetInfo(ctx).WorkflowExecution.ID+"/invocation-backup", contract.KindBackup,
		"Final backup of "+f.p.Name+" before the failover restores it")
	if timeout > 0 {
		opts.WorkflowExecutionTimeout = timeout
	}
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	var res BackupResult
	err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), BackupWorkflow, BackupInput{
		Plan: *f.p, Reason: "invocation", Cold: cold,
	}).Get(ctx, &res)
	if err != nil {
		f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return "", err
	}
	f.r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("point %s captured %s", res.Point.ID, res.Point.Instant.UTC().Format(time.RFC3339)))
	return res.Point.ID, nil
}

// acceptTrust asks before restoring a point nobody validated (there is no
// validated one): it is intact, not known to start. A point the operator
// named, or the invocation backup this run just took, is not asked about.
func (f *failover) acceptTrust(ctx workflow.Context, pt contract.Point, named string) error {
	if !f.r.safe || named != "" || pt.Trust() != contract.TrustIntact {
		return nil
	}
	detail := fmt.Sprintf("no validated point: the newest restorable point %s (captured %s) is intact - every checksum verified at the store - "+
		"but it was never restored, started in order and verified at the six levels in the sandbox; restore it anyway?",
		pt.ID, pt.Instant.UTC().Format(time.RFC3339))
	return f.gate(ctx, contract.GateAcceptUnvalidated, detail, true)
}

// acceptDataLoss raises the gate when the point is older than the RPO,
// showing the window of data that will be lost.
func (f *failover) acceptDataLoss(ctx workflow.Context, pt contract.Point, declared time.Time) error {
	age := declared.Sub(pt.Instant)
	if age <= f.p.RPO.D() {
		return nil
	}
	detail := fmt.Sprintf("point %s was captured %s before the declaration (RPO %s): the work of that window is lost",
		pt.ID, age.Round(time.Second), f.p.RPO)
	return f.gate(ctx, contract.GateAcceptDataLoss, detail, true)
}

// restoreAndVerify is steps 3–8 at the secondary. A system- or
// application-level failure marks the point invalid and offers to roll back
// to the previous valid point: stop the secondary, restore the older point,
// restart, verify again.
func (f *failover) restoreAndVerify(ctx workflow.Context, pt contract.Point) (contract.Point, BringUpResult, error) {
	secondary := siteRef(f.p, "secondary")
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	f.moved = true
	for attempt := 1; ; attempt++ {
		f.sites.set("secondary", f.p.Sites.Secondary, "restoring point "+pt.ID)
		if err := restoreSite(ctx, f.r, f.restPlan(), f.store, pt.ID, secondary, "primary"); err != nil {
			f.sites.set("secondary", f.p.Sites.Secondary, "partly restored, nothing started: "+rootMessage(err))
			_, damaged := damagedPoint(err)
			// Runs from before this change failed here for good.
			if !damaged || workflow.GetVersion(ctx, "rollback-on-damaged-restore", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return pt, BringUpResult{}, err
			}
			// The restore checked every file before swapping any in, so the
			// secondary holds nothing of this point that runs: no shutdown
			// is needed before the older point is restored over it.
			older, err := f.offerRollback(ctx, pt, damageReason(ctx, f.r, f.store, pt.ID, err))
			if err != nil {
				return pt, BringUpResult{}, err
			}
			pt = older
			continue
		}
		if f.mustFence {
			if err := f.fencePrimary(ctx); err != nil {
				return pt, BringUpResult{}, err
			}
			f.mustFence = false
		}
		if f.repl && !f.promoted {
			// The replicated components take over instead of a restore;
			// the rest of the cell then starts in order around them.
			if err := f.takeover(ctx); err != nil {
				f.sites.set("secondary", f.p.Sites.Secondary, "restored, standby not promoted: "+rootMessage(err))
				return pt, BringUpResult{}, err
			}
		}
		f.sites.set("secondary", f.p.Sites.Secondary, "restored, starting")
		up, err := bringUpChildren(ctx, f.r, f.p, secondary, fmt.Sprintf("%s/secondary-%d", id, attempt), bringUp{
			point: &PointSource{Store: f.store, PointID: pt.ID, FromRole: plan.SitePrimary}, only: f.only})
		if err != nil {
			f.sites.set("secondary", f.p.Sites.Secondary, "start failed: "+rootMessage(err))
			return pt, up, err
		}
		if up.Verify.Valid {
			f.sites.set("secondary", f.p.Sites.Secondary, "running, verified")
			return pt, up, nil
		}
		if f.partialVerification(ctx, up.Verify) {
			f.sites.set("secondary", f.p.Sites.Secondary, "running (DR subset), verification at the "+string(up.Verify.FailedLevel)+" level failed while the rest waits")
			return pt, up, nil
		}
		reason := fmt.Sprintf("verification failed at the %s level", up.Verify.FailedLevel)
		f.sites.set("secondary", f.p.Sites.Secondary, "running, "+reason)
		older, err := f.offerRollback(ctx, pt, reason)
		if err != nil {
			return pt, up, err
		}
		if err := shutdownSite(ctx, f.r, f.restPlan(), secondary, true, fmt.Sprintf("%s/rollback-%d", id, attempt)); err != nil {
			return pt, up, err
		}
		pt = older
	}
}

// offerRollback marks a point invalid for reason, finds the newest older
// point that can be restored, and waits at the rollback gate. It returns
// the older point once approved (the phase is then "rollback").
func (f *failover) offerRollback(ctx workflow.Context, pt contract.Point, reason string) (contract.Point, error) {
	f.markInvalid(ctx, pt, reason)
	f.tried = append(f.tried, pt.ID)
	f.rep.Abandoned = append(f.rep.Abandoned, *pointRef(pt))

	var older contract.Point
	if err := f.r.act(shortOptions(ctx, 2*time.Minute, 3), f.store.At, contract.ChoosePoint, contract.ChooseInput{
		Store: f.store, Exclude: f.tried,
	}).Get(ctx, &older); err != nil {
		return pt, fmt.Errorf("point %s is invalid (%s) and there is no older valid point: %w", pt.ID, reason, err)
	}
	if err := f.gate(ctx, contract.GateRollback, fmt.Sprintf("point %s is invalid (%s); roll back to %s captured %s?",
		pt.ID, reason, older.ID, older.Instant.UTC().Format(time.RFC3339)), true); err != nil {
		return pt, fmt.Errorf("point %s: %s; %w", pt.ID, reason, err)
	}
	f.r.phase(ctx, "rollback")
	return older, nil
}

// damagedPoint reports whether err is a restore that refused damaged data,
// and which point holds it.
func damagedPoint(err error) (contract.Damage, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != contract.ErrTypeCorrupt {
		return contract.Damage{}, false
	}
	var d contract.Damage
	if app.HasDetails() {
		_ = app.Details(&d)
	}
	return d, true
}

func (f *failover) markInvalid(ctx workflow.Context, pt contract.Point, reason string) {
	// A failure is on the step; the run goes on to offer the rollback.
	_ = recordValidity(ctx, f.r, f.store, pt.ID, contract.Validity{
		State: contract.StateInvalid, Reason: reason, Run: workflow.GetInfo(ctx).WorkflowExecution.ID, At: workflow.Now(ctx),
	})
}

// recoverInFlight is step 9: wait until the cell says its in-flight
// instances resumed and in-doubt transactions are resolved.
func (f *failover) recoverInFlight(ctx workflow.Context) error {
	if len(f.p.Recovery) == 0 {
		return nil
	}
	return waitRecovery(ctx, f.r, f.gk, f.p, siteRef(f.p, "secondary"))
}

// waitRecovery waits for the plan's recovery checks to pass. When they
// still fail after their window (the largest timeout among them, else
// defaultRecoveryWindow) the gate recovery-stalled asks a person: wait
// again, go on without, or abort. Without that gate in the plan the run
// fails, as it did before the gate existed (after 30 minutes then).
func waitRecovery(ctx workflow.Context, r *run, gk *gateKeeper, p *plan.Plan, site contract.SiteRef) error {
	r.phase(ctx, "recover-inflight")
	if workflow.GetVersion(ctx, "recovery-stalled-gate", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return waitRecoveryV0(ctx, r, p, site)
	}
	window := defaultRecoveryWindow
	if w := recoveryWindow(p); w > 0 {
		window = w
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: window,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	for round := 1; ; round++ {
		step := r.begin(ctx, "recover in-flight work")
		var out []contract.CheckOutput
		err := r.actOwn(actx, siteAt(site), contract.WaitChecks, contract.ChecksInput{Plan: p.Name, Site: site, Checks: p.Recovery}).Get(ctx, &out)
		if err == nil {
			var parts []string
			for _, c := range out {
				parts = append(parts, c.Name+": "+c.Result.Summary)
			}
			r.end(ctx, step, OutcomeOK, round, strings.Join(parts, "; "))
			return nil
		}
		detail := fmt.Sprintf("in-flight work not recovered at %s after %s: %s", site.Site.Name, window, rootMessage(err))
		r.end(ctx, step, OutcomeFailed, round, detail)
		if _, defined := findGate(p, contract.GateRecoveryStalled); !defined || ctx.Err() != nil || isBadSettings(err) {
			return fmt.Errorf("in-flight work not recovered at %s: %w", site.Site.Name, err)
		}
		decision, gerr := gk.wait(ctx, gateRequest{Name: contract.GateRecoveryStalled, Detail: detail,
			Options: []string{contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort}})
		if gerr != nil {
			return fmt.Errorf("%s: %w", detail, gerr)
		}
		switch decision {
		case contract.DecisionRetry:
			continue
		case contract.DecisionSkip:
			skip := r.begin(ctx, "go on without recovered in-flight work")
			r.end(ctx, skip, OutcomeSkipped, 1, detail+"; skipped at gate "+contract.GateRecoveryStalled)
			return nil
		default:
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s; gate %s: %s", detail, contract.GateRecoveryStalled, decision), contract.ErrTypeRecoveryStalled, nil)
		}
	}
}

// recoveryWindow is the largest timeout among the plan's recovery checks.
func recoveryWindow(p *plan.Plan) time.Duration {
	var w time.Duration
	for _, c := range p.Recovery {
		w = max(w, c.Timeout.D())
	}
	return w
}

// waitRecoveryV0 is the recovery wait of runs started before the
// recovery-stalled gate: one 30-minute wait.
func waitRecoveryV0(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef) error {
	step := r.begin(ctx, "recover in-flight work")
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var out []contract.CheckOutput
	if err := r.actOwn(actx, siteAt(site), contract.WaitChecks, contract.ChecksInput{Plan: p.Name, Site: site, Checks: p.Recovery}).Get(ctx, &out); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return fmt.Errorf("in-flight work not recovered at %s: %w", site.Site.Name, err)
	}
	var parts []string
	for _, c := range out {
		parts = append(parts, c.Name+": "+c.Result.Summary)
	}
	r.end(ctx, step, OutcomeOK, 1, strings.Join(parts, "; "))
	return nil
}

// redirect is step 10: point traffic at the site and confirm through it.
func (f *failover) redirect(ctx workflow.Context, site contract.SiteRef) error {
	return redirectTo(ctx, f.r, f.p, site)
}

func redirectTo(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef) error {
	if p.Redirect == nil && len(p.Steps) == 0 {
		return nil
	}
	r.phase(ctx, "redirect")
	if err := userSteps(ctx, r, p, phaseAt{kind: r.status.Kind, phase: plan.PhaseRedirect, site: site}); err != nil {
		return err
	}
	if err := redirectTraffic(ctx, r, p, site); err != nil {
		return err
	}
	return userSteps(ctx, r, p, phaseAt{kind: r.status.Kind, phase: plan.PhaseRedirect, after: true, site: site})
}

func redirectTraffic(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef) error {
	if p.Redirect == nil {
		return nil
	}
	step := r.begin(ctx, "redirect traffic to "+site.Site.Name)
	r.placeStep(step, siteAt(site))
	var rr contract.RedirectResult
	// Run at the site traffic goes to: it is the one that must be alive.
	if err := r.act(shortOptions(ctx, 5*time.Minute, 5), siteAt(site), contract.Redirect, contract.RedirectInput{
		Plan: p.Name, Redirect: *p.Redirect, Site: site,
	}).Get(ctx, &rr); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return fmt.Errorf("redirect to %s: %w", site.Site.Name, err)
	}
	r.ranAt(step, rr.Ran)
	r.output(step, rr.Evidence)
	detail := "traffic points at " + rr.Current
	if c := p.Redirect.Check; c != nil {
		checks := runChecks(ctx, r, VerifyInput{Plan: *p, Site: site}, "redirect", []plan.DriverCheck{*c})
		if !checks[0].Result.Passed {
			r.end(ctx, step, OutcomeFailed, 1, detail+"; check through it failed: "+checks[0].Result.Summary)
			return fmt.Errorf("traffic redirected to %s but the check through it failed: %s", site.Site.Name, checks[0].Result.Summary)
		}
		detail += "; " + checks[0].Result.Summary
	}
	r.end(ctx, step, OutcomeOK, 1, detail)
	return nil
}

// drain stops new work reaching a site before its last backup. A failed
// drain is recorded, not fatal: the orderly stop that follows drains the
// servers themselves.
func drain(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef) {
	r.phase(ctx, "drain")
	if p.Redirect == nil {
		return
	}
	step := r.begin(ctx, "drain new work at the front door")
	err := r.act(shortOptions(ctx, 5*time.Minute, 3), siteAt(site), contract.DrainTraffic, contract.RedirectInput{
		Plan: p.Name, Redirect: *p.Redirect, Site: site,
	}).Get(ctx, nil)
	if err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return
	}
	r.end(ctx, step, OutcomeOK, 1, "")
}

// pauseBackups pauses the backup schedule while the cell moves (seed 001:
// no backup of a site being failed over). When the run fails before it
// changed anything, the schedule is resumed as it was.
func (f *failover) pauseBackups(ctx workflow.Context, runErr *error) {
	from := siteName(f.p.Sites.Primary)
	if f.from != "" {
		from = f.from
	}
	f.r.backups(ctx, f.rep, contract.ScheduleChange{Plan: f.p.Name, Pause: true,
		Note: fmt.Sprintf("%s %s moves the cell from %s", f.r.status.Kind, workflow.GetInfo(ctx).WorkflowExecution.ID, from)})
	f.resumeOnFailure = runErr
}

// reprotect records the site the cell now runs at and resumes the backup
// schedule there, into a store the other site can restore from (the
// plan's reverse store after a failover, the plan's store after the
// failback).
func (f *failover) reprotect(ctx workflow.Context, now contract.SiteRef, store plan.Settings, at plan.StoreSite) {
	f.r.recordPrimary(ctx, f.rep, f.store, now.Site.Name, fmt.Sprintf("%s %s", f.r.status.Kind, workflow.GetInfo(ctx).WorkflowExecution.ID))
	backup := &contract.ScheduleBackup{Site: now, Store: store, StoreAt: at}
	note := fmt.Sprintf("backups of %s", now.Site.Name)
	if len(store) == 0 {
		note += " into the plan's store"
		if now.Role == plan.SiteSecondary {
			note += " (at " + storeAt(f.p).Site + ": add storage.reverseStore so they survive the loss of " + now.Site.Name + ")"
			f.rep.Notes = append(f.rep.Notes, "backups of "+now.Site.Name+" go to the store at "+storeAt(f.p).Site+
				", which is lost with it: the plan has no storage.reverseStore")
		}
	}
	f.r.backups(ctx, f.rep, contract.ScheduleChange{Plan: f.p.Name, Note: note, Backup: backup})
	f.resumeOnFailure = nil
}

// resumeIfUntouched resumes the paused backups when the run ends without
// having changed the secondary: the primary still is the primary.
func (f *failover) resumeIfUntouched(ctx workflow.Context) {
	if f.resumeOnFailure == nil || *f.resumeOnFailure == nil {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if f.moved {
		f.rep.Notes = append(f.rep.Notes, "backups stay paused: the run failed after it began to restore; resume them with drover backup schedule once the cell is settled")
		return
	}
	f.r.backups(dctx, f.rep, contract.ScheduleChange{Plan: f.p.Name, Note: "the run ended without moving the cell"})
}
