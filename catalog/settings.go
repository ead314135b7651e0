package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Settings are the plan's storage.store settings.
type Settings struct {
	// Path is the store's directory at the secondary site (local disk or an
	// NFS mount); ${VAR} is expanded from the worker's environment. Path
	// or S3, not both.
	Path string `json:"path,omitempty"`
	// S3 puts the store in an S3-compatible bucket.
	S3 *S3Settings `json:"s3,omitempty"`
	// Staging is the local folder where the worker that captures keeps a
	// point's archives until Ship uploads them (object layout only:
	// s3, or an encrypted folder). Default: $TMPDIR/drover-staging.
	Staging string `json:"staging,omitempty"`
	// Encryption seals every artifact, manifest and catalog entry before
	// it leaves the worker.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Retention is the policy; DefaultPolicy when left out.
	Retention *Policy `json:"retention,omitempty"`
	// FreeMargin multiplies a backup's estimated size to get the free
	// space the preflight demands (default 1.2: room for the manifest and
	// for data written while the backup runs).
	FreeMargin float64 `json:"freeMargin,omitempty"`
}

// S3Settings locate a bucket. Keys are secret references.
type S3Settings struct {
	// Endpoint is host:port of the S3 API.
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	// Prefix is prepended to every key (a store inside a shared bucket).
	Prefix    string     `json:"prefix,omitempty"`
	Region    string     `json:"region,omitempty"`
	AccessKey secret.Ref `json:"accessKey"`
	SecretKey secret.Ref `json:"secretKey"`
	// TLS uses https; CAFile adds a CA to the system's trusted ones.
	TLS    bool   `json:"tls,omitempty"`
	CAFile string `json:"caFile,omitempty"`
	// PartSizeMiB is the multipart upload's part size (default 16, >= 5).
	PartSizeMiB int64 `json:"partSizeMiB,omitempty"`
	// LockDays sets object-lock retention on every object of a point for
	// this many days after it is committed, so nothing deletes it early
	// (the bucket must be made with object lock). 0: no lock.
	LockDays int `json:"lockDays,omitempty"`
	// LockMode is GOVERNANCE (default) or COMPLIANCE.
	LockMode string `json:"lockMode,omitempty"`
}

// Encryption lists the keys of a store: the first seals new data, all of
// them open old data, so a point sealed before a key rotation still
// restores while its key is listed.
type Encryption struct {
	Keys []KeySetting `json:"keys"`
}

// KeySetting is one key: an id written into what it seals, and the key
// (64 hex digits or base64 of 32 bytes) by secret reference.
type KeySetting struct {
	ID  string     `json:"id"`
	Key secret.Ref `json:"key"`
}

// DecodeSettings decodes storage.store strictly and fills defaults. It does
// not touch the file system, so plan validation can call it anywhere.
func DecodeSettings(settings map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(settings, &s); err != nil {
		return s, fmt.Errorf("storage.store: %w", err)
	}
	switch {
	case s.Path == "" && s.S3 == nil:
		return s, fmt.Errorf("storage.store.path: required: the recovery point store's directory at the secondary site (or storage.store.s3 for a bucket)")
	case s.Path != "" && s.S3 != nil:
		return s, fmt.Errorf("storage.store: path and s3 are both set; a store is a folder or a bucket")
	}
	if s.S3 != nil {
		if err := s.S3.check(); err != nil {
			return s, err
		}
	}
	if s.Encryption != nil {
		if len(s.Encryption.Keys) == 0 {
			return s, fmt.Errorf("storage.store.encryption.keys: required: at least one key (the first seals)")
		}
		for i, k := range s.Encryption.Keys {
			if k.ID == "" {
				return s, fmt.Errorf("storage.store.encryption.keys[%d].id: required", i)
			}
			if err := k.Key.Check(); err != nil {
				return s, fmt.Errorf("storage.store.encryption.keys[%d].key: %v", i, err)
			}
		}
	}
	if s.Retention == nil {
		p := DefaultPolicy
		s.Retention = &p
	}
	if err := s.Retention.Check(); err != nil {
		return s, fmt.Errorf("storage.store.%w", err)
	}
	if s.FreeMargin == 0 {
		s.FreeMargin = 1.2
	}
	if s.FreeMargin < 1 {
		return s, fmt.Errorf("storage.store.freeMargin: %g is below 1", s.FreeMargin)
	}
	return s, nil
}

