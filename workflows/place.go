package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// Every step runs where its effect is: on the queue of the site (or host) it
// acts on, so only a worker placed there runs it. Runs from before sites had
// queues send every activity to the orchestrator's queue.
const versionSites = "sites"

// siteStartTimeout is how long a step placed at a site may wait for a worker
// there to pick it up. A site whose workers died mid-run turns into the
// site-unreachable gate after this, not after the step's start-to-close
// timeout (hours for a capture).
const siteStartTimeout = time.Minute

// probeStartTimeout is the same for a look at a site that may well be gone
// (the primary in an unplanned failover): nobody waits for it.
const probeStartTimeout = 10 * time.Second

// probeGoneFor is how long a site whose worker did not pick up a look stays
// gone for the run's later looks. Temporal lists a worker that died as a
// poller for a while, so asking again would wait out probeStartTimeout at
// every look (the preflight's, then the fence's); after this, a site that
// came back is seen again.
const probeGoneFor = 2 * time.Minute

// versionProbeGone keeps a gone site gone for probeGoneFor. Runs from before
// forgot it at the next look and asked again at the one after.
const versionProbeGone = "probe-gone"

// componentAt places a component at a site: on the site's host that stands
// for the component's host, and the host's own queue when it runs a worker.
func componentAt(site contract.SiteRef, c plan.Component) (contract.Placement, plan.Host) {
	return hostAt(site, c.Host)
}

// groupAt places a consistency group's data at a site.
func groupAt(site contract.SiteRef, g plan.ConsistencyGroup) (contract.Placement, plan.Host) {
	return hostAt(site, g.Host)
}

func hostAt(site contract.SiteRef, name string) (contract.Placement, plan.Host) {
	// Site.Host ranges over a map only to take its single entry.
	h, _ := site.Site.Host(name) //workflowcheck:ignore
	return contract.Placement{Site: site.Site.Name, Host: h.Name, HostWorker: h.Worker}, h
}

// siteAt places a step that acts on a site as a whole (its data root, its
// verification) at the site's own queue.
func siteAt(site contract.SiteRef) contract.Placement {
	return contract.Placement{Site: site.Site.Name}
}

// storeAt places the steps that read and write the catalog where the store is.
func storeAt(p *plan.Plan) contract.Placement {
	return placementOf(p, p.Storage.StoreAt)
}

// placementOf places a store at its site and host.
func placementOf(p *plan.Plan, at plan.StoreSite) contract.Placement {
	where := contract.Placement{Site: at.Site, Host: at.Host}
	for _, s := range []*plan.Site{p.Sites.Primary, p.Sites.Secondary, p.Sites.Sandbox} {
		if s != nil && s.Name == at.Site && at.Host != "" {
			where.HostWorker = s.Hosts[at.Host].Worker
		}
	}
	if where.Site == "" && p.Sites.Secondary != nil {
		where.Site = p.Sites.Secondary.Name
	}
	return where
}

// act runs activity name at where, with the activity options already in
// ctx. Before the first step at a queue the run checks a worker polls it; a
// step no worker picks up in time opens the site-unreachable gate (retry or
// abort) rather than waiting out its timeout.
func (r *run) act(ctx workflow.Context, where contract.Placement, name string, args ...any) workflow.Future {
	return r.dispatch(ctx, where, stepKind{}, name, args...)
}

// look runs a read-only step at a site that may be gone: it fails at once,
// without a gate, when no worker serves the site.
func (r *run) look(ctx workflow.Context, where contract.Placement, name string, args ...any) workflow.Future {
	return r.dispatch(ctx, where, stepKind{probe: true}, name, args...)
}

// actOwn runs a step whose failure the caller decides itself (a start has
// start-failed): no step-failed gate.
func (r *run) actOwn(ctx workflow.Context, where contract.Placement, name string, args ...any) workflow.Future {
	return r.dispatch(ctx, where, stepKind{ownGate: true}, name, args...)
}

