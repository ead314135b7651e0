package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/drover-dr/drover/drivers"
)

// Errors of an object store that a retry cannot fix: an operator must act.
var (
	// ErrNoBucket: the bucket does not exist (deleted, or misnamed).
	ErrNoBucket = errors.New("the bucket does not exist")
	// ErrAccessDenied: the server refused the credentials or the request.
	ErrAccessDenied = errors.New("the object store refused the credentials")
)

// S3Config says how to reach a bucket. Keys are values, resolved from
// secret references by the caller; they never appear in errors.
type S3Config struct {
	// Endpoint is host:port.
	Endpoint  string
	Bucket    string
	Prefix    string
	Region    string
	AccessKey string
	SecretKey string
	TLS       bool
	// CAFile is a PEM bundle trusted in addition to the system's.
	CAFile string
	// PartSize is the size of each part of a multipart upload (default
	// 16 MiB, at least 5 MiB as S3 demands).
	PartSize int64
	// LockMode is GOVERNANCE or COMPLIANCE, for Lock.
	LockMode string
}

// DefaultPartSize is the part size of multipart uploads.
const DefaultPartSize = 16 << 20

// S3 is a Bucket in an S3-compatible object store.
type S3 struct {
	cfg    S3Config
	client *minio.Client
	core   minio.Core
}

// NewS3 makes a client; it does not contact the server (Check does).
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" {
		return nil, drivers.BadSettingsf("s3.endpoint: required (host:port)")
	}
	if cfg.Bucket == "" {
		return nil, drivers.BadSettingsf("s3.bucket: required")
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < 5<<20 {
		return nil, drivers.BadSettingsf("s3.partSize: %d bytes is below the 5 MiB S3 allows", cfg.PartSize)
	}
	if cfg.LockMode == "" {
		cfg.LockMode = string(minio.Governance)
	}
	if cfg.LockMode != string(minio.Governance) && cfg.LockMode != string(minio.Compliance) {
		return nil, drivers.BadSettingsf("s3.lockMode: %q (want GOVERNANCE or COMPLIANCE)", cfg.LockMode)
	}
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.TLS,
		Region: cfg.Region,
	}
	if cfg.CAFile != "" {
		if !cfg.TLS {
			return nil, drivers.BadSettingsf("s3.caFile: set, but s3.tls is off")
		}
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, drivers.BadSettingsf("s3.caFile: %v", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, drivers.BadSettingsf("s3.caFile: %s holds no PEM certificate", cfg.CAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts.Transport = tr
	}
	c, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, drivers.BadSettingsf("s3.endpoint: %v", err)
	}
	return &S3{cfg: cfg, client: c, core: minio.Core{Client: c}}, nil
}

func (s *S3) String() string {
	scheme := "http"
	if s.cfg.TLS {
		scheme = "https"
	}
	loc := fmt.Sprintf("s3://%s/%s (%s://%s)", s.cfg.Bucket, s.cfg.Prefix, scheme, s.cfg.Endpoint)
	return loc
}

func (s *S3) key(k string) string {
	if s.cfg.Prefix == "" {
		return k
	}
	return s.cfg.Prefix + "/" + k
}

func (s *S3) unkey(k string) string {
	if s.cfg.Prefix == "" {
		return k
	}
	return strings.TrimPrefix(k, s.cfg.Prefix+"/")
}

// wrap turns the server's error codes into errors that say what happened
// and carry the marks callers branch on.
func (s *S3) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	where := fmt.Sprintf("%s %s in %s", op, key, s)
	switch resp.Code {
	case minio.NoSuchKey, "NoSuchUpload":
		return fmt.Errorf("%s: %w", where, ErrNotExist)
	case minio.NoSuchBucket:
		return drivers.BadSettings(fmt.Errorf("%s: %w: %s", where, ErrNoBucket, s.cfg.Bucket))
	case minio.AccessDenied, "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return drivers.BadSettings(fmt.Errorf("%s: %w (%s: check s3.accessKey and s3.secretKey)", where, ErrAccessDenied, resp.Code))
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code == "" {
		return fmt.Errorf("%s: %w", where, ErrNotExist)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// Check proves the bucket exists and the credentials work.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return s.wrap("check bucket", s.cfg.Bucket, err)
	}
	if !ok {
		return drivers.BadSettings(fmt.Errorf("store %s: %w: %s", s, ErrNoBucket, s.cfg.Bucket))
	}
	return nil
}

