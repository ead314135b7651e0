// Package archive is the "archive" storage driver (the BPM seed's simple
// server backup, done fast): every member of a consistency group becomes a
// tar stream compressed with zstd on every core, written into the point's
// staging folder in the store with a checksum of every file and of every
// archive. Full and cumulative (changed since the last full) modes.
//
// The lvm driver reuses WriteGroup and RestoreGroup on its snapshot mount.
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
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
	Compare Compare `json:"compare,omitempty"`
	// Workers compress in parallel; every core when 0.
	Workers int `json:"workers,omitempty"`
}

// DecodeSettings decodes and checks the group settings.
func DecodeSettings(raw map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(err)
	}
	if err := CheckOptions(&s.Compare, s.Workers); err != nil {
		return s, err
	}
	return s, nil
}

// CheckOptions checks the compare and workers settings that the drivers
// writing archives (this one, lvm) take, and defaults compare to mtime.
func CheckOptions(compare *Compare, workers int) error {
	switch *compare {
	case "":
		*compare = CompareMtime
	case CompareMtime, CompareChecksum:
	default:
		return drivers.BadSettingsf("settings: compare: %q (want mtime or checksum)", *compare)
	}
	if workers < 0 {
		return drivers.BadSettingsf("settings: workers: %d is negative", workers)
	}
	return nil
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
	return EstimateMembers(ctx, p.Root, p.Members, base, p.s.Compare)
}

