package blob

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

	"github.com/drover-dr/drover/catalog/blob/s3test"
	"github.com/drover-dr/drover/drivers"
)

var s3 s3test.Package

func TestMain(m *testing.M) { os.Exit(s3.Main(m.Run)) }

var bucketSeq atomic.Int64

// newBucket makes a fresh bucket on the package's server.
func newBucket(t *testing.T, lock bool, partSize int64) *S3 {
	t.Helper()
	server := s3.Get(t)
	name := fmt.Sprintf("drover-%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	b, err := NewS3(S3Config{Endpoint: server.Endpoint, Bucket: name, Prefix: "store/a", AccessKey: server.AccessKey, SecretKey: server.SecretKey, PartSize: partSize})
	require.NoError(t, err)
	require.NoError(t, b.MakeBucket(context.Background(), lock))
	return b
}

func contract(t *testing.T, b Bucket) {
	ctx := context.Background()
	require.NoError(t, b.Check(ctx))
	_, err := b.Stat(ctx, "p/points/x/manifest.json")
	assert.ErrorIs(t, err, ErrNotExist)
	_, err = b.Get(ctx, "p/points/x/manifest.json")
	assert.ErrorIs(t, err, ErrNotExist)
	require.NoError(t, b.Put(ctx, "p/points/x/g/m.tar.zst", strings.NewReader("archive"), 7))
	require.NoError(t, b.Put(ctx, "p/points/x/manifest.json", strings.NewReader("{}"), 2))
	require.NoError(t, b.Put(ctx, "p/points/xy/manifest.json", strings.NewReader("{1}"), 3))
	require.NoError(t, b.Put(ctx, "q/lifecycle.json", strings.NewReader("{}"), 2))
	info, err := b.Stat(ctx, "p/points/x/g/m.tar.zst")
	require.NoError(t, err)
	assert.Equal(t, int64(7), info.Size)
	got, err := ReadAll(ctx, b, "p/points/x/g/m.tar.zst")
	require.NoError(t, err)
	assert.Equal(t, "archive", string(got))
	list, err := b.List(ctx, "p/points/x/")
	require.NoError(t, err)
	var keys []string
	for _, o := range list {
		keys = append(keys, o.Key)
	}
	assert.Equal(t, []string{"p/points/x/g/m.tar.zst", "p/points/x/manifest.json"}, keys)
	all, err := b.List(ctx, "")
	require.NoError(t, err)
	assert.Len(t, all, 4)
	require.NoError(t, b.Delete(ctx, "p/points/x/g/m.tar.zst"))
	require.NoError(t, b.Delete(ctx, "p/points/x/g/m.tar.zst"), "deleting a missing object is no error")
	_, err = b.Stat(ctx, "p/points/x/g/m.tar.zst")
	assert.ErrorIs(t, err, ErrNotExist)
	// Replacing an object is atomic for readers and keeps one copy.
	require.NoError(t, b.Put(ctx, "p/points/x/manifest.json", strings.NewReader("{new}"), 5))
	got, err = ReadAll(ctx, b, "p/points/x/manifest.json")
	require.NoError(t, err)
	assert.Equal(t, "{new}", string(got))
}

func TestDirContract(t *testing.T) {
	d, err := NewDir(t.TempDir())
	require.NoError(t, err)
	contract(t, d)
	_, err = NewDir(t.TempDir() + "/not-mounted")
	assert.ErrorIs(t, err, ErrNotExist, "a missing store folder is never created")
}

func TestS3Contract(t *testing.T) {
	contract(t, newBucket(t, false, 0))
}

// failingSource gives the first n bytes of data and then fails, as a
// worker killed in the middle of an upload stops sending.
func failingSource(data []byte, n int) Source {
	return func() (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(data[:n]), errReader{})), nil
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("worker killed") }

