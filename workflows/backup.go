package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// BackupInput asks for one recovery point.
type BackupInput struct {
	Plan plan.Plan `json:"plan"`
	// Site is where the data is; the primary when empty.
	Site *contract.SiteRef `json:"site,omitempty"`
	// Store overrides the plan's storage.store, and StoreAt where it is
	// (after a failover the schedule backs the new primary up into the
	// plan's reverse store).
	Store   plan.Settings  `json:"store,omitempty"`
	StoreAt plan.StoreSite `json:"storeAt,omitzero"`
	// Mode is full or cumulative; empty lets the preflight decide by the
	// plan's schedule.
	Mode contract.Mode `json:"mode,omitempty"`
	// Reason is why the point is taken: scheduled, manual, invocation.
	Reason string `json:"reason,omitempty"`
	// Validate validates the new point in the sandbox afterwards.
	Validate bool `json:"validate,omitempty"`
	// Cold says the cell is stopped (a planned failover's or failback's
	// final backup): nothing writes, so nothing is quiesced and every group
	// is one instant by construction.
	Cold bool `json:"cold,omitempty"`
	// Configuration is the configuration change that asked for this
	// backup (the RPO monitor's watch): when it was first seen.
	Configuration *contract.Configuration `json:"configuration,omitempty"`
}

// versionConfigFingerprint records the cell's configuration fingerprint in
// every point of a plan that watches it (seed 000 §4.1).
const versionConfigFingerprint = "backup-configuration-fingerprint"

// BackupResult is the committed point and what retention did.
type BackupResult struct {
	Point     contract.Point            `json:"point"`
	Preflight contract.PreflightResult  `json:"preflight"`
	Groups    []contract.GroupResult    `json:"groups"`
	Retention *contract.RetentionResult `json:"retention,omitempty"`
	// Validation is the id of the validation run started for the point.
	Validation string `json:"validation,omitempty"`
}

// quiesceWindowVersion: backups record in the point's manifest how long
// they paused writes.
const quiesceWindowVersion = "quiesce-window"

const (
	defaultFullEvery = 7 * 24 * time.Hour
	// captureTimeout bounds one capture, ship, verify or restore of a group;
	// heartbeats notice a dead worker long before it.
	captureTimeout   = 6 * time.Hour
	heartbeatTimeout = 2 * time.Minute
)

func storageOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: captureTimeout,
		HeartbeatTimeout:    heartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    3,
			NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings, contract.ErrTypeStoreFull,
				contract.ErrTypeCorrupt, contract.ErrTypeNoPoint, contract.ErrTypeQuiesce},
		},
	})
}

func shortOptions(ctx workflow.Context, timeout time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy:         shortRetry(attempts),
	})
}

// shortRetry is the retry policy of short steps: errors no retry can fix
// fail at once.
func shortRetry(attempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    attempts,
		NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings, contract.ErrTypeStoreFull,
			contract.ErrTypeCorrupt, contract.ErrTypeNoPoint, contract.ErrTypeQuiesce},
	}
}

// PointID derives a recovery point's id from the run that takes it, so a
// retried activity or a replay always names the same point and a backup
// can never produce two. The run is hashed whole: the leading digits of a
// time-ordered run id are the same for runs started close together.
func PointID(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	h := fnv.New64a()
	_, _ = h.Write([]byte(info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID))
	return fmt.Sprintf("%s-%06x", info.WorkflowStartTime.UTC().Format("20060102T150405Z"), h.Sum64()&0xffffff)
}

func storeRef(p *plan.Plan, override plan.Settings) contract.StoreRef {
	s := p.Storage.Store
	if len(override) > 0 {
		s = override
	}
	return contract.StoreRef{Plan: p.Name, Settings: s, At: storeAt(p)}
}

func siteRef(p *plan.Plan, role string) contract.SiteRef {
	var s *plan.Site
	switch role {
	case "primary":
		s = p.Sites.Primary
	case "secondary":
		s = p.Sites.Secondary
	case "sandbox":
		s = p.Sites.Sandbox
	}
	if s == nil {
		return contract.SiteRef{Role: role}
	}
	return contract.SiteRef{Role: role, Site: *s}
}

