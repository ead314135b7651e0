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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
)

// The storage contract's types live in package drivers, so the registry can
// hold storage drivers under their own interface; these names keep the
// storage drivers' code reading as before.
type (
	Progress       = drivers.Progress
	Group          = drivers.StorageGroup
	Request        = drivers.StorageRequest
	RestoreRequest = drivers.RestoreRequest
	Estimate       = drivers.Estimate
	Result         = drivers.StorageResult
	VerifyResult   = drivers.VerifyResult
	Driver         = drivers.Storage
)

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
