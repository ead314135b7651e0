package btrfs

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

// btrfs writes send streams straight into a folder store: an encrypted (or
// bucket) store is refused before anything runs, naming the setting.
func TestObjectStoreIsRefused(t *testing.T) {
	t.Setenv("DROVER_TEST_BTRFS_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	settings := map[string]any{"path": t.TempDir(), "staging": filepath.Join(t.TempDir(), "staging"),
		"encryption": map[string]any{"keys": []any{map[string]any{"id": "k1", "key": "env:DROVER_TEST_BTRFS_KEY"}}}}
	req := storage.Request{Plan: "bpm", PointID: "p1", StoreSettings: settings, Mode: catalog.ModeFull,
		Site:  drivers.Site{Name: "s", Settings: map[string]any{"dataRoot": t.TempDir()}},
		Group: storage.Group{Name: "cell", Driver: "btrfs", Components: []string{"db2"}}}
	_, err := New(nil).Capture(context.Background(), req, nil)
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "storage.store")
	assert.Contains(t, err.Error(), "btrfs driver writes into a folder store")
	_, err = New(nil).Restore(context.Background(), storage.RestoreRequest{Plan: "bpm", PointID: "p1", StoreSettings: settings,
		Site: req.Site, Group: req.Group}, nil)
	require.ErrorContains(t, err, "btrfs driver writes into a folder store")
}
