package btrfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

// LoopBtrfs mounts a fresh btrfs file system on a loop device for a test,
// or skips it saying why that is not possible here.
func LoopBtrfs(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("btrfs test skipped: needs root to mount a loop-device btrfs file system")
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("btrfs test skipped: mkfs.btrfs not found (apt-get install btrfs-progs)")
	}
	if _, err := exec.LookPath("btrfs"); err != nil {
		t.Skip("btrfs test skipped: btrfs not found (apt-get install btrfs-progs)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	mnt := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if out, err := exec.Command("truncate", "-s", size, img).CombinedOutput(); err != nil {
		t.Skipf("btrfs test skipped: truncate: %v: %s", err, out)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("btrfs test skipped: mkfs.btrfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("btrfs test skipped: cannot mount a loop device (no loop devices or no btrfs in the kernel?): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

func subvolume(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("btrfs", "subvolume", "create", path).CombinedOutput()
	require.NoError(t, err, string(out))
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

type bfix struct {
	t       *testing.T
	mnt     string
	primary string
	store   *catalog.Store
	d       *Driver
	runner  *faultRunner
}

// faultRunner runs for real, recording the commands, and fails the first
// command whose line contains failOn.
type faultRunner struct {
	mu     sync.Mutex
	real   storage.Runner
	failOn string
	ran    []string
}

func (r *faultRunner) Run(ctx context.Context, c storage.Cmd) (string, error) {
	r.mu.Lock()
	r.ran = append(r.ran, c.String())
	fail := r.failOn != "" && strings.Contains(c.String(), r.failOn)
	if fail {
		r.failOn = ""
	}
	r.mu.Unlock()
	if fail {
		return "injected failure", fmt.Errorf("%s: exit status 1: injected failure", c)
	}
	return r.real.Run(ctx, c)
}

func newBfix(t *testing.T) *bfix {
	mnt := LoopBtrfs(t, "512M")
	primary := filepath.Join(mnt, "primary")
	subvolume(t, primary)
	write(t, primary, "db2/data/t1.dat", strings.Repeat("row;", 100_000))
	write(t, primary, "db2/log/s1.log", "LOG 1\n")
	write(t, primary, "dmgr/config/cell.xml", "<cell/>")
	require.NoError(t, os.Symlink("config/cell.xml", filepath.Join(primary, "dmgr", "link")))
	storeDir := filepath.Join(t.TempDir(), "store")
	require.NoError(t, os.Mkdir(storeDir, 0o755))
	st, err := catalog.Open(storeDir)
	require.NoError(t, err)
	fr := &faultRunner{real: storage.ExecRunner{}}
	d := New(nil)
	d.Runner = fr
	return &bfix{t: t, mnt: mnt, primary: primary, store: st, d: d, runner: fr}
}

func (f *bfix) site(root string) drivers.Site {
	return drivers.Site{Name: "s", Settings: map[string]any{"dataRoot": root}}
}

func (f *bfix) req(id string, mode catalog.Mode, base string) storage.Request {
	return storage.Request{Plan: "bpm", PointID: id, Store: f.store.Root, Site: f.site(f.primary), Mode: mode, BaseID: base,
		Group: storage.Group{Name: "cell", Driver: "btrfs", Components: []string{"db2", "dmgr"}}}
}

func (f *bfix) backup(id string, mode catalog.Mode, base string) storage.Result {
	f.t.Helper()
	ctx := context.Background()
	req := f.req(id, mode, base)
	c, err := f.d.Capture(ctx, req, nil)
	require.NoError(f.t, err)
	assert.False(f.t, c.Instant.IsZero())
	r, err := f.d.Ship(ctx, req, nil)
	require.NoError(f.t, err)
	v, err := f.d.Verify(ctx, req, nil)
	require.NoError(f.t, err)
	require.True(f.t, v.OK, v.Reason)
	_, err = f.store.Commit("bpm", id, catalog.CommitInfo{Mode: mode, BaseID: base, Groups: []string{"cell"}})
	require.NoError(f.t, err)
	return r
}

func (f *bfix) restore(id, root string, replace bool) error {
	_, err := f.d.Restore(context.Background(), storage.RestoreRequest{Plan: "bpm", PointID: id, Store: f.store.Root,
		Site: f.site(root), Group: storage.Group{Name: "cell", Driver: "btrfs"}, Replace: replace}, nil)
	return err
}

func snapshotsIn(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestBtrfsFullAndCumulativeRoundTrip(t *testing.T) {
	f := newBfix(t)
	snaps := filepath.Join(f.mnt, ".drover-snapshots")
	full := f.backup("f1", catalog.ModeFull, "")
	m, err := f.store.Load("bpm", "f1")
	require.NoError(t, err)
	g := m.GroupByName("cell")
	assert.Equal(t, Method, g.Method)
	assert.Equal(t, catalog.ConsistencySnapshot, g.Consistency, "a snapshot of a running system")
	assert.Equal(t, "bpm.f1.cell", g.Source["snapshot"])
	assert.Len(t, g.Members, 2)
	assert.Equal(t, []string{"bpm.f1.cell"}, snapshotsIn(t, snaps), "a full's snapshot stays as the next parent")

	write(t, f.primary, "db2/log/s1.log", "LOG 1\nLOG 2\n")
	write(t, f.primary, "db2/log/s2.log", "NEW")
	require.NoError(t, os.Remove(filepath.Join(f.primary, "dmgr/config/cell.xml")))
	est, err := f.d.Estimate(context.Background(), f.req("c1", catalog.ModeCumulative, "f1"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, est.Files, int64(2), "at least the two changed files (the base instant has whole seconds: an upper bound)")
	cum := f.backup("c1", catalog.ModeCumulative, "f1")
	assert.Less(t, cum.Bytes, full.Bytes/10, "the incremental stream carries only the changes")
	mc, err := f.store.Load("bpm", "c1")
	require.NoError(t, err)
	assert.Equal(t, "bpm.f1.cell", mc.GroupByName("cell").Source["parent"])
	assert.Equal(t, []string{"bpm.f1.cell"}, snapshotsIn(t, snaps), "a shipped cumulative's snapshot is dropped")
	assert.Contains(t, strings.Join(f.runner.ran, "\n"), "btrfs send -p "+filepath.Join(snaps, "bpm.f1.cell"))

	// Restore = full + cumulative into another site's root on the same
	// file system.
	target := filepath.Join(f.mnt, "secondary")
	require.NoError(t, f.restore("c1", target, false))
	assert.Equal(t, "LOG 1\nLOG 2\n", read(t, filepath.Join(target, "db2/log/s1.log")))
	assert.Equal(t, "NEW", read(t, filepath.Join(target, "db2/log/s2.log")))
	assert.Equal(t, strings.Repeat("row;", 100_000), read(t, filepath.Join(target, "db2/data/t1.dat")))
	_, err = os.Stat(filepath.Join(target, "dmgr/config/cell.xml"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "the deletion is restored too")
	assert.True(t, isSubvolume(target), "the target is a writable subvolume")
	write(t, target, "db2/after-restore", "writable")
	ents, _ := os.ReadDir(f.mnt)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), ".drover-receive"), "receive folder removed")
	}

	// Over existing data only with replace; the full alone restores the
	// older state.
	require.ErrorContains(t, f.restore("f1", target, false), "exists and is not empty")
	require.NoError(t, f.restore("f1", target, true))
	assert.Equal(t, "LOG 1\n", read(t, filepath.Join(target, "db2/log/s1.log")))
	assert.Equal(t, "<cell/>", read(t, filepath.Join(target, "dmgr/config/cell.xml")))

	// Release drops one point's snapshot; again is harmless.
	_, err = f.d.Capture(context.Background(), f.req("x1", catalog.ModeFull, ""), nil)
	require.NoError(t, err)
	_, err = f.d.Release(context.Background(), f.req("x1", catalog.ModeFull, ""))
	require.NoError(t, err)
	ev, err := f.d.Release(context.Background(), f.req("x1", catalog.ModeFull, ""))
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, []string{"bpm.f1.cell"}, snapshotsIn(t, snaps))

	// A second full: the sweep drops the first full's snapshot.
	f.backup("f2", catalog.ModeFull, "")
	removed, err := f.d.Sweep(context.Background(), f.req("", catalog.ModeFull, ""), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(snaps, "bpm.f1.cell")}, removed)
	assert.Equal(t, []string{"bpm.f2.cell"}, snapshotsIn(t, snaps))
}

func TestBtrfsDamagedStreamIsRefused(t *testing.T) {
	f := newBfix(t)
	f.backup("f1", catalog.ModeFull, "")
	stream := filepath.Join(f.store.PointDir("bpm", "f1"), "cell", streamFile)
	b, err := os.ReadFile(stream)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x40
	require.NoError(t, os.WriteFile(stream, b, 0o640))

	v, err := f.d.Verify(context.Background(), f.req("f1", catalog.ModeFull, ""), nil)
	require.NoError(t, err)
	assert.False(t, v.OK)
	assert.Equal(t, filepath.Join("bpm", "points", "f1", "cell", streamFile), v.BadFile)

	target := filepath.Join(f.mnt, "secondary")
	write(t, target, "db2/keep", "old")
	err = f.restore("f1", target, true)
	var ce *storage.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), filepath.Join("bpm", "points", "f1", "cell", streamFile))
	assert.Equal(t, "old", read(t, filepath.Join(target, "db2/keep")), "the target is untouched")
}

