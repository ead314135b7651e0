// Package blob is the small storage interface the recovery point catalog
// and the storage drivers write through when a store is an object store:
// put a stream, get a stream, stat, list a prefix, delete. Two
// implementations: Dir (a folder; keys are relative paths) and S3 (any
// S3-compatible server, through minio-go).
//
// Objects are immutable once put: a reader sees either no object or the
// whole one (Dir renames a finished temp file; S3 completes an upload).
package blob

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// ErrNotExist is returned (wrapped) for a key with no object. It is
// fs.ErrNotExist, so callers that handle missing files handle it too.
var ErrNotExist = fs.ErrNotExist

// ErrLocked is returned (wrapped) when object lock keeps an object from
// being deleted before its retention date.
var ErrLocked = errors.New("object is locked by retention")

// Info describes one object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
	// RetainUntil is the object-lock retention date, when the backend
	// keeps one (zero otherwise).
	RetainUntil time.Time
}

// Source opens a stream of known size from its start; an upload that is
// resumed opens it again and skips what the store already holds.
type Source func() (io.ReadCloser, error)

// Upload says how a resumable upload went: how many parts it had and how
// many of them an earlier, interrupted attempt had already stored.
type Upload struct {
	Parts  int `json:"parts"`
	Reused int `json:"reused"`
}

// Bucket is an object store: a folder, or a bucket and prefix.
type Bucket interface {
	// Put stores size bytes read from r under key, replacing any object.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// PutResumable stores size bytes from src under key. Large objects go
	// in parts; when a previous attempt (a killed worker) left parts of the
	// same key, the parts whose size and checksum match what src gives are
	// kept and only the rest is sent. src must give the same bytes every
	// time it is opened.
	PutResumable(ctx context.Context, key string, src Source, size int64, progress func(int64)) (Upload, error)
	// Get opens the object; ErrNotExist when there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object; ErrNotExist when there is none.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns every object whose key starts with prefix, sorted by
	// key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object; deleting a missing object is no error.
	Delete(ctx context.Context, key string) error
	// Lock keeps the object from being deleted before until, where the
	// backend supports it; ok is false when it does not (then nothing
	// changed).
	Lock(ctx context.Context, key string, until time.Time) (ok bool, err error)
	// Check proves the bucket is there and answers.
	Check(ctx context.Context) error
	// String says where the bucket is (never a secret).
	String() string
}

// ReadAll reads a whole small object.
func ReadAll(ctx context.Context, b Bucket, key string) ([]byte, error) {
	r, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
