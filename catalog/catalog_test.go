package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func sum(s string) string {
	h := NewHash()
	h.Write([]byte(s))
	return FormatChecksum(h.Sum64())
}

// stage writes one group with one artifact into a staged point.
func stage(t *testing.T, s *Store, plan, id, group, data string, cons Consistency, at time.Time) {
	t.Helper()
	dir, err := s.ResetGroup(plan, id, group)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "m.tar.zst"), []byte(data), 0o640))
	require.NoError(t, s.WriteGroup(plan, id, Group{
		Name: group, Driver: "archive", Method: "tar+zstd", Consistency: cons, Instant: at,
		Members:   []Member{{Name: "m", Artifact: group + "/m.tar.zst", Files: []File{{Path: "a.txt", Size: 3, Mode: 0o644, MTime: 1, Checksum: sum("abc")}}}},
		Artifacts: []Artifact{{Name: group + "/m.tar.zst", Size: int64(len(data)), Checksum: sum(data)}},
		Size:      int64(len(data)), DataSize: 3,
	}))
}

func commitFull(t *testing.T, s *Store, plan, id string, at time.Time) *Manifest {
	t.Helper()
	stage(t, s, plan, id, "g1", "data-"+id, ConsistencyQuiesced, at)
	m, err := s.Commit(plan, id, CommitInfo{Mode: ModeFull, Started: at, Ended: at.Add(time.Second), Groups: []string{"g1"}})
	require.NoError(t, err)
	return m
}

func TestCommitLoadList(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "p1", "db", "aaaa", ConsistencyQuiesced, t0.Add(time.Second))
	stage(t, s, "bpm", "p1", "cell", "bbbbbb", ConsistencySnapshot, t0)

	// Not committed yet: not a point.
	pts, err := s.List("bpm")
	require.NoError(t, err)
	assert.Empty(t, pts)
	_, err = s.Load("bpm", "p1")
	assert.ErrorIs(t, err, ErrNotFound)

	_, err = s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0.Add(time.Minute), Groups: []string{"db", "cell", "missing"}})
	require.ErrorContains(t, err, "group missing")

	m, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0.Add(time.Minute), Groups: []string{"db", "cell"}})
	require.NoError(t, err)
	assert.Equal(t, t0, m.Instant, "the point's instant is its earliest group's")
	assert.Equal(t, ConsistencySnapshot, m.Consistency, "a point is as consistent as its weakest group")
	assert.EqualValues(t, 10, m.Size)

	// Committing again is harmless.
	m2, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Groups: []string{"db"}})
	require.NoError(t, err)
	assert.Equal(t, m.Size, m2.Size)

	_, err = os.Stat(s.StagingDir("bpm", "p1"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "staging moved into points/")
	_, err = os.Stat(filepath.Join(s.PointDir("bpm", "p1"), groupsDir))
	assert.True(t, errors.Is(err, os.ErrNotExist), "staged group manifests are folded into the manifest")

	pts, err = s.List("")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Equal(t, Unverified, pts[0].Validity.State)
	assert.Equal(t, []string{"m"}, pts[0].Groups[0].Members)

	require.NoError(t, s.SetValidity("bpm", "p1", Validity{State: Invalid, Reason: "consistency level failed", Run: "validate-1"}))
	v, err := s.Validity("bpm", "p1")
	require.NoError(t, err)
	assert.Equal(t, Invalid, v.State)
	assert.Equal(t, "validate-1", v.Run)
	assert.False(t, v.At.IsZero())
	assert.Error(t, s.SetValidity("bpm", "p1", Validity{State: "maybe"}))
	assert.ErrorIs(t, s.SetValidity("bpm", "nope", Validity{State: Valid}), ErrNotFound)
}

