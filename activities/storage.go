package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/sitefs"
	"github.com/drover-dr/drover/drivers/storage"
)

func openStore(ref contract.StoreRef) (*catalog.Store, catalog.Settings, error) {
	st, s, err := catalog.OpenFromSettings(ref.Settings)
	if err != nil {
		return nil, s, temporal.NewNonRetryableApplicationError(fmt.Sprintf("recovery point store of plan %s: %v", ref.Plan, err), contract.ErrTypeBadSettings, err)
	}
	return st, s, nil
}

// storeSettings hands an object store's settings to the driver, which
// opens it where it runs (a folder store is named by its path alone).
func storeSettings(st *catalog.Store, ref contract.StoreRef) map[string]any {
	if !st.ObjectLayout() {
		return nil
	}
	return ref.Settings
}

func (a *Activities) storageDriver(name string) (storage.Driver, error) {
	d, err := a.Registry.Storage(name)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	return d, nil
}

// storageError marks failures no retry can fix, with the error type the
// workflow branches on.
func storageError(op string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("%s: %v", op, err)
	switch {
	case errors.Is(err, catalog.ErrStoreFull):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeStoreFull, err)
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, catalog.ErrCorrupt):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeCorrupt, err)
	case storage.Permanent(err):
		return temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeBadSettings, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// heartbeat turns a driver's progress into heartbeats carrying bytes done
// and, when known, the bytes in all, so a dead worker is noticed and the Web
// UI and drover status show how far a copy got and how long it has to go.
func heartbeat(ctx context.Context, total int64) storage.Progress {
	return func(done int64) { activity.RecordHeartbeat(ctx, contract.TransferProgress{Done: done, Total: total}) }
}

// storedGroupSize is the bytes a group holds in the store (staged or
// committed), which ship, verify and restore read or write; 0 when it
// cannot be told, which only costs the progress its ETA.
func storedGroupSize(ref contract.StoreRef, pointID, group string) int64 {
	st, _, err := catalog.OpenFromSettings(ref.Settings)
	if err != nil {
		return 0
	}
	loc, err := st.LocateGroup(ref.Plan, pointID, group)
	if err != nil {
		return 0
	}
	size := loc.Group.Size
	if m := loc.Manifest; m != nil && m.BaseID != "" {
		// A cumulative point restores on its full.
		if base, err := st.LocateGroup(ref.Plan, m.BaseID, group); err == nil {
			size += base.Group.Size
		}
	}
	return size
}

func (a *Activities) request(in contract.GroupInput) (storage.Driver, storage.Request, error) {
	d, err := a.storageDriver(in.Group.Driver)
	if err != nil {
		return nil, storage.Request{}, err
	}
	st, _, err := openStore(in.Store)
	if err != nil {
		return nil, storage.Request{}, err
	}
	return d, storage.Request{
		Plan: in.Store.Plan, PointID: in.PointID, Store: st.Root, StoreSettings: storeSettings(st, in.Store), Site: driverSite(in.Site),
		Group: storage.Group{Name: in.Group.Name, Driver: in.Group.Driver, Components: in.Group.Components, Settings: in.Group.Settings},
		Mode:  catalog.Mode(in.Mode), BaseID: in.BaseID, Quiesced: in.Quiesced,
	}, nil
}

// PreflightBackup checks the store is reachable and writable, picks full or
// cumulative (a cumulative point needs a usable full to build on), and
// checks there is room for the estimated size. It changes nothing, so a
// failed preflight leaves no partial point.
func (a *Activities) PreflightBackup(ctx context.Context, in contract.PreflightInput) (contract.PreflightResult, error) {
	st, settings, err := openStore(in.Store)
	if err != nil {
		return contract.PreflightResult{}, err
	}
	if err := st.CheckWritable(in.Store.Plan); err != nil {
		return contract.PreflightResult{}, storageError("recovery point store", err)
	}
	res := contract.PreflightResult{Mode: in.Mode}
	points, err := st.List(in.Store.Plan)
	if err != nil {
		return res, storageError("list recovery points", err)
	}
	base := newestUsableFull(points)
	switch {
	case in.Mode == contract.ModeFull:
		res.Reason = "full point asked for"
	case base == nil:
		res.Mode, res.Reason = contract.ModeFull, "no usable full point to build a cumulative one on"
	case in.Mode == "" && in.FullEvery > 0 && in.Now.Sub(base.Instant) >= in.FullEvery:
		res.Mode, res.Reason = contract.ModeFull, fmt.Sprintf("newest full %s is older than %s", base.ID, in.FullEvery)
	default:
		res.Mode, res.BaseID, res.Reason = contract.ModeCumulative, base.ID, "changes since full "+base.ID
	}
	est, err := a.estimate(ctx, in, res)
	if errors.Is(err, storage.ErrBaseUnavailable) && res.Mode == contract.ModeCumulative {
		// The base's source snapshot is gone (a btrfs parent deleted by
		// hand): a cumulative point cannot be made, a full one can.
		res.Mode, res.BaseID, res.Reason = contract.ModeFull, "", "the base full's snapshot is gone: "+err.Error()
		est, err = a.estimate(ctx, in, res)
	}
	if err != nil {
		return res, err
	}
	res.EstimateBytes = est
	need := int64(float64(res.EstimateBytes) * settings.FreeMargin)
	if err := st.CheckFree(need); err != nil {
		return res, storageError("preflight", err)
	}
	if free, err := st.Free(); err == nil {
		res.FreeBytes = free
	}
	a.Logger.Info("backup preflight", zap.String("mode", string(res.Mode)), zap.String("base", res.BaseID), zap.Int64("estimate", res.EstimateBytes))
	return res, nil
}

