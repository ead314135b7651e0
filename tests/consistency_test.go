package tests

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// The lab's databases are a few hundred kilobytes: a hot copy of them takes
// a few milliseconds, so whether commits land between the copy of BPMDB and
// the copy of MEDB and MONDB is luck. A production BPMDB is gigabytes and its
// hot copy spans minutes of commits. The ballast stands in for that bulk: a
// large file in the database server's runtime folder that the archive reads
// between BPMDB and the ME and Monitor databases (members are archived file
// by file in name order), so a copy made without quiesce spans a realistic
// stretch of commits every time. The quiesced and snapshot points carry it
// too: quiesce must hold writes for the whole, longer capture.
const (
	ballastName = "BPMDB.lob" // sorts after BPMDB.db* and before MEDB.db
	ballastSize = 96 << 20
)

func addBallast(t *testing.T, runtimeDir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(runtimeDir, ballastName))
	require.NoError(t, err)
	defer f.Close()
	// Random bytes: compression cannot make the copy shorter.
	r := rand.NewChaCha8([32]byte{1})
	_, err = io.CopyN(f, r, ballastSize)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

// withQuiesce returns a copy of the plan whose consistency groups quiesce
// (or not).
func withQuiesce(p *plan.Plan, quiesce bool) *plan.Plan {
	cp := *p
	cp.Storage.Groups = append([]plan.ConsistencyGroup(nil), p.Storage.Groups...)
	for i := range cp.Storage.Groups {
		cp.Storage.Groups[i].Quiesce = quiesce
	}
	return &cp
}

// TestConsistencyGroupsMatter (issue 4): under the same load on the same
// lab, a hot archive of the cell (no quiesce: its members' files copied one
// after another while steps commit) is caught by validation at the
// consistency level and recorded invalid, while a quiesced archive (one
// instant for the whole group) validates.
func TestConsistencyGroupsMatter(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "groups"})
	e.up()
	addBallast(t, e.l.L.RuntimeDir("dc1", "db"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	ld := e.startLoad(40)
	time.Sleep(3 * time.Second)

	hot := withQuiesce(e.p, false)
	// One compressor paces the reading: with one per core the reader
	// runs ahead through the page cache and the ballast no longer holds the
	// members' copies apart long enough for commits to fall between them.
	for i := range hot.Storage.Groups {
		s := plan.Settings{"workers": 1}
		for k, v := range hot.Storage.Groups[i].Settings {
			if k != "workers" {
				s[k] = v
			}
		}
		hot.Storage.Groups[i].Settings = s
	}
	hp := e.backup(ctx, hot, contract.ModeFull, "hot")
	assert.Equal(t, string(catalog.ConsistencyUnknown), hp.Consistency, "a capture without quiesce cannot vouch for one instant")
	hv := e.validate(ctx, hot, hp.ID)
	assert.False(t, hv.Valid, "a hot copy under load passed validation")
	v, err := e.store.Validity(e.p.Name, hp.ID)
	require.NoError(t, err)
	assert.Equal(t, catalog.Invalid, v.State)
	// Members copied at different instants are caught at the consistency
	// level; a database file torn by the copy itself (its pages from
	// before and after a write) stops the cell from coming up at all.
	// Either way the point is invalid, and the validation says why.
	if hv.Verify.FailedLevel != "" {
		assert.Equal(t, plan.LevelConsistency, hv.Verify.FailedLevel, "the level that catches members captured at different instants")
		assert.Contains(t, v.Reason, "consistency")
	} else {
		assert.Contains(t, v.Reason, "the cell did not come up from this point")
		t.Logf("the hot copy tore a database: %s", v.Reason)
	}
	out, err := e.drover("points", "list", "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("drover points list:\n%s", out)
	assert.Regexp(t, hp.ID+` .*unknown +\S+ +invalid`, out)
	assert.Contains(t, out, hp.ID+": invalid: "+v.Reason[:min(len(v.Reason), 40)])

	// The same lab under the same load, captured quiesced.
	qp := e.backup(ctx, withQuiesce(e.p, true), contract.ModeFull, "quiesced")
	assert.Equal(t, string(catalog.ConsistencyQuiesced), qp.Consistency)
	qv := e.validate(ctx, e.p, qp.ID)
	rep := ld.stop()
	t.Logf("load: %s", rep.String())
	assert.True(t, qv.Valid, "quiesced point: %s", qv.Reason)
	v, err = e.store.Validity(e.p.Name, qp.ID)
	require.NoError(t, err)
	assert.Equal(t, catalog.Valid, v.State)

	// The next backup's retention discarded the invalid point; the valid
	// one is listed.
	out, err = e.drover("points", "list", "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("drover points list:\n%s", out)
	assert.Regexp(t, qp.ID+` .*quiesced +\S+ +valid`, out)
	assert.NotContains(t, out, hp.ID, "an invalid point kept after the next backup's retention")
}

// TestBtrfsSnapshotPointValidates (issue 4): a lab whose dc1 data root is a
// btrfs subvolume, backed up by a read-only snapshot without any quiesce
// under the same load, validates: one instant for every member, like a power
// cut the cell recovers from. Needs root and btrfs; skipped otherwise.
func TestBtrfsSnapshotPointValidates(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	mnt := loopBtrfs(t, 1<<30)
	labDir := filepath.Join(mnt, "lab")
	require.NoError(t, os.MkdirAll(filepath.Join(labDir, "sites", "dc1"), 0o755))
	if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(labDir, "sites", "dc1", "data")).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v: %s", err, out)
	}
	e := newLabEnv(t, envOptions{name: "snapshot", labDir: labDir, edit: func(s string) string {
		s = strings.Replace(s, "      driver: archive\n", "      driver: btrfs\n", 1)
		return strings.Replace(s, "      quiesce: true\n", "      quiesce: false\n", 1)
	}})
	require.Equal(t, "btrfs", e.p.Storage.Groups[0].Driver)
	require.False(t, e.p.Storage.Groups[0].Quiesce)
	e.up()
	addBallast(t, e.l.L.RuntimeDir("dc1", "db"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	ld := e.startLoad(40)
	time.Sleep(3 * time.Second)
	sp := e.backup(ctx, e.p, contract.ModeFull, "snapshot")
	assert.Equal(t, string(catalog.ConsistencySnapshot), sp.Consistency)
	sv := e.validate(ctx, e.p, sp.ID)
	rep := ld.stop()
	t.Logf("load: %s", rep.String())
	assert.True(t, sv.Valid, "btrfs snapshot point: %s", sv.Reason)
	v, err := e.store.Validity(e.p.Name, sp.ID)
	require.NoError(t, err)
	assert.Equal(t, catalog.Valid, v.State)
}

// loopBtrfs mounts a fresh btrfs file system on a loop device for the test,
// or skips the test saying why that is not possible here.
func loopBtrfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("btrfs lab test skipped: needs root to mount a loop-device btrfs file system")
	}
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("btrfs lab test skipped: %s not found (apt-get install btrfs-progs)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	mnt := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("btrfs lab test skipped: mkfs.btrfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("btrfs lab test skipped: cannot mount a loop device (no loop devices or no btrfs in the kernel?): %v: %s",
			err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}
