package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/blob/s3test"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/examples/plans"
)

// s3srv is the package's one SeaweedFS, started by the first test that
// needs it and stopped by TestMain.
var s3srv s3test.Package

// TestLabBackupAndRestoreThroughS3 runs the lab's backups into a bucket of a
// real SeaweedFS, encrypted, with the keys and the bucket's credentials by
// secret reference: a full and two cumulative points under load, retention
// deleting the first cumulative one through the S3 API, the catalog read
// from the bucket alone by `drover points list`, and the last point (its
// full, then itself) restored into the sandbox and verified on all six
// levels.
func TestLabBackupAndRestoreThroughS3(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	srv := s3srv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bucket := fmt.Sprintf("lab-%d", time.Now().UnixNano()%1e9)
	b, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	require.NoError(t, err)
	require.NoError(t, b.MakeBucket(ctx, false))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("DROVER_LAB_S3_ACCESS_KEY", srv.AccessKey)
	t.Setenv("DROVER_LAB_S3_SECRET_KEY", srv.SecretKey)
	t.Setenv("DROVER_LAB_STORE_KEY", hex.EncodeToString(key))

	e := newLabEnv(t, envOptions{name: "s3store", edit: func(text string) string {
		out, err := plans.LabWithS3Store(text, plans.S3Store{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "dr",
			AccessKey: "env:DROVER_LAB_S3_ACCESS_KEY", SecretKey: "env:DROVER_LAB_S3_SECRET_KEY"})
		require.NoError(t, err)
		const staging = "    staging: ${DROVER_LAB_DIR}/staging\n"
		require.Contains(t, out, staging)
		return strings.Replace(out, staging, staging+"    retention: {cumulative: 1, weekly: 1, monthly: 1}\n"+
			"    encryption: {keys: [{id: lab1, key: \"env:DROVER_LAB_STORE_KEY\"}]}\n", 1)
	}})
	require.True(t, e.store.ObjectLayout(), "the plan's store is the bucket")
	e.up()

	ld := e.startLoad(20)
	time.Sleep(2 * time.Second)
	full := e.backup(ctx, e.p, contract.ModeFull, "s3-full")
	cum1 := e.backup(ctx, e.p, contract.ModeCumulative, "s3-cum1")
	time.Sleep(time.Second)
	cum2 := e.backup(ctx, e.p, contract.ModeCumulative, "s3-cum2")
	ld.stop()
	require.Equal(t, full.ID, cum1.BaseID)
	require.Equal(t, full.ID, cum2.BaseID)
	for _, pt := range []contract.Point{full, cum1, cum2} {
		require.NotNil(t, pt.Quiesce, "point %s records how long writes were paused", pt.ID)
		assert.Equal(t, []string{"db"}, pt.Quiesce.Components)
		t.Logf("point %s: writes paused %s", pt.ID, pt.Quiesce)
	}

	// Everything is in the bucket, sealed; retention kept one cumulative
	// point and deleted the other through the API.
	keys, err := b.List(ctx, "dr/s3store/points/")
	require.NoError(t, err)
	var manifests []string
	for _, k := range keys {
		assert.False(t, strings.HasPrefix(k.Key, "dr/s3store/points/"+cum1.ID+"/"), "retention left %s", k.Key)
		if strings.HasSuffix(k.Key, "/"+catalog.ManifestFile) {
			manifests = append(manifests, k.Key)
			raw, err := blob.ReadAll(ctx, b, k.Key)
			require.NoError(t, err)
			assert.True(t, seal.IsSealed(raw), "%s is encrypted before it leaves the worker", k.Key)
		}
	}
	assert.ElementsMatch(t, []string{"dr/s3store/points/" + full.ID + "/manifest.json", "dr/s3store/points/" + cum2.ID + "/manifest.json"}, manifests)

	// The catalog from the bucket alone: no Temporal needed.
	out, err := e.drover("points", "list", "--plan", e.planPath, "--address", "127.0.0.1:1")
	require.NoError(t, err)
	assert.Contains(t, out, full.ID)
	assert.Contains(t, out, cum2.ID)
	assert.NotContains(t, out, cum1.ID)
	out, err = e.drover("points", "describe", cum2.ID, "--plan", e.planPath)
	require.NoError(t, err)
	assert.Contains(t, out, "writes paused")
	assert.Contains(t, out, "(db)")

	v := e.validate(ctx, e.p, cum2.ID)
	require.True(t, v.Valid, "point %s restored from the bucket: %s", cum2.ID, v.Reason)
	pts, err := e.store.List(e.p.Name)
	require.NoError(t, err)
	require.Len(t, pts, 2)
	assert.Equal(t, catalog.Valid, catalog.ByID(pts)[cum2.ID].Validity.State, "the validity is recorded in the bucket")
}
