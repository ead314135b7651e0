// Package btrfs is the "btrfs" storage driver (the BPM seed's OS snapshot,
// copy-on-write): the site's data root is a btrfs subvolume; a read-only
// snapshot captures every member at one instant, in constant time, while
// the group is quiesced; `btrfs send` ships it afterwards into the store
// (for a cumulative point, incrementally against the base full point's
// snapshot, kept on the source for that), compressed with zstd on every
// core; `btrfs receive` restores it.
package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// Method is recorded in the manifest of groups this driver captures.
const Method = "btrfs-send+zstd"

const streamFile = "send.btrfs.zst"

// Settings are the btrfs driver's group settings.
type Settings struct {
	// Members are recorded in the manifest (the snapshot holds the whole
	// subvolume); the group's components when left out.
	Members []string `json:"members,omitempty"`
	// Subvolume is the subvolume to snapshot, relative to the site's
	// dataRoot; the dataRoot itself when empty.
	Subvolume string `json:"subvolume,omitempty"`
	// SnapshotDir keeps the read-only snapshots on the same btrfs file
	// system; default: .drover-snapshots beside the subvolume.
	SnapshotDir string `json:"snapshotDir,omitempty"`
}

// DecodeSettings decodes and checks the group settings.
func DecodeSettings(raw map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(err)
	}
	if s.Subvolume != "" {
		if err := catalog.CheckRelPath(s.Subvolume); err != nil {
			return s, drivers.BadSettingsf("settings: subvolume: %v", err)
		}
	}
	if s.SnapshotDir != "" && !strings.HasPrefix(s.SnapshotDir, "/") && !strings.HasPrefix(s.SnapshotDir, "$") {
		return s, drivers.BadSettingsf("settings: snapshotDir: %q is not an absolute path", s.SnapshotDir)
	}
	for _, m := range s.Members {
		if err := catalog.CheckName("member", m); err != nil {
			return s, drivers.BadSettingsf("settings: members: %v", err)
		}
	}
	return s, nil
}

// Driver is the btrfs storage driver.
type Driver struct {
	Logger *zap.Logger
	Runner storage.Runner
	// Btrfs is the btrfs-progs command ("btrfs").
	Btrfs string
}

// New returns the btrfs driver running real commands.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{Logger: logger, Runner: storage.ExecRunner{}, Btrfs: "btrfs"}
}

var _ storage.Driver = (*Driver)(nil)

// CheckSettings implements drivers.SettingsChecker.
func (d *Driver) CheckSettings(settings map[string]any) error {
	_, err := DecodeSettings(settings)
	return err
}

type prepared struct {
	s Settings
	storage.Target
	src     string // the subvolume
	snapDir string
}

func prepare(req storage.Request) (*prepared, error) {
	s, t, err := storage.Prepare(req, DecodeSettings, func(s Settings) []string { return s.Members })
	if err != nil {
		return nil, err
	}
	if err := storage.RequireFolder(t.Store, "btrfs"); err != nil {
		return nil, err
	}
	p := &prepared{s: s, Target: t, src: filepath.Join(t.Root, s.Subvolume)}
	p.snapDir, err = snapshotDir(s, p.src)
	return p, err
}

func snapshotDir(s Settings, src string) (string, error) {
	if s.SnapshotDir == "" {
		return filepath.Join(filepath.Dir(src), ".drover-snapshots"), nil
	}
	dir, err := drivers.ExpandPath(s.SnapshotDir)
	if err != nil {
		return "", drivers.BadSettingsf("settings: snapshotDir: %v", err)
	}
	return filepath.Clean(dir), nil
}

// snapName names the snapshot of one group of one point.
func snapName(plan, id, group string) string { return plan + "." + id + "." + group }

func (d *Driver) run(ctx context.Context, step string, c storage.Cmd) (string, error) {
	out, err := d.Runner.Run(ctx, c)
	if err != nil {
		return out, fmt.Errorf("step %s: %w", step, err)
	}
	return out, nil
}

