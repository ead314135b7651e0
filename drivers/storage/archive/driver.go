// Package archive is the "archive" storage driver (the BPM seed's simple
// server backup, done fast): every member of a consistency group becomes a
// tar stream compressed with zstd on every core, written into the point's
// staging folder in the store with a checksum of every file and of every
// archive. Full and cumulative (changed since the last full) modes.
//
// The engine is drivers/storage/internal/tarzst, shared with lvm (on its
// snapshot mount) and btrfs (for its send streams).
package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// Method is recorded in the manifest of groups this driver captures.
const Method = "tar+zstd"

// Settings are the archive driver's group settings.
type Settings struct {
	// Members are the sub-directories of the site's dataRoot to capture;
	// the group's components when left out.
	Members []string `json:"members,omitempty"`
	// Compare is how a cumulative point finds changed files: mtime (size
	// and modification time, the default) or checksum (reads every file).
	Compare tarzst.Compare `json:"compare,omitempty"`
	// Workers compress in parallel; every core when 0.
	Workers int `json:"workers,omitempty"`
}

// DecodeSettings decodes and checks the group settings.
func DecodeSettings(raw map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(err)
	}
	if err := tarzst.CheckOptions(&s.Compare, s.Workers); err != nil {
		return s, err
	}
	return s, nil
}

// Driver is the archive storage driver.
type Driver struct {
	Logger *zap.Logger
}

// New returns the archive driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{Logger: logger}
}

var _ storage.Driver = (*Driver)(nil)

// CheckSettings implements drivers.SettingsChecker.
func (d *Driver) CheckSettings(settings map[string]any) error {
	s, err := DecodeSettings(settings)
	if err != nil {
		return err
	}
	for _, m := range s.Members {
		if err := catalog.CheckName("member", m); err != nil {
			return drivers.BadSettingsf("settings: members: %v", err)
		}
	}
	return nil
}

type prepared struct {
	s Settings
	storage.Target
}

func prepare(req storage.Request) (*prepared, error) {
	s, t, err := storage.Prepare(req, DecodeSettings, func(s Settings) []string { return s.Members })
	if err != nil {
		return nil, err
	}
	return &prepared{s: s, Target: t}, nil
}

// Estimate sums the member data a capture would read.
func (d *Driver) Estimate(ctx context.Context, req storage.Request) (storage.Estimate, error) {
	p, err := prepare(req)
	if err != nil {
		return storage.Estimate{}, err
	}
	base, err := storage.BaseGroup(p.Store, req)
	if err != nil {
		return storage.Estimate{}, err
	}
	return tarzst.EstimateMembers(ctx, p.Root, p.Members, base, p.s.Compare)
}

// Capture writes every member's archive into the point's staging folder.
// With the group quiesced it is the whole backup, so it runs on every core.
func (d *Driver) Capture(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	p, err := prepare(req)
	if err != nil {
		return storage.Result{Group: req.Group.Name}, err
	}
	// WriteGroup drops what an earlier attempt staged.
	if done, err := p.Store.Exists(req.Plan, req.PointID); err != nil || done {
		return storage.Result{Group: req.Group.Name, Evidence: drivers.Evidence{AlreadyDone: done}}, err
	}
	base, err := storage.BaseGroup(p.Store, req)
	if err != nil {
		return storage.Result{Group: req.Group.Name}, err
	}
	g, res, err := tarzst.WriteGroup(ctx, p.Store, req, tarzst.WriteSpec{
		Root: p.Root, Members: p.Members, Base: base, Compare: p.s.Compare, Workers: p.s.Workers,
		Method: Method, Driver: req.Group.Driver, Consistency: storage.Consistency(req.Quiesced, false),
		Instant: start,
	}, progress)
	if err != nil {
		return res, err
	}
	for _, w := range g.Warnings {
		d.Logger.Warn("archive capture", zap.String("group", g.Name), zap.String("point", req.PointID), zap.String("warning", w))
	}
	res.Instant = start
	res.Evidence = drivers.Evidence{Action: fmt.Sprintf("tar+zstd %d members of %s into %s", len(p.Members), p.Root, p.Store.StagingDir(req.Plan, req.PointID)),
		Duration: time.Since(start)}
	return res, nil
}

// Ship checks the group is in the store (staged or committed). With a
// folder store there is nothing left to move: Capture wrote into it. With
// an object store (a bucket, or an encrypted store) Capture wrote into the
// local staging folder and Ship uploads the archives, sealed when the
// store is encrypted, resuming an upload a killed worker left.
func (d *Driver) Ship(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	res := storage.Result{Group: req.Group.Name, Evidence: drivers.Evidence{Action: "none: the archive was written to the store during capture", AlreadyDone: true}}
	p, err := prepare(req)
	if err != nil {
		return res, err
	}
	if done, err := storage.Shipped(p.Store, req, &res); err != nil || done {
		return res, err
	}
	if !p.Store.ObjectLayout() {
		return res, fmt.Errorf("ship group %s of %s: %w", req.Group.Name, req.PointID, storage.ErrRecapture)
	}
	g, up, err := p.Store.ShipGroup(ctx, req.Plan, req.PointID, req.Group.Name, progress)
	if errors.Is(err, catalog.ErrNotStaged) {
		return res, fmt.Errorf("ship group %s of %s: %w: %w", req.Group.Name, req.PointID, storage.ErrRecapture, err)
	}
	if err != nil {
		return res, err
	}
	sealed := ""
	if p.Store.Encrypted() {
		sealed = " sealed"
	}
	res.Bytes, res.Stored = g.DataSize, g.Size
	res.Evidence = drivers.Evidence{Duration: time.Since(start),
		Action: fmt.Sprintf("upload %d%s archives of group %s to %s (%d parts, %d kept from an interrupted upload)", len(g.Artifacts), sealed, g.Name, p.Store.Root, up.Parts, up.Reused)}
	return res, nil
}

// Verify checks every archive's checksum in the store.
func (d *Driver) Verify(ctx context.Context, req storage.Request, progress storage.Progress) (storage.VerifyResult, error) {
	p, err := prepare(req)
	if err != nil {
		return storage.VerifyResult{Group: req.Group.Name}, err
	}
	return storage.VerifyGroup(ctx, p.Store, req.Plan, req.PointID, req.Group.Name, progress)
}

// Restore extracts the group's members into the target site's dataRoot.
func (d *Driver) Restore(ctx context.Context, req storage.RestoreRequest, progress storage.Progress) (storage.Result, error) {
	return tarzst.RestoreToSite(ctx, req, progress)
}

// Release has nothing to free: the archive driver holds nothing outside
// the store.
func (d *Driver) Release(ctx context.Context, req storage.Request) (drivers.Evidence, error) {
	return drivers.Evidence{Action: "none", AlreadyDone: true}, nil
}

// Sweep has nothing to remove: the archive driver holds nothing outside
// the store.
func (d *Driver) Sweep(ctx context.Context, req storage.Request, active []string) ([]string, error) {
	return nil, nil
}