// actOptional runs a step for something the plan marks optional: the
// step-failed gate also offers to skip it (the future then holds no value).
func (r *run) actOptional(ctx workflow.Context, where contract.Placement, optional bool, name string, args ...any) workflow.Future {
	return r.dispatch(ctx, where, stepKind{optional: optional}, name, args...)
}

// stepKind says how a step's failures are handled.
type stepKind struct {
	// probe: a look at a site that may be gone; no gate of any kind.
	probe bool
	// ownGate: the caller asks people itself.
	ownGate bool
	// optional: step-failed may skip it.
	optional bool
}

func (r *run) dispatch(ctx workflow.Context, where contract.Placement, kind stepKind, name string, args ...any) workflow.Future {
	if !r.placed {
		return workflow.ExecuteActivity(ctx, name, args...)
	}
	// The activity's summary in the history says where it runs.
	opts := workflow.GetActivityOptions(ctx)
	opts.Summary = fmt.Sprintf("%s at %s", name, where)
	ctx = workflow.WithActivityOptions(ctx, opts)
	f, set := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var raw converter.RawValue
		err := r.atSite(ctx, where, kind.probe, func(ctx workflow.Context) error {
			for {
				err := workflow.ExecuteActivity(ctx, name, args...).Get(ctx, &raw)
				if err == nil || kind.probe || kind.ownGate || !r.gateOnFailure(err) || ctx.Err() != nil {
					return err
				}
				decision, gerr := r.stepFailed(ctx, fmt.Sprintf("%s at %s failed after its retries: %s", name, where, rootMessage(err)), kind.optional)
				switch {
				case gerr != nil:
					return gerr
				case decision == contract.DecisionRetry:
					continue
				case decision == contract.DecisionSkip:
					raw = converter.RawValue{}
					return nil
				default:
					return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: gate %s: %s", rootMessage(err), contract.GateStepFailed, decision),
						contract.ErrTypeGateRefused, err)
				}
			}
		})
		if p := raw.Payload(); p != nil {
			// Already decoded by the codec; the future decodes it once more
			// with the same converter, which leaves plain payloads alone.
			set.Set(&commonpb.Payloads{Payloads: []*commonpb.Payload{p}}, err)
			return
		}
		set.Set(nil, err)
	})
	return f
}

func (r *run) atSite(ctx workflow.Context, where contract.Placement, probe bool, attempt func(workflow.Context) error) error {
	queue := contract.Queue(where)
	start := siteStartTimeout
	if probe {
		start = probeStartTimeout
	}
	for {
		if err := r.reachable(ctx, where, probe); err != nil {
			return err
		}
		opts := workflow.GetActivityOptions(ctx)
		opts.TaskQueue = queue
		opts.ScheduleToStartTimeout = start
		err := attempt(workflow.WithActivityOptions(ctx, opts))
		if !isScheduleToStart(err) {
			return err
		}
		delete(r.reach, queue)
		detail := fmt.Sprintf("no worker at %s picked up a step within %s (queue %s)", where, start, queue)
		if probe {
			// Later looks at this site in the run fail at once: a site
			// that did not answer is not waited for twice.
			gone := temporal.NewNonRetryableApplicationError(detail, contract.ErrTypeSiteUnreachable, nil)
			f, set := workflow.NewFuture(ctx)
			set.Set(nil, gone)
			r.reach[queue] = f
			r.goneAt[queue] = workflow.Now(ctx)
			return gone
		}
		if err := r.unreachable(ctx, where, detail); err != nil {
			return err
		}
	}
}

