package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/seal"
)

// File and folder names inside a store.
const (
	ManifestFile = "manifest.json"
	ValidityFile = "validity.json"
	pointsDir    = "points"
	stagingDir   = "staging"
	trashDir     = "trash"
	// groupsDir holds each group's manifest while a point is staged; names
	// cannot start with '.', so it never collides with a group's folder.
	groupsDir = ".groups"
)

// ErrNotFound is returned for a point whose manifest does not exist: such a
// point does not exist, whatever data lies beside it.
var ErrNotFound = errors.New("recovery point not found")

// Store is a recovery point store: a directory at the secondary site (the
// folder layout), or a blob.Bucket (the object layout, objects.go).
type Store struct {
	// Root is the folder, or where the bucket is (for messages).
	Root string

	objects blob.Bucket   // nil: the folder layout
	ring    *seal.Ring    // nil: in clear
	staging string        // object layout: local folder of captures
	lockFor time.Duration // object layout: object-lock retention
}

// Open returns the store at root, which must be an existing directory. It
// is never created: a store on an NFS mount that is not mounted must fail
// here, not fill the local disk.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("store: no path given")
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("store %s: not a directory", root)
	}
	return &Store{Root: root}, nil
}

func (s *Store) planDir(plan string) string { return filepath.Join(s.Root, plan) }

// PointDir is where a committed point's data and manifest live.
func (s *Store) PointDir(plan, id string) string {
	return filepath.Join(s.Root, plan, pointsDir, id)
}

// StagingDir is where a point is built before it is committed: in the
// store (folder layout), or in the local staging folder (object layout).
func (s *Store) StagingDir(plan, id string) string {
	if s.objects != nil {
		return filepath.Join(s.staging, plan, id)
	}
	return filepath.Join(s.Root, plan, stagingDir, id)
}

func checkPlanID(plan, id string) error {
	if err := CheckName("plan", plan); err != nil {
		return err
	}
	return CheckName("point", id)
}

// Exists reports whether a point is committed.
func (s *Store) Exists(plan, id string) (bool, error) {
	if err := checkPlanID(plan, id); err != nil {
		return false, err
	}
	if s.objects != nil {
		return s.objExists(plan, id)
	}
	_, err := os.Stat(filepath.Join(s.PointDir(plan, id), ManifestFile))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("point %s: %w", id, err)
}

// Begin makes sure the staging folder of a point exists and returns it.
// Calling it again (a retried activity) is harmless.
func (s *Store) Begin(plan, id string) (string, error) {
	if err := checkPlanID(plan, id); err != nil {
		return "", err
	}
	dir := s.StagingDir(plan, id)
	if err := s.mkdir(filepath.Join(dir, groupsDir)); err != nil {
		return "", fmt.Errorf("stage point %s: %w", id, StoreError(err))
	}
	return dir, nil
}

// ResetGroup removes whatever a previous attempt staged for one group, so a
// retried capture starts clean, and returns the group's staging folder.
func (s *Store) ResetGroup(plan, id, group string) (string, error) {
	if err := CheckName("group", group); err != nil {
		return "", err
	}
	dir, err := s.Begin(plan, id)
	if err != nil {
		return "", err
	}
	gdir := filepath.Join(dir, group)
	if err := os.Remove(filepath.Join(dir, groupsDir, group+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reset group %s of %s: %w", group, id, err)
	}
	if s.objects != nil {
		// A group shipped by an earlier attempt is stale once captured anew.
		ctx, cancel := metaCtx()
		err := s.objects.Delete(ctx, stagedKey(plan, id, group))
		cancel()
		if err != nil {
			return "", fmt.Errorf("reset group %s of %s: %w", group, id, err)
		}
	}
	if err := os.RemoveAll(gdir); err != nil {
		return "", fmt.Errorf("reset group %s of %s: %w", group, id, err)
	}
	if err := s.mkdir(gdir); err != nil {
		return "", fmt.Errorf("stage group %s of %s: %w", group, id, StoreError(err))
	}
	return gdir, nil
}

// WriteGroup records a group's manifest in a staged point. Its artifacts
// must already be on disk, fsynced.
func (s *Store) WriteGroup(plan, id string, g Group) error {
	if err := CheckName("group", g.Name); err != nil {
		return err
	}
	dir, err := s.Begin(plan, id)
	if err != nil {
		return err
	}
	data, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("group %s of %s: %w", g.Name, id, err)
	}
	return WriteFileAtomic(filepath.Join(dir, groupsDir, g.Name+".json"), data, 0o640)
}

