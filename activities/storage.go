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
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/plan"
)

// Error types of storage activities.
const (
	// ErrTypeStoreFull: not enough room in the store; older points are kept.
	ErrTypeStoreFull = "StoreFull"
	// ErrTypeCorrupt: a recovery point's data does not match its checksums.
	ErrTypeCorrupt = "CorruptPoint"
	// ErrTypeNoPoint: there is no usable recovery point.
	ErrTypeNoPoint = "NoRecoveryPoint"
	// ErrTypeQuiesce: a component could not pause its writes.
	ErrTypeQuiesce = "QuiesceFailed"
)

// StoreRef locates the recovery point store: the plan's storage.store
// settings, opened inside the activity so ${VAR} expands on the worker.
type StoreRef struct {
	Plan     string        `json:"plan"`
	Settings plan.Settings `json:"settings"`
}

func openStore(ref StoreRef) (*catalog.Store, catalog.Settings, error) {
	st, s, err := catalog.OpenFromSettings(ref.Settings)
	if err != nil {
		return nil, s, temporal.NewNonRetryableApplicationError(fmt.Sprintf("recovery point store of plan %s: %v", ref.Plan, err), ErrTypeBadSettings, err)
	}
	return st, s, nil
}

// storeSettings hands an object store's settings to the driver, which
// opens it where it runs (a folder store is named by its path alone).
func storeSettings(st *catalog.Store, ref StoreRef) map[string]any {
	if !st.ObjectLayout() {
		return nil
	}
	return ref.Settings
}

func (a *Activities) storageDriver(name string) (storage.Driver, error) {
	d, err := a.Registry.Storage(name)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	sd, ok := d.(storage.Driver)
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("driver %q is not a storage driver", name), ErrTypeBadSettings, nil)
	}
	return sd, nil
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
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeStoreFull, err)
	case errors.Is(err, storage.ErrCorrupt), errors.Is(err, catalog.ErrCorrupt):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeCorrupt, err)
	case storage.Permanent(err):
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeBadSettings, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// heartbeat turns a driver's progress into heartbeats carrying bytes done,
// so a dead worker is noticed and the Web UI shows how far a copy got.
func heartbeat(ctx context.Context) storage.Progress {
	return func(done int64) { activity.RecordHeartbeat(ctx, done) }
}

// GroupInput is one consistency group of one point.
type GroupInput struct {
	Store    StoreRef              `json:"store"`
	PointID  string                `json:"pointId"`
	Site     SiteRef               `json:"site"`
	Group    plan.ConsistencyGroup `json:"group"`
	Mode     catalog.Mode          `json:"mode"`
	BaseID   string                `json:"baseId,omitempty"`
	Quiesced bool                  `json:"quiesced,omitempty"`
}

func (a *Activities) request(in GroupInput) (storage.Driver, storage.Request, error) {
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
		Mode:  in.Mode, BaseID: in.BaseID, Quiesced: in.Quiesced,
	}, nil
}

// PreflightInput asks whether a backup can run and what kind it should be.
type PreflightInput struct {
	Store  StoreRef                `json:"store"`
	Site   SiteRef                 `json:"site"`
	Groups []plan.ConsistencyGroup `json:"groups"`
	// Mode asks for full or cumulative; empty lets the preflight decide.
	Mode catalog.Mode `json:"mode,omitempty"`
	// FullEvery forces a full point when the newest usable full is older.
	FullEvery time.Duration `json:"fullEvery,omitempty"`
	// Now is the workflow's time, so the decision does not depend on the
	// worker's clock.
	Now time.Time `json:"now"`
}

// PreflightResult is what the backup will be.
type PreflightResult struct {
	Mode   catalog.Mode `json:"mode"`
	BaseID string       `json:"baseId,omitempty"`
	// EstimateBytes is the member data the capture will read.
	EstimateBytes int64  `json:"estimateBytes"`
	FreeBytes     uint64 `json:"freeBytes"`
	Reason        string `json:"reason"`
}