// BackupWorkflow takes one consistent recovery point: preflight (store
// reachable, room for the estimated size) → quiesce the groups that ask for
// it → capture every group → resume, always → ship → verify at the
// destination → record the point → apply retention. A backup that fails
// leaves no point behind: its staging is removed.
func BackupWorkflow(ctx workflow.Context, in BackupInput) (_ BackupResult, err error) {
	r, err := newRun(ctx, contract.KindBackup, in.Plan.Name)
	if err != nil {
		return BackupResult{}, err
	}
	defer func() { r.finish(ctx, err) }()
	return backup(ctx, r, in)
}

func backup(ctx workflow.Context, r *run, in BackupInput) (BackupResult, error) {
	var res BackupResult
	p := &in.Plan
	site := siteRef(p, "primary")
	if in.Site != nil {
		site = *in.Site
	}
	r.setSite(ctx, site.Site.Name)
	store := storeRef(p, in.Store)
	if in.StoreAt.Site != "" {
		store.At = placementOf(p, in.StoreAt)
	}
	groups := p.Storage.Groups
	if len(groups) == 0 {
		return res, temporal.NewNonRetryableApplicationError("plan "+p.Name+" has no storage groups to back up", contract.ErrTypeBadPlan, nil)
	}
	id := PointID(ctx)
	started := workflow.Now(ctx)
	fullEvery := p.Storage.Schedule.FullEvery.D()
	if fullEvery <= 0 {
		fullEvery = defaultFullEvery
	}

	// Preflight: nothing is written until it passes.
	r.phase(ctx, "preflight")
	step := r.begin(ctx, "preflight")
	err := r.act(shortOptions(ctx, 5*time.Minute, 3), siteAt(site), contract.PreflightBackup, contract.PreflightInput{
		Store: store, Site: site, Groups: groups, Mode: in.Mode, FullEvery: fullEvery, Now: started,
	}).Get(ctx, &res.Preflight)
	if err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		r.phase(ctx, "failed")
		return res, fmt.Errorf("backup preflight: %w", err)
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%s point (%s), about %d bytes", res.Preflight.Mode, res.Preflight.Reason, res.Preflight.EstimateBytes))

	config := fingerprintForPoint(ctx, r, p, site, in.Configuration, started)

	if err := userSteps(ctx, r, p, phaseAt{kind: contract.KindBackup, phase: plan.PhaseCapture, site: site}); err != nil {
		r.phase(ctx, "failed")
		return res, err
	}
	groupsOut, window, err := captureAndShip(ctx, r, p, site, store, id, res.Preflight, in.Cold)
	res.Groups = groupsOut
	if err == nil {
		err = userSteps(ctx, r, p, phaseAt{kind: contract.KindBackup, phase: plan.PhaseCapture, after: true, site: site})
	}
	if err != nil {
		abandon(ctx, r, store, id, site, groups)
		r.phase(ctx, "failed")
		return res, err
	}

	r.phase(ctx, "record")
	step = r.begin(ctx, "record point "+id)
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	commit := contract.CommitInput{
		Store: store, PointID: id, Mode: res.Preflight.Mode, BaseID: res.Preflight.BaseID,
		Started: started, Ended: workflow.Now(ctx), Groups: names, Cold: in.Cold, Configuration: config,
	}
	if workflow.GetVersion(ctx, quiesceWindowVersion, workflow.DefaultVersion, 1) >= 1 {
		commit.Quiesce = window
	}
	err = r.act(shortOptions(ctx, 10*time.Minute, 5), store.At, contract.CommitPoint, commit).Get(ctx, &res.Point)
	if err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		abandon(ctx, r, store, id, site, groups)
		r.phase(ctx, "failed")
		return res, fmt.Errorf("record point %s: %w", id, err)
	}
	detail := fmt.Sprintf("%s %s, %d bytes, consistency %s", res.Point.Mode, res.Point.ID, res.Point.Size, res.Point.Consistency)
	if q := res.Point.Quiesce; q != nil {
		detail += ", writes paused " + q.String()
	}
	r.end(ctx, step, OutcomeOK, 1, detail)

	// Retention never fails a backup: the new point is good whatever
	// happens to old ones.
	r.phase(ctx, "retention")
	step = r.begin(ctx, "retention")
	var ret contract.RetentionResult
	if err := r.act(shortOptions(ctx, 30*time.Minute, 3), siteAt(site), contract.ApplyRetention, contract.RetentionInput{
		Store: store, Site: site, Groups: groups,
	}).Get(ctx, &ret); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
	} else {
		res.Retention = &ret
		r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("deleted %d points", len(ret.Deleted)))
	}

	if in.Validate && p.Sites.Sandbox != nil {
		res.Validation = startValidation(ctx, r, in.Plan, res.Point.ID)
	}
	r.phase(ctx, "done")
	return res, nil
}

