// Package storage defines the storage drivers' interface: how a consistency
// group is captured at one instant, shipped to the secondary site's store,
// verified there, restored, and deleted.
//
// A backup run calls, per point:
//
//	Estimate (all groups) → store.CheckFree → [quiesce] → Capture (all groups)
//	→ [resume, always] → Ship → Verify → catalog Commit → retention
//
// Capture is the only step that must run inside the quiesce window, so it is
// as short as the method allows (constant time for snapshots). Every call is
// safe to retry after a crash: it redoes its own work for the point from the
// start, and a call whose effect is already complete returns AlreadyDone.
// Long calls report bytes done through a Progress callback (the activity
// turns them into heartbeats) and stop when their context is cancelled.
//
// Results are small (they travel in workflow history); file lists go to the
// store, in the catalog.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
)

// Progress receives the bytes done so far by a long call. Drivers call it
// from one goroutine at a time, with values that never decrease. It may be
// nil.
type Progress func(done int64)

// Report calls p if it is set.
func (p Progress) Report(done int64) {
	if p != nil {
		p(done)
	}
}

// Counter adds up deltas from several goroutines and reports the total to p
// one call at a time, never going back.
func (p Progress) Counter() func(delta int64) {
	var mu sync.Mutex
	var done int64
	return func(delta int64) {
		if p == nil || delta <= 0 {
			return
		}
		mu.Lock()
		done += delta
		p(done)
		mu.Unlock()
	}
}

// Group is the part of a plan's consistency group a storage driver reads.
type Group struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Components are the plan components in the group; unless the
	// settings say otherwise, each is a member: a sub-directory of the
	// site's data root.
	Components []string       `json:"components,omitempty"`
	Settings   map[string]any `json:"settings,omitempty"`
}

// Request names one group of one point of one plan.
type Request struct {
	Plan    string `json:"plan"`
	PointID string `json:"pointId"`
	// Store is the store's directory, expanded (catalog.OpenFromSettings).
	Store string `json:"store"`
	// StoreSettings are the plan's storage.store settings; when set, the
	// driver opens the store from them (a bucket, an encrypted store)
	// rather than from Store.
	StoreSettings map[string]any `json:"storeSettings,omitempty"`
	// Site is where the data is: the primary for a backup.
	Site  drivers.Site `json:"site"`
	Group Group        `json:"group"`
	Mode  catalog.Mode `json:"mode"`
	// BaseID is the full point a cumulative point builds on.
	BaseID string `json:"baseId,omitempty"`
	// Quiesced says writes are paused for the capture; without it the point
	// is recorded as crash-consistent (snapshots) or unknown (archives).
	Quiesced bool `json:"quiesced,omitempty"`
}

// RestoreRequest restores one group of a point into a site.
type RestoreRequest struct {
	Plan    string `json:"plan"`
	PointID string `json:"pointId"`
	Store   string `json:"store"`
	// StoreSettings: as in Request.
	StoreSettings map[string]any `json:"storeSettings,omitempty"`
	// Site is the target site; its dataRoot receives the members.
	Site  drivers.Site `json:"site"`
	Group Group        `json:"group"`
	// Replace allows restoring over existing member data; without it a
	// member folder that exists and is not empty is refused.
	Replace bool `json:"replace,omitempty"`
	// AllowInvalid restores a point marked invalid (forensics only).
	AllowInvalid bool `json:"allowInvalid,omitempty"`
}

