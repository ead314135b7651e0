package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
)

type testSettings struct {
	Members []string `json:"members,omitempty"`
}

func decodeTest(raw map[string]any) (testSettings, error) {
	var s testSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(err)
	}
	return s, nil
}

func membersOf(s testSettings) []string { return s.Members }

func testRequest(t *testing.T) Request {
	return Request{Plan: "bpm", PointID: "p1", Store: t.TempDir(), Mode: catalog.ModeFull,
		Site:  drivers.Site{Name: "primary", Settings: map[string]any{"dataRoot": "/srv/data"}},
		Group: Group{Name: "cell", Driver: "test", Components: []string{"node1", "dmgr"}}}
}

func TestPrepareResolvesMembersRootAndStore(t *testing.T) {
	req := testRequest(t)
	_, tg, err := Prepare(req, decodeTest, membersOf)
	require.NoError(t, err)
	assert.Equal(t, []string{"dmgr", "node1"}, tg.Members, "the components, sorted")
	assert.Equal(t, "/srv/data", tg.Root)
	assert.Equal(t, req.Store, tg.Store.Root)

	req.Group.Settings = map[string]any{"members": []string{"db"}}
	s, tg, err := Prepare(req, decodeTest, membersOf)
	require.NoError(t, err)
	assert.Equal(t, []string{"db"}, s.Members)
	assert.Equal(t, []string{"db"}, tg.Members, "the settings' list wins")
}

func TestPrepareRefusesBadRequests(t *testing.T) {
	for name, change := range map[string]func(*Request){
		"plan":      func(r *Request) { r.Plan = "../x" },
		"bad field": func(r *Request) { r.Group.Settings = map[string]any{"membres": []string{"db"}} },
		"member":    func(r *Request) { r.Group.Components = []string{"a/b"} },
		"dataRoot":  func(r *Request) { r.Site.Settings = nil },
		"mode":      func(r *Request) { r.Mode = "weekly" },
	} {
		req := testRequest(t)
		change(&req)
		_, _, err := Prepare(req, decodeTest, membersOf)
		require.Error(t, err, name)
		assert.True(t, drivers.Permanent(err), "%s: bad settings are permanent: %v", name, err)
	}
	req := testRequest(t)
	req.Group.Settings = map[string]any{"membres": 1}
	_, _, err := Prepare(req, decodeTest, membersOf)
	assert.ErrorContains(t, err, "group cell: settings:", "the decode error names the group")
}

func commitPoint(t *testing.T, store *catalog.Store, id string, mode catalog.Mode, base string) {
	t.Helper()
	_, err := store.ResetGroup("bpm", id, "cell")
	require.NoError(t, err)
	require.NoError(t, store.WriteGroup("bpm", id, catalog.Group{Name: "cell", Driver: "test", Method: "test", Consistency: catalog.ConsistencyQuiesced, Instant: time.Now().UTC()}))
	_, err = store.Commit("bpm", id, catalog.CommitInfo{Mode: mode, BaseID: base, Groups: []string{"cell"}})
	require.NoError(t, err)
}

func TestBeginCapture(t *testing.T) {
	req := testRequest(t)
	store, err := catalog.Open(req.Store)
	require.NoError(t, err)

	// Something an earlier attempt staged is dropped.
	gdir, err := store.ResetGroup("bpm", "p1", "cell")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(gdir, "partial"), []byte("x"), 0o600))
	require.NoError(t, store.WriteGroup("bpm", "p1", catalog.Group{Name: "cell"}))
	done, err := BeginCapture(store, req)
	require.NoError(t, err)
	assert.False(t, done)
	_, err = os.Stat(gdir)
	assert.True(t, errors.Is(err, os.ErrNotExist), "the staged group folder is gone")
	_, err = store.StagedGroup("bpm", "p1", "cell")
	assert.ErrorIs(t, err, catalog.ErrNotFound, "and so is its manifest")

	// A committed point is done.
	commitPoint(t, store, "p1", catalog.ModeFull, "")
	done, err = BeginCapture(store, req)
	require.NoError(t, err)
	assert.True(t, done)
}

func TestBaseGroup(t *testing.T) {
	req := testRequest(t)
	store, err := catalog.Open(req.Store)
	require.NoError(t, err)
	g, err := BaseGroup(store, req)
	require.NoError(t, err)
	assert.Nil(t, g, "a full point has no base")

	req.Mode, req.BaseID, req.PointID = catalog.ModeCumulative, "f1", "c2"
	_, err = BaseGroup(store, req)
	assert.ErrorIs(t, err, ErrBaseUnavailable, "the base is not there")

	commitPoint(t, store, "f1", catalog.ModeFull, "")
	g, err = BaseGroup(store, req)
	require.NoError(t, err)
	assert.Equal(t, "cell", g.Name)

	commitPoint(t, store, "c1", catalog.ModeCumulative, "f1")
	req.BaseID = "c1"
	_, err = BaseGroup(store, req)
	assert.ErrorIs(t, err, ErrBaseUnavailable, "a cumulative point is no base")

	req.BaseID, req.Group.Name = "f1", "other"
	_, err = BaseGroup(store, req)
	assert.ErrorIs(t, err, ErrBaseUnavailable, "the base does not hold the group")
}

func TestEmptyOrMissing(t *testing.T) {
	dir := t.TempDir()
	ok, err := EmptyOrMissing(filepath.Join(dir, "nothing"))
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = EmptyOrMissing(dir)
	require.NoError(t, err)
	assert.True(t, ok)

	f := filepath.Join(dir, "f")
	require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
	ok, err = EmptyOrMissing(dir)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = EmptyOrMissing(f)
	assert.Error(t, err, "a file is not an empty folder to restore into")
}

func TestSyncFS(t *testing.T) {
	require.NoError(t, SyncFS(t.TempDir()))
	assert.Error(t, SyncFS(filepath.Join(t.TempDir(), "gone")))
}

func TestShipped(t *testing.T) {
	req := testRequest(t)
	store, err := catalog.Open(req.Store)
	require.NoError(t, err)
	var res Result
	done, err := Shipped(store, req, &res)
	require.NoError(t, err)
	assert.False(t, done)
	assert.False(t, res.Evidence.AlreadyDone)

	_, err = store.ResetGroup("bpm", "p1", "cell")
	require.NoError(t, err)
	require.NoError(t, store.WriteGroup("bpm", "p1", catalog.Group{Name: "cell", Size: 7, DataSize: 21}))
	done, err = Shipped(store, req, &res)
	require.NoError(t, err)
	assert.True(t, done, "staged counts")
	assert.True(t, res.Evidence.AlreadyDone)
	assert.Equal(t, int64(7), res.Stored)
	assert.Equal(t, int64(21), res.Bytes)
}