func (a *Activities) estimate(ctx context.Context, in contract.PreflightInput, res contract.PreflightResult) (int64, error) {
	var total int64
	for _, g := range in.Groups {
		d, req, err := a.request(contract.GroupInput{Store: in.Store, Site: in.Site, Group: g, Mode: res.Mode, BaseID: res.BaseID, PointID: "preflight"})
		if err != nil {
			return 0, err
		}
		est, err := d.Estimate(ctx, req)
		if errors.Is(err, storage.ErrBaseUnavailable) {
			return 0, err
		}
		if err != nil {
			return 0, storageError("estimate group "+g.Name, err)
		}
		total += est.Bytes
	}
	return total, nil
}

func newestUsableFull(points []catalog.Point) *catalog.Point {
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		if p.Mode == catalog.ModeFull && p.Usable() {
			return &points[i]
		}
	}
	return nil
}

// QuiesceComponent pauses a component's writes through its middleware
// driver, for a consistent capture.
func (a *Activities) QuiesceComponent(ctx context.Context, in contract.ComponentInput) (contract.StepResult, error) {
	q, err := a.quiescer(in)
	if err != nil {
		return contract.StepResult{}, err
	}
	started := time.Now()
	ev, err := q.Quiesce(ctx, Target(in))
	if err != nil {
		if drivers.Permanent(err) {
			return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev)}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("quiesce %s: %v", in.Component.Name, err), contract.ErrTypeQuiesce, err)
		}
		return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev)}, fmt.Errorf("quiesce %s: %w", in.Component.Name, err)
	}
	return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Attempt: int(activity.GetInfo(ctx).Attempt), Ran: a.ran(in.Site, in.Host),
		Started: started, Ended: time.Now()}, nil
}

// ResumeComponent resumes a component's writes. Resuming a component that is
// not paused is a no-op, so the backup may always call it.
func (a *Activities) ResumeComponent(ctx context.Context, in contract.ComponentInput) (contract.StepResult, error) {
	q, err := a.quiescer(in)
	if err != nil {
		return contract.StepResult{}, err
	}
	started := time.Now()
	ev, err := q.Resume(ctx, Target(in))
	if err != nil {
		return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev)}, classify("resume "+in.Component.Name, err)
	}
	return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Attempt: int(activity.GetInfo(ctx).Attempt), Ran: a.ran(in.Site, in.Host),
		Started: started, Ended: time.Now()}, nil
}

func (a *Activities) quiescer(in contract.ComponentInput) (drivers.Quiescer, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	q, ok := d.(drivers.Quiescer)
	if !ok {
		msg := fmt.Sprintf("component %s: driver %q cannot pause writes; set quiesce: false on its group or use a driver that can", in.Component.Name, in.Component.Driver)
		return nil, temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeQuiesce, nil)
	}
	return q, nil
}

// CaptureGroup takes one group's data at one instant into the point's
// staging area. A retry starts the group over.
func (a *Activities) CaptureGroup(ctx context.Context, in contract.GroupInput) (contract.GroupResult, error) {
	d, req, err := a.request(in)
	if err != nil {
		return contract.GroupResult{}, err
	}
	r, err := d.Capture(ctx, req, heartbeat(ctx, 0))
	return groupResult(r, a.ran(in.Site, in.Host)), storageError(fmt.Sprintf("capture group %s of point %s", in.Group.Name, in.PointID), err)
}

