// Package lvm is the "lvm" storage driver: the BPM seed's LVM snapshot
// procedure (3.1.2.2). Capture, inside the quiesce window, is one
// `lvcreate -s -L SIZE -n SNAP VG/LV` (constant time); Ship mounts the
// snapshot read-only, archives the members from it with the archive
// driver's code, unmounts it and removes it with `lvremove -f`. Whatever
// fails after lvcreate, the snapshot is unmounted and removed, and the
// error names the step.
package lvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// Method is recorded in the manifest of groups this driver captures.
const Method = "lvm-snapshot+tar+zstd"

// Settings are the lvm driver's group settings.
type Settings struct {
	// Members are sub-directories of Subdir inside the volume (and of the
	// site's dataRoot, where restore puts them); the group's components
	// when left out.
	Members []string `json:"members,omitempty"`
	// VolumeGroup and LogicalVolume name the origin volume (VG/LV).
	VolumeGroup   string `json:"volumeGroup"`
	LogicalVolume string `json:"logicalVolume"`
	// SnapshotSize is the copy-on-write space (lvcreate -L), e.g. "1G":
	// the writes the volume may take while the snapshot is shipped.
	SnapshotSize string `json:"snapshotSize,omitempty"`
	// MountDir holds the snapshots' mount points (default /run/drover/lvm).
	MountDir string `json:"mountDir,omitempty"`
	// MountOptions for the snapshot (default "ro"; xfs needs "ro,nouuid").
	MountOptions string `json:"mountOptions,omitempty"`
	// Subdir is where the site's dataRoot is inside the volume's file
	// system ("" when the volume is mounted at the dataRoot).
	Subdir string `json:"subdir,omitempty"`
	// Compare and Workers are the archive driver's settings.
	Compare tarzst.Compare `json:"compare,omitempty"`
	Workers int            `json:"workers,omitempty"`
}

var sizeRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?[bBsSkKmMgGtTpPeE]?$`)

// DecodeSettings decodes and checks the group settings.
func DecodeSettings(raw map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(err)
	}
	if !validLVName(s.VolumeGroup) {
		return s, drivers.BadSettingsf("settings: volumeGroup: required, a volume group name (got %q)", s.VolumeGroup)
	}
	if !validLVName(s.LogicalVolume) {
		return s, drivers.BadSettingsf("settings: logicalVolume: required, a logical volume name (got %q)", s.LogicalVolume)
	}
	if s.SnapshotSize == "" {
		s.SnapshotSize = "1G"
	}
	if !sizeRE.MatchString(s.SnapshotSize) {
		return s, drivers.BadSettingsf("settings: snapshotSize: %q (want a size such as 512M or 2G)", s.SnapshotSize)
	}
	if s.MountDir == "" {
		s.MountDir = "/run/drover/lvm"
	}
	if !filepath.IsAbs(s.MountDir) {
		return s, drivers.BadSettingsf("settings: mountDir: %q is not an absolute path", s.MountDir)
	}
	if s.MountOptions == "" {
		s.MountOptions = "ro"
	}
	if !strings.HasPrefix(s.MountOptions, "ro") {
		return s, drivers.BadSettingsf("settings: mountOptions: %q must start with ro: a snapshot is archived read-only", s.MountOptions)
	}
	if s.Subdir != "" {
		if err := catalog.CheckRelPath(s.Subdir); err != nil {
			return s, drivers.BadSettingsf("settings: subdir: %v", err)
		}
	}
	if err := tarzst.CheckOptions(&s.Compare, s.Workers); err != nil {
		return s, err
	}
	for _, m := range s.Members {
		if err := catalog.CheckName("member", m); err != nil {
			return s, drivers.BadSettingsf("settings: members: %v", err)
		}
	}
	return s, nil
}

// Driver is the lvm storage driver.
type Driver struct {
	Logger *zap.Logger
	Runner storage.Runner
	// Mounted reports whether a path is a mount point; it reads
	// /proc/self/mountinfo unless a test replaces it.
	Mounted func(path string) (bool, error)
}

// New returns the lvm driver running real commands.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{Logger: logger, Runner: storage.ExecRunner{}, Mounted: procMounted}
}

func procMounted(path string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	m, err := ParseMountinfo(string(data))
	if err != nil {
		return false, err
	}
	return m[filepath.Clean(path)], nil
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
	snap string // snapshot LV name
	mnt  string // its mount point
}

// SnapshotName is the snapshot volume of one group of one point.
func SnapshotName(plan, id, group string) string { return "drover-" + plan + "-" + id + "-" + group }

func prepare(req storage.Request) (*prepared, error) {
	s, t, err := storage.Prepare(req, DecodeSettings, func(s Settings) []string { return s.Members })
	if err != nil {
		return nil, err
	}
	if err := storage.RequireFolder(t.Store, "lvm"); err != nil {
		return nil, err
	}
	snap := SnapshotName(req.Plan, req.PointID, req.Group.Name)
	if !validLVName(snap) {
		return nil, drivers.BadSettingsf("group %s: snapshot name %q is too long for LVM (127 characters): shorten the plan or group name", req.Group.Name, snap)
	}
	return &prepared{s: s, Target: t, snap: snap, mnt: filepath.Join(s.MountDir, snap)}, nil
}

func (p *prepared) origin() string { return p.s.VolumeGroup + "/" + p.s.LogicalVolume }
func (p *prepared) snapLV() string { return p.s.VolumeGroup + "/" + p.snap }
func (p *prepared) device() string { return "/dev/" + p.s.VolumeGroup + "/" + p.snap }

func (d *Driver) run(ctx context.Context, step, name string, args ...string) (string, error) {
	out, err := d.Runner.Run(ctx, storage.Cmd{Name: name, Args: args})
	if err != nil {
		return out, fmt.Errorf("step %s: %w", step, err)
	}
	return out, nil
}

// volumes lists the volume group's logical volumes.
func (d *Driver) volumes(ctx context.Context, vg string) ([]LV, error) {
	out, err := d.run(ctx, "lvs", "lvs", "--noheadings", "--separator", "|", "-o", strings.Join(lvsFields, ","), vg)
	if err != nil {
		return nil, err
	}
	lvs, err := ParseLVS(out)
	if err != nil {
		return nil, fmt.Errorf("step lvs: %w", err)
	}
	return lvs, nil
}

func (d *Driver) find(ctx context.Context, p *prepared) (*LV, error) {
	lvs, err := d.volumes(ctx, p.s.VolumeGroup)
	if err != nil {
		return nil, err
	}
	for i := range lvs {
		if lvs[i].Name == p.snap {
			return &lvs[i], nil
		}
	}
	return nil, nil
}

// release unmounts and removes a point's snapshot, whatever state a failed
// step left it in. It runs even when ctx is cancelled: a snapshot left
// behind fills with copy-on-write blocks until it breaks.
func (d *Driver) release(ctx context.Context, p *prepared) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	if mounted, err := d.Mounted(p.mnt); err != nil {
		errs = append(errs, fmt.Errorf("step check mount: %w", err))
	} else if mounted {
		if _, err := d.run(ctx, "umount", "umount", p.mnt); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(p.mnt); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("step remove mount point: %w", err))
	}
	lv, err := d.find(ctx, p)
	if err != nil {
		errs = append(errs, err)
	} else if lv != nil {
		if _, err := d.run(ctx, "lvremove", "lvremove", "-f", p.snapLV()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// withCleanup joins a step's error with the clean-up's.
func withCleanup(err, cerr error) error {
	if cerr == nil {
		return err
	}
	return fmt.Errorf("%w (clean-up also failed: %v)", err, cerr)
}

// Estimate sums the member data under the site's dataRoot (the live
// volume), like the archive driver.
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

// Capture creates the snapshot: `lvcreate -s -L SIZE -n SNAP VG/LV`. A
// snapshot an earlier attempt left is removed first, so the new one falls
// inside the caller's current quiesce window.
func (d *Driver) Capture(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	res := storage.Result{Group: req.Group.Name}
	p, err := prepare(req)
	if err != nil {
		return res, err
	}
	fail := func(err error) (storage.Result, error) {
		return res, fmt.Errorf("lvm capture of group %s (%s): %w", req.Group.Name, p.origin(), err)
	}
	if done, err := storage.BeginCapture(p.Store, req); err != nil {
		return fail(err)
	} else if done {
		res.Evidence.AlreadyDone = true
		return res, nil
	}
	lv, err := d.find(ctx, p)
	if err != nil {
		return fail(err)
	}
	if lv != nil {
		if err := d.release(ctx, p); err != nil {
			return fail(fmt.Errorf("remove the snapshot an earlier attempt left: %w", err))
		}
	}
	start := time.Now()
	args := []string{"-s", "-L", p.s.SnapshotSize, "-n", p.snap, p.origin()}
	out, err := d.run(ctx, "lvcreate", "lvcreate", args...)
	if err != nil {
		// lvcreate can fail after it made the volume (activation, a full
		// volume group): never leave it behind.
		return fail(withCleanup(err, d.release(ctx, p)))
	}
	res.Instant = start
	res.Evidence = drivers.Evidence{Action: "lvcreate " + strings.Join(args, " "), Output: drivers.Truncate(out, 500), Duration: time.Since(start)}
	return res, nil
}

// Ship mounts the snapshot read-only, archives the members into the store,
// unmounts and removes it.
func (d *Driver) Ship(ctx context.Context, req storage.Request, progress storage.Progress) (storage.Result, error) {
	start := time.Now()
	res := storage.Result{Group: req.Group.Name}
	p, err := prepare(req)
	if err != nil {
		return res, err
	}
	fail := func(err error) (storage.Result, error) {
		return res, fmt.Errorf("lvm ship of group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	if done, err := storage.Shipped(p.Store, req, &res); err != nil {
		return res, err
	} else if done {
		// A crash may have left the snapshot behind.
		if err := d.release(ctx, p); err != nil {
			return fail(err)
		}
		return res, nil
	}
	base, err := storage.BaseGroup(p.Store, req)
	if err != nil {
		return res, err
	}
	lv, err := d.find(ctx, p)
	if err != nil {
		return fail(err)
	}
	if lv == nil {
		return fail(fmt.Errorf("snapshot %s is gone: %w", p.snapLV(), storage.ErrRecapture))
	}
	if lv.Invalid() {
		return fail(withCleanup(fmt.Errorf("snapshot %s overflowed its %s of copy-on-write space (raise snapshotSize): %w", p.snapLV(), p.s.SnapshotSize, storage.ErrRecapture), d.release(ctx, p)))
	}
	instant := lv.Time
	if instant.IsZero() {
		instant = start
	}
	if err := os.MkdirAll(p.mnt, 0o700); err != nil {
		return fail(withCleanup(fmt.Errorf("step mount point: %w", err), d.release(ctx, p)))
	}
	if mounted, err := d.Mounted(p.mnt); err != nil {
		return fail(withCleanup(fmt.Errorf("step check mount: %w", err), d.release(ctx, p)))
	} else if !mounted {
		if _, err := d.run(ctx, "mount", "mount", "-o", p.s.MountOptions, p.device(), p.mnt); err != nil {
			return fail(withCleanup(err, d.release(ctx, p)))
		}
	}
	_, r, err := tarzst.WriteGroup(ctx, p.Store, req, tarzst.WriteSpec{
		Root: filepath.Join(p.mnt, p.s.Subdir), Members: p.Members, Base: base, Compare: p.s.Compare, Workers: p.s.Workers,
		Method: Method, Driver: req.Group.Driver, Consistency: storage.Consistency(req.Quiesced, true), Instant: instant,
		Source: map[string]string{"volume": p.origin(), "snapshot": p.snap, "snapshotSize": p.s.SnapshotSize},
	}, progress)
	if err != nil {
		return fail(withCleanup(fmt.Errorf("step archive: %w", err), d.release(ctx, p)))
	}
	if _, err := d.run(ctx, "umount", "umount", p.mnt); err != nil {
		return fail(withCleanup(err, d.release(ctx, p)))
	}
	if err := os.Remove(p.mnt); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.Logger.Warn("lvm: could not remove a mount point", zap.String("path", p.mnt), zap.Error(err))
	}
	if _, err := d.run(ctx, "lvremove", "lvremove", "-f", p.snapLV()); err != nil {
		// The archive is staged; a retry finds it and only removes the
		// snapshot.
		return fail(err)
	}
	r.Evidence = drivers.Evidence{Action: fmt.Sprintf("mount -o %s %s %s; tar+zstd %d members; umount; lvremove -f %s",
		p.s.MountOptions, p.device(), p.mnt, len(p.Members), p.snapLV()), Duration: time.Since(start)}
	return r, nil
}

// Verify checks every archive's checksum in the store.
func (d *Driver) Verify(ctx context.Context, req storage.Request, progress storage.Progress) (storage.VerifyResult, error) {
	p, err := prepare(req)
	if err != nil {
		return storage.VerifyResult{Group: req.Group.Name}, err
	}
	return storage.VerifyGroup(ctx, p.Store, req.Plan, req.PointID, req.Group.Name, progress)
}

// Restore extracts the members into the target site's dataRoot: a file
// level restore, the same as the archive driver's.
func (d *Driver) Restore(ctx context.Context, req storage.RestoreRequest, progress storage.Progress) (storage.Result, error) {
	return tarzst.RestoreToSite(ctx, req, progress)
}

// Release unmounts and removes the point's snapshot, if it is there.
func (d *Driver) Release(ctx context.Context, req storage.Request) (drivers.Evidence, error) {
	req.Mode, req.BaseID = catalog.ModeFull, ""
	p, err := prepare(req)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if err := d.release(ctx, p); err != nil {
		return drivers.Evidence{Action: "release " + p.snapLV()}, fmt.Errorf("lvm release of group %s of %s: %w", req.Group.Name, req.PointID, err)
	}
	return drivers.Evidence{Action: "umount (if mounted) and lvremove -f " + p.snapLV() + " (if present)"}, nil
}

// Sweep removes this plan's snapshots of the origin volume that belong to
// no active point (left by a crashed worker), unmounting them first.
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
		keep[SnapshotName(req.Plan, id, req.Group.Name)] = true
	}
	lvs, err := d.volumes(ctx, p.s.VolumeGroup)
	if err != nil {
		return nil, err
	}
	prefix := "drover-" + req.Plan + "-"
	var removed []string
	var errs []error
	for _, lv := range lvs {
		if !lv.Snapshot() || lv.Origin != p.s.LogicalVolume || !strings.HasPrefix(lv.Name, prefix) ||
			!strings.HasSuffix(lv.Name, "-"+req.Group.Name) || keep[lv.Name] {
			continue
		}
		q := *p
		q.snap = lv.Name
		q.mnt = filepath.Join(p.s.MountDir, lv.Name)
		if err := d.release(ctx, &q); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, q.snapLV())
	}
	return removed, errors.Join(errs...)
}