// Estimate is how much a capture will write, at most.
type Estimate struct {
	// Bytes of member data the capture will read; the store needs at most
	// this much (compression only makes it smaller).
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// Result is what a capture, ship or restore did, kept small for history.
type Result struct {
	Group string `json:"group"`
	// Instant is when the group's data was captured (Capture only).
	Instant  time.Time        `json:"instant,omitzero"`
	Bytes    int64            `json:"bytes"`
	Stored   int64            `json:"stored"`
	Files    int64            `json:"files"`
	Evidence drivers.Evidence `json:"evidence"`
}

// VerifyResult is what a verify found. A point with a damaged file is a
// finding (OK=false naming the file), not an error; an error means the
// verify could not run.
type VerifyResult struct {
	Group string `json:"group"`
	OK    bool   `json:"ok"`
	// BadFile is the first artifact that failed, relative to the store.
	BadFile string `json:"badFile,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Bytes   int64  `json:"bytes"`
}

// Driver is a storage driver.
type Driver interface {
	drivers.SettingsChecker
	// Estimate says how much a capture of the group would write.
	Estimate(ctx context.Context, req Request) (Estimate, error)
	// Capture takes the group's data at one instant. It runs while the
	// group is quiesced, so it does as little as the method allows.
	Capture(ctx context.Context, req Request, progress Progress) (Result, error)
	// Ship moves what Capture took into the store and records the group's
	// manifest in the staged point. It runs after writes are resumed.
	Ship(ctx context.Context, req Request, progress Progress) (Result, error)
	// Verify checks every artifact of the group at the destination (staged
	// or committed) against its checksum.
	Verify(ctx context.Context, req Request, progress Progress) (VerifyResult, error)
	// Restore puts the group's data into req.Site: for a cumulative point,
	// its base full point first, then the point. It refuses an invalid
	// point and any artifact whose checksum does not match, naming it.
	Restore(ctx context.Context, req RestoreRequest, progress Progress) (Result, error)
	// Release frees what the driver holds outside the store for one point
	// (its source snapshot), once the point is deleted or abandoned. It is
	// harmless when there is nothing to free.
	Release(ctx context.Context, req Request) (drivers.Evidence, error)
	// Sweep removes what the driver holds outside the store (source
	// snapshots) for points that are gone: deleted by retention, or
	// abandoned by a crashed run. req names the plan, site and group
	// (PointID and Mode are ignored); active lists points still being made.
	// It returns what it removed.
	Sweep(ctx context.Context, req Request, active []string) ([]string, error)
}

// Errors a retry cannot fix, marked so activities fail the step for good.
var (
	// ErrBaseUnavailable: a cumulative point's base is gone (deleted, or its
	// source snapshot was removed); take a full point instead.
	ErrBaseUnavailable = errors.New("base point unavailable: take a full point")
	// ErrRecapture: Ship found nothing captured for the point (the snapshot
	// is gone); the whole point must be captured again.
	ErrRecapture = errors.New("nothing captured for this point: capture it again")
	// ErrCorrupt: an artifact does not match its checksum.
	ErrCorrupt = errors.New("recovery point data is damaged")
	// ErrInvalid: the point is marked invalid and may not be restored.
	ErrInvalid = errors.New("recovery point is invalid")
)

// CorruptError names the damaged file.
type CorruptError struct {
	File   string
	Reason string
}

func (e *CorruptError) Error() string { return fmt.Sprintf("%s: %s", e.File, e.Reason) }
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Permanent reports whether err is one a retry cannot fix.
func Permanent(err error) bool {
	return drivers.Permanent(err) || errors.Is(err, ErrBaseUnavailable) || errors.Is(err, ErrRecapture) ||
		errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalid) || errors.Is(err, catalog.ErrCorrupt)
}

// DataRoot returns the site's expanded dataRoot setting.
func DataRoot(site drivers.Site) (string, error) {
	raw, ok := site.Settings["dataRoot"]
	if !ok {
		return "", drivers.BadSettingsf("site %s: setting dataRoot is required by storage drivers (the folder holding the members' data)", site.Name)
	}
	s, ok := raw.(string)
	if !ok || s == "" {
		return "", drivers.BadSettingsf("site %s: setting dataRoot: want a path, got %v", site.Name, raw)
	}
	p, err := drivers.ExpandPath(s)
	if err != nil {
		return "", drivers.BadSettingsf("site %s: setting dataRoot: %v", site.Name, err)
	}
	if !filepath.IsAbs(p) {
		return "", drivers.BadSettingsf("site %s: setting dataRoot: %q is not an absolute path", site.Name, p)
	}
	return filepath.Clean(p), nil
}

// Members returns a group's members: the members setting when given, else
// its components. Each must be a safe single path element.
func Members(g Group, setting []string) ([]string, error) {
	names := setting
	if len(names) == 0 {
		names = g.Components
	}
	if len(names) == 0 {
		return nil, drivers.BadSettingsf("group %s: no members (list components, or set members)", g.Name)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if err := catalog.CheckName("member", n); err != nil {
			return nil, drivers.BadSettingsf("group %s: %v", g.Name, err)
		}
		if seen[n] {
			return nil, drivers.BadSettingsf("group %s: member %q listed twice", g.Name, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// CheckRequest checks the names a request carries before they become paths.
func CheckRequest(req Request) error {
	if err := catalog.CheckName("plan", req.Plan); err != nil {
		return drivers.BadSettings(err)
	}
	if err := catalog.CheckName("point", req.PointID); err != nil {
		return drivers.BadSettings(err)
	}
	if err := catalog.CheckName("group", req.Group.Name); err != nil {
		return drivers.BadSettings(err)
	}
	switch req.Mode {
	case catalog.ModeFull:
	case catalog.ModeCumulative:
		if err := catalog.CheckName("base point", req.BaseID); err != nil {
			return drivers.BadSettings(fmt.Errorf("cumulative point without a base: %w", err))
		}
	default:
		return drivers.BadSettingsf("mode %q (want full or cumulative)", req.Mode)
	}
	return nil
}

// Consistency is what a group's capture can claim.
func Consistency(quiesced, snapshot bool) catalog.Consistency {
	switch {
	case quiesced:
		return catalog.ConsistencyQuiesced
	case snapshot:
		return catalog.ConsistencySnapshot
	}
	return catalog.ConsistencyUnknown
}

// PointOf loads a committed point and refuses it when invalid (unless
// allowInvalid) or when it is cumulative and its base is gone or invalid.
// It returns the chain to restore in order: [base, point] or [point].
func PointOf(store *catalog.Store, plan, id string, allowInvalid bool) ([]*catalog.Manifest, error) {
	m, err := store.Load(plan, id)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(store, plan, id, allowInvalid); err != nil {
		return nil, err
	}
	if m.Mode != catalog.ModeCumulative {
		return []*catalog.Manifest{m}, nil
	}
	base, err := store.Load(plan, m.BaseID)
	if err != nil {
		return nil, fmt.Errorf("point %s builds on %s: %w: %w", id, m.BaseID, ErrBaseUnavailable, err)
	}
	if err := checkUsable(store, plan, m.BaseID, allowInvalid); err != nil {
		return nil, fmt.Errorf("point %s builds on %s: %w", id, m.BaseID, err)
	}
	return []*catalog.Manifest{base, m}, nil
}

func checkUsable(store *catalog.Store, plan, id string, allowInvalid bool) error {
	v, err := store.Validity(plan, id)
	if err != nil {
		return err
	}
	if v.State == catalog.Invalid && !allowInvalid {
		return fmt.Errorf("point %s: %w: %s", id, ErrInvalid, v.Reason)
	}
	return nil
}

// OpenStore opens the store a request names: from the plan's store
// settings when given, else the folder path.
func OpenStore(path string, settings map[string]any) (*catalog.Store, error) {
	if settings != nil {
		st, _, err := catalog.OpenFromSettings(settings)
		return st, err
	}
	return catalog.Open(path)
}

// RequireFolder refuses a store in the object layout (a bucket, or an
// encrypted folder) for drivers that write their artifacts straight into a
// folder store.
func RequireFolder(store *catalog.Store, driver string) error {
	if store.ObjectLayout() {
		return drivers.BadSettingsf("storage.store: the %s driver writes into a folder store (storage.store.path without encryption); %s is an object store: use the archive driver, or drop storage.store.s3/encryption", driver, store.Root)
	}
	return nil
}

// RemoveIfExists removes a file, ignoring one that is not there.
func RemoveIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
