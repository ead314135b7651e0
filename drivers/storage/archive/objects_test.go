package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/blob/s3test"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

var s3 s3test.Package

func TestMain(m *testing.M) { os.Exit(s3.Main(m.Run)) }

var bucketSeq atomic.Int64

func newKey(t *testing.T, env string) {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	t.Setenv(env, hex.EncodeToString(b))
}

// s3Settings makes a fresh bucket on the package's server and returns the
// storage.store settings that reach it (keys by env: references).
func s3Settings(t *testing.T, extra map[string]any) (map[string]any, *blob.S3) {
	t.Helper()
	s3server := s3.Get(t)
	t.Setenv("DROVER_TEST_S3_ACCESS", s3server.AccessKey)
	t.Setenv("DROVER_TEST_S3_SECRET", s3server.SecretKey)
	name := fmt.Sprintf("drover-archive-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	b, err := blob.NewS3(blob.S3Config{Endpoint: s3server.Endpoint, Bucket: name, AccessKey: s3server.AccessKey, SecretKey: s3server.SecretKey})
	require.NoError(t, err)
	require.NoError(t, b.MakeBucket(context.Background(), false))
	s3 := map[string]any{"endpoint": s3server.Endpoint, "bucket": name, "prefix": "dr/stores",
		"accessKey": "env:DROVER_TEST_S3_ACCESS", "secretKey": "env:DROVER_TEST_S3_SECRET", "partSizeMiB": 5}
	settings := map[string]any{"s3": s3, "staging": filepath.Join(t.TempDir(), "staging")}
	for k, v := range extra {
		settings[k] = v
	}
	return settings, b
}

func encryption(ids ...string) map[string]any {
	var keys []any
	for _, id := range ids {
		keys = append(keys, map[string]any{"id": id, "key": "env:DROVER_TEST_KEY_" + id})
	}
	return map[string]any{"keys": keys}
}

// filesOnly drops folder mtimes, which the deletions of a cumulative
// point change and no point records (as in the folder store's test).
func filesOnly(m map[string]string) map[string]string {
	for k, v := range m {
		if strings.HasPrefix(v, "d") {
			m[k] = v[:strings.IndexByte(v, ' ')]
		}
	}
	return m
}

// useStore points the fixture at the store the settings open.
func (f *fixture) useStore(settings map[string]any) {
	f.t.Helper()
	st, _, err := catalog.OpenFromSettings(settings)
	require.NoError(f.t, err)
	f.store, f.settings = st, settings
}

// fullCumulativeRestore is the backup cycle against an object store: a full
// point and a cumulative one through Capture/Ship/Verify/Commit, listed by
// a fresh store opened from the settings alone (as `drover points list`
// does, with no Temporal), and restored.
func fullCumulativeRestore(t *testing.T, f *fixture) (full, cum string) {
	full, _ = f.backup(catalog.ModeFull, "")
	later := time.Now().Add(time.Hour)
	f.write("db2/log/s0000001.log", "LOG RECORD 1\nLOG RECORD 2\n")
	require.NoError(t, os.Chtimes(filepath.Join(f.root, "db2/log/s0000001.log"), later, later))
	f.write("db2/log/s0000002.log", "NEW LOG")
	require.NoError(t, os.Remove(filepath.Join(f.root, "dmgr/tranlog/tran1")))
	cum, res := f.backup(catalog.ModeCumulative, full)
	assert.Less(t, res.Bytes, int64(100), "a cumulative point holds only the changes")

	fresh, _, err := catalog.OpenFromSettings(f.settings)
	require.NoError(t, err)
	pts, err := fresh.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, []string{full, cum}, []string{pts[0].ID, pts[1].ID})
	for _, p := range pts {
		assert.Empty(t, p.Problem)
		assert.Equal(t, catalog.Unverified, p.Validity.State)
	}
	require.NoError(t, fresh.SetValidity("bpm", full, catalog.Validity{State: catalog.Valid, Run: "test"}))
	v, err := fresh.Validity("bpm", full)
	require.NoError(t, err)
	assert.Equal(t, catalog.Valid, v.State)

	target := filepath.Join(t.TempDir(), "secondary")
	r, err := f.restore(cum, target, false)
	require.NoError(t, err)
	assert.Positive(t, r.Files)
	assert.Equal(t, filesOnly(tree(t, f.root)), filesOnly(tree(t, target)), "the cumulative point restores the latest tree")
	ents, _ := os.ReadDir(target)
	assert.Len(t, ents, 2, "no fetched archives or temporary folders left")
	staged, _ := os.ReadDir(filepath.Join(f.settings["staging"].(string), "bpm"))
	assert.Empty(t, staged, "local staging is emptied once points are committed")
	return full, cum
}

