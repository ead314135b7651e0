package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

// fixture is a site data root with members, a store and a driver.
type fixture struct {
	t     *testing.T
	root  string // primary dataRoot
	store *catalog.Store
	d     *Driver
	n     int
	// settings open an object store (objects_test.go); nil: the folder.
	settings map[string]any
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "primary")
	storeDir := filepath.Join(base, "store")
	require.NoError(t, os.MkdirAll(storeDir, 0o755))
	st, err := catalog.Open(storeDir)
	require.NoError(t, err)
	f := &fixture{t: t, root: root, store: st, d: New(nil)}
	f.write("db2/data/table1.dat", strings.Repeat("row;", 50_000))
	f.write("db2/log/s0000001.log", "LOG RECORD 1\n")
	f.write("dmgr/config/cells/cell.xml", "<cell name='c1'/>")
	f.write("dmgr/tranlog/tran1", string(make([]byte, 3<<20)))
	blob := make([]byte, 700<<10) // incompressible: stored as raw frames
	fillRandom(rand.New(rand.NewPCG(1, 1)), blob)
	f.write("dmgr/tranlog/blob.bin", string(blob))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dmgr", "empty"), 0o700))
	require.NoError(t, os.Symlink("../config/cells/cell.xml", filepath.Join(root, "dmgr", "empty", "link")))
	require.NoError(t, os.Chmod(filepath.Join(root, "db2/log/s0000001.log"), 0o600))
	return f
}

func (f *fixture) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	require.NoError(f.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(f.t, os.WriteFile(p, []byte(content), 0o644))
}

func (f *fixture) site(root string) drivers.Site {
	return drivers.Site{Name: "primary", Role: "primary", Settings: map[string]any{"dataRoot": root}}
}

func (f *fixture) req(id string, mode catalog.Mode, base string) storage.Request {
	return storage.Request{Plan: "bpm", PointID: id, Store: f.store.Root, StoreSettings: f.settings, Site: f.site(f.root),
		Group: storage.Group{Name: "cell", Driver: "archive", Settings: map[string]any{"members": []any{"db2", "dmgr"}}},
		Mode:  mode, BaseID: base, Quiesced: true}
}

// backup runs capture, ship, verify and commit as the workflow does.
func (f *fixture) backup(mode catalog.Mode, base string) (string, storage.Result) {
	f.t.Helper()
	f.n++
	id := fmt.Sprintf("p%02d", f.n)
	ctx := context.Background()
	req := f.req(id, mode, base)
	var last int64
	res, err := f.d.Capture(ctx, req, func(done int64) {
		assert.GreaterOrEqual(f.t, done, last, "progress never goes back")
		last = done
	})
	require.NoError(f.t, err)
	assert.Equal(f.t, res.Bytes, last, "the last progress report is the bytes captured")
	_, err = f.d.Ship(ctx, req, nil)
	require.NoError(f.t, err)
	v, err := f.d.Verify(ctx, req, nil)
	require.NoError(f.t, err)
	require.True(f.t, v.OK, v.Reason)
	_, err = f.store.Commit("bpm", id, catalog.CommitInfo{Mode: mode, BaseID: base, Started: time.Now(), Ended: time.Now(), Groups: []string{"cell"}})
	require.NoError(f.t, err)
	return id, res
}

func (f *fixture) restore(id, into string, replace bool) (storage.Result, error) {
	return f.d.Restore(context.Background(), storage.RestoreRequest{Plan: "bpm", PointID: id, Store: f.store.Root, StoreSettings: f.settings,
		Site: f.site(into), Group: storage.Group{Name: "cell", Driver: "archive"}, Replace: replace}, nil)
}

// tree describes a folder: path → type, mode, content, mtime, link.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		require.NoError(t, err)
		desc := fmt.Sprintf("%v", info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case info.IsDir():
			desc += fmt.Sprintf(" %d", info.ModTime().UnixNano())
		default:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %d %d", len(b), info.ModTime().UnixNano())
			h := catalog.NewHash()
			h.Write(b)
			desc += " " + catalog.FormatChecksum(h.Sum64())
		}
		out[rel] = desc
		return nil
	}))
	return out
}