// EstimateMembers sums the bytes and files a capture of members would
// write (for a cumulative point, the changed ones by size and mtime; by
// checksum the estimate is every file, an upper bound).
func EstimateMembers(ctx context.Context, root string, members []string, base *catalog.Group, cmp Compare) (storage.Estimate, error) {
	var est storage.Estimate
	for _, m := range members {
		entries, _, err := walk(ctx, filepath.Join(root, m))
		if err != nil {
			return est, fmt.Errorf("estimate member %s: %w", m, err)
		}
		if bm := baseMember(base, m); bm != nil && cmp == CompareMtime {
			if entries, _, err = changedSince(ctx, entries, bm, CompareMtime); err != nil {
				return est, err
			}
		}
		for _, e := range entries {
			est.Files++
			est.Bytes += sizeOf(e.info) + 512
		}
	}
	return est, nil
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
	g, res, err := WriteGroup(ctx, p.Store, req, WriteSpec{
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
	store, err := storage.OpenStore(req.Store, req.StoreSettings)
	if err != nil {
		return storage.Result{Group: req.Group.Name}, err
	}
	root, err := storage.DataRoot(req.Site)
	if err != nil {
		return storage.Result{Group: req.Group.Name}, err
	}
	return RestoreGroup(ctx, store, req, root, progress)
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

func baseMember(base *catalog.Group, name string) *catalog.Member {
	if base == nil {
		return nil
	}
	for i := range base.Members {
		if base.Members[i].Name == name {
			return &base.Members[i]
		}
	}
	// A member new since the base: every file is a change.
	return &catalog.Member{Name: name}
}

// WriteSpec says what WriteGroup archives and how to record it.
type WriteSpec struct {
	// Root holds the members as sub-directories.
	Root        string
	Members     []string
	Base        *catalog.Group
	Compare     Compare
	Workers     int
	Method      string
	Driver      string
	Consistency catalog.Consistency
	Instant     time.Time
	Source      map[string]string
}

// WriteGroup archives members from spec.Root into the point's staging
// folder (starting the group over if a previous attempt left anything) and
// records the group's manifest there.
func WriteGroup(ctx context.Context, store *catalog.Store, req storage.Request, spec WriteSpec, progress storage.Progress) (*catalog.Group, storage.Result, error) {
	res := storage.Result{Group: req.Group.Name}
	gdir, err := store.ResetGroup(req.Plan, req.PointID, req.Group.Name)
	if err != nil {
		return nil, res, err
	}
	fail := func(err error) (*catalog.Group, storage.Result, error) {
		// No partial group: a failed capture leaves nothing that looks done.
		_, _ = store.ResetGroup(req.Plan, req.PointID, req.Group.Name)
		_ = os.Remove(gdir)
		return nil, res, fmt.Errorf("capture group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	report := progress.Counter()
	results := make([]MemberResult, len(spec.Members))
	comp := startCompressors(spec.Workers)
	defer comp.stop()
	g, gctx := errgroup.WithContext(ctx)
	// Members in parallel: each has its own reader, so many small files in
	// several members do not wait on one another; compression workers
	// already use every core.
	g.SetLimit(max(1, min(len(spec.Members), runtime.GOMAXPROCS(0))))
	for i, m := range spec.Members {
		g.Go(func() error {
			artifact := req.Group.Name + "/" + m + ".tar.zst"
			r, err := WriteMember(gctx, m, filepath.Join(spec.Root, m), filepath.Join(gdir, m+".tar.zst"), artifact,
				WriteOptions{Base: baseMember(spec.Base, m), Compare: spec.Compare, Progress: report, compressors: comp})
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	if err := catalog.SyncDir(gdir); err != nil {
		return fail(err)
	}
	grp := &catalog.Group{Name: req.Group.Name, Driver: spec.Driver, Method: spec.Method,
		Consistency: spec.Consistency, Instant: spec.Instant.UTC(), Source: spec.Source}
	for _, r := range results {
		grp.Members = append(grp.Members, r.Member)
		grp.Artifacts = append(grp.Artifacts, r.Artifact)
		grp.Size += r.Artifact.Size
		grp.DataSize += r.DataBytes
		grp.Warnings = append(grp.Warnings, r.Warnings...)
		res.Files += int64(len(r.Member.Files))
	}
	if err := store.WriteGroup(req.Plan, req.PointID, *grp); err != nil {
		return fail(err)
	}
	res.Bytes = grp.DataSize
	res.Stored = grp.Size
	return grp, res, nil
}

// RestoreGroup restores a group stored as member archives (the archive and
// lvm drivers) into root: each member is extracted into a temporary folder
// beside its target (for a cumulative point, the base first, then the
// point), and only when every member extracted cleanly are they moved into
// place. A damaged archive stops the restore before any target changes.
func RestoreGroup(ctx context.Context, store *catalog.Store, req storage.RestoreRequest, root string, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	res := storage.Result{Group: req.Group.Name}
	if err := catalog.CheckName("group", req.Group.Name); err != nil {
		return res, drivers.BadSettings(err)
	}
	chain, err := storage.PointOf(store, req.Plan, req.PointID, req.AllowInvalid)
	if err != nil {
		return res, fmt.Errorf("restore group %s: %w", req.Group.Name, err)
	}
	last := chain[len(chain)-1].GroupByName(req.Group.Name)
	if last == nil {
		return res, fmt.Errorf("restore: point %s has no group %q", req.PointID, req.Group.Name)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return res, fmt.Errorf("restore group %s: %w", req.Group.Name, err)
	}
	members := last.Members
	for _, m := range members {
		target := filepath.Join(root, m.Name)
		if !req.Replace {
			if empty, err := storage.EmptyOrMissing(target); err != nil {
				return res, fmt.Errorf("restore member %s: %w", m.Name, err)
			} else if !empty {
				return res, fmt.Errorf("restore member %s: %s exists and is not empty (restore with replace to overwrite it)", m.Name, target)
			}
		}
	}
	tmps := make([]string, len(members))
	cleanup := func() {
		for _, t := range tmps {
			if t != "" {
				_ = os.RemoveAll(t)
			}
		}
	}
	report := progress.Counter()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(len(members), runtime.GOMAXPROCS(0))))
	for i, m := range members {
		tmp := filepath.Join(root, "."+m.Name+".restore-"+req.PointID)
		tmps[i] = tmp
		g.Go(func() error {
			if err := os.RemoveAll(tmp); err != nil {
				return err
			}
			if err := os.Mkdir(tmp, 0o750); err != nil {
				return fmt.Errorf("restore member %s: %w", m.Name, err)
			}
			for _, pt := range chain {
				pg := pt.GroupByName(req.Group.Name)
				if pg == nil {
					continue
				}
				var mem *catalog.Member
				for k := range pg.Members {
					if pg.Members[k].Name == m.Name {
						mem = &pg.Members[k]
					}
				}
				if mem == nil || mem.Artifact == "" {
					continue
				}
				var art *catalog.Artifact
				for k := range pg.Artifacts {
					if pg.Artifacts[k].Name == mem.Artifact {
						art = &pg.Artifacts[k]
					}
				}
				if art == nil {
					return &storage.CorruptError{File: filepath.Join(req.Plan, "points", pt.ID, catalog.ManifestFile), Reason: "member " + m.Name + " names a missing artifact"}
				}
				src := filepath.Join(store.PointDir(req.Plan, pt.ID), art.Name)
				name, _ := filepath.Rel(store.Root, src)
				if store.ObjectLayout() {
					// Extraction reads the archive's frames in parallel
					// by offset: fetch it (opened, when sealed) beside the
					// target first.
					name = catalog.ArtifactKey(req.Plan, pt.ID, art.Name)
					src = filepath.Join(root, "."+m.Name+".fetch-"+pt.ID)
					if err := fetchArtifact(gctx, store, req.Plan, pt.ID, *art, src); err != nil {
						return fmt.Errorf("restore member %s from point %s: %w", m.Name, pt.ID, err)
					}
				}
				r, err := ExtractMember(gctx, src, *art, *mem, tmp, ExtractOptions{Progress: report, Name: name})
				if store.ObjectLayout() {
					_ = os.Remove(src)
				}
				if err != nil {
					return fmt.Errorf("restore member %s from point %s: %w", m.Name, pt.ID, err)
				}
				if mem.Mode != 0 {
					if err := os.Chmod(tmp, fs.FileMode(mem.Mode)); err != nil {
						return fmt.Errorf("restore member %s: %w", m.Name, err)
					}
					mt := time.Unix(0, mem.MTime)
					if err := os.Chtimes(tmp, mt, mt); err != nil {
						return fmt.Errorf("restore member %s: %w", m.Name, err)
					}
				}
				mu.Lock()
				res.Files += r.Files
				res.Bytes += r.DataBytes
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		cleanup()
		return res, err
	}
	// Every member extracted and checked: swap them in.
	for i, m := range members {
		target := filepath.Join(root, m.Name)
		old := filepath.Join(root, "."+m.Name+".old-"+req.PointID)
		if err := os.RemoveAll(old); err != nil {
			cleanup()
			return res, fmt.Errorf("restore member %s: %w", m.Name, err)
		}
		if err := os.Rename(target, old); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return res, fmt.Errorf("restore member %s: move the old data aside: %w", m.Name, err)
		}
		if err := os.Rename(tmps[i], target); err != nil {
			cleanup()
			return res, fmt.Errorf("restore member %s: %w", m.Name, err)
		}
		tmps[i] = ""
		if err := os.RemoveAll(old); err != nil {
			return res, fmt.Errorf("restore member %s: remove the old data: %w", m.Name, err)
		}
	}
	if err := storage.SyncFS(root); err != nil {
		return res, fmt.Errorf("restore group %s: %w", req.Group.Name, err)
	}
	res.Evidence = drivers.Evidence{Action: fmt.Sprintf("extract %d members of point %s into %s", len(members), req.PointID, root), Duration: time.Since(start)}
	return res, nil
}

// fetchArtifact copies an artifact from an object store into dst, opened
// when sealed. Sealed data that fails authentication, or a size other than
// the manifest's, is a CorruptError naming the object.
func fetchArtifact(ctx context.Context, store *catalog.Store, plan, id string, art catalog.Artifact, dst string) error {
	key := catalog.ArtifactKey(plan, id, art.Name)
	r, err := store.OpenArtifact(ctx, plan, id, art.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return &storage.CorruptError{File: key, Reason: "missing"}
	}
	if errors.Is(err, seal.ErrDamaged) || errors.Is(err, seal.ErrNotSealed) {
		return &storage.CorruptError{File: key, Reason: err.Error()}
	}
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, seal.ErrDamaged) {
		_ = os.Remove(dst)
		return &storage.CorruptError{File: key, Reason: err.Error()}
	}
	if err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	if n != art.Size {
		_ = os.Remove(dst)
		return &storage.CorruptError{File: key, Reason: fmt.Sprintf("%d bytes, the manifest says %d", n, art.Size)}
	}
	return nil
}