func (d *Driver) btrfs(args ...string) storage.Cmd { return storage.Cmd{Name: d.Btrfs, Args: args} }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Estimate sums the bytes a send would carry: every file for a full point,
// files modified since the base point's instant for a cumulative one.
func (d *Driver) Estimate(ctx context.Context, req storage.Request) (storage.Estimate, error) {
	var est storage.Estimate
	p, err := prepare(req)
	if err != nil {
		return est, err
	}
	var since time.Time
	if req.Mode == catalog.ModeCumulative {
		base, err := p.Store.Load(req.Plan, req.BaseID)
		if err != nil {
			return est, fmt.Errorf("estimate group %s: base point %s: %w: %w", req.Group.Name, req.BaseID, storage.ErrBaseUnavailable, err)
		}
		since = base.Instant
		// Say now, in the preflight, that the incremental send would fail.
		if bg := base.GroupByName(req.Group.Name); bg == nil || bg.Source["snapshot"] == "" || !exists(filepath.Join(p.snapDir, bg.Source["snapshot"])) {
			return est, fmt.Errorf("estimate group %s: the base point %s's snapshot is not on the source: %w", req.Group.Name, req.BaseID, storage.ErrBaseUnavailable)
		}
	}
	err = filepath.WalkDir(p.src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == p.snapDir {
			return filepath.SkipDir
		}
		if est.Files%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		if !since.IsZero() && !info.ModTime().After(since) {
			return nil
		}
		est.Files++
		if info.Mode().IsRegular() {
			est.Bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return est, fmt.Errorf("estimate group %s: %w", req.Group.Name, err)
	}
	return est, nil
}

// Capture takes a read-only snapshot of the subvolume: constant time,
// whatever the size of the data. A retry deletes a snapshot an earlier
// attempt left and takes it again, so the snapshot always falls inside the
// caller's current quiesce window.
func (d *Driver) Capture(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	res := storage.Result{Group: req.Group.Name}
	p, err := prepare(req)
	if err != nil {
		return res, err
	}
	fail := func(err error) (storage.Result, error) {
		return res, fmt.Errorf("btrfs capture of group %s: %w", req.Group.Name, err)
	}
	if done, err := storage.BeginCapture(p.Store, req); err != nil {
		return fail(err)
	} else if done {
		res.Evidence.AlreadyDone = true
		return res, nil
	}
	if err := os.MkdirAll(p.snapDir, 0o750); err != nil {
		return fail(fmt.Errorf("step snapshot folder: %w", err))
	}
	snap := filepath.Join(p.snapDir, snapName(req.Plan, req.PointID, req.Group.Name))
	if exists(snap) {
		if _, err := d.run(ctx, "delete earlier snapshot", d.btrfs("subvolume", "delete", snap)); err != nil {
			return fail(err)
		}
	}
	start := time.Now()
	c := d.btrfs("subvolume", "snapshot", "-r", p.src, snap)
	out, err := d.run(ctx, "snapshot", c)
	if err != nil {
		if exists(snap) {
			_, _ = d.Runner.Run(context.WithoutCancel(ctx), d.btrfs("subvolume", "delete", snap))
		}
		return fail(err)
	}
	res.Instant = start
	res.Evidence = drivers.Evidence{Action: c.String(), Output: drivers.Truncate(out, 500), Duration: time.Since(start)}
	return res, nil
}

// Ship sends the snapshot into the store: incrementally against the base
// full point's snapshot for a cumulative point. A cumulative point's own
// snapshot is then deleted (nothing builds on it); a full point's is kept
// as the parent of the cumulative points to come.
func (d *Driver) Ship(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	res := storage.Result{Group: req.Group.Name}
	p, err := prepare(req)
	if err != nil {
		return res, err
	}
	if done, err := storage.Shipped(p.Store, req, &res); err != nil || done {
		return res, err
	}
	fail := func(err error) (storage.Result, error) {
		return res, fmt.Errorf("btrfs ship of group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	name := snapName(req.Plan, req.PointID, req.Group.Name)
	snap := filepath.Join(p.snapDir, name)
	if !exists(snap) {
		return fail(fmt.Errorf("snapshot %s is gone: %w", snap, storage.ErrRecapture))
	}
	out, err := d.run(ctx, "show snapshot", d.btrfs("subvolume", "show", snap))
	if err != nil {
		return fail(err)
	}
	info, err := ParseSubvolumeShow(out)
	if err != nil {
		return fail(err)
	}
	if !info.ReadOnly {
		return fail(fmt.Errorf("snapshot %s is not read-only: %w", snap, storage.ErrRecapture))
	}
	args := []string{"send"}
	parentName := ""
	if req.Mode == catalog.ModeCumulative {
		parentName, err = d.parentOf(ctx, p, req)
		if err != nil {
			return fail(err)
		}
		args = append(args, "-p", filepath.Join(p.snapDir, parentName))
	}
	args = append(args, snap)

	gdir, err := p.Store.ResetGroup(req.Plan, req.PointID, req.Group.Name)
	if err != nil {
		return fail(err)
	}
	cleanup := func() { _, _ = p.Store.ResetGroup(req.Plan, req.PointID, req.Group.Name); _ = os.Remove(gdir) }
	pr, pw := io.Pipe()
	send := d.btrfs(args...)
	send.Stdout = pw
	sent := make(chan error, 1)
	go func() {
		_, err := d.run(ctx, "send", send)
		pw.CloseWithError(err)
		sent <- err
	}()
	art, n, cerr := tarzst.CompressStream(ctx, pr, filepath.Join(gdir, streamFile), req.Group.Name+"/"+streamFile,
		tarzst.WriteOptions{Progress: progress.Counter()})
	pr.CloseWithError(errors.New("the store side stopped reading"))
	serr := <-sent
	if serr != nil {
		cleanup()
		return fail(serr)
	}
	if cerr != nil {
		cleanup()
		return fail(fmt.Errorf("step store stream: %w", cerr))
	}
	if err := catalog.SyncDir(gdir); err != nil {
		cleanup()
		return fail(err)
	}
	g := catalog.Group{Name: req.Group.Name, Driver: req.Group.Driver, Method: Method,
		Consistency: storage.Consistency(req.Quiesced, true), Instant: info.Created.UTC(),
		Artifacts: []catalog.Artifact{art}, Size: art.Size, DataSize: n,
		Source: map[string]string{"snapshot": name, "uuid": info.UUID, "subvolume": p.s.Subvolume}}
	if parentName != "" {
		g.Source["parent"] = parentName
	}
	for _, m := range p.Members {
		g.Members = append(g.Members, catalog.Member{Name: m})
	}
	if err := p.Store.WriteGroup(req.Plan, req.PointID, g); err != nil {
		cleanup()
		return fail(err)
	}
	if req.Mode == catalog.ModeCumulative {
		if _, err := d.run(ctx, "delete shipped snapshot", d.btrfs("subvolume", "delete", snap)); err != nil {
			d.Logger.Warn("btrfs: could not delete a shipped cumulative snapshot; the next sweep retries", zap.Error(err))
		}
	}
	res.Bytes, res.Stored = n, art.Size
	res.Evidence = drivers.Evidence{Action: send.String() + " | zstd > " + filepath.Join(gdir, streamFile), Duration: time.Since(start)}
	return res, nil
}

// parentOf finds the base full point's snapshot on the source.
func (d *Driver) parentOf(ctx context.Context, p *prepared, req storage.Request) (string, error) {
	base, err := p.Store.Load(req.Plan, req.BaseID)
	if err != nil {
		return "", fmt.Errorf("base point %s: %w: %w", req.BaseID, storage.ErrBaseUnavailable, err)
	}
	bg := base.GroupByName(req.Group.Name)
	if bg == nil || bg.Driver != req.Group.Driver || bg.Source["snapshot"] == "" {
		return "", fmt.Errorf("base point %s has no btrfs snapshot of group %s: %w", req.BaseID, req.Group.Name, storage.ErrBaseUnavailable)
	}
	parent := filepath.Join(p.snapDir, bg.Source["snapshot"])
	if !exists(parent) {
		return "", fmt.Errorf("the base point's snapshot %s is gone from the source: %w", parent, storage.ErrBaseUnavailable)
	}
	out, err := d.run(ctx, "show parent", d.btrfs("subvolume", "show", parent))
	if err != nil {
		return "", err
	}
	info, err := ParseSubvolumeShow(out)
	if err != nil {
		return "", err
	}
	if info.UUID != bg.Source["uuid"] {
		return "", fmt.Errorf("snapshot %s is not the one the base point sent (uuid %s, want %s): %w", parent, info.UUID, bg.Source["uuid"], storage.ErrBaseUnavailable)
	}
	return bg.Source["snapshot"], nil
}

// Verify checks the stored send streams' checksums.
func (d *Driver) Verify(ctx context.Context, req storage.Request, progress storage.Progress) (storage.VerifyResult, error) {
	p, err := prepare(req)
	if err != nil {
		return storage.VerifyResult{Group: req.Group.Name}, err
	}
	return storage.VerifyGroup(ctx, p.Store, req.Plan, req.PointID, req.Group.Name, progress)
}

// Restore receives the point's stream (for a cumulative point, the base
// full's first) into a temporary folder beside the target, checking each
// stream's checksum, and only then replaces the target subvolume with a
// writable snapshot of what was received.
func (d *Driver) Restore(ctx context.Context, req storage.RestoreRequest, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	res := storage.Result{Group: req.Group.Name}
	fail := func(err error) (storage.Result, error) {
		return res, fmt.Errorf("btrfs restore of group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	if len(req.Members) > 0 {
		// A group is one subvolume: it is received whole or not at all.
		return res, drivers.Unsupported(fmt.Errorf("btrfs restores group %s as one subvolume, not members %s alone",
			req.Group.Name, strings.Join(req.Members, ", ")))
	}
	s, err := DecodeSettings(req.Group.Settings)
	if err != nil {
		return res, err
	}
	store, err := storage.OpenStore(req.Store, req.StoreSettings)
	if err != nil {
		return res, err
	}
	if err := storage.RequireFolder(store, "btrfs"); err != nil {
		return res, err
	}
	root, err := storage.DataRoot(req.Site)
	if err != nil {
		return res, err
	}
	chain, err := storage.PointOf(store, req.Plan, req.PointID, req.AllowInvalid)
	if err != nil {
		return fail(err)
	}
	last := chain[len(chain)-1].GroupByName(req.Group.Name)
	if last == nil || last.Source["snapshot"] == "" || len(last.Artifacts) != 1 {
		return fail(fmt.Errorf("point %s holds no btrfs stream of this group", req.PointID))
	}
	dest := filepath.Join(root, s.Subvolume)
	if !req.Replace {
		if empty, err := storage.EmptyOrMissing(dest); err != nil {
			return fail(err)
		} else if !empty {
			return fail(fmt.Errorf("%s exists and is not empty (restore with replace to overwrite it)", dest))
		}
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o750); err != nil {
		return fail(err)
	}
	recv := filepath.Join(filepath.Dir(dest), ".drover-receive-"+req.PointID)
	d.clearReceive(ctx, recv)
	defer d.clearReceive(context.WithoutCancel(ctx), recv)
	if err := os.Mkdir(recv, 0o700); err != nil {
		return fail(fmt.Errorf("step receive folder: %w", err))
	}
	report := progress.Counter()
	for _, pt := range chain {
		g := pt.GroupByName(req.Group.Name)
		if g == nil || len(g.Artifacts) != 1 {
			return fail(fmt.Errorf("point %s holds no btrfs stream of this group", pt.ID))
		}
		art := g.Artifacts[0]
		src := filepath.Join(store.PointDir(req.Plan, pt.ID), art.Name)
		rel, _ := filepath.Rel(store.Root, src)
		pr, pw := io.Pipe()
		decoded := make(chan error, 1)
		go func() {
			_, err := tarzst.DecompressStream(ctx, src, art, pw, tarzst.ExtractOptions{Name: rel, Progress: report})
			pw.CloseWithError(err)
			decoded <- err
		}()
		c := d.btrfs("receive", recv)
		c.Stdin = pr
		_, rerr := d.run(ctx, "receive", c)
		pr.CloseWithError(errors.New("btrfs receive stopped reading"))
		derr := <-decoded
		var ce *storage.CorruptError
		if errors.As(derr, &ce) {
			// Damage explains whatever receive said about it.
			return fail(derr)
		}
		if rerr != nil {
			return fail(rerr)
		}
		if derr != nil {
			return fail(derr)
		}
		res.Bytes += art.Size
	}
	received := filepath.Join(recv, last.Source["snapshot"])
	if exists(dest) {
		if isSubvolume(dest) {
			if _, err := d.run(ctx, "delete old subvolume", d.btrfs("subvolume", "delete", dest)); err != nil {
				return fail(err)
			}
		} else if err := os.RemoveAll(dest); err != nil {
			return fail(fmt.Errorf("step remove old data: %w", err))
		}
	}
	c := d.btrfs("subvolume", "snapshot", received, dest)
	if _, err := d.run(ctx, "writable snapshot", c); err != nil {
		return fail(err)
	}
	if err := storage.SyncFS(dest); err != nil {
		return fail(err)
	}
	res.Evidence = drivers.Evidence{Action: fmt.Sprintf("btrfs receive %d stream(s); %s", len(chain), c), Duration: time.Since(start)}
	return res, nil
}

// clearReceive deletes a receive folder and the subvolumes in it.
func (d *Driver) clearReceive(ctx context.Context, recv string) {
	ents, err := os.ReadDir(recv)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(recv, e.Name())
		if isSubvolume(p) {
			if _, err := d.Runner.Run(ctx, d.btrfs("subvolume", "delete", p)); err != nil {
				d.Logger.Warn("btrfs: could not delete a received subvolume", zap.String("path", p), zap.Error(err))
			}
		}
	}
	if err := os.RemoveAll(recv); err != nil {
		d.Logger.Warn("btrfs: could not remove a receive folder", zap.String("path", recv), zap.Error(err))
	}
}

// Release deletes the point's snapshot from the source, if it is there.
func (d *Driver) Release(ctx context.Context, req storage.Request) (drivers.Evidence, error) {
	req.Mode, req.BaseID = catalog.ModeFull, ""
	p, err := prepare(req)
	if err != nil {
		return drivers.Evidence{}, err
	}
	snap := filepath.Join(p.snapDir, snapName(req.Plan, req.PointID, req.Group.Name))
	if !exists(snap) {
		return drivers.Evidence{Action: "none: no snapshot " + snap, AlreadyDone: true}, nil
	}
	c := d.btrfs("subvolume", "delete", snap)
	out, err := d.run(ctx, "delete snapshot", c)
	if err != nil {
		return drivers.Evidence{Action: c.String(), Output: out}, fmt.Errorf("btrfs release of group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	return drivers.Evidence{Action: c.String(), Output: drivers.Truncate(out, 500)}, nil
}

// Sweep deletes source snapshots of points that no longer need them: every
// snapshot of this plan and group except those of active points and of
// the newest committed full point (the parent of the next cumulative).
func (d *Driver) Sweep(ctx context.Context, req storage.Request, active []string) ([]string, error) {
	req.Mode, req.BaseID = catalog.ModeFull, ""
	if req.PointID == "" {
		req.PointID = "sweep"
	}
	p, err := prepare(req)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, id := range active {
		keep[snapName(req.Plan, id, req.Group.Name)] = true
	}
	pts, err := p.Store.List(req.Plan)
	if err != nil {
		return nil, err
	}
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].Mode == catalog.ModeFull && pts[i].Usable() {
			keep[snapName(req.Plan, pts[i].ID, req.Group.Name)] = true
			break
		}
	}
	ents, err := os.ReadDir(p.snapDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, req.Plan+".") || !strings.HasSuffix(n, "."+req.Group.Name) || keep[n] {
			continue
		}
		path := filepath.Join(p.snapDir, n)
		if _, err := d.run(ctx, "delete old snapshot", d.btrfs("subvolume", "delete", path)); err != nil {
			return removed, err
		}
		removed = append(removed, path)
	}
	return removed, nil
}

const btrfsMagic = 0x9123683E

// isSubvolume reports whether p is the root of a btrfs subvolume (inode
// 256 on a btrfs file system).
func isSubvolume(p string) bool {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil || st.Ino != 256 {
		return false
	}
	var fsst syscall.Statfs_t
	if err := syscall.Statfs(p, &fsst); err != nil {
		return false
	}
	return uint32(fsst.Type) == btrfsMagic
}