func TestCommitCumulativeNeedsFullBase(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "c1", "g1", "x", ConsistencyQuiesced, t0)
	_, err = s.Commit("bpm", "c1", CommitInfo{Mode: ModeCumulative, BaseID: "f1", Groups: []string{"g1"}})
	assert.ErrorIs(t, err, ErrNotFound)
	commitFull(t, s, "bpm", "f1", t0)
	m, err := s.Commit("bpm", "c1", CommitInfo{Mode: ModeCumulative, BaseID: "f1", Groups: []string{"g1"}})
	require.NoError(t, err)
	assert.Equal(t, "f1", m.BaseID)
}

func TestCommitRefusesArtifactOfWrongSize(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "p1", "g1", "12345", ConsistencyQuiesced, t0)
	require.NoError(t, os.WriteFile(filepath.Join(s.StagingDir("bpm", "p1"), "g1", "m.tar.zst"), []byte("12"), 0o640))
	_, err = s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Groups: []string{"g1"}})
	assert.ErrorContains(t, err, "is 2 bytes, the group recorded 5")
	ok, _ := s.Exists("bpm", "p1")
	assert.False(t, ok)
}

// A crash after the manifest was written into staging and before the
// rename: the retried commit only renames.
func TestCommitResumesAfterCrashBeforeRename(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "p1", "g1", "data", ConsistencyQuiesced, t0)
	m, err := s.buildManifest("bpm", "p1", CommitInfo{Mode: ModeFull, Groups: []string{"g1"}})
	require.NoError(t, err)
	data, _ := json.Marshal(m)
	require.NoError(t, WriteFileAtomic(filepath.Join(s.StagingDir("bpm", "p1"), ManifestFile), data, 0o640))
	pts, _ := s.List("bpm")
	assert.Empty(t, pts, "a staged point is never listed, manifest or not")

	got, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Groups: []string{"other"}})
	require.NoError(t, err, "the staged manifest wins over the retried call's arguments")
	assert.Equal(t, m.Size, got.Size)
	ok, _ := s.Exists("bpm", "p1")
	assert.True(t, ok)
}

func TestListToleratesCorruptAndMissingManifests(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	commitFull(t, s, "bpm", "good", t0)
	commitFull(t, s, "bpm", "bad", t0.Add(time.Hour))
	commitFull(t, s, "bpm", "gone", t0.Add(2*time.Hour))
	require.NoError(t, os.WriteFile(filepath.Join(s.PointDir("bpm", "bad"), ManifestFile), []byte(`{"format":1,"id":"bad"`), 0o640))
	require.NoError(t, os.Remove(filepath.Join(s.PointDir("bpm", "gone"), ManifestFile)))

	pts, err := s.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 2, "a folder without a manifest is not a point")
	byID := map[string]Point{}
	for _, p := range pts {
		byID[p.ID] = p
	}
	assert.Empty(t, byID["good"].Problem)
	assert.Contains(t, byID["bad"].Problem, "corrupt manifest")
	assert.False(t, byID["bad"].Usable())
	_, err = s.Load("bpm", "gone")
	assert.ErrorIs(t, err, ErrNotFound)

	// A manifest copied into another point's folder is caught.
	data, _ := os.ReadFile(filepath.Join(s.PointDir("bpm", "good"), ManifestFile))
	require.NoError(t, os.MkdirAll(s.PointDir("bpm", "copy"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(s.PointDir("bpm", "copy"), ManifestFile), data, 0o640))
	_, err = s.Load("bpm", "copy")
	assert.ErrorIs(t, err, ErrCorrupt)

	// The garbage collector removes the folder without a manifest.
	removed, err := s.CollectGarbage("bpm", nil, 0)
	require.NoError(t, err)
	assert.Len(t, removed, 1)
	assert.True(t, strings.HasSuffix(removed[0], "gone"))
}

func TestCollectGarbageKeepsActiveAndRecentStaging(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "crashed", "g1", "partial", ConsistencyQuiesced, t0)
	stage(t, s, "bpm", "running", "g1", "partial", ConsistencyQuiesced, t0)
	removed, err := s.CollectGarbage("bpm", []string{"running"}, time.Hour)
	require.NoError(t, err)
	assert.Empty(t, removed, "staging touched within the grace period may belong to a live backup")
	removed, err = s.CollectGarbage("bpm", []string{"running"}, 0)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	assert.Contains(t, removed[0], "crashed")
	_, err = os.Stat(s.StagingDir("bpm", "running"))
	assert.NoError(t, err)
}

func TestDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	commitFull(t, s, "bpm", "p1", t0)
	require.NoError(t, s.Delete("bpm", "p1"))
	require.NoError(t, s.Delete("bpm", "p1"), "deleting again is harmless")
	pts, _ := s.List("bpm")
	assert.Empty(t, pts)
	ents, _ := os.ReadDir(filepath.Join(s.Root, "bpm", trashDir))
	assert.Empty(t, ents)
}

func TestOpenRefusesMissingStore(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "not-mounted"))
	assert.Error(t, err)
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	_, err = Open(f)
	assert.ErrorContains(t, err, "not a directory")
}

func TestNamesAreSafe(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "../x", "a/b", ".hidden", "-x", strings.Repeat("a", 129)} {
		assert.Error(t, CheckName("point", bad), bad)
	}
	for _, good := range []string{"bpm", "20260302T100000Z-0a1b2c", "a.b_c-d"} {
		assert.NoError(t, CheckName("point", good), good)
	}
	s, _ := Open(t.TempDir())
	_, err := s.Load("../etc", "x")
	assert.Error(t, err)
}

func TestParseManifestRejects(t *testing.T) {
	s, _ := Open(t.TempDir())
	m := commitFull(t, s, "bpm", "p1", t0)
	good, _ := json.Marshal(m)
	_, err := ParseManifest(good)
	require.NoError(t, err)

	mutate := func(f func(m *Manifest)) []byte {
		var c Manifest
		require.NoError(t, json.Unmarshal(good, &c))
		f(&c)
		b, _ := json.Marshal(c)
		return b
	}
	cases := map[string][]byte{
		"format":          mutate(func(m *Manifest) { m.Format = 99 }),
		"mode":            mutate(func(m *Manifest) { m.Mode = "partial" }),
		"baseId":          mutate(func(m *Manifest) { m.Mode = ModeCumulative }),
		"consistency":     mutate(func(m *Manifest) { m.Consistency = "good" }),
		"instant":         mutate(func(m *Manifest) { m.Instant = time.Time{} }),
		"groups: none":    mutate(func(m *Manifest) { m.Groups = nil }),
		"duplicate":       mutate(func(m *Manifest) { m.Groups = append(m.Groups, m.Groups[0]) }),
		"'..' element":    mutate(func(m *Manifest) { m.Groups[0].Members[0].Files[0].Path = "../../etc/passwd" }),
		"absolute path":   mutate(func(m *Manifest) { m.Groups[0].Artifacts[0].Name = "/etc/passwd" }),
		"checksum":        mutate(func(m *Manifest) { m.Groups[0].Artifacts[0].Checksum = "md5:00" }),
		"frames":          mutate(func(m *Manifest) { m.Groups[0].Artifacts[0].Frames = []int64{1} }),
		"not among":       mutate(func(m *Manifest) { m.Groups[0].Members[0].Artifact = "other" }),
		"unknown field":   []byte(strings.Replace(string(good), `"format":1`, `"format":1,"extra":true`, 1)),
		"data after":      append(append([]byte{}, good...), []byte(`{}`)...),
		"unexpected EOF":  good[:len(good)/2],
		"unknown type":    mutate(func(m *Manifest) { m.Groups[0].Members[0].Files[0].Type = "x" }),
		"files[0].s":      mutate(func(m *Manifest) { m.Groups[0].Members[0].Files[0].Size = -1 }),
		"deleted[0]":      mutate(func(m *Manifest) { m.Groups[0].Members[0].Deleted = []string{"a//b"} }),
		"members[0].name": mutate(func(m *Manifest) { m.Groups[0].Members[0].Name = "a/b" }),
		"size: negative":  mutate(func(m *Manifest) { m.Size = -1 }),
	}
	for want, data := range cases {
		_, err := ParseManifest(data)
		if assert.Error(t, err, want) {
			assert.ErrorIs(t, err, ErrCorrupt, want)
			assert.Contains(t, err.Error(), want)
		}
	}
}