func TestS3FullCumulativeRestore(t *testing.T) {
	settings, b := s3Settings(t, nil)
	f := newFixture(t)
	f.useStore(settings)
	full, _ := fullCumulativeRestore(t, f)

	// The layout in the bucket is the folder's, under the prefix.
	s3server := s3.Get(t)
	raw, err := blob.NewS3(blob.S3Config{Endpoint: s3server.Endpoint, Bucket: settings["s3"].(map[string]any)["bucket"].(string), AccessKey: s3server.AccessKey, SecretKey: s3server.SecretKey})
	require.NoError(t, err)
	objs, err := raw.List(context.Background(), "dr/stores/bpm/points/"+full+"/")
	require.NoError(t, err)
	var keys []string
	for _, o := range objs {
		keys = append(keys, strings.TrimPrefix(o.Key, "dr/stores/bpm/points/"+full+"/"))
	}
	assert.ElementsMatch(t, []string{"cell/db2.tar.zst", "cell/dmgr.tar.zst", "manifest.json", "validity.json"}, keys)
	_ = b

	// Retention deletes through the API: the point is gone, data and all.
	require.NoError(t, f.store.Delete("bpm", full))
	objs, err = raw.List(context.Background(), "dr/stores/bpm/points/"+full+"/")
	require.NoError(t, err)
	assert.Empty(t, objs)
}

func TestS3EncryptedWithRotatedKeys(t *testing.T) {
	newKey(t, "DROVER_TEST_KEY_k1")
	settings, b := s3Settings(t, map[string]any{"encryption": encryption("k1")})
	f := newFixture(t)
	f.useStore(settings)
	full, cum := fullCumulativeRestore(t, f)

	// Nothing leaves the worker in clear: every object is sealed.
	objs, err := b.List(context.Background(), "")
	require.NoError(t, err)
	require.NotEmpty(t, objs)
	for _, o := range objs {
		data, err := blob.ReadAll(context.Background(), b, o.Key)
		require.NoError(t, err)
		assert.True(t, seal.IsSealed(data), "%s is sealed", o.Key)
		assert.NotContains(t, string(data), "bpm", "%s shows no plan name", o.Key)
	}

	// Rotate: k2 seals from now on, k1 stays listed so old points restore.
	newKey(t, "DROVER_TEST_KEY_k2")
	settings["encryption"] = encryption("k2", "k1")
	f.useStore(settings)
	target := filepath.Join(t.TempDir(), "rotated")
	_, err = f.restore(cum, target, false)
	require.NoError(t, err, "a point sealed under k1 restores with k1 listed after k2")
	assert.Equal(t, filesOnly(tree(t, f.root)), filesOnly(tree(t, target)))

	// Dropping k1: the points are listed with the problem named.
	settings["encryption"] = encryption("k2")
	f.useStore(settings)
	pts, err := f.store.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Contains(t, pts[0].Problem, `key id "k1"`)
	_, err = f.restore(full, filepath.Join(t.TempDir(), "nokey"), false)
	require.ErrorIs(t, err, seal.ErrUnknownKey)

	// Another key under the id k1: a wrong key, said so.
	newKey(t, "DROVER_TEST_KEY_k1")
	settings["encryption"] = encryption("k1")
	f.useStore(settings)
	_, err = f.restore(full, filepath.Join(t.TempDir(), "wrongkey"), false)
	require.ErrorIs(t, err, seal.ErrWrongKey)
	assert.Contains(t, err.Error(), "is not the key that sealed this data")
}