func (c *S3Settings) check() error {
	switch {
	case c.Endpoint == "":
		return fmt.Errorf("storage.store.s3.endpoint: required (host:port of the S3 API)")
	case c.Bucket == "":
		return fmt.Errorf("storage.store.s3.bucket: required")
	case c.PartSizeMiB != 0 && c.PartSizeMiB < 5:
		return fmt.Errorf("storage.store.s3.partSizeMiB: %d is below the 5 MiB S3 allows", c.PartSizeMiB)
	case c.LockDays < 0:
		return fmt.Errorf("storage.store.s3.lockDays: %d is negative", c.LockDays)
	case c.LockMode != "" && c.LockMode != "GOVERNANCE" && c.LockMode != "COMPLIANCE":
		return fmt.Errorf("storage.store.s3.lockMode: %q (want GOVERNANCE or COMPLIANCE)", c.LockMode)
	}
	if err := c.AccessKey.Check(); err != nil {
		return fmt.Errorf("storage.store.s3.accessKey: %v", err)
	}
	if err := c.SecretKey.Check(); err != nil {
		return fmt.Errorf("storage.store.s3.secretKey: %v", err)
	}
	return nil
}

// Ring resolves the encryption keys; nil when the store is not encrypted.
func (s Settings) Ring() (*seal.Ring, error) {
	if s.Encryption == nil {
		return nil, nil
	}
	keys := make([]*seal.Key, 0, len(s.Encryption.Keys))
	for i, ks := range s.Encryption.Keys {
		text, err := ks.Key.Resolve()
		if err != nil {
			return nil, drivers.BadSettingsf("storage.store.encryption.keys[%d].key: %v", i, err)
		}
		k, err := seal.ParseKey(ks.ID, text)
		if err != nil {
			return nil, drivers.BadSettingsf("storage.store.encryption.keys[%d]: %v", i, err)
		}
		keys = append(keys, k)
	}
	r, err := seal.NewRing(keys...)
	if err != nil {
		return nil, drivers.BadSettingsf("storage.store.encryption.keys: %v", err)
	}
	return r, nil
}

// OpenFromSettings decodes storage.store, expands its path and opens the
// store: a folder store as before, or the object layout (an S3 bucket, or a
// folder with encryption) through a blob.Bucket.
func OpenFromSettings(settings map[string]any) (*Store, Settings, error) {
	s, err := DecodeSettings(settings)
	if err != nil {
		return nil, s, err
	}
	if s.S3 == nil && s.Encryption == nil {
		path, err := drivers.ExpandPath(s.Path)
		if err != nil {
			return nil, s, fmt.Errorf("storage.store.path: %w", err)
		}
		st, err := Open(path)
		return st, s, err
	}
	ring, err := s.Ring()
	if err != nil {
		return nil, s, err
	}
	staging := s.Staging
	if staging == "" {
		staging = filepath.Join(os.TempDir(), "drover-staging")
	}
	if staging, err = drivers.ExpandPath(staging); err != nil {
		return nil, s, fmt.Errorf("storage.store.staging: %w", err)
	}
	var bucket blob.Bucket
	var lockFor time.Duration
	if s.S3 != nil {
		access, err := s.S3.AccessKey.Resolve()
		if err != nil {
			return nil, s, drivers.BadSettingsf("storage.store.s3.accessKey: %v", err)
		}
		secretKey, err := s.S3.SecretKey.Resolve()
		if err != nil {
			return nil, s, drivers.BadSettingsf("storage.store.s3.secretKey: %v", err)
		}
		caFile := s.S3.CAFile
		if caFile != "" {
			if caFile, err = drivers.ExpandPath(caFile); err != nil {
				return nil, s, drivers.BadSettingsf("storage.store.s3.caFile: %v", err)
			}
		}
		b, err := blob.NewS3(blob.S3Config{Endpoint: s.S3.Endpoint, Bucket: s.S3.Bucket, Prefix: s.S3.Prefix, Region: s.S3.Region,
			AccessKey: access, SecretKey: secretKey, TLS: s.S3.TLS, CAFile: caFile, PartSize: s.S3.PartSizeMiB << 20, LockMode: s.S3.LockMode})
		if err != nil {
			return nil, s, fmt.Errorf("storage.store: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		defer cancel()
		if err := b.Check(ctx); err != nil {
			return nil, s, err
		}
		bucket = b
		lockFor = time.Duration(s.S3.LockDays) * 24 * time.Hour
	} else {
		path, err := drivers.ExpandPath(s.Path)
		if err != nil {
			return nil, s, fmt.Errorf("storage.store.path: %w", err)
		}
		d, err := blob.NewDir(path)
		if err != nil {
			return nil, s, err
		}
		bucket = d
	}
	return OpenObjects(bucket, ring, staging, lockFor), s, nil
}