// reachable checks once per queue and run (and again after a step there
// was not picked up) that a worker polls the site's queue. Steps that ask at
// the same time share one check.
func (r *run) reachable(ctx workflow.Context, where contract.Placement, probe bool) error {
	queue := contract.Queue(where)
	for {
		check, ok := r.reach[queue]
		if !ok {
			var set workflow.Settable
			check, set = workflow.NewFuture(ctx)
			r.reach[queue] = check
			set.Set(nil, r.askWorkers(ctx, where))
		}
		err := check.Get(ctx, nil)
		if err == nil {
			return nil
		}
		if probe && r.remembersGone(ctx, queue) {
			if workflow.Now(ctx).Sub(r.goneAt[queue]) < probeGoneFor {
				return err
			}
			// Long enough ago that the site may be back: ask again.
			delete(r.reach, queue)
			delete(r.goneAt, queue)
			continue
		}
		delete(r.reach, queue)
		if probe || !isSiteUnreachable(err) {
			return err
		}
		if err := r.unreachable(ctx, where, rootMessage(err)); err != nil {
			return err
		}
	}
}

// remembersGone says whether this run keeps a site whose worker did not
// pick up a look gone for probeGoneFor.
func (r *run) remembersGone(ctx workflow.Context, queue string) bool {
	_, ok := r.goneAt[queue]
	return ok && workflow.GetVersion(ctx, versionProbeGone, workflow.DefaultVersion, 1) == 1
}

func (r *run) askWorkers(ctx workflow.Context, where contract.Placement) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           contract.OrchestratorQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         shortRetry(3),
	})
	var res contract.SiteWorkersResult
	if err := workflow.ExecuteActivity(actx, contract.SiteWorkers, contract.SiteWorkersInput{Placement: where}).Get(ctx, &res); err != nil {
		return fmt.Errorf("ask whether %s has workers: %w", where, err)
	}
	if len(res.Workers) == 0 {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("no drover worker polls %s's queue %s (start one there: drover worker --site %s%s)",
				where, res.Queue, where.Site, hostFlag(where)), contract.ErrTypeSiteUnreachable, nil)
	}
	return nil
}

func hostFlag(where contract.Placement) string {
	if where.HostWorker {
		return " --host " + where.Host
	}
	return ""
}

// unreachable asks a person at the site-unreachable gate whether to try the
// site again (once a worker is back) or abort. Several steps finding the
// same site gone share one gate. Runs without the gate in their plan, or
// with nobody to ask, fail.
func (r *run) unreachable(ctx workflow.Context, where contract.Placement, detail string) error {
	fail := func(why string) error {
		return temporal.NewNonRetryableApplicationError(detail+why, contract.ErrTypeSiteUnreachable, nil)
	}
	if r.gk == nil {
		return fail("")
	}
	if _, ok := findGate(r.gk.plan, contract.GateSiteUnreachable); !ok {
		return fail(" (the plan has no " + contract.GateSiteUnreachable + " gate to ask whether to wait)")
	}
	if pending, ok := r.siteGates[where.Site]; ok {
		return pending.Get(ctx, nil)
	}
	decided, set := workflow.NewFuture(ctx)
	r.siteGates[where.Site] = decided
	decision, err := r.gk.wait(ctx, gateRequest{Name: contract.GateSiteUnreachable,
		Detail:  fmt.Sprintf("site %s is unreachable: %s", where, detail),
		Options: []string{contract.DecisionRetry, contract.DecisionAbort}})
	delete(r.siteGates, where.Site)
	switch {
	case err != nil:
	case decision == contract.DecisionRetry:
	default:
		err = fail(fmt.Sprintf("; gate %s: %s", contract.GateSiteUnreachable, decision))
	}
	set.Set(nil, err)
	return err
}