func TestEncryptedFolderStore(t *testing.T) {
	newKey(t, "DROVER_TEST_KEY_k1")
	dir := t.TempDir()
	f := newFixture(t)
	f.useStore(map[string]any{"path": dir, "encryption": encryption("k1"), "staging": filepath.Join(t.TempDir(), "staging")})
	require.True(t, f.store.ObjectLayout())
	fullCumulativeRestore(t, f)
	// The folder holds sealed files only.
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.True(t, seal.IsSealed(data), "%s is sealed", p)
		return nil
	}))
	// A flipped bit in a sealed archive is a verify finding naming it.
	m, err := f.store.Load("bpm", "p01")
	require.NoError(t, err)
	art := filepath.Join(dir, "bpm", "points", "p01", m.Groups[0].Artifacts[0].Name)
	data, err := os.ReadFile(art)
	require.NoError(t, err)
	data[len(data)/2] ^= 1
	require.NoError(t, os.WriteFile(art, data, 0o640))
	v, err := f.d.Verify(context.Background(), f.req("p01", catalog.ModeFull, ""), nil)
	require.NoError(t, err)
	assert.False(t, v.OK)
	assert.Equal(t, "bpm/points/p01/"+m.Groups[0].Artifacts[0].Name, v.BadFile)
	assert.Contains(t, v.Reason, "fails authentication")
}

// TestS3ShipKilledMidwayResumes kills a real worker process (SIGKILL) in
// the middle of uploading an archive of several parts, checks that nothing
// is complete, and ships again: the parts already in the bucket are kept.
func TestS3ShipKilledMidwayResumes(t *testing.T) {
	newKey(t, "DROVER_TEST_KEY_k1")
	settings, _ := s3Settings(t, map[string]any{"encryption": encryption("k1")})
	f := newFixture(t)
	big := make([]byte, 14<<20) // incompressible: three 5 MiB parts
	_, _ = rand.Read(big)
	f.write("dmgr/tranlog/big.bin", string(big))
	f.useStore(settings)
	ctx := context.Background()
	req := f.req("p01", catalog.ModeFull, "")
	_, err := f.d.Capture(ctx, req, nil)
	require.NoError(t, err)

	js, err := json.Marshal(settings)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperShipProcess$")
	cmd.Env = append(os.Environ(), "DROVER_HELPER_SHIP=1", "DROVER_HELPER_ROOT="+f.root, "DROVER_HELPER_SETTINGS="+string(js))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "shipping\n", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	ok, err := f.store.Exists("bpm", "p01")
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = f.store.Commit("bpm", "p01", catalog.CommitInfo{Mode: catalog.ModeFull, Started: time.Now(), Ended: time.Now(), Groups: []string{"cell"}})
	require.ErrorIs(t, err, catalog.ErrNotFound, "a group not shipped cannot be committed")
	pts, err := f.store.List("bpm")
	require.NoError(t, err)
	assert.Empty(t, pts, "nothing half-written is listed as a point")

	res, err := f.d.Ship(ctx, req, nil)
	require.NoError(t, err)
	t.Log(res.Evidence.Action)
	assert.Regexp(t, `\(\d+ parts, [1-9]\d* kept from an interrupted upload\)`, res.Evidence.Action)
	v, err := f.d.Verify(ctx, req, nil)
	require.NoError(t, err)
	require.True(t, v.OK, v.Reason)
	_, err = f.store.Commit("bpm", "p01", catalog.CommitInfo{Mode: catalog.ModeFull, Started: time.Now(), Ended: time.Now(), Groups: []string{"cell"}})
	require.NoError(t, err)
	target := filepath.Join(t.TempDir(), "secondary")
	_, err = f.restore("p01", target, false)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(target, "dmgr/tranlog/big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got))
}

// TestHelperShipProcess is the worker killed by TestS3ShipKilledMidwayResumes.
func TestHelperShipProcess(t *testing.T) {
	if os.Getenv("DROVER_HELPER_SHIP") != "1" {
		t.Skip("helper process for TestS3ShipKilledMidwayResumes")
	}
	var settings map[string]any
	require.NoError(t, json.Unmarshal([]byte(os.Getenv("DROVER_HELPER_SETTINGS")), &settings))
	f := &fixture{t: t, root: os.Getenv("DROVER_HELPER_ROOT"), d: New(nil)}
	f.useStore(settings)
	said := false
	_, _ = f.d.Ship(context.Background(), f.req("p01", catalog.ModeFull, ""), func(done int64) {
		if !said && done > 6<<20 {
			said = true
			os.Stdout.WriteString("shipping\n")
			time.Sleep(time.Minute) // hold still until killed
		}
	})
	os.Exit(3) // never reached when killed
}

func TestS3BucketThatVanishes(t *testing.T) {
	settings, b := s3Settings(t, nil)
	f := newFixture(t)
	f.useStore(settings)
	f.backup(catalog.ModeFull, "")
	ctx := context.Background()
	req := f.req("p02", catalog.ModeFull, "")
	_, err := f.d.Capture(ctx, req, nil)
	require.NoError(t, err)
	require.NoError(t, b.RemoveBucket(ctx))

	_, err = f.d.Ship(ctx, req, nil)
	require.ErrorIs(t, err, blob.ErrNoBucket)
	assert.True(t, storage.Permanent(err), "an operator must act: no retry brings a bucket back")
	_, err = f.store.List("bpm")
	require.ErrorIs(t, err, blob.ErrNoBucket, "listing fails instead of showing an empty store")
	_, _, err = catalog.OpenFromSettings(settings)
	require.ErrorIs(t, err, blob.ErrNoBucket)
	assert.Contains(t, err.Error(), settings["s3"].(map[string]any)["bucket"].(string))
}

func TestS3WrongCredentials(t *testing.T) {
	settings, _ := s3Settings(t, nil)
	t.Setenv("DROVER_TEST_S3_SECRET", "not-the-secret-key")
	f := newFixture(t)
	f.settings = settings
	_, err := f.d.Capture(context.Background(), f.req("p01", catalog.ModeFull, ""), nil)
	require.ErrorIs(t, err, blob.ErrAccessDenied)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "s3.secretKey")
	assert.NotContains(t, err.Error(), "not-the-secret-key")
	staged, _ := os.ReadDir(settings["staging"].(string))
	assert.Empty(t, staged, "nothing captured with a store it cannot reach")
}

