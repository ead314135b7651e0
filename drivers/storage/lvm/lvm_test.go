package lvm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// fakeLVM plays lvs, lvcreate, lvremove, mount and umount: it records the
// exact commands, keeps the volume group's state, "mounts" a snapshot by
// copying the volume's files to the mount point, and fails a command when
// told to.
type fakeLVM struct {
	t       *testing.T
	mu      sync.Mutex
	cmds    []string
	lvs     map[string]LV
	mounted map[string]bool
	volume  string // the origin volume's files
	// fail maps a command prefix to the number of times it fails.
	fail map[string]int
	// createThenFail makes lvcreate create the volume and still fail.
	createThenFail bool
}

func newFake(t *testing.T, volume string) *fakeLVM {
	return &fakeLVM{t: t, volume: volume, mounted: map[string]bool{}, fail: map[string]int{},
		lvs: map[string]LV{"data": {Name: "data", Attr: "-wi-ao----"}, "home": {Name: "home", Attr: "-wi-ao----"}}}
}

var lvTime = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func (f *fakeLVM) Run(ctx context.Context, c storage.Cmd) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := c.String()
	f.cmds = append(f.cmds, line)
	for prefix, n := range f.fail {
		if n > 0 && strings.HasPrefix(line, prefix) {
			f.fail[prefix] = n - 1
			return "  injected failure of " + c.Name, fmt.Errorf("%s: exit status 5: injected failure of %s", line, c.Name)
		}
	}
	a := c.Args
	switch c.Name {
	case "lvs":
		var names []string
		for n := range f.lvs {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, n := range names {
			lv := f.lvs[n]
			fmt.Fprintf(&b, "  %s|%s|%s|%s\n", lv.Name, lv.Origin, lv.Attr, lvTime.Format("2006-01-02 15:04:05 -0700"))
		}
		return b.String(), nil
	case "lvcreate":
		name, origin := a[4], a[5]
		f.lvs[name] = LV{Name: name, Origin: strings.TrimPrefix(origin, "vg0/"), Attr: "swi-a-s---"}
		if f.createThenFail {
			return "  Failed to activate new LV.", fmt.Errorf("%s: exit status 5: Failed to activate new LV", line)
		}
		return fmt.Sprintf("  Logical volume %q created.", name), nil
	case "lvremove":
		name := strings.TrimPrefix(a[1], "vg0/")
		for m := range f.mounted {
			if filepath.Base(m) == name {
				return "", fmt.Errorf("%s: exit status 5: Logical volume vg0/%s contains a filesystem in use", line, name)
			}
		}
		delete(f.lvs, name)
		return "  Logical volume removed.", nil
	case "mount":
		mnt := a[3]
		if out, err := exec.Command("cp", "-a", f.volume+"/.", mnt).CombinedOutput(); err != nil {
			f.t.Fatalf("fake mount: %v: %s", err, out)
		}
		f.mounted[mnt] = true
		return "", nil
	case "umount":
		mnt := a[0]
		ents, _ := os.ReadDir(mnt)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(mnt, e.Name()))
		}
		delete(f.mounted, mnt)
		return "", nil
	}
	return "", fmt.Errorf("%s: unexpected command", line)
}

func (f *fakeLVM) Mounted(p string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mounted[p], nil
}

