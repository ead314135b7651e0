package drivers

import (
	"context"
	"sync"
	"time"
)

// CaptureMode is how much a recovery point holds (full or cumulative); the
// catalog names it catalog.Mode.
type CaptureMode string

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

// StorageGroup is the part of a plan's consistency group a storage driver reads.
type StorageGroup struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Components are the plan components in the group; unless the
	// settings say otherwise, each is a member: a sub-directory of the
	// site's data root.
	Components []string       `json:"components,omitempty"`
	Settings   map[string]any `json:"settings,omitempty"`
}

// StorageRequest names one group of one point of one plan.
type StorageRequest struct {
	Plan    string `json:"plan"`
	PointID string `json:"pointId"`
	// Store is the store's directory, expanded (catalog.OpenFromSettings).
	Store string `json:"store"`
	// StoreSettings are the plan's storage.store settings; when set, the
	// driver opens the store from them (a bucket, an encrypted store)
	// rather than from Store.
	StoreSettings map[string]any `json:"storeSettings,omitempty"`
	// Site is where the data is: the primary for a backup.
	Site  Site         `json:"site"`
	Group StorageGroup `json:"group"`
	Mode  CaptureMode  `json:"mode"`
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
	// StoreSettings: as in StorageRequest.
	StoreSettings map[string]any `json:"storeSettings,omitempty"`
	// Site is the target site; its dataRoot receives the members.
	Site  Site         `json:"site"`
	Group StorageGroup `json:"group"`
	// Replace allows restoring over existing member data; without it a
	// member folder that exists and is not empty is refused.
	Replace bool `json:"replace,omitempty"`
	// AllowInvalid restores a point marked invalid (forensics only).
	AllowInvalid bool `json:"allowInvalid,omitempty"`
	// Members limits the restore to these members of the group, leaving
	// the others as they are; empty restores every member. A driver that
	// restores a group as one volume refuses it as unsupported.
	Members []string `json:"members,omitempty"`
}

// Estimate is how much a capture will write, at most.
type Estimate struct {
	// Bytes of member data the capture will read; the store needs at most
	// this much (compression only makes it smaller).
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// StorageResult is what a capture, ship or restore did, kept small for history.
type StorageResult struct {
	Group string `json:"group"`
	// Instant is when the group's data was captured (Capture only).
	Instant  time.Time `json:"instant,omitzero"`
	Bytes    int64     `json:"bytes"`
	Stored   int64     `json:"stored"`
	Files    int64     `json:"files"`
	Evidence Evidence  `json:"evidence"`
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

// Storage is a storage driver: see package drivers/storage for how a backup
// run calls it.
type Storage interface {
	SettingsChecker
	// Estimate says how much a capture of the group would write.
	Estimate(ctx context.Context, req StorageRequest) (Estimate, error)
	// Capture takes the group's data at one instant. It runs while the
	// group is quiesced, so it does as little as the method allows.
	Capture(ctx context.Context, req StorageRequest, progress Progress) (StorageResult, error)
	// Ship moves what Capture took into the store and records the group's
	// manifest in the staged point. It runs after writes are resumed.
	Ship(ctx context.Context, req StorageRequest, progress Progress) (StorageResult, error)
	// Verify checks every artifact of the group at the destination (staged
	// or committed) against its checksum.
	Verify(ctx context.Context, req StorageRequest, progress Progress) (VerifyResult, error)
	// Restore puts the group's data into req.Site: for a cumulative point,
	// its base full point first, then the point. It refuses an invalid
	// point and any artifact whose checksum does not match, naming it.
	Restore(ctx context.Context, req RestoreRequest, progress Progress) (StorageResult, error)
	// Release frees what the driver holds outside the store for one point
	// (its source snapshot), once the point is deleted or abandoned. It is
	// harmless when there is nothing to free.
	Release(ctx context.Context, req StorageRequest) (Evidence, error)
	// Sweep removes what the driver holds outside the store (source
	// snapshots) for points that are gone: deleted by retention, or
	// abandoned by a crashed run. req names the plan, site and group
	// (PointID and Mode are ignored); active lists points still being made.
	// It returns what it removed.
	Sweep(ctx context.Context, req StorageRequest, active []string) ([]string, error)
}