// gateOnFailure says whether a failed step goes to the step-failed gate:
// when the run has the safe defaults, someone to ask, the gate in its plan,
// and the failure is one the workflow does not handle itself (typed errors
// such as a damaged point or bad settings are handled where they are made;
// a step no worker picked up is site-unreachable's).
func (r *run) gateOnFailure(err error) bool {
	if !r.safe || r.gk == nil || isScheduleToStart(err) || temporal.IsCanceledError(err) {
		return false
	}
	if _, ok := findGate(r.gk.plan, contract.GateStepFailed); !ok {
		return false
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && (app.NonRetryable() || app.Type() != "" && strings.Contains(contractErrorTypes, "|"+app.Type()+"|")) {
		return false
	}
	return true
}

// contractErrorTypes are the error types the workflows branch on.
const contractErrorTypes = "|" + contract.ErrTypeBadSettings + "|" + contract.ErrTypeNotReady + "|" + contract.ErrTypeStoreFull +
	"|" + contract.ErrTypeCorrupt + "|" + contract.ErrTypeNoPoint + "|" + contract.ErrTypeQuiesce + "|" + contract.ErrTypeBadPlan +
	"|" + contract.ErrTypeGateRefused + "|" + contract.ErrTypeStartFailed + "|" + contract.ErrTypeRecoveryStalled +
	"|" + contract.ErrTypeSiteUnreachable + "|" + contract.ErrTypeTargetRunning + "|"

// stepFailed asks at the step-failed gate what to do with a step that still
// fails: retry it, skip it (optional steps only) or abort the run.
func (r *run) stepFailed(ctx workflow.Context, detail string, optional bool) (string, error) {
	options := []string{contract.DecisionRetry, contract.DecisionAbort}
	if optional {
		options = []string{contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort}
	}
	return r.gk.wait(ctx, gateRequest{Name: contract.GateStepFailed, Detail: detail, Options: options})
}

func isScheduleToStart(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te) && te.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

func isSiteUnreachable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == contract.ErrTypeSiteUnreachable
}

// ranAt records where a step acted and which worker ran it.
func (r *run) ranAt(i int, ran contract.Ran) {
	s := &r.status.Steps[i]
	if ran.Site != "" {
		s.Site, s.Host = ran.Site, ran.Host
	}
	if ran.Worker != "" {
		s.Worker = ran.Worker
	}
}

// output keeps the head and tail of what a step's command printed.
func (r *run) output(i int, ev contract.Evidence) {
	if ev.Output != "" {
		r.status.Steps[i].Output = report.HeadTail(ev.Output)
	}
}

// absorb adds a child run's steps and decided gates to this run's record,
// named by the child, so the parent's report tells the whole run.
func (r *run) absorb(child string, steps []StepRecord, gates []GateRecord) {
	for _, s := range steps {
		s.Run = child
		r.status.Steps = append(r.status.Steps, s)
	}
	for _, g := range gates {
		g.Run = child
		r.status.Gates = append(r.status.Gates, g)
	}
}

// placeStep records where a step acts, before it runs.
func (r *run) placeStep(i int, where contract.Placement) {
	r.status.Steps[i].Site, r.status.Steps[i].Host = where.Site, where.Host
}

// backups pauses or resumes the plan's backup schedule through the
// orchestrator. A schedule that cannot be changed is a note in the report,
// not a failed run: the cell matters more than its next backup.
func (r *run) backups(ctx workflow.Context, rep *report.Report, ch contract.ScheduleChange) {
	step := r.begin(ctx, "backup schedule")
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           contract.OrchestratorQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         shortRetry(5),
	})
	var res contract.ScheduleResult
	if err := workflow.ExecuteActivity(actx, contract.SetBackupSchedule, ch).Get(ctx, &res); err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		rep.Notes = append(rep.Notes, "the backup schedule could not be changed ("+rootMessage(err)+"): "+ch.Note)
		return
	}
	r.end(ctx, step, OutcomeOK, 1, res.Detail)
}

// recordPrimary records in the store which site the cell runs at now.
func (r *run) recordPrimary(ctx workflow.Context, rep *report.Report, store contract.StoreRef, site, detail string) {
	step := r.begin(ctx, "record "+site+" as the primary")
	err := r.act(shortOptions(ctx, 2*time.Minute, 5), store.At, contract.RecordPrimary,
		contract.PrimaryInput{Store: store, Site: site, Detail: detail, Now: workflow.Now(ctx)}).Get(ctx, nil)
	if err != nil {
		r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		rep.Notes = append(rep.Notes, "the store does not say "+site+" is the primary now: "+rootMessage(err))
		return
	}
	r.end(ctx, step, OutcomeOK, 1, detail)
}