// PreflightBackup checks the store is reachable and writable, picks full or
// cumulative (a cumulative point needs a usable full to build on), and
// checks there is room for the estimated size. It changes nothing, so a
// failed preflight leaves no partial point.
func (a *Activities) PreflightBackup(ctx context.Context, in PreflightInput) (PreflightResult, error) {
	st, settings, err := openStore(in.Store)
	if err != nil {
		return PreflightResult{}, err
	}
	if err := st.CheckWritable(in.Store.Plan); err != nil {
		return PreflightResult{}, storageError("recovery point store", err)
	}
	res := PreflightResult{Mode: in.Mode}
	points, err := st.List(in.Store.Plan)
	if err != nil {
		return res, storageError("list recovery points", err)
	}
	base := newestUsableFull(points)
	switch {
	case in.Mode == catalog.ModeFull:
		res.Reason = "full point asked for"
	case base == nil:
		res.Mode, res.Reason = catalog.ModeFull, "no usable full point to build a cumulative one on"
	case in.Mode == "" && in.FullEvery > 0 && in.Now.Sub(base.Instant) >= in.FullEvery:
		res.Mode, res.Reason = catalog.ModeFull, fmt.Sprintf("newest full %s is older than %s", base.ID, in.FullEvery)
	default:
		res.Mode, res.BaseID, res.Reason = catalog.ModeCumulative, base.ID, "changes since full "+base.ID
	}
	est, err := a.estimate(ctx, in, res)
	if errors.Is(err, storage.ErrBaseUnavailable) && res.Mode == catalog.ModeCumulative {
		// The base's source snapshot is gone (a btrfs parent deleted by
		// hand): a cumulative point cannot be made, a full one can.
		res.Mode, res.BaseID, res.Reason = catalog.ModeFull, "", "the base full's snapshot is gone: "+err.Error()
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

func (a *Activities) estimate(ctx context.Context, in PreflightInput, res PreflightResult) (int64, error) {
	var total int64
	for _, g := range in.Groups {
		d, req, err := a.request(GroupInput{Store: in.Store, Site: in.Site, Group: g, Mode: res.Mode, BaseID: res.BaseID, PointID: "preflight"})
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
func (a *Activities) QuiesceComponent(ctx context.Context, in ComponentInput) (StepResult, error) {
	q, err := a.quiescer(in)
	if err != nil {
		return StepResult{}, err
	}
	ev, err := q.Quiesce(ctx, target(in))
	if err != nil {
		if drivers.Permanent(err) {
			return StepResult{Component: in.Component.Name, Evidence: ev}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("quiesce %s: %v", in.Component.Name, err), ErrTypeQuiesce, err)
		}
		return StepResult{Component: in.Component.Name, Evidence: ev}, fmt.Errorf("quiesce %s: %w", in.Component.Name, err)
	}
	return StepResult{Component: in.Component.Name, Evidence: ev, Attempt: int(activity.GetInfo(ctx).Attempt)}, nil
}

// ResumeComponent resumes a component's writes. Resuming a component that is
// not paused is a no-op, so the backup may always call it.
func (a *Activities) ResumeComponent(ctx context.Context, in ComponentInput) (StepResult, error) {
	q, err := a.quiescer(in)
	if err != nil {
		return StepResult{}, err
	}
	ev, err := q.Resume(ctx, target(in))
	if err != nil {
		return StepResult{Component: in.Component.Name, Evidence: ev}, classify("resume "+in.Component.Name, err)
	}
	return StepResult{Component: in.Component.Name, Evidence: ev, Attempt: int(activity.GetInfo(ctx).Attempt)}, nil
}

func (a *Activities) quiescer(in ComponentInput) (drivers.Quiescer, error) {
	d, err := a.Registry.Middleware(in.Component.Driver)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	q, ok := d.(drivers.Quiescer)
	if !ok {
		msg := fmt.Sprintf("component %s: driver %q cannot pause writes; set quiesce: false on its group or use a driver that can", in.Component.Name, in.Component.Driver)
		return nil, temporal.NewNonRetryableApplicationError(msg, ErrTypeQuiesce, nil)
	}
	return q, nil
}

// CaptureGroup takes one group's data at one instant into the point's
// staging area. A retry starts the group over.
func (a *Activities) CaptureGroup(ctx context.Context, in GroupInput) (storage.Result, error) {
	d, req, err := a.request(in)
	if err != nil {
		return storage.Result{}, err
	}
	r, err := d.Capture(ctx, req, heartbeat(ctx))
	return r, storageError(fmt.Sprintf("capture group %s of point %s", in.Group.Name, in.PointID), err)
}

// ShipGroup moves a captured group into the store.
func (a *Activities) ShipGroup(ctx context.Context, in GroupInput) (storage.Result, error) {
	d, req, err := a.request(in)
	if err != nil {
		return storage.Result{}, err
	}
	r, err := d.Ship(ctx, req, heartbeat(ctx))
	return r, storageError(fmt.Sprintf("ship group %s of point %s", in.Group.Name, in.PointID), err)
}

// VerifyGroup checks every stored file of a group against its checksum. A
// damaged file is a finding (OK false), not an error.
func (a *Activities) VerifyGroup(ctx context.Context, in GroupInput) (storage.VerifyResult, error) {
	d, req, err := a.request(in)
	if err != nil {
		return storage.VerifyResult{}, err
	}
	r, err := d.Verify(ctx, req, heartbeat(ctx))
	return r, storageError(fmt.Sprintf("verify group %s of point %s", in.Group.Name, in.PointID), err)
}

// CommitInput records a staged point.
type CommitInput struct {
	Store   StoreRef     `json:"store"`
	PointID string       `json:"pointId"`
	Mode    catalog.Mode `json:"mode"`
	BaseID  string       `json:"baseId,omitempty"`
	Started time.Time    `json:"started"`
	Ended   time.Time    `json:"ended"`
	Groups  []string     `json:"groups"`
}

// CommitPoint writes the point's manifest last, so the point exists only
// once all of it is in the store. Committing twice returns the same point.
func (a *Activities) CommitPoint(ctx context.Context, in CommitInput) (catalog.Point, error) {
	st, _, err := openStore(in.Store)
	if err != nil {
		return catalog.Point{}, err
	}
	m, err := st.Commit(in.Store.Plan, in.PointID, catalog.CommitInfo{
		Mode: in.Mode, BaseID: in.BaseID, Started: in.Started, Ended: in.Ended, Groups: in.Groups,
	})
	if err != nil {
		return catalog.Point{}, storageError("commit point "+in.PointID, err)
	}
	a.Logger.Info("recovery point committed", zap.String("point", m.ID), zap.String("mode", string(m.Mode)), zap.Int64("size", m.Size))
	return m.Summary(), nil
}

// AbandonInput removes what a failed backup left.
type AbandonInput struct {
	Store   StoreRef                `json:"store"`
	PointID string                  `json:"pointId"`
	Site    SiteRef                 `json:"site"`
	Groups  []plan.ConsistencyGroup `json:"groups"`
}

// AbandonPoint removes a point's staging area and releases driver-held
// snapshots, so a failed backup leaves nothing that looks like a point. A
// committed point is left alone.
func (a *Activities) AbandonPoint(ctx context.Context, in AbandonInput) error {
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	if ok, err := st.Exists(in.Store.Plan, in.PointID); err == nil && ok {
		return nil
	}
	var errs []error
	for _, g := range in.Groups {
		d, req, err := a.request(GroupInput{Store: in.Store, PointID: in.PointID, Site: in.Site, Group: g})
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

// RetentionInput applies the store's retention policy.
type RetentionInput struct {
	Store  StoreRef                `json:"store"`
	Site   SiteRef                 `json:"site"`
	Groups []plan.ConsistencyGroup `json:"groups"`
	// Active are points of runs still going, whose staging must be kept.
	Active []string `json:"active,omitempty"`
}

// RetentionResult lists what was deleted and why each point was kept.
type RetentionResult struct {
	Deleted   []string           `json:"deleted"`
	Decisions []catalog.Decision `json:"decisions"`
}

// ApplyRetention deletes the points the policy does not keep (never the
// newest valid point, nor a full a kept cumulative point needs), releases
// their snapshots, and clears abandoned staging.
func (a *Activities) ApplyRetention(ctx context.Context, in RetentionInput) (RetentionResult, error) {
	st, settings, err := openStore(in.Store)
	if err != nil {
		return RetentionResult{}, err
	}
	points, err := st.List(in.Store.Plan)
	if err != nil {
		return RetentionResult{}, storageError("list recovery points", err)
	}
	res := RetentionResult{Decisions: catalog.SelectRetention(points, *settings.Retention)}
	for _, d := range res.Decisions {
		if d.Keep {
			continue
		}
		for _, g := range in.Groups {
			drv, req, err := a.request(GroupInput{Store: in.Store, PointID: d.ID, Site: in.Site, Group: g})
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

// ChooseInput asks for the point a failover or drill restores.
type ChooseInput struct {
	Store StoreRef `json:"store"`
	// PointID names a point; empty picks the newest valid one.
	PointID string `json:"pointId,omitempty"`
	// Exclude lists points already tried and abandoned in this run.
	Exclude []string `json:"exclude,omitempty"`
	// AllowUnverified also accepts unverified points when no valid one
	// exists (a validation run restores unverified points).
	AllowUnverified bool `json:"allowUnverified,omitempty"`
}

// ChoosePoint returns the newest valid point (or the one named), read from
// the catalog in the store: it needs nothing from Temporal's history, so a
// fresh orchestrator can fail over from it.
func (a *Activities) ChoosePoint(ctx context.Context, in ChooseInput) (catalog.Point, error) {
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
				return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("point %s cannot be restored: %s", p.ID, why), ErrTypeNoPoint, nil)
			}
			return p, nil
		}
		return catalog.Point{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no point %s of plan %s in %s", in.PointID, in.Store.Plan, st.Root), ErrTypeNoPoint, nil)
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
	what := "valid"
	if in.AllowUnverified {
		what = "usable"
	}
	return catalog.Point{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("no %s recovery point of plan %s in %s (%d points listed)", what, in.Store.Plan, st.Root, len(points)), ErrTypeNoPoint, nil)
}

// ValidityInput records what validation found.
type ValidityInput struct {
	Store    StoreRef         `json:"store"`
	PointID  string           `json:"pointId"`
	Validity catalog.Validity `json:"validity"`
}

// SetValidity records a point valid or invalid, with the reason and run.
func (a *Activities) SetValidity(ctx context.Context, in ValidityInput) error {
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	if err := st.SetValidity(in.Store.Plan, in.PointID, in.Validity); err != nil {
		return storageError("record validity of "+in.PointID, err)
	}
	a.Logger.Info("point validity recorded", zap.String("point", in.PointID), zap.String("state", string(in.Validity.State)), zap.String("reason", in.Validity.Reason))
	return nil
}

// RestoreInput restores one group of a point into a site.
type RestoreInput struct {
	Store   StoreRef              `json:"store"`
	PointID string                `json:"pointId"`
	Site    SiteRef               `json:"site"`
	Group   plan.ConsistencyGroup `json:"group"`
}

// RestoreGroup puts a group's data into the target site's data root,
// replacing what is there (a retry redoes it from the start). It refuses an
// invalid point and any file that does not match its checksum, naming it.
func (a *Activities) RestoreGroup(ctx context.Context, in RestoreInput) (storage.Result, error) {
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
		Replace: true,
	}, heartbeat(ctx))
	if err != nil {
		op := fmt.Sprintf("restore group %s of point %s into %s", in.Group.Name, in.PointID, in.Site.Site.Name)
		if errors.Is(err, storage.ErrCorrupt) || errors.Is(err, catalog.ErrCorrupt) {
			d := damagedBy(in.Store.Plan, in.PointID, err)
			return r, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), ErrTypeCorrupt, err, d)
		}
		return r, storageError(op, err)
	}
	a.Logger.Info("group restored", zap.String("group", in.Group.Name), zap.String("point", in.PointID), zap.String("site", in.Site.Site.Name), zap.Int64("bytes", r.Bytes))
	return r, nil
}

// Damage names the point whose stored data a restore found damaged: the
// point restored, or the full point a cumulative one builds on. It rides
// on a CorruptPoint failure as its details.
type Damage struct {
	Point string `json:"point"`
	File  string `json:"file,omitempty"`
}

// damagedBy reads which point holds the damaged file: drivers name it
// relative to the store, as PLAN/points/ID/....
func damagedBy(planName, restored string, err error) Damage {
	d := Damage{Point: restored}
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

// Aliases so workflows name storage results without importing drivers.
type (
	// GroupResult is what a capture, ship or restore of one group did.
	GroupResult = storage.Result
	// GroupVerify is what verifying one group found.
	GroupVerify = storage.VerifyResult
	// Point is a recovery point as the catalog lists it.
	Point = catalog.Point
	// Mode is full or cumulative.
	Mode = catalog.Mode
	// Validity is a point's validity record.
	Validity = catalog.Validity
)

// Point modes and validity states, for workflows.
const (
	ModeFull       = catalog.ModeFull
	ModeCumulative = catalog.ModeCumulative
	StateValid     = catalog.Valid
	StateInvalid   = catalog.Invalid
)

// StatsResult summarises a plan's points for the RPO monitor and the
// schedule.
type StatsResult struct {
	Points int `json:"points"`
	// NewestValid is the newest point validated good; nil when none is.
	NewestValid *Point `json:"newestValid,omitempty"`
	// NewestUsable is the newest point that is not invalid.
	NewestUsable *Point `json:"newestUsable,omitempty"`
	// RecentDurations are how long the last backups took to capture, ship
	// and verify, newest first.
	RecentDurations []time.Duration `json:"recentDurations,omitempty"`
}

// PointStats reads the catalog for the newest valid point and how long
// recent backups took.
func (a *Activities) PointStats(ctx context.Context, ref StoreRef) (StatsResult, error) {
	st, _, err := openStore(ref)
	if err != nil {
		return StatsResult{}, err
	}
	return Stats(st, ref.Plan)
}

// Stats is PointStats on an open store, for the CLI.
func Stats(st *catalog.Store, planName string) (StatsResult, error) {
	points, err := st.List(planName)
	if err != nil {
		return StatsResult{}, storageError("list recovery points", err)
	}
	res := StatsResult{Points: len(points)}
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		if p.Problem != "" {
			continue
		}
		if res.NewestValid == nil && p.Validity.State == catalog.Valid {
			res.NewestValid = &points[i]
		}
		if res.NewestUsable == nil && p.Usable() {
			res.NewestUsable = &points[i]
		}
		if len(res.RecentDurations) < 5 && !p.Ended.IsZero() && !p.Started.IsZero() {
			res.RecentDurations = append(res.RecentDurations, p.Ended.Sub(p.Started))
		}
	}
	return res, nil
}

// PlanLifecycle reads the plan's lifecycle state from the store.
func (a *Activities) PlanLifecycle(ctx context.Context, ref StoreRef) (catalog.Lifecycle, error) {
	st, _, err := openStore(ref)
	if err != nil {
		return catalog.Lifecycle{}, err
	}
	l, err := st.ReadLifecycle(ref.Plan)
	return l, storageError("plan lifecycle", err)
}

// Lifecycle is a plan's lifecycle record.
type Lifecycle = catalog.Lifecycle

// StateEnabled is the lifecycle state a failover expects.
const StateEnabled = catalog.StateEnabled