func TestChecksumFormat(t *testing.T) {
	s := sum("abc")
	assert.True(t, strings.HasPrefix(s, "xxh64:"))
	v, err := ParseChecksum(s)
	require.NoError(t, err)
	assert.Equal(t, s, FormatChecksum(v))
	for _, bad := range []string{"", "xxh64:", "xxh64:zz00000000000000", "sha256:0000000000000000", "xxh64:0"} {
		_, err := ParseChecksum(bad)
		assert.Error(t, err, bad)
	}
}

func TestNewID(t *testing.T) {
	a := NewID(t0, "run-1")
	assert.Equal(t, a, NewID(t0, "run-1"), "same run, same id: safe on workflow replay")
	assert.NotEqual(t, a, NewID(t0, "run-2"))
	assert.NoError(t, CheckName("point", a))
	assert.True(t, strings.HasPrefix(a, "20260302T100000Z-"))
	assert.Less(t, NewID(t0, "z"), NewID(t0.Add(time.Second), "a"), "ids sort by time")
}

func TestDecodeSettings(t *testing.T) {
	s, err := DecodeSettings(map[string]any{"path": "/srv/store"})
	require.NoError(t, err)
	assert.Equal(t, DefaultPolicy, *s.Retention)
	assert.Equal(t, 1.2, s.FreeMargin)
	_, err = DecodeSettings(map[string]any{"path": "/x", "retain": 3})
	assert.ErrorContains(t, err, `unknown field "retain"`)
	_, err = DecodeSettings(map[string]any{})
	assert.ErrorContains(t, err, "storage.store.path: required")
	_, err = DecodeSettings(map[string]any{"path": "/x", "retention": map[string]any{"weekly": -1}})
	assert.ErrorContains(t, err, "must not be negative")
	t.Setenv("DROVER_TEST_STORE_UNSET", "")
	_, _, err = OpenFromSettings(map[string]any{"path": "${DROVER_TEST_STORE_UNSET}/store"})
	assert.ErrorContains(t, err, "DROVER_TEST_STORE_UNSET is not set")
}

func TestCheckFree(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, s.CheckFree(1))
	err = s.CheckFree(1 << 62)
	assert.ErrorIs(t, err, ErrStoreFull)
	assert.Contains(t, err.Error(), "the backup needs about")
	require.NoError(t, s.CheckWritable("bpm"))
}

// The window writes were paused is part of the manifest and of the listing,
// and a manifest whose window does not add up is refused.
func TestCommitRecordsTheQuiesceWindow(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	stage(t, s, "bpm", "p1", "g1", "data", ConsistencyQuiesced, t0.Add(time.Second))
	q := &QuiesceWindow{Start: t0, End: t0.Add(2500 * time.Millisecond), Components: []string{"db", "dmgr"}}
	m, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0.Add(time.Minute), Groups: []string{"g1"}, Quiesce: q})
	require.NoError(t, err)
	require.NotNil(t, m.Quiesce)
	assert.Equal(t, 2500*time.Millisecond, m.Quiesce.Duration, "the duration is end - start")
	assert.Equal(t, []string{"db", "dmgr"}, m.Quiesce.Components)

	pts, err := s.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	require.NotNil(t, pts[0].Quiesce, "listed with the point")
	assert.True(t, pts[0].Quiesce.End.Equal(t0.Add(2500*time.Millisecond)))

	data, err := os.ReadFile(filepath.Join(s.PointDir("bpm", "p1"), ManifestFile))
	require.NoError(t, err)
	assert.Contains(t, string(data), `"quiesce":{"start":`)
	bad := strings.Replace(string(data), `"duration":2500000000`, `"duration":1`, 1)
	require.NotEqual(t, string(data), bad)
	_, err = ParseManifest([]byte(bad))
	assert.ErrorIs(t, err, ErrCorrupt)
	assert.ErrorContains(t, err, "quiesce: duration")
}