func TestFullBackupRestoresTheSameTree(t *testing.T) {
	f := newFixture(t)
	id, res := f.backup(catalog.ModeFull, "")
	assert.EqualValues(t, 12, res.Files, "entries: folders, files, links")
	m, err := f.store.Load("bpm", id)
	require.NoError(t, err)
	assert.Equal(t, catalog.ConsistencyQuiesced, m.Consistency)
	g := m.GroupByName("cell")
	require.NotNil(t, g)
	assert.Equal(t, Method, g.Method)
	require.Len(t, g.Members, 2)
	assert.Equal(t, "cell/db2.tar.zst", g.Members[0].Artifact)
	assert.Less(t, g.Size, g.DataSize, "compressed")

	target := filepath.Join(t.TempDir(), "secondary")
	r, err := f.restore(id, target, false)
	require.NoError(t, err)
	assert.EqualValues(t, 12, r.Files)
	assert.Equal(t, tree(t, f.root), tree(t, target), "same files, modes, mtimes, links")

	// The archive is a plain .tar.zst that standard tools read too.
	if _, err := exec.LookPath("zstd"); err == nil {
		out := filepath.Join(t.TempDir(), "std")
		require.NoError(t, os.MkdirAll(out, 0o755))
		require.NoError(t, run(t, "sh", "-c", "zstd -dc "+filepath.Join(f.store.PointDir("bpm", id), "cell", "dmgr.tar.zst")+" | tar -xf - -C "+out))
		b, err := os.ReadFile(filepath.Join(out, "config/cells/cell.xml"))
		require.NoError(t, err)
		assert.Equal(t, "<cell name='c1'/>", string(b))
		b, err = os.ReadFile(filepath.Join(out, "tranlog/blob.bin"))
		require.NoError(t, err)
		orig, _ := os.ReadFile(filepath.Join(f.root, "dmgr/tranlog/blob.bin"))
		assert.True(t, bytes.Equal(orig, b), "raw frames read back by the zstd CLI")
	}

	// Restoring over data needs replace.
	_, err = f.restore(id, target, false)
	assert.ErrorContains(t, err, "exists and is not empty")
	f.write("db2/log/s0000001.log", "CHANGED")
	_, err = f.restore(id, target, true)
	require.NoError(t, err)
	ents, _ := os.ReadDir(target)
	assert.Len(t, ents, 2, "no temporary or old folders left")
}

func TestCumulativeHoldsOnlyChangesAndRestoresLatest(t *testing.T) {
	f := newFixture(t)
	full, _ := f.backup(catalog.ModeFull, "")
	later := time.Now().Add(time.Hour)
	f.write("db2/log/s0000001.log", "LOG RECORD 1\nLOG RECORD 2\n")
	require.NoError(t, os.Chtimes(filepath.Join(f.root, "db2/log/s0000001.log"), later, later))
	f.write("db2/log/s0000002.log", "NEW LOG")
	require.NoError(t, os.Remove(filepath.Join(f.root, "dmgr/tranlog/tran1")))
	require.NoError(t, os.Remove(filepath.Join(f.root, "dmgr/empty/link")))
	require.NoError(t, os.Symlink("elsewhere", filepath.Join(f.root, "dmgr/empty/link")))

	est, err := f.d.Estimate(context.Background(), f.req("x", catalog.ModeCumulative, full))
	require.NoError(t, err)
	cum, res := f.backup(catalog.ModeCumulative, full)
	assert.Less(t, res.Bytes, int64(100), "only the changed bytes are read")
	assert.GreaterOrEqual(t, est.Bytes, res.Bytes)

	m, err := f.store.Load("bpm", cum)
	require.NoError(t, err)
	assert.Equal(t, catalog.ModeCumulative, m.Mode)
	assert.Equal(t, full, m.BaseID)
	var paths, deleted []string
	for _, mem := range m.GroupByName("cell").Members {
		for _, fl := range mem.Files {
			paths = append(paths, mem.Name+"/"+fl.Path)
		}
		for _, d := range mem.Deleted {
			deleted = append(deleted, mem.Name+"/"+d)
		}
	}
	sort.Strings(paths)
	assert.Contains(t, paths, "db2/log/s0000001.log")
	assert.Contains(t, paths, "db2/log/s0000002.log")
	assert.Contains(t, paths, "dmgr/empty/link")
	assert.NotContains(t, paths, "db2/data/table1.dat")
	assert.Equal(t, []string{"dmgr/tranlog/tran1"}, deleted)

	target := filepath.Join(t.TempDir(), "secondary")
	_, err = f.restore(cum, target, false)
	require.NoError(t, err)
	want, got := tree(t, f.root), tree(t, target)
	// Folder mtimes changed by the deletions are not part of a point.
	for _, m := range []map[string]string{want, got} {
		for k, v := range m {
			if strings.HasPrefix(v, "d") {
				m[k] = v[:strings.IndexByte(v, ' ')]
			}
		}
	}
	assert.Equal(t, want, got, "restore = last full + last cumulative")
}

func TestCumulativeWithoutBaseIsRefused(t *testing.T) {
	f := newFixture(t)
	_, err := f.d.Capture(context.Background(), f.req("c1", catalog.ModeCumulative, "nope"), nil)
	assert.ErrorIs(t, err, storage.ErrBaseUnavailable)
	assert.True(t, storage.Permanent(err))
}