func (f *fakeLVM) snapshots() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n, lv := range f.lvs {
		if lv.Snapshot() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

type lfix struct {
	t      *testing.T
	fake   *fakeLVM
	d      *Driver
	store  *catalog.Store
	volume string
	mounts string
}

func newLfix(t *testing.T) *lfix {
	base := t.TempDir()
	volume := filepath.Join(base, "volume")
	for rel, content := range map[string]string{
		"home/db2/data/t1.dat":    strings.Repeat("row;", 10_000),
		"home/db2/log/s1.log":     "LOG 1\n",
		"home/dmgr/config/c.xml":  "<cell/>",
		"lost+found/not-a-member": "x",
	} {
		p := filepath.Join(volume, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	storeDir := filepath.Join(base, "store")
	require.NoError(t, os.Mkdir(storeDir, 0o755))
	st, err := catalog.Open(storeDir)
	require.NoError(t, err)
	fake := newFake(t, volume)
	d := New(nil)
	d.Runner = fake
	d.Mounted = fake.Mounted
	return &lfix{t: t, fake: fake, d: d, store: st, volume: volume, mounts: filepath.Join(base, "mnt")}
}

func (f *lfix) req(id string) storage.Request {
	return storage.Request{Plan: "bpm", PointID: id, Store: f.store.Root, Mode: catalog.ModeFull,
		Site: drivers.Site{Name: "primary", Settings: map[string]any{"dataRoot": filepath.Join(f.volume, "home")}},
		Group: storage.Group{Name: "cell", Driver: "lvm", Components: []string{"db2", "dmgr"}, Settings: map[string]any{
			"volumeGroup": "vg0", "logicalVolume": "data", "snapshotSize": "2G", "mountDir": f.mounts, "subdir": "home"}}}
}

const lvsCmd = "lvs --noheadings --separator | -o lv_name,origin,lv_attr,lv_time vg0"

func TestLVMRunsTheSeedProcedure(t *testing.T) {
	f := newLfix(t)
	ctx := context.Background()
	req := f.req("p1")
	_, err := f.d.Capture(ctx, req, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{lvsCmd, "lvcreate -s -L 2G -n drover-bpm-p1-cell vg0/data"}, f.fake.cmds)
	assert.Equal(t, []string{"drover-bpm-p1-cell"}, f.fake.snapshots())

	f.fake.cmds = nil
	res, err := f.d.Ship(ctx, req, nil)
	require.NoError(t, err)
	mnt := filepath.Join(f.mounts, "drover-bpm-p1-cell")
	assert.Equal(t, []string{
		lvsCmd,
		"mount -o ro /dev/vg0/drover-bpm-p1-cell " + mnt,
		"umount " + mnt,
		"lvremove -f vg0/drover-bpm-p1-cell",
	}, f.fake.cmds)
	assert.Empty(t, f.fake.snapshots())
	assert.Positive(t, res.Bytes)
	_, err = os.Stat(mnt)
	assert.True(t, os.IsNotExist(err), "mount point removed")

	v, err := f.d.Verify(ctx, req, nil)
	require.NoError(t, err)
	require.True(t, v.OK)
	m, err := f.store.Commit("bpm", "p1", catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"cell"}})
	require.NoError(t, err)
	assert.Equal(t, catalog.ConsistencySnapshot, m.Consistency)
	assert.True(t, m.Instant.Equal(lvTime), "the instant is the snapshot's creation time")
	assert.Equal(t, Method, m.Groups[0].Method)

	target := filepath.Join(t.TempDir(), "secondary")
	_, err = f.d.Restore(ctx, storage.RestoreRequest{Plan: "bpm", PointID: "p1", Store: f.store.Root,
		Site: drivers.Site{Settings: map[string]any{"dataRoot": target}}, Group: storage.Group{Name: "cell", Driver: "lvm"}}, nil)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(target, "db2/log/s1.log"))
	require.NoError(t, err)
	assert.Equal(t, "LOG 1\n", string(b))
	_, err = os.Stat(filepath.Join(target, "lost+found"))
	assert.True(t, os.IsNotExist(err), "only members are captured")
}

// Each step fails in turn: the error names the step, the snapshot is
// unmounted and removed, and no partial group is staged.
func TestLVMFailureAtEachStepCleansUp(t *testing.T) {
	for _, tc := range []struct {
		name, fail, step string
		createThenFail   bool
		breakVolume      bool
		shipStaged       bool
		wantInCmds       []string
	}{
		{name: "lvcreate fails", fail: "lvcreate", step: "step lvcreate"},
		{name: "lvcreate creates then fails", createThenFail: true, step: "step lvcreate", wantInCmds: []string{"lvremove -f vg0/drover-bpm-p1-cell"}},
		{name: "lvs fails in ship", fail: "lvs#2", step: "step lvs"},
		{name: "mount fails", fail: "mount", step: "step mount", wantInCmds: []string{"lvremove -f vg0/drover-bpm-p1-cell"}},
		{name: "archive fails", breakVolume: true, step: "step archive", wantInCmds: []string{"umount ", "lvremove -f vg0/drover-bpm-p1-cell"}},
		// After the archive is staged, a failed umount or lvremove fails the
		// step but keeps the archive: the retry only cleans up.
		{name: "umount fails", fail: "umount", step: "step umount", shipStaged: true, wantInCmds: []string{"lvremove -f vg0/drover-bpm-p1-cell"}},
		{name: "lvremove fails", fail: "lvremove", step: "step lvremove", shipStaged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLfix(t)
			ctx := context.Background()
			req := f.req("p1")
			f.fake.createThenFail = tc.createThenFail
			if tc.breakVolume {
				require.NoError(t, os.RemoveAll(filepath.Join(f.volume, "home", "dmgr")))
			}
			failOnCapture := tc.fail == "lvcreate" || tc.createThenFail
			if tc.fail != "" && tc.fail != "lvs#2" {
				f.fake.fail[tc.fail] = 1
			}
			_, err := f.d.Capture(ctx, req, nil)
			if failOnCapture {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.step)
				assert.Contains(t, err.Error(), "vg0/data")
			} else {
				require.NoError(t, err)
				if tc.fail == "lvs#2" {
					f.fake.fail["lvs"] = 1
				}
				_, err = f.d.Ship(ctx, req, nil)
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.step)
			}
			cmds := strings.Join(f.fake.cmds, "\n")
			for _, w := range tc.wantInCmds {
				assert.Contains(t, cmds, w)
			}
			_, gerr := f.store.StagedGroup("bpm", "p1", "cell")
			if tc.shipStaged {
				require.NoError(t, gerr, "the archive made it into the store")
				// The retry only removes what is left of the snapshot.
				left := len(f.fake.snapshots()) > 0
				f.fake.cmds = nil
				res, err := f.d.Ship(ctx, req, nil)
				require.NoError(t, err)
				assert.True(t, res.Evidence.AlreadyDone)
				if left {
					assert.Equal(t, []string{lvsCmd, "lvremove -f vg0/drover-bpm-p1-cell"}, f.fake.cmds)
				} else {
					assert.Equal(t, []string{lvsCmd}, f.fake.cmds)
				}
			} else {
				assert.ErrorIs(t, gerr, catalog.ErrNotFound, "no partial group")
			}
			if tc.fail != "lvs#2" {
				assert.Empty(t, f.fake.snapshots(), "the snapshot is always removed")
			}
			assert.Empty(t, f.fake.mounted)
		})
	}
}

