package tarzst

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

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

// RestoreToSite restores a group stored as member archives into the
// request's site, under its dataRoot.
func RestoreToSite(ctx context.Context, req storage.RestoreRequest, progress storage.Progress) (storage.Result, error) {
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

// memberNames lists members' names for a message.
func memberNames(members []catalog.Member) string {
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
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
	if len(req.Members) > 0 {
		members = nil
		for _, m := range last.Members {
			if slices.Contains(req.Members, m.Name) {
				members = append(members, m)
			}
		}
		if len(members) != len(req.Members) {
			return res, fmt.Errorf("restore: group %q of point %s holds members %s, not all of %s", req.Group.Name, req.PointID,
				memberNames(last.Members), strings.Join(req.Members, ", "))
		}
	}
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
