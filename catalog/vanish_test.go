package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A store whose directory vanishes after it was opened (an NFS mount
// gone) fails the next capture; it is not recreated on the local disk.
func TestBeginDoesNotRecreateAVanishedStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	require.NoError(t, os.Mkdir(root, 0o755))
	s, err := Open(root)
	require.NoError(t, err)
	_, err = s.Begin("plan", "p1")
	require.NoError(t, err)
	require.NoError(t, os.Rename(root, root+".gone"))

	_, err = s.ResetGroup("plan", "p2", "cell")
	require.ErrorContains(t, err, root)
	require.NoDirExists(t, root)
}
