// Package catalog is the recovery point catalog: one manifest per point,
// kept in the secondary site's store beside the point's data.
//
// The catalog needs no Temporal: a fresh orchestrator at the secondary site,
// with an empty Temporal database, lists the points from the store alone and
// fails over from them. A point exists exactly when its manifest does; the
// manifest is written last, after every byte it describes is on disk.
//
// Layout of a store (a directory: local disk or an NFS mount):
//
//	STORE/<plan>/points/<id>/manifest.json   the point (immutable once written)
//	STORE/<plan>/points/<id>/validity.json   unverified | valid | invalid (replaced atomically)
//	STORE/<plan>/points/<id>/<group>/...     the data (archives, send streams)
//	STORE/<plan>/staging/<id>/...            a point being made; never listed
//	STORE/<plan>/trash/...                   points being deleted
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// FormatVersion is the manifest format this build writes and reads.
const FormatVersion = 1

// Mode is how much a point holds. Storage drivers are asked for one, so the
// type is declared with their contract in package drivers.
type Mode = drivers.CaptureMode

const (
	// ModeFull holds every file of every member.
	ModeFull Mode = "full"
	// ModeCumulative holds every file changed since its base full point
	// (the LVLT4i seed's cumulative save); restore = base + this point.
	ModeCumulative Mode = "cumulative"
)

// Consistency says how far the point can be trusted to be one instant.
type Consistency string

const (
	// ConsistencyQuiesced: writes were paused on every component of the
	// group for the whole capture.
	ConsistencyQuiesced Consistency = "quiesced"
	// ConsistencySnapshot: a copy-on-write snapshot taken at one instant
	// of a running system, like a power cut; must be validated before use.
	ConsistencySnapshot Consistency = "crash-consistent-snapshot"
	// ConsistencyUnknown: files copied one by one from a running system.
	ConsistencyUnknown Consistency = "unknown"
)

// rank orders consistencies from strongest to weakest.
func (c Consistency) rank() int {
	switch c {
	case ConsistencyQuiesced:
		return 0
	case ConsistencySnapshot:
		return 1
	}
	return 2
}

// Weakest returns the weakest of a and b: a point is only as consistent as
// its least consistent group.
func Weakest(a, b Consistency) Consistency {
	if a.rank() >= b.rank() {
		return a
	}
	return b
}

// ValidityState is what validation found.
type ValidityState string

const (
	Unverified ValidityState = "unverified"
	Valid      ValidityState = "valid"
	Invalid    ValidityState = "invalid"
)

// Validity is the mutable part of a point, kept in its own small file so
// the manifest itself is never rewritten.
type Validity struct {
	State ValidityState `json:"state"`
	// Reason says why a point is invalid (the bad file, the failed level).
	Reason string `json:"reason,omitempty"`
	// Run is the validation run (a workflow id) that decided.
	Run string    `json:"run,omitempty"`
	At  time.Time `json:"at,omitzero"`
	// Findings are non-fatal observations (instance-level findings on a
	// valid point).
	Findings []string `json:"findings,omitempty"`
}