// fingerprintForPoint takes the fingerprint of the configuration the point
// is about to capture, when the plan watches it. A fingerprint that cannot
// be taken does not stop the backup: the point records none and the watch
// asks for another once it can.
func fingerprintForPoint(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef, asked *contract.Configuration, started time.Time) *contract.Configuration {
	w := p.Storage.Schedule.OnChange
	if w == nil || workflow.GetVersion(ctx, versionConfigFingerprint, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	step := r.begin(ctx, "configuration fingerprint")
	var cfg contract.Configuration
	if err := r.look(shortOptions(ctx, 5*time.Minute, 3), siteAt(site), contract.ConfigurationFingerprint,
		contract.FingerprintInput{Site: site, Watch: *w}).Get(ctx, &cfg); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return nil
	}
	cfg.FirstSeen = started
	if asked != nil && asked.Fingerprint == cfg.Fingerprint && !asked.FirstSeen.IsZero() {
		cfg.FirstSeen = asked.FirstSeen
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%s (%s)", shortFingerprint(cfg.Fingerprint), strings.Join(cfg.Parts, "; ")))
	return &cfg
}

func shortFingerprint(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// captureAndShip holds the quiesce window around the captures only, and
// resumes writes whatever happens to them. It returns the window writes
// were paused (nil when none were).
func captureAndShip(ctx workflow.Context, r *run, p *plan.Plan, site contract.SiteRef, store contract.StoreRef, id string, pre contract.PreflightResult, cold bool) ([]contract.GroupResult, *contract.QuiesceWindow, error) {
	groups := p.Storage.Groups
	quiesced := quiesceTargets(p)
	if cold {
		quiesced = nil
	}

	r.phase(ctx, "quiesce")
	paused, quiesceResults, qerr := forEachComponent(ctx, r, quiesced, "quiesce", func(ctx workflow.Context, c plan.Component) workflow.Future {
		where, host := componentAt(site, c)
		return r.act(shortOptions(ctx, 5*time.Minute, 3), where, contract.QuiesceComponent,
			contract.ComponentInput{Plan: p.Name, Site: site, Host: host, Component: c})
	})

	var results []contract.GroupResult
	var cerr error
	if qerr == nil {
		r.phase(ctx, "capture")
		results, cerr = forEachGroup(ctx, r, groups, "capture", func(ctx workflow.Context, g plan.ConsistencyGroup) workflow.Future {
			where, host := groupAt(site, g)
			return r.act(storageOptions(ctx), where, contract.CaptureGroup, contract.GroupInput{
				Store: store, PointID: id, Site: site, Host: host, Group: g, Mode: pre.Mode, BaseID: pre.BaseID,
				Quiesced: g.Quiesce || cold,
			})
		})
	}

	// Resume even when the capture failed or the run is being cancelled:
	// a cell left with its writes paused is an outage drover caused.
	var window *contract.QuiesceWindow
	if len(paused) > 0 {
		r.phase(ctx, "resume")
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_, resumeResults, err := forEachComponent(dctx, r, paused, "resume", func(ctx workflow.Context, c plan.Component) workflow.Future {
			where, host := componentAt(site, c)
			return r.act(shortOptions(ctx, 5*time.Minute, 10), where, contract.ResumeComponent,
				contract.ComponentInput{Plan: p.Name, Site: site, Host: host, Component: c})
		})
		if err != nil {
			return results, nil, fmt.Errorf("resume writes after capture: %w", err)
		}
		window = quiesceWindow(paused, quiesceResults, resumeResults)
	}
	if qerr != nil {
		return results, nil, fmt.Errorf("quiesce: %w", qerr)
	}
	if cerr != nil {
		return results, nil, fmt.Errorf("capture: %w", cerr)
	}

	r.phase(ctx, "ship")
	if _, err := forEachGroup(ctx, r, groups, "ship", func(ctx workflow.Context, g plan.ConsistencyGroup) workflow.Future {
		where, host := groupAt(site, g)
		return r.act(storageOptions(ctx), where, contract.ShipGroup, contract.GroupInput{
			Store: store, PointID: id, Site: site, Host: host, Group: g, Mode: pre.Mode, BaseID: pre.BaseID, Quiesced: g.Quiesce || cold,
		})
	}); err != nil {
		return results, nil, fmt.Errorf("ship: %w", err)
	}

	r.phase(ctx, "verify")
	step := r.begin(ctx, "verify point at destination")
	futures := make([]workflow.Future, len(groups))
	for i, g := range groups {
		// Verified where the store is: what was shipped, read back there.
		futures[i] = r.act(storageOptions(ctx), store.At, contract.VerifyGroup, contract.GroupInput{
			Store: store, PointID: id, Site: site, Group: g, Mode: pre.Mode, BaseID: pre.BaseID,
		})
	}
	var bad []string
	for i, f := range futures {
		var v contract.GroupVerify
		if err := f.Get(ctx, &v); err != nil {
			r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return results, nil, fmt.Errorf("verify group %s: %w", groups[i].Name, err)
		}
		if !v.OK {
			bad = append(bad, fmt.Sprintf("group %s: %s: %s", groups[i].Name, v.BadFile, v.Reason))
		}
	}
	if len(bad) > 0 {
		detail := strings.Join(bad, "; ")
		r.end(ctx, step, OutcomeFailed, 1, detail)
		return results, nil, temporal.NewNonRetryableApplicationError("point "+id+" does not match its checksums at the destination: "+detail, contract.ErrTypeCorrupt, nil)
	}
	r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d groups verified", len(groups)))
	return results, window, nil
}

// quiesceTargets are the components of every group that asks for quiesce:
// the group's own components, or the whole cell when it lists none.
func quiesceTargets(p *plan.Plan) []plan.Component {
	var names []string
	for _, g := range p.Storage.Groups {
		if !g.Quiesce {
			continue
		}
		members := g.Components
		if len(members) == 0 {
			members = nil
			for _, c := range p.Components {
				members = append(members, c.Name)
			}
		}
		for _, m := range members {
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		}
	}
	var out []plan.Component
	for _, n := range names {
		if c, ok := findComponent(p, n); ok {
			out = append(out, c)
		}
	}
	return out
}

// forEachComponent runs one activity per component at once and returns the
// components it succeeded for, so a partial quiesce can be undone, with
// their results.
func forEachComponent(ctx workflow.Context, r *run, cs []plan.Component, verb string, run func(workflow.Context, plan.Component) workflow.Future) ([]plan.Component, []contract.StepResult, error) {
	futures := make([]workflow.Future, len(cs))
	steps := make([]int, len(cs))
	for i, c := range cs {
		steps[i] = r.begin(ctx, verb+" "+c.Name)
		futures[i] = run(ctx, c)
	}
	var done []plan.Component
	var results []contract.StepResult
	var errs []error
	for i, f := range futures {
		var sr contract.StepResult
		if err := f.Get(ctx, &sr); err != nil {
			r.end(ctx, steps[i], OutcomeFailed, 1, rootMessage(err))
			errs = append(errs, fmt.Errorf("%s %s: %w", verb, cs[i].Name, err))
			continue
		}
		r.end(ctx, steps[i], OutcomeOK, sr.Attempt, sr.Evidence.Action)
		r.ranAt(steps[i], sr.Ran)
		r.output(steps[i], sr.Evidence)
		done = append(done, cs[i])
		results = append(results, sr)
	}
	return done, results, errors.Join(errs...)
}

// quiesceWindow is the span writes were paused: from the earliest quiesce
// call to the latest resume returning, as the workers timed them. Nil when
// nothing was paused or a worker did not time its call (an older worker).
func quiesceWindow(paused []plan.Component, quiesced, resumed []contract.StepResult) *contract.QuiesceWindow {
	if len(paused) == 0 || len(resumed) == 0 {
		return nil
	}
	var w contract.QuiesceWindow
	for _, q := range quiesced {
		if q.Started.IsZero() {
			return nil
		}
		if w.Start.IsZero() || q.Started.Before(w.Start) {
			w.Start = q.Started
		}
	}
	for _, r := range resumed {
		if r.Ended.IsZero() {
			return nil
		}
		if r.Ended.After(w.End) {
			w.End = r.Ended
		}
	}
	if w.End.Before(w.Start) { // clocks of different workers disagree
		w.End = w.Start
	}
	w.Duration = w.End.Sub(w.Start)
	for _, c := range paused {
		w.Components = append(w.Components, c.Name)
	}
	return &w
}

func forEachGroup(ctx workflow.Context, r *run, gs []plan.ConsistencyGroup, verb string, run func(workflow.Context, plan.ConsistencyGroup) workflow.Future) ([]contract.GroupResult, error) {
	futures := make([]workflow.Future, len(gs))
	steps := make([]int, len(gs))
	for i, g := range gs {
		steps[i] = r.begin(ctx, verb+" group "+g.Name)
		futures[i] = run(ctx, g)
	}
	out := make([]contract.GroupResult, len(gs))
	var errs []error
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			r.end(ctx, steps[i], OutcomeFailed, 1, rootMessage(err))
			errs = append(errs, fmt.Errorf("group %s: %w", gs[i].Name, err))
			continue
		}
		r.end(ctx, steps[i], OutcomeOK, 1, fmt.Sprintf("%d bytes, %d files", out[i].Bytes, out[i].Files))
		r.ranAt(steps[i], out[i].Ran)
		r.output(steps[i], out[i].Evidence)
	}
	return out, errors.Join(errs...)
}

