package sitefs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

func site(name, root string) drivers.Site {
	return drivers.Site{Name: name, Role: "sandbox", Settings: map[string]any{"dataRoot": root}}
}

// A folder drover never restored into is never wiped: it may be production
// data named by mistake (a sandbox with dataRoot: /home).
func TestWipeRefusesAFolderWithoutDroversMarker(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "profile.xml"), []byte("production"), 0o644))
	n, err := Wipe(site("sandbox", root))
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "refusing to wipe "+root)
	assert.Contains(t, err.Error(), "carries no "+MarkerFile)
	assert.Zero(t, n)
	_, err = os.Stat(filepath.Join(root, "profile.xml"))
	assert.NoError(t, err, "nothing removed")
}

func TestWipeRefusesAnotherSitesFolder(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, Mark(site("dc2", root), "p"))
	require.NoError(t, os.WriteFile(filepath.Join(root, "db"), []byte("x"), 0o644))
	_, err := Wipe(site("sandbox", root))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `belongs to site "dc2"`)
}

func TestWipeEmptiesWhatDroverRestoredAndKeepsTheMarker(t *testing.T) {
	root := t.TempDir()
	s := site("sandbox", root)
	require.NoError(t, Mark(s, "p"))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "db", "runtime"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "db", "runtime", "x.db"), []byte("x"), 0o644))
	n, err := Wipe(s)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, MarkerFile, entries[0].Name())

	// An empty or missing root needs no marker.
	missing := filepath.Join(t.TempDir(), "new")
	n, err = Wipe(site("sandbox", missing))
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.DirExists(t, missing)
}

func TestRewriteChangesOnlyMatchingFilesAndIsIdempotent(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "app", "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "app", "config", "ds.json"), []byte(`{"db":"db.dc1"}`), 0o644))
	s := site("dc2", root)
	files, changed, err := Rewrite(s, []string{"*/config/*.json"}, "db.dc1", "db.dc2")
	require.NoError(t, err)
	assert.Equal(t, 1, files)
	assert.Equal(t, []string{filepath.Join("app", "config", "ds.json")}, changed)
	_, changed, err = Rewrite(s, []string{"*/config/*.json"}, "db.dc1", "db.dc2")
	require.NoError(t, err)
	assert.Empty(t, changed)
	_, _, err = Rewrite(s, []string{"/etc/*.conf"}, "a", "b")
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
}

// The configuration fingerprint follows the watched files and the
// installation manifest, and nothing else.
func TestConfigurationFingerprintFollowsConfigurationOnly(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	manifest := filepath.Join(t.TempDir(), "installation.json")
	require.NoError(t, os.WriteFile(manifest, []byte(`{"products":{"bpm":"7.5"},"host":"m1"}`), 0o644))
	write("dmgr/config/cell.xml", "<cell/>")
	write("dmgr/runtime/tranlog", "tx1")
	s := site("dc1", root)
	take := func() Fingerprint {
		fp, err := ConfigurationFingerprint(s, manifest+"#products", []string{"*/config"})
		require.NoError(t, err)
		return fp
	}
	a := take()
	assert.Equal(t, a.Sum, take().Sum, "the same configuration gives the same sum")
	assert.Len(t, a.Parts, 2)
	write("dmgr/runtime/tranlog", "tx1 tx2")
	assert.Equal(t, a.Sum, take().Sum, "runtime data is not configuration")
	require.NoError(t, os.WriteFile(manifest, []byte(`{"products":{"bpm":"7.5"},"host":"m2"}`), 0o644))
	assert.Equal(t, a.Sum, take().Sum, "only the manifest's selected part counts")
	write("dmgr/config/cell.xml", "<cell name='c2'/>")
	b := take()
	assert.NotEqual(t, a.Sum, b.Sum, "a changed configuration file")
	write("dmgr/config/new.xml", "")
	assert.NotEqual(t, b.Sum, take().Sum, "a new configuration file")
	require.NoError(t, os.WriteFile(manifest, []byte(`{"products":{"bpm":"7.5.1"}}`), 0o644))
	assert.NotEqual(t, b.Sum, take().Sum, "a new fix level")
	_, err := ConfigurationFingerprint(s, "", []string{"../etc"})
	assert.True(t, drivers.Permanent(err))
}
