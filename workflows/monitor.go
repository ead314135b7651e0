package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// MonitorInput configures the RPO monitor; the state fields carry over
// continue-as-new.
type MonitorInput struct {
	Plan plan.Plan `json:"plan"`
	// Interval between checks; a tenth of the RPO (at least 10s, at most
	// 5m) when zero.
	Interval time.Duration `json:"interval,omitempty"`
	// ChecksPerRun bounds the history of one run before continue-as-new.
	ChecksPerRun int       `json:"checksPerRun,omitempty"`
	Last         RPOStatus `json:"last"`
	// Since is when the monitor began (its first run), carried over
	// continue-as-new: a plan with no point yet is waiting, not breached,
	// until an RPO has passed since.
	Since time.Time `json:"since,omitzero"`
}

// RPOStatus is where the plan stands against its RPO.
type RPOStatus struct {
	Status   string        `json:"status"`
	RPO      time.Duration `json:"rpo"`
	PointID  string        `json:"pointId,omitempty"`
	Captured time.Time     `json:"captured,omitzero"`
	Age      time.Duration `json:"age"`
	// BreachedSince is when the current breach began.
	BreachedSince time.Time `json:"breachedSince,omitzero"`
	Breaches      int       `json:"breaches"`
	CheckedAt     time.Time `json:"checkedAt"`
	Error         string    `json:"error,omitempty"`
	// Trust is how far the point a failover would use now was checked:
	// validated, or intact when no point is validated.
	Trust string `json:"trust,omitempty"`
	// ValidatedPointID and ValidatedAge are the newest validated point.
	ValidatedPointID string        `json:"validatedPointId,omitempty"`
	ValidatedAge     time.Duration `json:"validatedAge,omitempty"`
	// Replicas are the replicated components' lags: each one's RPO.
	Replicas []ReplicaStatus `json:"replicas,omitempty"`
	// Configuration is the configuration watch, when the plan has one.
	Configuration *ConfigWatchStatus `json:"configuration,omitempty"`
}