// Keys that go wrong between the upload and the commit (rotated at the
// provider): the commit fails with an error naming the setting, not the
// key, and the uploaded point is not listed: nothing half-written is marked
// complete. With the right keys back, the same commit completes it.
func TestS3WrongCredentialsAtCommitLeaveNoPoint(t *testing.T) {
	settings, _ := s3Settings(t, nil)
	f := newFixture(t)
	f.useStore(settings)
	ctx := context.Background()
	req := f.req("p01", catalog.ModeFull, "")
	_, err := f.d.Capture(ctx, req, nil)
	require.NoError(t, err)
	_, err = f.d.Ship(ctx, req, nil)
	require.NoError(t, err)
	info := catalog.CommitInfo{Mode: catalog.ModeFull, Started: time.Now(), Ended: time.Now(), Groups: []string{"cell"}}

	good := os.Getenv("DROVER_TEST_S3_SECRET")
	t.Setenv("DROVER_TEST_S3_SECRET", "not-the-secret-key")
	wrong, _, err := catalog.OpenFromSettings(settings)
	if err == nil {
		_, err = wrong.Commit("bpm", "p01", info)
	}
	require.ErrorIs(t, err, blob.ErrAccessDenied)
	assert.Contains(t, err.Error(), "s3.secretKey")
	assert.NotContains(t, err.Error(), "not-the-secret-key")

	t.Setenv("DROVER_TEST_S3_SECRET", good)
	right, _, err := catalog.OpenFromSettings(settings)
	require.NoError(t, err)
	pts, err := right.List("bpm")
	require.NoError(t, err)
	assert.Empty(t, pts, "an uploaded point without its manifest is no point")
	_, err = right.Commit("bpm", "p01", info)
	require.NoError(t, err)
	pts, err = right.List("bpm")
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Empty(t, pts[0].Problem)
}