// Put uploads r; minio-go splits large objects into parts itself.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), r, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", PartSize: uint64(s.cfg.PartSize)})
	return s.wrap("put", key, err)
}

// PutResumable uploads src in parts of PartSize through the multipart API
// directly, so that an upload left by a killed worker is found again (by
// key) and its parts are reused when their size and MD5 (the part's ETag)
// match what src gives now; only the other parts are sent.
func (s *S3) PutResumable(ctx context.Context, key string, src Source, size int64, progress func(int64)) (Upload, error) {
	var up Upload
	if size <= s.cfg.PartSize {
		r, err := src()
		if err != nil {
			return up, err
		}
		defer r.Close()
		up.Parts = 1
		return up, s.Put(ctx, key, &progressReader{r: r, report: progress}, size)
	}
	full := s.key(key)
	uploadID, have, err := s.pendingUpload(ctx, full)
	if err != nil {
		return up, err
	}
	if uploadID == "" {
		if uploadID, err = s.core.NewMultipartUpload(ctx, s.cfg.Bucket, full, minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
			return up, s.wrap("start upload", key, err)
		}
	}
	r, err := src()
	if err != nil {
		return up, err
	}
	defer r.Close()
	buf := make([]byte, s.cfg.PartSize)
	var parts []minio.CompletePart
	var done int64
	for n := 1; done < size; n++ {
		want := min(s.cfg.PartSize, size-done)
		if _, err := io.ReadFull(r, buf[:want]); err != nil {
			return up, fmt.Errorf("upload %s: read part %d: %w", key, n, err)
		}
		sum := md5.Sum(buf[:want])
		etag := hex.EncodeToString(sum[:])
		up.Parts++
		if p, ok := have[n]; ok && p.Size == want && strings.EqualFold(strings.Trim(p.ETag, `"`), etag) {
			parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
			up.Reused++
		} else {
			p, err := s.core.PutObjectPart(ctx, s.cfg.Bucket, full, uploadID, n, bytes.NewReader(buf[:want]), want,
				minio.PutObjectPartOptions{Md5Base64: base64.StdEncoding.EncodeToString(sum[:])})
			if err != nil {
				return up, s.wrap(fmt.Sprintf("upload part %d of", n), key, err)
			}
			parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		}
		done += want
		if progress != nil {
			progress(done)
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.cfg.Bucket, full, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return up, s.wrap("complete upload", key, err)
	}
	return up, nil
}

// pendingUpload finds the newest unfinished upload of key and the parts it
// holds.
func (s *S3) pendingUpload(ctx context.Context, full string) (string, map[int]minio.ObjectPart, error) {
	res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, full, "", "", "", 1000)
	if err != nil {
		return "", nil, s.wrap("list uploads of", s.unkey(full), err)
	}
	var id string
	var newest time.Time
	for _, u := range res.Uploads {
		if u.Key == full && (id == "" || u.Initiated.After(newest)) {
			id, newest = u.UploadID, u.Initiated
		}
	}
	if id == "" {
		return "", nil, nil
	}
	have := map[int]minio.ObjectPart{}
	marker := 0
	for {
		lp, err := s.core.ListObjectParts(ctx, s.cfg.Bucket, full, id, marker, 1000)
		if err != nil {
			if errors.Is(s.wrap("", "", err), ErrNotExist) {
				// The upload was aborted or completed meanwhile: start anew.
				return "", nil, nil
			}
			return "", nil, s.wrap("list parts of", s.unkey(full), err)
		}
		for _, p := range lp.ObjectParts {
			have[p.PartNumber] = p
		}
		if !lp.IsTruncated {
			break
		}
		marker = lp.NextPartNumberMarker
	}
	return id, have, nil
}

// Get opens the object.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, s.key(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return r, nil
}

// Stat describes the object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	st, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.wrap("stat", key, err)
	}
	info := Info{Key: key, Size: st.Size, Modified: st.LastModified}
	if d := st.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date"); d != "" {
		if t, err := time.Parse(time.RFC3339, d); err == nil {
			info.RetainUntil = t
		}
	}
	return info, nil
}

