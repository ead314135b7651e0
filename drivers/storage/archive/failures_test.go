package archive

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// Failure cases from the issue: each ends with nothing lost and no
// complete-looking bad point.

func TestFlippedByteFailsVerifyMarksInvalidAndRestoreRefuses(t *testing.T) {
	f := newFixture(t)
	id, _ := f.backup(catalog.ModeFull, "")
	archive := filepath.Join(f.store.PointDir("bpm", id), "cell", "db2.tar.zst")
	b, err := os.ReadFile(archive)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x01
	require.NoError(t, os.WriteFile(archive, b, 0o640))

	v, err := f.d.Verify(context.Background(), f.req(id, catalog.ModeFull, ""), nil)
	require.NoError(t, err, "a damaged file is a finding, not an error")
	assert.False(t, v.OK)
	assert.Equal(t, filepath.Join("bpm", "points", id, "cell", "db2.tar.zst"), v.BadFile)
	assert.Contains(t, v.Reason, "checksum")

	// Restore checks on its own too, before it is marked: it names the
	// file and leaves the target as it was.
	target := filepath.Join(t.TempDir(), "secondary")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "db2"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "db2", "keep.txt"), []byte("old"), 0o644))
	_, err = f.restore(id, target, true)
	var ce *storage.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), filepath.Join("bpm", "points", id, "cell", "db2.tar.zst"))
	keep, err := os.ReadFile(filepath.Join(target, "db2", "keep.txt"))
	require.NoError(t, err, "the target is untouched")
	assert.Equal(t, "old", string(keep))
	ents, _ := os.ReadDir(target)
	assert.Len(t, ents, 1, "no temporary folders left")

	res, err := storage.VerifyPoint(context.Background(), f.store, "bpm", id, "verify-run-1", nil)
	require.NoError(t, err)
	require.Len(t, res, 1)
	pts, err := f.store.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Equal(t, catalog.Invalid, pts[0].Validity.State)
	assert.Equal(t, "verify-run-1", pts[0].Validity.Run)
	assert.Contains(t, pts[0].Validity.Reason, "cell/db2.tar.zst")

	_, err = f.restore(id, target, true)
	assert.ErrorIs(t, err, storage.ErrInvalid)
	assert.Contains(t, err.Error(), "cell/db2.tar.zst", "the refusal names the file")
}

func TestTruncatedArchive(t *testing.T) {
	f := newFixture(t)
	id, _ := f.backup(catalog.ModeFull, "")
	archive := filepath.Join(f.store.PointDir("bpm", id), "cell", "dmgr.tar.zst")
	st, err := os.Stat(archive)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(archive, st.Size()/2))

	v, err := f.d.Verify(context.Background(), f.req(id, catalog.ModeFull, ""), nil)
	require.NoError(t, err)
	assert.False(t, v.OK)
	assert.Contains(t, v.BadFile, "dmgr.tar.zst")
	assert.Contains(t, v.Reason, "truncated")

	_, err = f.restore(id, filepath.Join(t.TempDir(), "secondary"), false)
	var ce *storage.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.File, "dmgr.tar.zst")
}

// A truncated archive whose manifest entry was truncated with it (same
// size, frames cut) is still caught by the frame and checksum checks.
func TestExtractCatchesDamageEvenWhenSizesAgree(t *testing.T) {
	f := newFixture(t)
	id, _ := f.backup(catalog.ModeFull, "")
	m, err := f.store.Load("bpm", id)
	require.NoError(t, err)
	g := m.GroupByName("cell")
	art := g.Artifacts[1]
	src := filepath.Join(f.store.PointDir("bpm", id), art.Name)
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	b[10] ^= 0xff
	require.NoError(t, os.WriteFile(src, b, 0o640))
	_, err = tarzst.ExtractMember(context.Background(), src, art, g.Members[1], t.TempDir(), tarzst.ExtractOptions{Name: art.Name})
	var ce *storage.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, art.Name, ce.File)

	// Without a frame index (a sequential read) too.
	art.Frames = nil
	_, err = tarzst.ExtractMember(context.Background(), src, art, g.Members[1], t.TempDir(), tarzst.ExtractOptions{Name: art.Name})
	require.ErrorAs(t, err, &ce)
}

func TestMissingManifestMeansNoPoint(t *testing.T) {
	f := newFixture(t)
	id, _ := f.backup(catalog.ModeFull, "")
	require.NoError(t, os.Remove(filepath.Join(f.store.PointDir("bpm", id), catalog.ManifestFile)))
	pts, err := f.store.List("bpm")
	require.NoError(t, err)
	assert.Empty(t, pts)
	_, err = f.restore(id, filepath.Join(t.TempDir(), "secondary"), false)
	assert.ErrorIs(t, err, catalog.ErrNotFound)
	_, err = f.d.Verify(context.Background(), f.req(id, catalog.ModeFull, ""), nil)
	assert.ErrorIs(t, err, catalog.ErrNotFound)
	removed, err := f.store.CollectGarbage("bpm", nil, 0)
	require.NoError(t, err)
	assert.Len(t, removed, 1, "the data without a manifest is garbage")
}