func TestUnquiescedCaptureIsUnknownConsistency(t *testing.T) {
	f := newFixture(t)
	req := f.req("p1", catalog.ModeFull, "")
	req.Quiesced = false
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	m, err := f.store.Commit("bpm", "p1", catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"cell"}})
	require.NoError(t, err)
	assert.Equal(t, catalog.ConsistencyUnknown, m.Consistency)
}

func TestCaptureRetryStartsOverAndCommittedIsAlreadyDone(t *testing.T) {
	f := newFixture(t)
	req := f.req("p1", catalog.ModeFull, "")
	_, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	// A leftover of an earlier attempt is removed by the retry.
	junk := filepath.Join(f.store.StagingDir("bpm", "p1"), "cell", "junk.tmp")
	require.NoError(t, os.WriteFile(junk, []byte("x"), 0o600))
	_, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	_, err = os.Stat(junk)
	assert.True(t, errors.Is(err, os.ErrNotExist))
	_, err = f.store.Commit("bpm", "p1", catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"cell"}})
	require.NoError(t, err)
	res, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	assert.True(t, res.Evidence.AlreadyDone)
}

func TestShipWithoutCaptureAsksForRecapture(t *testing.T) {
	f := newFixture(t)
	_, err := f.d.Ship(context.Background(), f.req("p9", catalog.ModeFull, ""), nil)
	assert.ErrorIs(t, err, storage.ErrRecapture)
}

func TestCheckSettings(t *testing.T) {
	d := New(nil)
	assert.NoError(t, d.CheckSettings(nil))
	assert.NoError(t, d.CheckSettings(map[string]any{"members": []any{"db2"}, "compare": "checksum", "workers": 2}))
	err := d.CheckSettings(map[string]any{"member": []any{"db2"}})
	assert.ErrorContains(t, err, `unknown field "member"`)
	assert.ErrorIs(t, err, drivers.ErrBadSettings)
	assert.ErrorContains(t, d.CheckSettings(map[string]any{"compare": "size"}), "compare")
	assert.ErrorContains(t, d.CheckSettings(map[string]any{"members": []any{"../etc"}}), "member name")
}

func TestMissingDataRootSettingIsBadSettings(t *testing.T) {
	f := newFixture(t)
	req := f.req("p1", catalog.ModeFull, "")
	req.Site.Settings = map[string]any{"dataRoot": "${DROVER_UNSET_FOR_TEST}/x"}
	_, err := f.d.Capture(context.Background(), req, nil)
	assert.ErrorContains(t, err, "DROVER_UNSET_FOR_TEST is not set")
	assert.ErrorIs(t, err, drivers.ErrBadSettings)
	req.Site.Settings = nil
	_, err = f.d.Capture(context.Background(), req, nil)
	assert.ErrorContains(t, err, "dataRoot is required")
}

func TestChecksumCompareFindsSameSizeSameMtimeChange(t *testing.T) {
	f := newFixture(t)
	full, _ := f.backup(catalog.ModeFull, "")
	p := filepath.Join(f.root, "dmgr/config/cells/cell.xml")
	st, _ := os.Stat(p)
	f.write("dmgr/config/cells/cell.xml", "<cell name='c2'/>")
	require.NoError(t, os.Chtimes(p, st.ModTime(), st.ModTime()))

	req := f.req("c-mtime", catalog.ModeCumulative, full)
	res, err := f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	assert.Zero(t, res.Bytes, "mtime+size cannot see it")

	req = f.req("c-sum", catalog.ModeCumulative, full)
	req.Group.Settings["compare"] = "checksum"
	res, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	assert.EqualValues(t, len("<cell name='c2'/>"), res.Bytes)
}

func run(t *testing.T, name string, args ...string) error {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}

func TestCumulativeTypeChanges(t *testing.T) {
	f := newFixture(t)
	full, _ := f.backup(catalog.ModeFull, "")
	// A folder becomes a file, a file becomes a folder.
	require.NoError(t, os.RemoveAll(filepath.Join(f.root, "dmgr/config")))
	f.write("dmgr/config", "now a file")
	require.NoError(t, os.Remove(filepath.Join(f.root, "db2/log/s0000001.log")))
	f.write("db2/log/s0000001.log/inner", "now a folder")
	cum, _ := f.backup(catalog.ModeCumulative, full)
	target := filepath.Join(t.TempDir(), "secondary")
	_, err := f.restore(cum, target, false)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(target, "dmgr/config"))
	require.NoError(t, err)
	assert.Equal(t, "now a file", string(b))
	b, err = os.ReadFile(filepath.Join(target, "db2/log/s0000001.log/inner"))
	require.NoError(t, err)
	assert.Equal(t, "now a folder", string(b))
}