// Manifest describes one recovery point completely.
type Manifest struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	Plan   string `json:"plan"`
	Mode   Mode   `json:"mode"`
	// BaseID is the full point a cumulative point builds on.
	BaseID string `json:"baseId,omitempty"`
	// Instant is when the data was captured: the earliest group instant.
	Instant time.Time `json:"instant"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Size is the bytes the point takes in the store; DataSize the bytes of
	// member data it captured.
	Size        int64       `json:"size"`
	DataSize    int64       `json:"dataSize"`
	Consistency Consistency `json:"consistency"`
	// Quiesce is how long the capture paused writes; nil when it paused
	// none (a cold backup, or no group that quiesces).
	Quiesce *QuiesceWindow `json:"quiesce,omitempty"`
	Groups  []Group        `json:"groups"`
	// Cold says the whole scope was stopped while it was captured (the
	// seed's simple server backup): offline, consistent by construction.
	Cold bool `json:"cold,omitempty"`
	// Configuration is the cell's configuration the point holds, when the
	// plan watches it (seed 000 §4.1).
	Configuration *Configuration `json:"configuration,omitempty"`
}

// Configuration names one configuration the cell ran with: the fingerprint
// of its installation manifest and watched configuration folders, and when
// drover first saw it.
type Configuration struct {
	Fingerprint string    `json:"fingerprint"`
	FirstSeen   time.Time `json:"firstSeen,omitzero"`
}

// QuiesceWindow is how long writes were paused for a point: from the first
// quiesce call to the last resume returning, on the clocks of the workers
// that ran them, so it is never shorter than the pause was.
type QuiesceWindow struct {
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Duration time.Duration `json:"duration"`
	// Components are the components whose writes were paused.
	Components []string `json:"components,omitempty"`
}

func (q *QuiesceWindow) check() error {
	switch {
	case q.Start.IsZero() || q.End.IsZero():
		return fmt.Errorf("start and end: both required")
	case q.End.Before(q.Start):
		return fmt.Errorf("end %s is before start %s", q.End.Format(time.RFC3339Nano), q.Start.Format(time.RFC3339Nano))
	case q.Duration != q.End.Sub(q.Start):
		return fmt.Errorf("duration: %s, not end - start (%s)", q.Duration, q.End.Sub(q.Start))
	}
	return nil
}

// Group is what one consistency group contributed to a point.
type Group struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Method names the capture method ("tar+zstd", "btrfs-send+zstd",
	// "lvm-snapshot+tar+zstd").
	Method      string      `json:"method"`
	Consistency Consistency `json:"consistency"`
	Instant     time.Time   `json:"instant"`
	Members     []Member    `json:"members"`
	Artifacts   []Artifact  `json:"artifacts"`
	// Source holds driver details needed later (snapshot name, parent).
	Source   map[string]string `json:"source,omitempty"`
	Size     int64             `json:"size"`
	DataSize int64             `json:"dataSize"`
	Warnings []string          `json:"warnings,omitempty"`
}

// Member is one member of a group: a sub-directory of the site's data root.
type Member struct {
	Name string `json:"name"`
	// Artifact is the stored file holding this member, if it has its own.
	Artifact string `json:"artifact,omitempty"`
	// Files are the files captured (for a cumulative point, the changed
	// ones), sorted by path.
	Files []File `json:"files,omitempty"`
	// Deleted are paths present in the base full point and gone since.
	Deleted []string `json:"deleted,omitempty"`
	// Mode and MTime (Unix nanoseconds) are the member folder's own.
	Mode  uint32 `json:"mode,omitempty"`
	MTime int64  `json:"mtime,omitempty"`
}

// File types in a manifest.
const (
	TypeFile    = ""
	TypeDir     = "d"
	TypeSymlink = "l"
)

// File is one captured file. Short JSON names keep large manifests small.
type File struct {
	Path string `json:"p"`
	Type string `json:"t,omitempty"`
	Size int64  `json:"s,omitempty"`
	Mode uint32 `json:"m"`
	// MTime is the modification time in Unix nanoseconds.
	MTime    int64  `json:"mt"`
	Checksum string `json:"c,omitempty"`
	Link     string `json:"l,omitempty"`
}

// Artifact is one file the point stores, checked on verify and restore.
type Artifact struct {
	// Name is the path relative to the point's directory.
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
	// Frames are the compressed sizes of the independent zstd frames the
	// artifact is made of, in order, so restore can decompress in parallel.
	Frames []int64 `json:"frames,omitempty"`
}

// GroupByName returns the group called name, or nil.
func (m *Manifest) GroupByName(name string) *Group {
	for i := range m.Groups {
		if m.Groups[i].Name == name {
			return &m.Groups[i]
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// CheckName checks that a plan, point, group or member name is safe to use
// as one path element.
func CheckName(kind, s string) error {
	if !nameRE.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("%s name %q: want 1-128 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'", kind, s)
	}
	return nil
}

// ErrCorrupt marks a manifest that cannot be trusted.
var ErrCorrupt = errors.New("corrupt manifest")

// ParseManifest decodes and checks a manifest strictly. Any problem is
// wrapped in ErrCorrupt and names the field.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the manifest", ErrCorrupt)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &m, nil
}

func (m *Manifest) check() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("format: %d, this build reads %d", m.Format, FormatVersion)
	}
	if err := CheckName("point", m.ID); err != nil {
		return fmt.Errorf("id: %v", err)
	}
	if err := CheckName("plan", m.Plan); err != nil {
		return fmt.Errorf("plan: %v", err)
	}
	switch m.Mode {
	case ModeFull:
		if m.BaseID != "" {
			return fmt.Errorf("baseId: a full point has no base")
		}
	case ModeCumulative:
		if err := CheckName("base point", m.BaseID); err != nil {
			return fmt.Errorf("baseId: %v", err)
		}
	default:
		return fmt.Errorf("mode: %q (want full or cumulative)", m.Mode)
	}
	if err := checkConsistency(m.Consistency); err != nil {
		return fmt.Errorf("consistency: %v", err)
	}
	if m.Instant.IsZero() {
		return fmt.Errorf("instant: missing")
	}
	if m.Size < 0 || m.DataSize < 0 {
		return fmt.Errorf("size: negative")
	}
	if m.Quiesce != nil {
		if err := m.Quiesce.check(); err != nil {
			return fmt.Errorf("quiesce: %v", err)
		}
	}
	if len(m.Groups) == 0 {
		return fmt.Errorf("groups: none")
	}
	groups := map[string]bool{}
	for i, g := range m.Groups {
		if err := CheckName("group", g.Name); err != nil {
			return fmt.Errorf("groups[%d].name: %v", i, err)
		}
		if groups[g.Name] {
			return fmt.Errorf("groups[%d].name: duplicate %q", i, g.Name)
		}
		groups[g.Name] = true
		if err := checkConsistency(g.Consistency); err != nil {
			return fmt.Errorf("groups[%d].consistency: %v", i, err)
		}
		arts := map[string]bool{}
		for j, a := range g.Artifacts {
			if err := checkRelPath(a.Name); err != nil {
				return fmt.Errorf("groups[%d].artifacts[%d].name: %v", i, j, err)
			}
			if a.Size < 0 {
				return fmt.Errorf("groups[%d].artifacts[%d].size: negative", i, j)
			}
			if _, err := ParseChecksum(a.Checksum); err != nil {
				return fmt.Errorf("groups[%d].artifacts[%d].checksum: %v", i, j, err)
			}
			var sum int64
			for _, f := range a.Frames {
				if f <= 0 {
					return fmt.Errorf("groups[%d].artifacts[%d].frames: a frame of %d bytes", i, j, f)
				}
				sum += f
			}
			if len(a.Frames) > 0 && sum != a.Size {
				return fmt.Errorf("groups[%d].artifacts[%d].frames: add up to %d, not the size %d", i, j, sum, a.Size)
			}
			arts[a.Name] = true
		}
		for j, mem := range g.Members {
			if err := CheckName("member", mem.Name); err != nil {
				return fmt.Errorf("groups[%d].members[%d].name: %v", i, j, err)
			}
			if mem.Artifact != "" && !arts[mem.Artifact] {
				return fmt.Errorf("groups[%d].members[%d].artifact: %q is not among the group's artifacts", i, j, mem.Artifact)
			}
			for k, f := range mem.Files {
				if err := checkRelPath(f.Path); err != nil {
					return fmt.Errorf("groups[%d].members[%d].files[%d].p: %v", i, j, k, err)
				}
				if f.Type != TypeFile && f.Type != TypeDir && f.Type != TypeSymlink {
					return fmt.Errorf("groups[%d].members[%d].files[%d].t: unknown type %q", i, j, k, f.Type)
				}
				if f.Size < 0 {
					return fmt.Errorf("groups[%d].members[%d].files[%d].s: negative", i, j, k)
				}
				if f.Type == TypeFile {
					if _, err := ParseChecksum(f.Checksum); err != nil {
						return fmt.Errorf("groups[%d].members[%d].files[%d].c: %v", i, j, k, err)
					}
				}
			}
			for k, d := range mem.Deleted {
				if err := checkRelPath(d); err != nil {
					return fmt.Errorf("groups[%d].members[%d].deleted[%d]: %v", i, j, k, err)
				}
			}
		}
	}
	return nil
}

func checkConsistency(c Consistency) error {
	switch c {
	case ConsistencyQuiesced, ConsistencySnapshot, ConsistencyUnknown:
		return nil
	}
	return fmt.Errorf("%q (want quiesced, crash-consistent-snapshot or unknown)", c)
}

// checkRelPath refuses paths that could escape the directory they are
// joined to: a manifest read from a store must not make restore write
// outside the target.
func checkRelPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if p[0] == '/' {
		return fmt.Errorf("absolute path %q", p)
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			el := p[start:i]
			if el == "" || el == "." || el == ".." {
				return fmt.Errorf("path %q: empty, '.' or '..' element", p)
			}
			start = i + 1
		}
	}
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			return fmt.Errorf("path %q: NUL byte", p)
		}
	}
	return nil
}

// CheckRelPath is checkRelPath for drivers that read paths from a stream
// (a tar header) and must apply the same rule.
func CheckRelPath(p string) error { return checkRelPath(p) }

// ParseValidity decodes a validity file strictly.
func ParseValidity(data []byte) (Validity, error) {
	var v Validity
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return Validity{}, fmt.Errorf("validity: %v", err)
	}
	switch v.State {
	case Unverified, Valid, Invalid:
	default:
		return Validity{}, fmt.Errorf("validity: state %q (want unverified, valid or invalid)", v.State)
	}
	return v, nil
}