// ShipGroup moves a captured group into the store.
func (a *Activities) ShipGroup(ctx context.Context, in contract.GroupInput) (contract.GroupResult, error) {
	d, req, err := a.request(in)
	if err != nil {
		return contract.GroupResult{}, err
	}
	r, err := d.Ship(ctx, req, heartbeat(ctx, storedGroupSize(in.Store, in.PointID, in.Group.Name)))
	return groupResult(r, a.ran(in.Site, in.Host)), storageError(fmt.Sprintf("ship group %s of point %s", in.Group.Name, in.PointID), err)
}

// VerifyGroup checks every stored file of a group against its checksum. A
// damaged file is a finding (OK false), not an error.
func (a *Activities) VerifyGroup(ctx context.Context, in contract.GroupInput) (contract.GroupVerify, error) {
	d, req, err := a.request(in)
	if err != nil {
		return contract.GroupVerify{}, err
	}
	r, err := d.Verify(ctx, req, heartbeat(ctx, storedGroupSize(in.Store, in.PointID, in.Group.Name)))
	return groupVerify(r), storageError(fmt.Sprintf("verify group %s of point %s", in.Group.Name, in.PointID), err)
}

// CommitPoint writes the point's manifest last, so the point exists only
// once all of it is in the store. Committing twice returns the same point.
func (a *Activities) CommitPoint(ctx context.Context, in contract.CommitInput) (contract.Point, error) {
	st, _, err := openStore(in.Store)
	if err != nil {
		return contract.Point{}, err
	}
	info := catalog.CommitInfo{
		Mode: catalog.Mode(in.Mode), BaseID: in.BaseID, Started: in.Started, Ended: in.Ended, Groups: in.Groups, Cold: in.Cold,
		Quiesce: catalogQuiesce(in.Quiesce),
	}
	if c := in.Configuration; c != nil {
		// The configuration was first seen when the first point holding
		// it says so, if that is earlier than what this run knows.
		first := c.FirstSeen
		if pts, err := st.List(in.Store.Plan); err == nil {
			first = catalog.FirstSeen(pts, c.Fingerprint, first)
		}
		info.Configuration = &catalog.Configuration{Fingerprint: c.Fingerprint, FirstSeen: first.UTC()}
	}
	m, err := st.Commit(in.Store.Plan, in.PointID, info)
	if err != nil {
		return contract.Point{}, storageError("commit point "+in.PointID, err)
	}
	a.Logger.Info("recovery point committed", zap.String("point", m.ID), zap.String("mode", string(m.Mode)), zap.Int64("size", m.Size))
	return point(m.Summary()), nil
}

