package starter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/blob/s3test"
	"github.com/drover-dr/drover/examples/plans"
)

// The demo's bucket credentials: the plan names these variables (secret
// references), never the keys.
const (
	envDemoS3Access = "DROVER_LAB_S3_ACCESS_KEY"
	envDemoS3Secret = "DROVER_LAB_S3_SECRET_KEY"
	demoS3Bucket    = "drover-lab"
)

// demoStore says where the lab demo keeps its recovery points.
type demoStore struct {
	kind     string // folder | s3
	endpoint string // s3: host:port; empty starts a local SeaweedFS
	bucket   string
	prefix   string
	tls      bool
}

func (s demoStore) check() error {
	switch s.kind {
	case "folder":
		if s.endpoint != "" || s.bucket != "" {
			return BadInputf("--s3-endpoint and --s3-bucket need --store s3")
		}
	case "s3":
		if s.endpoint == "" && (s.bucket != "" || s.tls) {
			return BadInputf("--s3-bucket and --s3-tls name a bucket of --s3-endpoint; without --s3-endpoint the demo starts its own SeaweedFS")
		}
	default:
		return BadInputf("--store: %q (want folder or s3)", s.kind)
	}
	return nil
}

// objectStore readies the demo's bucket and returns the plan text with its
// store moved there, and what to call when the demo ends. Without
// --s3-endpoint it starts SeaweedFS (weed, as the tests do) on loopback
// under DIR/s3 with throwaway keys; with it, the keys come from
// $DROVER_LAB_S3_ACCESS_KEY and $DROVER_LAB_S3_SECRET_KEY and the bucket
// must exist.
func (d *demoStory) objectStore(ctx context.Context, s demoStore, text string) (string, func(), error) {
	stop := func() {}
	bucket := s.bucket
	if s.endpoint == "" {
		dir := filepath.Join(d.dir, "s3")
		if err := os.RemoveAll(dir); err != nil {
			return "", stop, err
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", stop, err
		}
		d.say("starting SeaweedFS's S3 gateway for the store (%s, data in %s)", s3test.Binary(), dir)
		srv, err := s3test.Start(dir)
		if err != nil {
			return "", stop, fmt.Errorf("--store s3: %w", err)
		}
		stop = srv.Stop
		s.endpoint, bucket = srv.Endpoint, demoS3Bucket
		// The site workers are processes of their own: they read the
		// keys from the environment they inherit.
		os.Setenv(envDemoS3Access, srv.AccessKey)
		os.Setenv(envDemoS3Secret, srv.SecretKey)
		b, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err == nil {
			err = b.MakeBucket(ctx, false)
		}
		if err != nil {
			stop()
			return "", func() {}, fmt.Errorf("--store s3: make bucket %s: %w", bucket, err)
		}
	} else {
		for _, v := range []string{envDemoS3Access, envDemoS3Secret} {
			if os.Getenv(v) == "" {
				return "", stop, BadInputf("--s3-endpoint %s: $%s is not set (the bucket's keys come from the environment)", s.endpoint, v)
			}
		}
		if bucket == "" {
			bucket = demoS3Bucket
		}
	}
	out, err := plans.LabWithS3Store(text, plans.S3Store{Endpoint: s.endpoint, Bucket: bucket, Prefix: s.prefix, TLS: s.tls,
		AccessKey: "env:" + envDemoS3Access, SecretKey: "env:" + envDemoS3Secret})
	if err != nil {
		stop()
		return "", func() {}, err
	}
	d.log.Info("demo store in a bucket", zap.String("endpoint", s.endpoint), zap.String("bucket", bucket))
	d.say("recovery points go to bucket %s at %s (keys from $%s and $%s)", bucket, s.endpoint, envDemoS3Access, envDemoS3Secret)
	return out, stop, nil
}
