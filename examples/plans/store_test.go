package plans

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLabWithS3StoreMovesTheStoreIntoABucket(t *testing.T) {
	out, err := LabWithS3Store(string(Lab), S3Store{Endpoint: "127.0.0.1:9000", Bucket: "drover-lab", Prefix: "lab",
		AccessKey: "env:A", SecretKey: "file:/etc/s"})
	require.NoError(t, err)
	assert.Contains(t, out, "  store:\n    site: dc2\n    s3:\n      endpoint: \"127.0.0.1:9000\"\n      bucket: \"drover-lab\"\n      prefix: \"lab\"\n"+
		"      accessKey: \"env:A\"\n      secretKey: \"file:/etc/s\"\n    staging: ${DROVER_LAB_DIR}/staging\n")
	assert.NotContains(t, out, "${DROVER_LAB_DIR}/store")

	// A plan whose path a test spelled out moves too.
	spelled := strings.ReplaceAll(string(Lab), "${DROVER_LAB_DIR}", "/tmp/lab")
	out, err = LabWithS3Store(spelled, S3Store{Endpoint: "h:1", Bucket: "b", AccessKey: "env:A", SecretKey: "env:B"})
	require.NoError(t, err)
	assert.NotContains(t, out, "/tmp/lab/store")

	_, err = LabWithS3Store("name: x\n", S3Store{})
	assert.ErrorContains(t, err, "no storage.store")
}