// AbandonPoint removes a point's staging area and releases driver-held
// snapshots, so a failed backup leaves nothing that looks like a point. A
// committed point is left alone.
func (a *Activities) AbandonPoint(ctx context.Context, in contract.AbandonInput) error {
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	if ok, err := st.Exists(in.Store.Plan, in.PointID); err == nil && ok {
		return nil
	}
	var errs []error
	for _, g := range in.Groups {
		d, req, err := a.request(contract.GroupInput{Store: in.Store, PointID: in.PointID, Site: in.Site, Group: g})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := d.Release(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("release group %s: %w", g.Name, err))
		}
	}
	if _, err := st.CollectGarbage(in.Store.Plan, nil, 0); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ApplyRetention deletes the points the policy does not keep (never the
// newest valid point, nor a full a kept cumulative point needs), releases
// their snapshots, and clears abandoned staging.
func (a *Activities) ApplyRetention(ctx context.Context, in contract.RetentionInput) (contract.RetentionResult, error) {
	st, settings, err := openStore(in.Store)
	if err != nil {
		return contract.RetentionResult{}, err
	}
	points, err := st.List(in.Store.Plan)
	if err != nil {
		return contract.RetentionResult{}, storageError("list recovery points", err)
	}
	var res contract.RetentionResult
	for _, d := range catalog.SelectRetention(points, *settings.Retention) {
		res.Decisions = append(res.Decisions, contract.RetentionDecision{ID: d.ID, Keep: d.Keep, Reason: d.Reason})
	}
	for _, d := range res.Decisions {
		if d.Keep {
			continue
		}
		for _, g := range in.Groups {
			drv, req, err := a.request(contract.GroupInput{Store: in.Store, PointID: d.ID, Site: in.Site, Group: g})
			if err == nil {
				if _, err := drv.Release(ctx, req); err != nil {
					a.Logger.Warn("release snapshot of deleted point", zap.String("point", d.ID), zap.Error(err))
				}
			}
		}
		if err := st.Delete(in.Store.Plan, d.ID); err != nil {
			return res, storageError("delete point "+d.ID, err)
		}
		res.Deleted = append(res.Deleted, d.ID)
		a.Logger.Info("retention deleted point", zap.String("point", d.ID), zap.String("reason", d.Reason))
	}
	if _, err := st.CollectGarbage(in.Store.Plan, in.Active, time.Hour); err != nil {
		a.Logger.Warn("collect store garbage", zap.Error(err))
	}
	return res, nil
}

// ChoosePoint returns the newest valid point (or the one named), read from
// the catalog in the store: it needs nothing from Temporal's history, so a
// fresh orchestrator can fail over from it.
func (a *Activities) ChoosePoint(ctx context.Context, in contract.ChooseInput) (contract.Point, error) {
	p, err := a.choosePoint(in)
	return point(p), err
}

func (a *Activities) choosePoint(in contract.ChooseInput) (catalog.Point, error) {
	st, _, err := openStore(in.Store)
	if err != nil {
		return catalog.Point{}, err
	}
	points, err := st.List(in.Store.Plan)
	if err != nil {
		return catalog.Point{}, storageError("list recovery points", err)
	}
	byID := catalog.ByID(points)
	if in.PointID != "" {
		for _, p := range points {
			if p.ID != in.PointID {
				continue
			}
			if why := catalog.Unrestorable(byID, p); why != "" {
				return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("point %s cannot be restored: %s", p.ID, why), contract.ErrTypeNoPoint, nil)
			}
			return p, nil
		}
		return catalog.Point{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no point %s of plan %s in %s", in.PointID, in.Store.Plan, st.Root), contract.ErrTypeNoPoint, nil)
	}
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		// A cumulative point whose full is damaged or gone cannot be
		// restored, however valid it was found.
		if slices.Contains(in.Exclude, p.ID) || catalog.Unrestorable(byID, p) != "" {
			continue
		}
		if p.Validity.State == catalog.Valid || (in.AllowUnverified && p.Validity.State == catalog.Unverified) {
			return p, nil
		}
	}
	if in.PreferValidated {
		// No validated point: the newest intact one, which the failover
		// names as such before it restores it.
		for i := len(points) - 1; i >= 0; i-- {
			p := points[i]
			if !slices.Contains(in.Exclude, p.ID) && catalog.Unrestorable(byID, p) == "" && p.Validity.State == catalog.Unverified {
				return p, nil
			}
		}
	}
	what := "valid"
	if in.AllowUnverified {
		what = "usable"
	}
	return catalog.Point{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("no %s recovery point of plan %s in %s (%d points listed)", what, in.Store.Plan, st.Root, len(points)), contract.ErrTypeNoPoint, nil)
}

// SetValidity records a point valid or invalid, with the reason and run.
func (a *Activities) SetValidity(ctx context.Context, in contract.ValidityInput) error {
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	if err := st.SetValidity(in.Store.Plan, in.PointID, catalogValidity(in.Validity)); err != nil {
		return storageError("record validity of "+in.PointID, err)
	}
	a.Logger.Info("point validity recorded", zap.String("point", in.PointID), zap.String("state", string(in.Validity.State)), zap.String("reason", in.Validity.Reason))
	return nil
}

// RestoreGroup puts a group's data into the target site's data root,
// replacing what is there (a retry redoes it from the start). It refuses an
// invalid point and any file that does not match its checksum, naming it.
func (a *Activities) RestoreGroup(ctx context.Context, in contract.RestoreInput) (contract.GroupResult, error) {
	r, err := a.restoreGroup(ctx, in)
	return groupResult(r, a.ran(in.Site, in.Host)), err
}