// ConfigWatchStatus is what the watch of the cell's configuration knows:
// the fingerprint seen last and since when, and the backup it asked for.
type ConfigWatchStatus struct {
	Fingerprint string    `json:"fingerprint,omitempty"`
	FirstSeen   time.Time `json:"firstSeen,omitzero"`
	CheckedAt   time.Time `json:"checkedAt,omitzero"`
	Parts       []string  `json:"parts,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Backup is the backup started for BackupFor at BackupAt.
	Backup    string    `json:"backup,omitempty"`
	BackupFor string    `json:"backupFor,omitempty"`
	BackupAt  time.Time `json:"backupAt,omitzero"`
	Backups   int       `json:"backups"`
}

// versionConfigWatch makes the RPO monitor watch the cell's configuration
// and take a backup whenever it changes (seed 000 §4.1).
const versionConfigWatch = "rpo-monitor-configuration-watch"

func monitorInterval(p *plan.Plan, d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return min(max(p.RPO.D()/10, 10*time.Second), 5*time.Minute)
}

// RPOMonitorWorkflow tracks the age of the newest valid point in the
// secondary store against the plan's RPO, answers the rpo query, keeps
// DroverRPOStatus up to date for the Web UI, and logs an alert when the RPO
// is breached. It continues as new to keep its history small.
func RPOMonitorWorkflow(ctx workflow.Context, in MonitorInput) (err error) {
	r, err := newRun(ctx, contract.KindMonitor, in.Plan.Name)
	if err != nil {
		return err
	}
	defer func() { r.finish(ctx, err) }()
	st := in.Last
	st.RPO = in.Plan.RPO.D()
	if err := workflow.SetQueryHandler(ctx, contract.QueryRPO, func() (RPOStatus, error) { return st, nil }); err != nil {
		return err
	}
	checks := in.ChecksPerRun
	if checks <= 0 {
		checks = 500
	}
	interval := monitorInterval(&in.Plan, in.Interval)
	repl := usesReplication(ctx, &in.Plan)
	if in.Since.IsZero() {
		in.Since = workflow.GetInfo(ctx).WorkflowStartTime
		if repl {
			// The plan was just enabled: its standbys must stream before
			// their lag means anything.
			r.phase(ctx, "seed-standbys")
			st.Replicas = seedStandbys(ctx, r, &in.Plan)
		}
	}
	store := storeRef(&in.Plan, nil)
	r.notifyWith(&in.Plan)
	log := workflow.GetLogger(ctx)
	r.phase(ctx, "monitoring")
	watch := in.Plan.Storage.Schedule.OnChange
	if watch != nil && workflow.GetVersion(ctx, versionConfigWatch, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		watch = nil
	}
	for i := 0; i < checks; i++ {
		var stats contract.StatsResult
		var err error
		if !repl || len(in.Plan.Storage.Groups) > 0 {
			err = r.act(shortOptions(ctx, time.Minute, 3), store.At, contract.PointStats, store).Get(ctx, &stats)
		}
		if repl {
			st.Replicas = checkReplicas(ctx, r, &in.Plan)
		}
		now := workflow.Now(ctx)
		prev := st.Status
		st.CheckedAt, st.Error = now, ""
		switch {
		case err != nil:
			st.Status, st.Error = contract.RPOUnknown, rootMessage(err)
		case r.safe:
			rpoOfFailoverPoint(&st, stats, now)
			if st.Status == contract.RPONoPoint && now.Sub(in.Since) < st.RPO {
				st.Status = contract.RPOWaiting
			}
		case stats.NewestValid == nil:
			st.Status, st.PointID, st.Captured, st.Age = contract.RPONoPoint, "", time.Time{}, 0
		default:
			st.PointID, st.Captured = stats.NewestValid.ID, stats.NewestValid.Instant
			st.Age = now.Sub(st.Captured)
			st.Status = contract.RPOOk
			if st.Age > st.RPO {
				st.Status = contract.RPOBreached
			}
		}
		if repl {
			rpoOfReplicas(&st, &in.Plan)
		}
		breach := st.Status == contract.RPOBreached || st.Status == contract.RPONoPoint
		if breach && (prev != contract.RPOBreached && prev != contract.RPONoPoint) {
			st.BreachedSince = now
			st.Breaches++
		}
		if !breach {
			st.BreachedSince = time.Time{}
		}
		// Once per breach, not at every check (runs from before alerted
		// at every check).
		if breach && r.safe && st.Status != prev && prev != contract.RPOBreached && prev != contract.RPONoPoint {
			r.tell(ctx, contract.NotifyEvent{Type: eventRPOBreached, ID: fmt.Sprintf("%d", st.Breaches), RPOAge: st.Age, RPOTarget: st.RPO,
				Message: fmt.Sprintf("RPO of plan %s breached: %s (point %s, age %s, target %s)", in.Plan.Name, st.Status, st.PointID, st.Age.Round(time.Second), st.RPO)}, false)
		}
		if breach && (!r.safe || st.Status != prev) {
			log.Error("ALERT: RPO breached", "plan", in.Plan.Name, "status", st.Status, "age", st.Age.String(),
				"rpo", st.RPO.String(), "point", st.PointID, "since", st.BreachedSince)
		}
		if r.safe && !breach && (prev == contract.RPOBreached || prev == contract.RPONoPoint) {
			r.tell(ctx, contract.NotifyEvent{Type: eventRPORecovered, ID: fmt.Sprintf("%d", st.Breaches), RPOAge: st.Age, RPOTarget: st.RPO,
				Message: fmt.Sprintf("RPO of plan %s recovered: point %s, age %s", in.Plan.Name, st.PointID, st.Age.Round(time.Second))}, false)
			log.Info("RPO recovered", "plan", in.Plan.Name, "status", st.Status, "point", st.PointID, "age", st.Age.String())
		}
		if st.Status != prev {
			r.setRPOStatus(ctx, st.Status)
			r.status.CurrentStep = fmt.Sprintf("rpo %s: point %s (%s), age %s", st.Status, st.PointID, st.Trust, st.Age.Round(time.Second))
		}
		if watch != nil && err == nil {
			watchConfiguration(ctx, r, &in, &st, stats, *watch, now)
		}
		if err := workflow.NewTimerWithOptions(ctx, interval, workflow.TimerOptions{Summary: "next RPO check of " + in.Plan.Name}).Get(ctx, nil); err != nil {
			return err
		}
	}
	in.Last = st
	return workflow.NewContinueAsNewError(ctx, RPOMonitorWorkflow, in)
}

// rpoOfFailoverPoint judges the RPO by the point a failover would restore
// now: the newest validated one, else the newest intact one. The newest
// validated point's age is reported beside it.
func rpoOfFailoverPoint(st *RPOStatus, stats contract.StatsResult, now time.Time) {
	st.ValidatedPointID, st.ValidatedAge = "", 0
	if v := stats.NewestValid; v != nil {
		st.ValidatedPointID, st.ValidatedAge = v.ID, now.Sub(v.Instant)
	}
	pt := stats.NewestValid
	if pt == nil {
		pt = stats.NewestUsable
	}
	if pt == nil {
		st.Status, st.PointID, st.Captured, st.Age, st.Trust = contract.RPONoPoint, "", time.Time{}, 0, ""
		return
	}
	st.PointID, st.Captured, st.Age, st.Trust = pt.ID, pt.Instant, now.Sub(pt.Instant), pt.Trust()
	st.Status = contract.RPOOk
	if st.Age > st.RPO {
		st.Status = contract.RPOBreached
	}
}

// watchConfiguration fingerprints the cell's configuration at the primary
// when due and, when the newest point does not hold the configuration the
// cell runs with, starts a backup of it. A backup asked for one
// configuration is asked again only after an RPO, if no point holds it by
// then (it failed).
func watchConfiguration(ctx workflow.Context, r *run, in *MonitorInput, st *RPOStatus, stats contract.StatsResult, w plan.ConfigWatch, now time.Time) {
	cs := st.Configuration
	if cs == nil {
		cs = &ConfigWatchStatus{}
		st.Configuration = cs
	}
	if !cs.CheckedAt.IsZero() && now.Sub(cs.CheckedAt) < w.Every.D() {
		return
	}
	p := &in.Plan
	primary := siteRef(p, plan.SitePrimary)
	var cfg contract.Configuration
	err := r.look(shortOptions(ctx, 5*time.Minute, 3), siteAt(primary), contract.ConfigurationFingerprint,
		contract.FingerprintInput{Site: primary, Watch: w}).Get(ctx, &cfg)
	cs.CheckedAt = now
	if err != nil {
		cs.Error = rootMessage(err)
		return
	}
	cs.Error = ""
	if cfg.Fingerprint != cs.Fingerprint {
		if cs.Fingerprint != "" {
			workflow.GetLogger(ctx).Info("configuration changed", "plan", p.Name, "from", shortFingerprint(cs.Fingerprint), "to", shortFingerprint(cfg.Fingerprint))
		}
		cs.Fingerprint, cs.FirstSeen, cs.Parts = cfg.Fingerprint, now, cfg.Parts
	}
	newest := stats.NewestUsable
	if newest == nil {
		newest = stats.NewestValid
	}
	if newest != nil && newest.Configuration != nil && newest.Configuration.Fingerprint == cs.Fingerprint {
		return
	}
	if cs.BackupFor == cs.Fingerprint && now.Sub(cs.BackupAt) < st.RPO {
		return
	}
	id := contract.ConfigBackupID(p.Name, cs.Fingerprint)
	if cs.BackupFor == cs.Fingerprint {
		// The first backup of this configuration left no point: another
		// run under its own id.
		id = fmt.Sprintf("%s-%d", id, cs.Backups)
	}
	opts := r.childOptions(ctx, id, contract.KindBackup, "Backup of configuration "+cs.Fingerprint)
	opts.ParentClosePolicy = enumspb.PARENT_CLOSE_POLICY_ABANDON
	cctx := workflow.WithChildOptions(ctx, opts)
	f := workflow.ExecuteChildWorkflow(cctx, BackupWorkflow, BackupInput{Plan: *p, Reason: "configuration change",
		Validate:      p.Storage.Schedule.Validate == "every",
		Configuration: &contract.Configuration{Fingerprint: cs.Fingerprint, FirstSeen: cs.FirstSeen}})
	cs.BackupFor, cs.BackupAt, cs.Backups = cs.Fingerprint, now, cs.Backups+1
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		cs.Error = "backup of configuration " + shortFingerprint(cs.Fingerprint) + " did not start: " + rootMessage(err)
		return
	}
	cs.Backup = id
	r.status.CurrentStep = fmt.Sprintf("configuration %s first seen %s: backup %s started", shortFingerprint(cs.Fingerprint), cs.FirstSeen.UTC().Format(time.RFC3339), id)
}