func TestBtrfsSendFailureLeavesNoGroupAndRetrySucceeds(t *testing.T) {
	f := newBfix(t)
	req := f.req("f1", catalog.ModeFull, "")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	f.runner.failOn = "btrfs send"
	_, err = f.d.Ship(context.Background(), req, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step send")
	assert.Contains(t, err.Error(), "injected failure")
	_, err = f.store.StagedGroup("bpm", "f1", "cell")
	assert.ErrorIs(t, err, catalog.ErrNotFound, "no partial group")
	_, err = f.d.Ship(context.Background(), req, nil)
	require.NoError(t, err, "the snapshot is still there: shipping again works")
}

func TestBtrfsCumulativeWithoutParentSnapshot(t *testing.T) {
	f := newBfix(t)
	f.backup("f1", catalog.ModeFull, "")
	out, err := exec.Command("btrfs", "subvolume", "delete", filepath.Join(f.mnt, ".drover-snapshots", "bpm.f1.cell")).CombinedOutput()
	require.NoError(t, err, string(out))
	req := f.req("c1", catalog.ModeCumulative, "f1")
	_, err = f.d.Estimate(context.Background(), req)
	assert.ErrorIs(t, err, storage.ErrBaseUnavailable, "the preflight sees it")
	_, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	_, err = f.d.Ship(context.Background(), req, nil)
	assert.ErrorIs(t, err, storage.ErrBaseUnavailable)
	assert.True(t, storage.Permanent(err))
}

func TestBtrfsCaptureRetryRetakesTheSnapshot(t *testing.T) {
	f := newBfix(t)
	req := f.req("f1", catalog.ModeFull, "")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	time.Sleep(1100 * time.Millisecond)
	write(t, f.primary, "db2/log/s1.log", "written after the first attempt")
	_, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	assert.Equal(t, "written after the first attempt", read(t, filepath.Join(f.mnt, ".drover-snapshots", "bpm.f1.cell", "db2/log/s1.log")))
}

func TestBtrfsSnapshotFailureNamesTheStep(t *testing.T) {
	f := newBfix(t)
	req := f.req("f1", catalog.ModeFull, "")
	req.Site.Settings["dataRoot"] = filepath.Join(f.mnt, "not-a-subvolume")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step snapshot")
}
