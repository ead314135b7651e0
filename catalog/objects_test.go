package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/blob/s3test"
	"github.com/drover-dr/drover/catalog/seal"
)

var s3 s3test.Package

func TestMain(m *testing.M) { os.Exit(s3.Main(m.Run)) }

func testRing(t *testing.T, id string) *seal.Ring {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k, err := seal.NewKey(id, b)
	require.NoError(t, err)
	r, err := seal.NewRing(k)
	require.NoError(t, err)
	return r
}

var seq atomic.Int64

// buckets are the backends every object-layout test runs on: a folder,
// and a bucket of the package's SeaweedFS when it is installed.
func buckets(t *testing.T) map[string]blob.Bucket {
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	out := map[string]blob.Bucket{"folder": d}
	if s3test.Binary() != "" || os.Getenv("CI") != "" {
		s3server := s3.Get(t)
		b, err := blob.NewS3(blob.S3Config{Endpoint: s3server.Endpoint, Bucket: fmt.Sprintf("catalog-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)),
			Prefix: "x", AccessKey: s3server.AccessKey, SecretKey: s3server.SecretKey})
		require.NoError(t, err)
		require.NoError(t, b.MakeBucket(context.Background(), false))
		out["s3"] = b
	}
	return out
}

// shipStaged stages a group locally (as Capture does) and ships it.
func shipStaged(t *testing.T, s *Store, plan, id, group, data string, at time.Time) {
	t.Helper()
	stage(t, s, plan, id, group, data, ConsistencyQuiesced, at)
	_, _, err := s.ShipGroup(context.Background(), plan, id, group, nil)
	require.NoError(t, err)
}

func TestObjectLayoutCommitListDeleteCollect(t *testing.T) {
	for name, b := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			s := OpenObjects(b, testRing(t, "k1"), t.TempDir(), 0)
			shipStaged(t, s, "bpm", "p1", "db", "aaaa", t0)
			pts, err := s.List("bpm")
			require.NoError(t, err)
			assert.Empty(t, pts, "a shipped group is no point")
			m, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0.Add(time.Minute), Groups: []string{"db"}})
			require.NoError(t, err)
			again, err := s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Groups: []string{"db"}})
			require.NoError(t, err, "committing again is harmless")
			assert.Equal(t, m.ID, again.ID)

			// Lifecycle and validity live in the store too, sealed.
			_, err = s.Transition("bpm", StateEnabled, "secondary", "test", t0)
			require.NoError(t, err)
			l, err := s.ReadLifecycle("bpm")
			require.NoError(t, err)
			assert.Equal(t, StateEnabled, l.State)
			ctx := context.Background()
			raw, err := blob.ReadAll(ctx, b, "bpm/lifecycle.json")
			require.NoError(t, err)
			assert.True(t, seal.IsSealed(raw))

			// A point whose upload died before its manifest, and a shipped
			// group never committed: garbage once older than the grace.
			shipStaged(t, s, "bpm", "p2", "db", "bbbb", t0)
			require.NoError(t, b.Put(ctx, "bpm/points/p3/db/m.tar.zst", strings.NewReader("half"), 4))
			removed, err := s.CollectGarbage("bpm", nil, time.Hour)
			require.NoError(t, err)
			assert.Empty(t, removed, "young leftovers may belong to a running backup")
			removed, err = s.CollectGarbage("bpm", []string{"p2"}, 0)
			require.NoError(t, err)
			assert.Len(t, removed, 1, "p3's data goes, p2 is active, p1 is a point: %v", removed)
			_, err = s.StagedGroup("bpm", "p2", "db")
			require.NoError(t, err)

			pts, err = s.List("")
			require.NoError(t, err)
			require.Len(t, pts, 1)
			assert.Equal(t, "p1", pts[0].ID)
			require.NoError(t, s.Delete("bpm", "p1"))
			require.NoError(t, s.Delete("bpm", "p1"), "deleting again is harmless")
			left, err := b.List(ctx, "bpm/points/p1/")
			require.NoError(t, err)
			assert.Empty(t, left)
			require.NoError(t, s.CheckWritable("bpm"))
		})
	}
}

func TestObjectLayoutRefusesMixedEncryption(t *testing.T) {
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	sealed := OpenObjects(d, testRing(t, "k1"), t.TempDir(), 0)
	shipStaged(t, sealed, "bpm", "p1", "db", "aaaa", t0)
	_, err = sealed.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0, Groups: []string{"db"}})
	require.NoError(t, err)
	clear := OpenObjects(d, nil, t.TempDir(), 0)
	pts, err := clear.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Contains(t, pts[0].Problem, "it is encrypted; list the keys in storage.store.encryption")
	assert.False(t, pts[0].Usable())
}

func TestObjectLayoutCommitNeedsEveryArtifactShipped(t *testing.T) {
	d, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	s := OpenObjects(d, nil, t.TempDir(), 0)
	shipStaged(t, s, "bpm", "p1", "db", "aaaa", t0)
	require.NoError(t, d.Delete(context.Background(), "bpm/points/p1/db/m.tar.zst"))
	_, err = s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: t0, Ended: t0, Groups: []string{"db"}})
	require.ErrorContains(t, err, "artifact db/m.tar.zst")
	ok, err := s.Exists("bpm", "p1")
	require.NoError(t, err)
	assert.False(t, ok, "no manifest: no point")
}