// StagedGroup reads a group's manifest from a staged point; ErrNotFound
// when the group has not been captured (or shipped) yet.
func (s *Store) StagedGroup(plan, id, group string) (*Group, error) {
	if err := checkPlanID(plan, id); err != nil {
		return nil, err
	}
	if err := CheckName("group", group); err != nil {
		return nil, err
	}
	if s.objects != nil {
		return s.objStagedGroup(plan, id, group)
	}
	data, err := os.ReadFile(filepath.Join(s.StagingDir(plan, id), groupsDir, group+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("group %s of point %s: %w (not staged)", group, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w", group, id, err)
	}
	var g Group
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w: %v", group, id, ErrCorrupt, err)
	}
	return &g, nil
}

// Located is a group of a point, staged or committed, with the folder its
// artifact names are relative to (empty in the object layout: open them
// with Store.OpenArtifact).
type Located struct {
	Dir       string
	Group     *Group
	Manifest  *Manifest // nil while staged
	Committed bool
}

// LocateGroup finds a group in a committed point, else in a staged one, so
// verify works before and after the point is recorded.
func (s *Store) LocateGroup(plan, id, group string) (*Located, error) {
	m, err := s.Load(plan, id)
	if err == nil {
		g := m.GroupByName(group)
		if g == nil {
			return nil, fmt.Errorf("point %s has no group %q", id, group)
		}
		loc := &Located{Dir: s.PointDir(plan, id), Group: g, Manifest: m, Committed: true}
		if s.objects != nil {
			loc.Dir = ""
		}
		return loc, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	g, err := s.StagedGroup(plan, id, group)
	if err != nil {
		return nil, err
	}
	if s.objects != nil {
		return &Located{Group: g}, nil
	}
	return &Located{Dir: s.StagingDir(plan, id), Group: g}, nil
}

// CommitInfo is what the backup run knows about a point beyond its groups.
type CommitInfo struct {
	Mode    Mode
	BaseID  string
	Started time.Time
	Ended   time.Time
	// Groups are the groups the point must hold; commit fails if one was
	// not staged.
	Groups []string
	// Quiesce is the window the run paused writes for the capture.
	Quiesce *QuiesceWindow
	// Cold and Configuration are recorded in the manifest as given.
	Cold          bool
	Configuration *Configuration
}

// Commit records a staged point: it checks every group and artifact is
// there, writes the validity file, then the manifest, and moves the folder
// into points/ in one rename. Committing a committed point returns it
// unchanged, so a retried activity is harmless.
func (s *Store) Commit(plan, id string, c CommitInfo) (*Manifest, error) {
	if err := checkPlanID(plan, id); err != nil {
		return nil, err
	}
	if s.objects != nil {
		return s.objCommit(plan, id, c)
	}
	if m, err := s.Load(plan, id); err == nil {
		return m, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	stage := s.StagingDir(plan, id)
	manifestPath := filepath.Join(stage, ManifestFile)
	data, err := os.ReadFile(manifestPath)
	if errors.Is(err, fs.ErrNotExist) {
		m, err := s.buildManifest(plan, id, c)
		if err != nil {
			return nil, err
		}
		if data, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("commit %s: %w", id, err)
		}
		v, _ := json.Marshal(Validity{State: Unverified})
		if err := WriteFileAtomic(filepath.Join(stage, ValidityFile), v, 0o640); err != nil {
			return nil, fmt.Errorf("commit %s: %w", id, err)
		}
		// The manifest last: with it the point is complete.
		if err := WriteFileAtomic(manifestPath, data, 0o640); err != nil {
			return nil, fmt.Errorf("commit %s: %w", id, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	// A crash after the manifest and before the rename leaves a complete
	// staged point; a retry lands here and only renames.
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("commit %s: staged manifest: %w", id, err)
	}
	_ = os.RemoveAll(filepath.Join(stage, groupsDir))
	points := filepath.Join(s.planDir(plan), pointsDir)
	if err := s.mkdir(points); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, StoreError(err))
	}
	if err := os.Rename(stage, filepath.Join(points, id)); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	if err := SyncDir(points); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	return m, nil
}

// artifactSize is the stored size of an artifact of a point being
// committed.
func (s *Store) artifactSize(stage, plan, id, name string) (int64, error) {
	if s.objects != nil {
		ctx, cancel := metaCtx()
		defer cancel()
		info, err := s.objects.Stat(ctx, artifactKey(plan, id, name))
		return info.Size, err
	}
	st, err := os.Stat(filepath.Join(stage, name))
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (s *Store) buildManifest(plan, id string, c CommitInfo) (*Manifest, error) {
	if len(c.Groups) == 0 {
		return nil, fmt.Errorf("commit %s: no groups", id)
	}
	m := &Manifest{Format: FormatVersion, ID: id, Plan: plan, Mode: c.Mode, BaseID: c.BaseID,
		Started: c.Started.UTC(), Ended: c.Ended.UTC(), Consistency: ConsistencyQuiesced,
		Cold: c.Cold, Configuration: c.Configuration}
	if q := c.Quiesce; q != nil {
		m.Quiesce = &QuiesceWindow{Start: q.Start.UTC(), End: q.End.UTC(), Duration: q.End.Sub(q.Start), Components: q.Components}
	}
	if c.Mode == ModeCumulative {
		base, err := s.Load(plan, c.BaseID)
		if err != nil {
			return nil, fmt.Errorf("commit %s: base point %s: %w", id, c.BaseID, err)
		}
		if base.Mode != ModeFull {
			return nil, fmt.Errorf("commit %s: base point %s is %s, not full", id, c.BaseID, base.Mode)
		}
	}
	stage := s.StagingDir(plan, id)
	for _, name := range c.Groups {
		g, err := s.StagedGroup(plan, id, name)
		if err != nil {
			return nil, fmt.Errorf("commit %s: %w", id, err)
		}
		for _, a := range g.Artifacts {
			size, err := s.artifactSize(stage, plan, id, a.Name)
			if err != nil {
				return nil, fmt.Errorf("commit %s: group %s: artifact %s: %w", id, name, a.Name, err)
			}
			if want := s.StoredSize(a.Size); size != want {
				return nil, fmt.Errorf("commit %s: group %s: artifact %s is %d bytes, the group recorded %d", id, name, a.Name, size, want)
			}
		}
		m.Groups = append(m.Groups, *g)
		m.Size += g.Size
		m.DataSize += g.DataSize
		m.Consistency = Weakest(m.Consistency, g.Consistency)
		if m.Instant.IsZero() || g.Instant.Before(m.Instant) {
			m.Instant = g.Instant.UTC()
		}
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	return m, nil
}

// Load reads a committed point's manifest. ErrNotFound when there is none;
// an ErrCorrupt error when it cannot be read.
func (s *Store) Load(plan, id string) (*Manifest, error) {
	if err := checkPlanID(plan, id); err != nil {
		return nil, err
	}
	if s.objects != nil {
		return s.objLoad(plan, id)
	}
	data, err := os.ReadFile(filepath.Join(s.PointDir(plan, id), ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("point %s of plan %s: %w", id, plan, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", id, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("point %s: %s: %w", id, filepath.Join(s.PointDir(plan, id), ManifestFile), err)
	}
	if m.ID != id || m.Plan != plan {
		return nil, fmt.Errorf("point %s: %w: the manifest is of point %s of plan %s", id, ErrCorrupt, m.ID, m.Plan)
	}
	return m, nil
}

// Validity reads a committed point's validity. A missing or unreadable
// validity file reads as unverified: a point is never made valid by
// accident.
func (s *Store) Validity(plan, id string) (Validity, error) {
	if err := checkPlanID(plan, id); err != nil {
		return Validity{}, err
	}
	if s.objects != nil {
		return s.objValidity(plan, id)
	}
	data, err := os.ReadFile(filepath.Join(s.PointDir(plan, id), ValidityFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Validity{State: Unverified}, nil
	}
	if err != nil {
		return Validity{State: Unverified}, fmt.Errorf("point %s: %w", id, err)
	}
	v, err := ParseValidity(data)
	if err != nil {
		return Validity{State: Unverified}, fmt.Errorf("point %s: %w", id, err)
	}
	return v, nil
}

// SetValidity replaces a committed point's validity atomically.
func (s *Store) SetValidity(plan, id string, v Validity) error {
	switch v.State {
	case Unverified, Valid, Invalid:
	default:
		return fmt.Errorf("validity of %s: state %q (want unverified, valid or invalid)", id, v.State)
	}
	if _, err := s.Load(plan, id); err != nil {
		return fmt.Errorf("set validity: %w", err)
	}
	if v.At.IsZero() {
		v.At = time.Now().UTC()
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if s.objects != nil {
		return s.putMeta(validityKey(plan, id), data)
	}
	return WriteFileAtomic(filepath.Join(s.PointDir(plan, id), ValidityFile), data, 0o640)
}

// Point is the summary of a recovery point that listings show.
type Point struct {
	ID          string         `json:"id"`
	Plan        string         `json:"plan"`
	Mode        Mode           `json:"mode,omitempty"`
	BaseID      string         `json:"baseId,omitempty"`
	Instant     time.Time      `json:"instant,omitzero"`
	Started     time.Time      `json:"started,omitzero"`
	Ended       time.Time      `json:"ended,omitzero"`
	Size        int64          `json:"size"`
	DataSize    int64          `json:"dataSize"`
	Consistency Consistency    `json:"consistency,omitempty"`
	Quiesce     *QuiesceWindow `json:"quiesce,omitempty"`
	Validity    Validity       `json:"validity"`
	Groups      []GroupSummary `json:"groups,omitempty"`
	Cold        bool           `json:"cold,omitempty"`
	// Configuration is the configuration the point holds, when recorded.
	Configuration *Configuration `json:"configuration,omitempty"`
	Dir           string         `json:"dir"`
	// Problem is set when the manifest could not be read: the point is
	// listed so an operator sees it, but nothing may restore from it.
	Problem string `json:"problem,omitempty"`
}

// GroupSummary is a group of a point without its file lists.
type GroupSummary struct {
	Name        string      `json:"name"`
	Driver      string      `json:"driver"`
	Method      string      `json:"method"`
	Consistency Consistency `json:"consistency"`
	Members     []string    `json:"members"`
}

// Summary turns a manifest into a listing entry.
func (m *Manifest) Summary() Point {
	p := Point{ID: m.ID, Plan: m.Plan, Mode: m.Mode, BaseID: m.BaseID, Instant: m.Instant,
		Started: m.Started, Ended: m.Ended, Size: m.Size, DataSize: m.DataSize, Consistency: m.Consistency, Quiesce: m.Quiesce,
		Cold: m.Cold, Configuration: m.Configuration}
	for _, g := range m.Groups {
		gs := GroupSummary{Name: g.Name, Driver: g.Driver, Method: g.Method, Consistency: g.Consistency}
		for _, mem := range g.Members {
			gs.Members = append(gs.Members, mem.Name)
		}
		p.Groups = append(p.Groups, gs)
	}
	return p
}

// FirstSeen returns the earliest time the points record for a
// configuration fingerprint, or since when none records an earlier one.
func FirstSeen(points []Point, fingerprint string, since time.Time) time.Time {
	first := since
	for _, p := range points {
		c := p.Configuration
		if c == nil || c.Fingerprint != fingerprint || c.FirstSeen.IsZero() {
			continue
		}
		if first.IsZero() || c.FirstSeen.Before(first) {
			first = c.FirstSeen
		}
	}
	return first
}

// Usable reports whether a point may be restored: readable and not invalid.
func (p Point) Usable() bool { return p.Problem == "" && p.Validity.State != Invalid }

// ByID indexes points by id.
func ByID(points []Point) map[string]Point {
	m := make(map[string]Point, len(points))
	for _, p := range points {
		m[p.ID] = p
	}
	return m
}

// Unrestorable says why a point cannot be restored, or "" when it can: it
// must be usable and, if cumulative, so must the full point it builds on
// (restore = that full + this point).
func Unrestorable(byID map[string]Point, p Point) string {
	why := func(p Point) string {
		if p.Problem != "" {
			return p.Problem
		}
		if p.Validity.State == Invalid {
			return "invalid: " + p.Validity.Reason
		}
		return ""
	}
	if w := why(p); w != "" {
		return w
	}
	if p.Mode != ModeCumulative {
		return ""
	}
	base, ok := byID[p.BaseID]
	switch {
	case !ok:
		return "its full point " + p.BaseID + " is gone"
	case base.Mode != ModeFull:
		return "its base " + p.BaseID + " is not a full point"
	}
	if w := why(base); w != "" {
		return "its full point " + p.BaseID + " cannot be restored: " + w
	}
	return ""
}

// List returns the committed points of a plan (every plan when plan is
// ""), oldest first. A folder without a manifest is not a point and is
// left out; a corrupt manifest is listed with Problem set rather than
// failing the listing. The error is for a store that cannot be read.
func (s *Store) List(plan string) ([]Point, error) {
	var plans []string
	if plan != "" {
		if err := CheckName("plan", plan); err != nil {
			return nil, err
		}
		plans = []string{plan}
	}
	var out []Point
	if s.objects != nil {
		var err error
		if out, err = s.objList(plan); err != nil {
			return nil, err
		}
		plans = nil
	} else if plan == "" {
		ents, err := os.ReadDir(s.Root)
		if err != nil {
			return nil, fmt.Errorf("list store %s: %w", s.Root, err)
		}
		for _, e := range ents {
			if e.IsDir() && CheckName("plan", e.Name()) == nil {
				plans = append(plans, e.Name())
			}
		}
	}
	for _, pl := range plans {
		ents, err := os.ReadDir(filepath.Join(s.planDir(pl), pointsDir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list store %s: %w", s.Root, err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			id := e.Name()
			dir := s.PointDir(pl, id)
			if CheckName("point", id) != nil {
				continue
			}
			p, ok := s.pointSummary(pl, id)
			if !ok {
				continue
			}
			p.Dir = dir
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Instant.Equal(out[j].Instant) {
			return out[i].Instant.Before(out[j].Instant)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Delete removes a committed point: one rename makes it disappear, then
// its data is removed. Deleting a point that does not exist is not an
// error, so a retried retention step is harmless.
func (s *Store) Delete(plan, id string) error {
	if err := checkPlanID(plan, id); err != nil {
		return err
	}
	if s.objects != nil {
		return s.objDelete(plan, id)
	}
	dir := s.PointDir(plan, id)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	trash := filepath.Join(s.planDir(plan), trashDir)
	if err := s.mkdir(trash); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	dst := filepath.Join(trash, id+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(dir, dst); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("delete %s: remove data: %w", id, err)
	}
	return nil
}

// CollectGarbage removes what crashed or abandoned runs left: staged points
// not listed in active and untouched for longer than grace, folders in
// points/ without a manifest, and the trash. It returns what it removed.
// grace protects a backup running concurrently in another worker: its
// files keep changing while it writes them.
func (s *Store) CollectGarbage(plan string, active []string, grace time.Duration) ([]string, error) {
	if err := CheckName("plan", plan); err != nil {
		return nil, err
	}
	if s.objects != nil {
		return s.objCollectGarbage(plan, active, grace)
	}
	keep := map[string]bool{}
	for _, id := range active {
		keep[id] = true
	}
	var removed []string
	now := time.Now()
	sweep := func(sub string, skip func(id, dir string) bool) error {
		parent := filepath.Join(s.planDir(plan), sub)
		ents, err := os.ReadDir(parent)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("collect garbage in %s: %w", parent, err)
		}
		for _, e := range ents {
			dir := filepath.Join(parent, e.Name())
			if skip(e.Name(), dir) {
				continue
			}
			if now.Sub(newestChange(dir)) < grace {
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("collect garbage: remove %s: %w", dir, err)
			}
			removed = append(removed, dir)
		}
		return nil
	}
	if err := sweep(stagingDir, func(id, _ string) bool { return keep[id] }); err != nil {
		return removed, err
	}
	if err := sweep(pointsDir, func(id, dir string) bool {
		_, err := os.Lstat(filepath.Join(dir, ManifestFile))
		return keep[id] || !errors.Is(err, fs.ErrNotExist)
	}); err != nil {
		return removed, err
	}
	if err := sweep(trashDir, func(string, string) bool { return false }); err != nil {
		return removed, err
	}
	return removed, nil
}

// newestChange is the latest modification time in a tree: a folder still
// being written by a live backup keeps getting newer.
func newestChange(root string) time.Time {
	var newest time.Time
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	return newest
}

// mkdir creates folders under the store's root, never the root itself: a
// store that vanished after it was opened (its mount gone) fails instead of
// being recreated on the local disk. In the object layout the folders are
// in the local staging folder, which is made when missing.
func (s *Store) mkdir(dir string) error {
	if s.objects != nil {
		return os.MkdirAll(dir, 0o750)
	}
	rel, err := filepath.Rel(s.Root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("store %s: %s is not inside it", s.Root, dir)
	}
	// Through the root's own handle: the root is never made, and a root
	// renamed away meanwhile gets the folders where it went, not anew.
	root, err := os.OpenRoot(s.Root)
	if err != nil {
		return fmt.Errorf("store %s: %w", s.Root, err)
	}
	defer root.Close()
	return root.MkdirAll(rel, 0o750)
}

// CheckWritable proves the store accepts writes for a plan by writing,
// syncing and removing a small file.
func (s *Store) CheckWritable(plan string) error {
	if err := CheckName("plan", plan); err != nil {
		return err
	}
	if s.objects != nil {
		return s.objCheckWritable(plan)
	}
	dir := s.planDir(plan)
	if err := s.mkdir(dir); err != nil {
		return fmt.Errorf("store %s is not writable: %w", s.Root, StoreError(err))
	}
	probe := filepath.Join(dir, ".write-probe")
	if err := WriteFileAtomic(probe, []byte("drover\n"), 0o640); err != nil {
		return fmt.Errorf("store %s is not writable: %w", s.Root, err)
	}
	return os.Remove(probe)
}

// Free returns the bytes free in the store's file system. In the object
// layout it is the local staging folder's: a capture is staged there in
// full before it is shipped, and a bucket reports no free space.
func (s *Store) Free() (uint64, error) {
	if s.objects != nil {
		if err := os.MkdirAll(s.staging, 0o750); err != nil {
			return 0, fmt.Errorf("staging %s: %w", s.staging, err)
		}
		return FreeSpace(s.staging)
	}
	return FreeSpace(s.Root)
}

// CheckFree fails with ErrStoreFull when the store has less than need bytes
// free, so a backup that cannot fit fails before it writes anything.
func (s *Store) CheckFree(need int64) error {
	free, err := s.Free()
	if err != nil {
		return err
	}
	if need > 0 && free < uint64(need) {
		where := s.Root
		if s.objects != nil {
			where = "the staging folder " + s.staging
		}
		return fmt.Errorf("%w: %s has %s free, the backup needs about %s", ErrStoreFull, where, HumanBytes(int64(free)), HumanBytes(need))
	}
	return nil
}

// HumanBytes formats a byte count with binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// NewID makes a point id that sorts by time: the UTC capture start and a
// short hash of salt (a workflow run id), so a workflow can make the same
// id again on replay.
func NewID(t time.Time, salt string) string {
	h := NewHash()
	_, _ = h.Write([]byte(salt))
	return fmt.Sprintf("%s-%06x", t.UTC().Format("20060102T150405Z"), h.Sum64()&0xffffff)
}

// pointSummary is one point's line in a listing: its manifest's summary and
// validity, or the problem that kept them from being read. A point whose
// manifest is gone (deleted meanwhile) is not listed.
func (s *Store) pointSummary(pl, id string) (Point, bool) {
	m, err := s.Load(pl, id)
	if errors.Is(err, ErrNotFound) {
		return Point{}, false
	}
	if err != nil {
		return Point{ID: id, Plan: pl, Problem: err.Error(), Validity: Validity{State: Unverified}}, true
	}
	p := m.Summary()
	v, verr := s.Validity(pl, id)
	p.Validity = v
	if verr != nil {
		p.Problem = verr.Error()
	}
	return p, true
}