// abandon removes what a failed backup staged; it runs even when the
// backup is cancelled.
func abandon(ctx workflow.Context, r *run, store contract.StoreRef, id string, site contract.SiteRef, groups []plan.ConsistencyGroup) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	step := r.begin(dctx, "abandon point "+id)
	err := r.act(shortOptions(dctx, 30*time.Minute, 5), siteAt(site), contract.AbandonPoint, contract.AbandonInput{
		Store: store, PointID: id, Site: site, Groups: groups,
	}).Get(dctx, nil)
	if err != nil {
		r.end(dctx, step, OutcomeFailed, 1, rootMessage(err))
		return
	}
	r.end(dctx, step, OutcomeOK, 1, "staging removed")
}

// startValidation starts a validation run for a new point and does not wait:
// the point is recorded; its validity follows.
func startValidation(ctx workflow.Context, r *run, p plan.Plan, pointID string) string {
	id := contract.ValidateID(p.Name, pointID)
	opts := r.childOptions(ctx, id, contract.KindValidate, "Validate point "+pointID+" in the sandbox")
	opts.ParentClosePolicy = 2 // abandon: the validation outlives the backup
	cctx := workflow.WithChildOptions(ctx, opts)
	f := workflow.ExecuteChildWorkflow(cctx, ValidateWorkflow, ValidateInput{Plan: p, PointID: pointID})
	// Wait for the child to start so it is not lost when the backup ends.
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("validation did not start", "point", pointID, "error", err)
		return ""
	}
	return id
}