func (a *Activities) restoreGroup(ctx context.Context, in contract.RestoreInput) (storage.Result, error) {
	d, err := a.storageDriver(in.Group.Driver)
	if err != nil {
		return storage.Result{}, err
	}
	st, _, err := openStore(in.Store)
	if err != nil {
		return storage.Result{}, err
	}
	r, err := d.Restore(ctx, storage.RestoreRequest{
		Plan: in.Store.Plan, PointID: in.PointID, Store: st.Root, StoreSettings: storeSettings(st, in.Store), Site: driverSite(in.Site),
		Group:   storage.Group{Name: in.Group.Name, Driver: in.Group.Driver, Components: in.Group.Components, Settings: in.Group.Settings},
		Replace: true, Members: in.Members,
	}, heartbeat(ctx, storedGroupSize(in.Store, in.PointID, in.Group.Name)))
	if err != nil {
		op := fmt.Sprintf("restore group %s of point %s into %s", in.Group.Name, in.PointID, in.Site.Site.Name)
		if errors.Is(err, storage.ErrCorrupt) || errors.Is(err, catalog.ErrCorrupt) {
			d := damagedBy(in.Store.Plan, in.PointID, err)
			return r, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), contract.ErrTypeCorrupt, err, d)
		}
		return r, storageError(op, err)
	}
	// The data root is drover's from now on: a drill or validation may
	// empty it again, and nothing else.
	if err := sitefs.Mark(driverSite(in.Site), in.Store.Plan); err != nil {
		return r, classify("mark the data root of "+in.Site.Site.Name, err)
	}
	a.Logger.Info("group restored", zap.String("group", in.Group.Name), zap.String("point", in.PointID), zap.String("site", in.Site.Site.Name), zap.Int64("bytes", r.Bytes))
	return r, nil
}

// damagedBy reads which point holds the damaged file: drivers name it
// relative to the store, as PLAN/points/ID/....
func damagedBy(planName, restored string, err error) contract.Damage {
	d := contract.Damage{Point: restored}
	var ce *storage.CorruptError
	if !errors.As(err, &ce) {
		return d
	}
	d.File = ce.File
	parts := strings.Split(filepath.ToSlash(ce.File), "/")
	if len(parts) >= 3 && parts[0] == planName && parts[1] == "points" && parts[2] != "" {
		d.Point = parts[2]
	}
	return d
}

// PointStats reads the catalog for the newest valid point and how long
// recent backups took.
func (a *Activities) PointStats(ctx context.Context, ref contract.StoreRef) (contract.StatsResult, error) {
	st, _, err := openStore(ref)
	if err != nil {
		return contract.StatsResult{}, err
	}
	return Stats(st, ref.Plan)
}

// Stats is PointStats on an open store, for the CLI.
func Stats(st *catalog.Store, planName string) (contract.StatsResult, error) {
	points, err := st.List(planName)
	if err != nil {
		return contract.StatsResult{}, storageError("list recovery points", err)
	}
	res := contract.StatsResult{Points: len(points)}
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		if p.Problem != "" {
			continue
		}
		if res.NewestValid == nil && p.Validity.State == catalog.Valid {
			res.NewestValid = pointRef(&points[i])
		}
		if res.NewestUsable == nil && p.Usable() {
			res.NewestUsable = pointRef(&points[i])
		}
		if len(res.RecentDurations) < 5 && !p.Ended.IsZero() && !p.Started.IsZero() {
			res.RecentDurations = append(res.RecentDurations, p.Ended.Sub(p.Started))
		}
	}
	return res, nil
}

// PlanLifecycle reads the plan's lifecycle state from the store.
func (a *Activities) PlanLifecycle(ctx context.Context, ref contract.StoreRef) (contract.Lifecycle, error) {
	st, _, err := openStore(ref)
	if err != nil {
		return contract.Lifecycle{}, err
	}
	l, err := st.ReadLifecycle(ref.Plan)
	return contract.Lifecycle{Plan: l.Plan, State: string(l.State), Primary: l.Primary}, storageError("plan lifecycle", err)
}

// RecordPrimary records in the store the site the cell runs at now, so the
// next orchestrator (and drover plan status) knows which site is primary.
func (a *Activities) RecordPrimary(ctx context.Context, in contract.PrimaryInput) error {
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	_, err = st.SetPrimary(in.Store.Plan, in.Site, in.Detail, in.Now)
	return storageError("record the primary site", err)
}

// AfterRestore runs the product step a component's restored data needs
// before the server may start on it (DB2: db2inidb as snapshot for a copy
// taken under write suspend). A driver with no such step does nothing.
func (a *Activities) AfterRestore(ctx context.Context, in contract.ComponentInput) (contract.StepResult, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return contract.StepResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	pr, ok := d.(drivers.PostRestorer)
	if !ok {
		return contract.StepResult{Component: in.Component.Name, Ran: a.ran(in.Site, in.Host),
			Evidence: contract.Evidence{Action: "none: driver " + in.Component.Driver + " needs no step after a restore", AlreadyDone: true}}, nil
	}
	ev, err := pr.AfterRestore(ctx, Target(in))
	if err != nil {
		return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev)}, classify("after the restore of "+in.Component.Name, err)
	}
	return contract.StepResult{Component: in.Component.Name, Evidence: evidence(ev), Attempt: int(activity.GetInfo(ctx).Attempt), Ran: a.ran(in.Site, in.Host)}, nil
}