func TestSettingsDecodeObjectStores(t *testing.T) {
	_, err := DecodeSettings(map[string]any{"path": "/x", "s3": map[string]any{"endpoint": "h:1", "bucket": "b", "accessKey": "env:A", "secretKey": "env:B"}})
	assert.ErrorContains(t, err, "path and s3 are both set")
	_, err = DecodeSettings(map[string]any{"s3": map[string]any{"endpoint": "h:1", "bucket": "b", "accessKey": "AKIA123", "secretKey": "env:B"}})
	assert.ErrorContains(t, err, "storage.store.s3.accessKey")
	assert.NotContains(t, err.Error(), "AKIA123")
	_, err = DecodeSettings(map[string]any{"s3": map[string]any{"endpoint": "h:1", "bucket": "b", "accessKey": "env:A", "secretKey": "env:B", "tls": true, "retain": 3}})
	assert.ErrorContains(t, err, "retain")
	_, err = DecodeSettings(map[string]any{"path": "/x", "encryption": map[string]any{"keys": []any{map[string]any{"id": "k1", "key": "0011"}}}})
	assert.ErrorContains(t, err, "storage.store.encryption.keys[0].key")
	s, err := DecodeSettings(map[string]any{"s3": map[string]any{"endpoint": "h:1", "bucket": "b", "accessKey": "env:A", "secretKey": "env:B", "lockDays": 30}})
	require.NoError(t, err)
	assert.Equal(t, 30, s.S3.LockDays)
	t.Setenv("DROVER_BAD_KEY", "short")
	_, _, err = OpenFromSettings(map[string]any{"path": t.TempDir(), "encryption": map[string]any{"keys": []any{map[string]any{"id": "k1", "key": "env:DROVER_BAD_KEY"}}}})
	assert.ErrorContains(t, err, "keys[0]: key k1: want 64 hex digits")
	assert.NotContains(t, err.Error(), "short")
}

// TestObjectLockKeepsAPointFromEarlyDeletion: with lockDays, every object of
// a committed point carries an object-lock retention date (SeaweedFS
// supports it on a bucket made with object lock), and retention's delete is
// refused before that date, leaving the point whole and listed.
func TestObjectLockKeepsAPointFromEarlyDeletion(t *testing.T) {
	srv := s3.Get(t)
	b, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Bucket: fmt.Sprintf("locked-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)),
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.MakeBucket(ctx, true))
	require.True(t, b.LockSupported(ctx))
	s := OpenObjects(b, nil, t.TempDir(), 24*time.Hour)
	now := time.Now().UTC()
	shipStaged(t, s, "bpm", "p1", "db", "aaaa", now)
	_, err = s.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: now, Ended: now, Groups: []string{"db"}})
	require.NoError(t, err)
	for _, key := range []string{"bpm/points/p1/manifest.json", "bpm/points/p1/db/m.tar.zst"} {
		info, err := b.Stat(ctx, key)
		require.NoError(t, err)
		assert.WithinDuration(t, now.Add(24*time.Hour), info.RetainUntil, time.Minute, key)
	}
	err = s.Delete("bpm", "p1")
	require.ErrorIs(t, err, blob.ErrLocked)
	pts, err := s.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1, "the locked point is still there")
	require.NoError(t, s.SetValidity("bpm", "p1", Validity{State: Valid}), "validity stays writable")

	// A bucket without object lock: lockDays is refused at commit.
	plain, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Bucket: fmt.Sprintf("unlocked-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)),
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	require.NoError(t, err)
	require.NoError(t, plain.MakeBucket(ctx, false))
	s2 := OpenObjects(plain, nil, t.TempDir(), 24*time.Hour)
	shipStaged(t, s2, "bpm", "p1", "db", "aaaa", now)
	_, err = s2.Commit("bpm", "p1", CommitInfo{Mode: ModeFull, Started: now, Ended: now, Groups: []string{"db"}})
	t.Logf("lockDays on a bucket without object lock: %v", err)
	require.ErrorContains(t, err, "lockDays")
	ok, err := s2.Exists("bpm", "p1")
	require.NoError(t, err)
	assert.False(t, ok, "no manifest is written for a point that could not be locked")
}

type failAfter struct {
	r io.Reader
}

func (f *failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("worker killed")
	}
	return n, err
}

// TestGarbageAbortsUnfinishedUploads: an upload a killed worker left (and
// nobody resumed) holds storage; garbage collection aborts it unless its
// point is active or it is younger than the grace.
func TestGarbageAbortsUnfinishedUploads(t *testing.T) {
	srv := s3.Get(t)
	b, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Bucket: fmt.Sprintf("gc-%d-%d", time.Now().UnixNano()%1e9, seq.Add(1)),
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 5 << 20})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.MakeBucket(ctx, false))
	half := func() (io.ReadCloser, error) {
		return io.NopCloser(&failAfter{bytes.NewReader(make([]byte, 6<<20))}), nil
	}
	for _, id := range []string{"p1", "p2"} {
		_, err = b.PutResumable(ctx, "bpm/points/"+id+"/db/m.tar.zst", half, 12<<20, nil)
		require.ErrorContains(t, err, "worker killed")
	}
	pending, err := b.PendingUploads(ctx, "bpm/")
	require.NoError(t, err)
	require.Len(t, pending, 2)
	s := OpenObjects(b, nil, t.TempDir(), 0)
	removed, err := s.CollectGarbage("bpm", nil, time.Hour)
	require.NoError(t, err)
	assert.Empty(t, removed)
	removed, err = s.CollectGarbage("bpm", []string{"p2"}, 0)
	require.NoError(t, err)
	assert.Len(t, removed, 1, "%v", removed)
	pending, err = b.PendingUploads(ctx, "bpm/")
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, "bpm/points/p2/db/m.tar.zst", pending[0].Key, "the active point's upload is kept for its resume")
}