// List lists every object under prefix.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	var out []Info
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if o.Err != nil {
			return nil, s.wrap("list", prefix, o.Err)
		}
		out = append(out, Info{Key: s.unkey(o.Key), Size: o.Size, Modified: o.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object. Object lock makes the server refuse; that is
// ErrLocked.
func (s *S3) Delete(ctx context.Context, key string) error {
	if info, err := s.Stat(ctx, key); err == nil && info.RetainUntil.After(time.Now()) {
		return fmt.Errorf("delete %s in %s: %w until %s", key, s, ErrLocked, info.RetainUntil.UTC().Format(time.RFC3339))
	}
	err := s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(key), minio.RemoveObjectOptions{})
	if err != nil && errors.Is(s.wrap("", "", err), ErrNotExist) {
		return nil
	}
	if resp := minio.ToErrorResponse(err); err != nil && resp.Code == minio.AccessDenied && strings.Contains(strings.ToLower(resp.Message), "retention") {
		return fmt.Errorf("delete %s in %s: %w: %s", key, s, ErrLocked, resp.Message)
	}
	return s.wrap("delete", key, err)
}

// Lock sets an object-lock retention date on the object. It works only on
// a bucket made with object lock enabled (which makes it versioned); on
// other buckets, and servers without object lock, ok is false.
func (s *S3) Lock(ctx context.Context, key string, until time.Time) (bool, error) {
	mode := minio.RetentionMode(s.cfg.LockMode)
	until = until.UTC().Truncate(time.Second)
	err := s.client.PutObjectRetention(ctx, s.cfg.Bucket, s.key(key), minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	if err == nil {
		return true, nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "InvalidRequest", resp.Code == "NotImplemented", resp.Code == "ObjectLockConfigurationNotFoundError",
		resp.StatusCode == http.StatusNotImplemented, resp.StatusCode == http.StatusMethodNotAllowed:
		return false, nil
	}
	return false, s.wrap("lock", key, err)
}

// LockSupported asks whether the bucket was made with object lock.
func (s *S3) LockSupported(ctx context.Context) bool {
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.cfg.Bucket)
	return err == nil && enabled == "Enabled"
}

// MakeBucket creates the bucket (tests and first setup), with object lock
// when lock is set.
func (s *S3) MakeBucket(ctx context.Context, lock bool) error {
	err := s.client.MakeBucket(ctx, s.cfg.Bucket, minio.MakeBucketOptions{Region: s.cfg.Region, ObjectLocking: lock})
	return s.wrap("make bucket", s.cfg.Bucket, err)
}

// RemoveBucket removes every object of the bucket and the bucket itself
// (tests: a bucket that vanishes).
func (s *S3) RemoveBucket(ctx context.Context) error {
	for o := range s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			return s.wrap("list", "", o.Err)
		}
		if err := s.client.RemoveObject(ctx, s.cfg.Bucket, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID, GovernanceBypass: true}); err != nil {
			return s.wrap("delete", o.Key, err)
		}
	}
	return s.wrap("remove bucket", s.cfg.Bucket, s.client.RemoveBucket(ctx, s.cfg.Bucket))
}

// Pending is an unfinished multipart upload.
type Pending struct {
	Key       string
	Initiated time.Time
}

// PendingUploads lists the unfinished multipart uploads under prefix: what
// killed workers left, holding storage until completed or aborted.
func (s *S3) PendingUploads(ctx context.Context, prefix string) ([]Pending, error) {
	var out []Pending
	keyMarker, idMarker := "", ""
	for {
		res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, s.key(prefix), keyMarker, idMarker, "", 1000)
		if err != nil {
			return nil, s.wrap("list uploads under", prefix, err)
		}
		for _, u := range res.Uploads {
			out = append(out, Pending{Key: s.unkey(u.Key), Initiated: u.Initiated})
		}
		if !res.IsTruncated {
			return out, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

// AbortUploads aborts every unfinished upload of key.
func (s *S3) AbortUploads(ctx context.Context, key string) error {
	full := s.key(key)
	res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, full, "", "", "", 1000)
	if err != nil {
		return s.wrap("list uploads of", key, err)
	}
	for _, u := range res.Uploads {
		if u.Key != full {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, full, u.UploadID); err != nil && !errors.Is(s.wrap("", "", err), ErrNotExist) {
			return s.wrap("abort upload of", key, err)
		}
	}
	return nil
}