func source(data []byte) Source {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func TestS3UploadResumesFromTheKeptParts(t *testing.T) {
	const part = 5 << 20
	b := newBucket(t, false, part)
	ctx := context.Background()
	data := make([]byte, 3*part+123)
	_, _ = rand.Read(data)

	// The first attempt dies after two whole parts and part of the third.
	_, err := b.PutResumable(ctx, "p/points/x/g/big.tar.zst", failingSource(data, 2*part+1000), int64(len(data)), nil)
	require.ErrorContains(t, err, "worker killed")
	_, err = b.Stat(ctx, "p/points/x/g/big.tar.zst")
	require.ErrorIs(t, err, ErrNotExist, "an unfinished upload is no object")

	var reported int64
	up, err := b.PutResumable(ctx, "p/points/x/g/big.tar.zst", source(data), int64(len(data)), func(n int64) { reported = n })
	require.NoError(t, err)
	assert.Equal(t, Upload{Parts: 4, Reused: 2}, up, "the two parts sent before the kill are kept, the rest sent")
	assert.Equal(t, int64(len(data)), reported)
	got, err := ReadAll(ctx, b, "p/points/x/g/big.tar.zst")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the resumed object is the whole data")

	// A part whose bytes changed since (a recapture) is sent again.
	_, err = b.PutResumable(ctx, "p/points/y/g/big.tar.zst", failingSource(data, 2*part), int64(len(data)), nil)
	require.Error(t, err)
	changed := append([]byte(nil), data...)
	changed[part+10] ^= 0xff
	up, err = b.PutResumable(ctx, "p/points/y/g/big.tar.zst", source(changed), int64(len(changed)), nil)
	require.NoError(t, err)
	assert.Equal(t, Upload{Parts: 4, Reused: 1}, up, "only the part that still matches is kept")
	got, err = ReadAll(ctx, b, "p/points/y/g/big.tar.zst")
	require.NoError(t, err)
	require.True(t, bytes.Equal(changed, got))
}

func TestS3WrongCredentialsAreAClearPermanentError(t *testing.T) {
	good := newBucket(t, false, 0)
	server := s3.Get(t)
	b, err := NewS3(S3Config{Endpoint: server.Endpoint, Bucket: good.cfg.Bucket, AccessKey: server.AccessKey, SecretKey: "not-the-secret"})
	require.NoError(t, err)
	err = b.Check(context.Background())
	require.ErrorIs(t, err, ErrAccessDenied)
	assert.True(t, drivers.Permanent(err), "a retry cannot fix credentials")
	assert.NotContains(t, err.Error(), "not-the-secret")
	assert.NotContains(t, err.Error(), server.SecretKey)
	err = b.Put(context.Background(), "k", strings.NewReader("x"), 1)
	require.ErrorIs(t, err, ErrAccessDenied)
}

func TestS3BucketThatVanishes(t *testing.T) {
	b := newBucket(t, false, 0)
	ctx := context.Background()
	require.NoError(t, b.Put(ctx, "k", strings.NewReader("x"), 1))
	require.NoError(t, b.RemoveBucket(ctx))
	err := b.Check(ctx)
	require.ErrorIs(t, err, ErrNoBucket)
	assert.True(t, drivers.Permanent(err))
	err = b.Put(ctx, "k2", strings.NewReader("x"), 1)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNoBucket, "got %v", err)
}

// TestS3ObjectLock records what the server does with object lock: the
// bucket is made with it, a retention date is set, and deleting before
// that date must be refused.
func TestS3ObjectLock(t *testing.T) {
	b := newBucket(t, true, 0)
	ctx := context.Background()
	t.Logf("object lock configuration on a bucket made with it: supported=%v", b.LockSupported(ctx))
	require.NoError(t, b.Put(ctx, "p/points/x/manifest.json", strings.NewReader("{}"), 2))
	ok, err := b.Lock(ctx, "p/points/x/manifest.json", time.Now().Add(time.Hour))
	require.NoError(t, err)
	if !ok {
		t.Skip("this server does not support object lock retention: lockDays cannot be used with it")
	}
	info, err := b.Stat(ctx, "p/points/x/manifest.json")
	require.NoError(t, err)
	t.Logf("retain until %s", info.RetainUntil)
	err = b.Delete(ctx, "p/points/x/manifest.json")
	require.ErrorIs(t, err, ErrLocked)
	_, err = b.Stat(ctx, "p/points/x/manifest.json")
	require.NoError(t, err, "a locked object is still there")
}