func TestLVMOverflowedSnapshotIsRecaptured(t *testing.T) {
	f := newLfix(t)
	req := f.req("p1")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	lv := f.fake.lvs["drover-bpm-p1-cell"]
	lv.Attr = "swi-I-s---"
	f.fake.lvs[lv.Name] = lv
	_, err = f.d.Ship(context.Background(), req, nil)
	assert.ErrorIs(t, err, storage.ErrRecapture)
	assert.Contains(t, err.Error(), "raise snapshotSize")
	assert.Empty(t, f.fake.snapshots())
}

func TestLVMCancelledShipStillRemovesTheSnapshot(t *testing.T) {
	f := newLfix(t)
	big := filepath.Join(f.volume, "home", "db2", "big.dat")
	require.NoError(t, os.WriteFile(big, make([]byte, 24<<20), 0o644))
	req := f.req("p1")
	req.Group.Settings["workers"] = 1
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = f.d.Ship(ctx, req, func(done int64) {
		if done > 1<<20 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, f.fake.snapshots())
	assert.Empty(t, f.fake.mounted)
}

func TestLVMCaptureRetryReplacesLeftSnapshot(t *testing.T) {
	f := newLfix(t)
	req := f.req("p1")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	f.fake.cmds = nil
	_, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{lvsCmd, lvsCmd, "lvremove -f vg0/drover-bpm-p1-cell", "lvcreate -s -L 2G -n drover-bpm-p1-cell vg0/data"}, f.fake.cmds)
}

func TestLVMShipWithoutSnapshot(t *testing.T) {
	f := newLfix(t)
	_, err := f.d.Ship(context.Background(), f.req("p1"), nil)
	assert.ErrorIs(t, err, storage.ErrRecapture)
	assert.True(t, storage.Permanent(err))
}

func TestLVMSweep(t *testing.T) {
	f := newLfix(t)
	for _, n := range []string{"drover-bpm-old-cell", "drover-bpm-p2-cell", "drover-other-x-cell"} {
		f.fake.lvs[n] = LV{Name: n, Origin: "data", Attr: "swi-a-s---"}
	}
	f.fake.lvs["drover-bpm-y-cell"] = LV{Name: "drover-bpm-y-cell", Origin: "home", Attr: "swi-a-s---"}
	mnt := filepath.Join(f.mounts, "drover-bpm-old-cell")
	require.NoError(t, os.MkdirAll(mnt, 0o700))
	f.fake.mounted[mnt] = true
	removed, err := f.d.Sweep(context.Background(), f.req(""), []string{"p2"})
	require.NoError(t, err)
	assert.Equal(t, []string{"vg0/drover-bpm-old-cell"}, removed)
	assert.Equal(t, []string{"drover-bpm-p2-cell", "drover-bpm-y-cell", "drover-other-x-cell"}, f.fake.snapshots())
	assert.Contains(t, f.fake.cmds, "umount "+mnt)
}

func TestLVMCheckSettings(t *testing.T) {
	d := New(nil)
	ok := map[string]any{"volumeGroup": "vg0", "logicalVolume": "data"}
	assert.NoError(t, d.CheckSettings(ok))
	for want, s := range map[string]map[string]any{
		"volumeGroup: required": {"logicalVolume": "data"},
		"logicalVolume":         {"volumeGroup": "vg0"},
		"snapshotSize":          {"volumeGroup": "vg0", "logicalVolume": "data", "snapshotSize": "lots"},
		"must start with ro":    {"volumeGroup": "vg0", "logicalVolume": "data", "mountOptions": "rw"},
		"not an absolute path":  {"volumeGroup": "vg0", "logicalVolume": "data", "mountDir": "mnt"},
		`unknown field "size"`:  {"volumeGroup": "vg0", "logicalVolume": "data", "size": "1G"},
		"subdir":                {"volumeGroup": "vg0", "logicalVolume": "data", "subdir": "../x"},
	} {
		err := d.CheckSettings(s)
		assert.ErrorContains(t, err, want)
		assert.ErrorIs(t, err, drivers.ErrBadSettings)
	}
}

func TestLVMRelease(t *testing.T) {
	f := newLfix(t)
	req := f.req("p1")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	_, err = f.d.Release(context.Background(), req)
	require.NoError(t, err)
	assert.Empty(t, f.fake.snapshots())
	_, err = f.d.Release(context.Background(), req)
	require.NoError(t, err, "releasing again is harmless")
}