func TestCancelMidCapture(t *testing.T) {
	f := newFixture(t)
	_, err := GenerateDataset(f.root, 24<<20, []string{"db2", "dmgr"}, 7)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := f.req("p1", catalog.ModeFull, "")
	req.Group.Settings["workers"] = 1
	_, err = f.d.Capture(ctx, req, func(done int64) {
		if done > 1<<20 {
			cancel()
		}
	})
	assert.ErrorIs(t, err, context.Canceled)
	ok, _ := f.store.Exists("bpm", "p1")
	assert.False(t, ok)
	_, err = os.Stat(filepath.Join(f.store.StagingDir("bpm", "p1"), "cell"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "the cancelled group's partial archives are removed")
	_, err = f.store.StagedGroup("bpm", "p1", "cell")
	assert.ErrorIs(t, err, catalog.ErrNotFound)
}

// The worker killed in the middle of a capture: a real process, SIGKILLed.
// Nothing looks like a point; the next run's garbage collection removes
// the leftovers, and a retry of the same point completes.
func TestCrashMidCapture(t *testing.T) {
	f := newFixture(t)
	_, err := GenerateDataset(f.root, 48<<20, []string{"db2", "dmgr"}, 11)
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCaptureProcess$")
	cmd.Env = append(os.Environ(), "DROVER_HELPER_CAPTURE=1", "DROVER_HELPER_ROOT="+f.root, "DROVER_HELPER_STORE="+f.store.Root)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "capturing\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	pts, err := f.store.List("bpm")
	require.NoError(t, err)
	assert.Empty(t, pts, "no complete-looking point")
	var leftovers []string
	_ = filepath.Walk(f.store.StagingDir("bpm", "p1"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			leftovers = append(leftovers, p)
		}
		return nil
	})
	require.NotEmpty(t, leftovers, "the killed capture left partial data (the test must kill it mid-way)")

	// Retrying the same point starts it over and completes.
	req := f.req("p1", catalog.ModeFull, "")
	_, err = f.d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	v, err := f.d.Verify(context.Background(), req, nil)
	require.NoError(t, err)
	assert.True(t, v.OK)

	// Or, when the run gave up on it, the next run's collection removes it.
	removed, err := f.store.CollectGarbage("bpm", []string{"p2"}, 0)
	require.NoError(t, err)
	assert.Len(t, removed, 1)
	_, err = os.Stat(f.store.StagingDir("bpm", "p1"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

// TestHelperCaptureProcess is the worker killed by TestCrashMidCapture.
func TestHelperCaptureProcess(t *testing.T) {
	if os.Getenv("DROVER_HELPER_CAPTURE") != "1" {
		t.Skip("helper process for TestCrashMidCapture")
	}
	st, err := catalog.Open(os.Getenv("DROVER_HELPER_STORE"))
	require.NoError(t, err)
	f := &fixture{t: t, root: os.Getenv("DROVER_HELPER_ROOT"), store: st, d: New(nil)}
	req := f.req("p1", catalog.ModeFull, "")
	req.Group.Settings["workers"] = 1
	said := false
	_, _ = f.d.Capture(context.Background(), req, func(done int64) {
		if !said && done > 4<<20 {
			said = true
			os.Stdout.WriteString("capturing\n")
			time.Sleep(time.Second) // hold still until killed
		}
	})
	os.Exit(3) // never reached when killed
}

// The store's disk full: a size-limited tmpfs as the store.
func TestStoreDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs as the store")
	}
	f := newFixture(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	st, err := catalog.Open(mnt)
	require.NoError(t, err)
	f.store = st
	old, _ := f.backup(catalog.ModeFull, "")

	_, err = GenerateDataset(f.root, 16<<20, []string{"db2"}, 3)
	require.NoError(t, err)
	req := f.req("p2", catalog.ModeFull, "")
	est, err := f.d.Estimate(context.Background(), req)
	require.NoError(t, err)
	err = st.CheckFree(est.Bytes)
	assert.ErrorIs(t, err, catalog.ErrStoreFull, "the preflight sees it coming")

	// Without the preflight the capture hits the wall.
	_, err = f.d.Capture(context.Background(), req, nil)
	require.ErrorIs(t, err, catalog.ErrStoreFull)
	assert.Contains(t, err.Error(), "the store is full")
	assert.Contains(t, err.Error(), "no space left on device")
	_, err = f.store.StagedGroup("bpm", "p2", "cell")
	assert.ErrorIs(t, err, catalog.ErrNotFound, "no partial group")

	pts, err := st.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Equal(t, old, pts[0].ID)
	res, err := storage.VerifyPoint(context.Background(), st, "bpm", old, "", nil)
	require.NoError(t, err)
	assert.True(t, res[0].OK, "the older point is intact")
	_, err = st.CollectGarbage("bpm", nil, 0)
	require.NoError(t, err)
	free, err := st.Free()
	require.NoError(t, err)
	assert.Greater(t, free, uint64(4<<20), "the failed capture's bytes are freed")
}

func TestExtractRefusesPathEscape(t *testing.T) {
	// A hand-made archive whose entry climbs out of the target.
	dir := t.TempDir()
	src := filepath.Join(dir, "evil")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "x"), []byte("x"), 0o644))
	out := filepath.Join(dir, "evil.tar.zst")
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("needs the zstd CLI to build a hostile archive")
	}
	require.NoError(t, run(t, "sh", "-c", "tar -cf - -C "+src+" --transform 's,^,../,' x | zstd -q -o "+out))
	st, _ := os.Stat(out)
	b, _ := os.ReadFile(out)
	h := catalog.NewHash()
	h.Write(b)
	art := catalog.Artifact{Name: "evil.tar.zst", Size: st.Size(), Checksum: catalog.FormatChecksum(h.Sum64())}
	target := filepath.Join(dir, "target")
	require.NoError(t, os.MkdirAll(target, 0o755))
	_, err := tarzst.ExtractMember(context.Background(), out, art, catalog.Member{Name: "m"}, target, tarzst.ExtractOptions{})
	var ce *storage.CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Reason, "'..'")
	_, err = os.Stat(filepath.Join(dir, "x"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}
