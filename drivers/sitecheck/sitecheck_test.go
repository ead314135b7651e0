package sitecheck

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMountInfo(t *testing.T) {
	m, ok := parseMountInfo(`36 35 98:0 /mnt1 /home/dr\040data rw,noatime master:1 - nfs4 10.0.0.5:/export/home rw,vers=4.1`)
	require.True(t, ok)
	assert.Equal(t, Mount{Path: "/home/dr data", Type: "nfs4", Source: "10.0.0.5:/export/home"}, m)
	assert.True(t, TypeMatches(m.Type, "nfs"))
	assert.False(t, TypeMatches("ext4", "nfs"))
	_, ok = parseMountInfo("garbage")
	assert.False(t, ok)
}

func TestFindMountKnowsAMountPointFromAFolder(t *testing.T) {
	if _, err := os.Stat(MountsFile); err != nil {
		t.Skip("no " + MountsFile + " here")
	}
	m, ok, err := FindMount("/")
	require.NoError(t, err)
	require.True(t, ok, "/ is a mount point")
	assert.NotEmpty(t, m.Type)
	dir := t.TempDir()
	// A fresh folder under the temporary directory is not a mount point.
	_, ok, err = FindMount(dir)
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, Writable(dir))
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "the probe file is removed")
}

func TestResolveLoopback(t *testing.T) {
	addrs, err := Resolve(context.Background(), "localhost")
	require.NoError(t, err)
	assert.Contains(t, addrs, "127.0.0.1")
	_, err = Resolve(context.Background(), "no-such-host.invalid")
	assert.Error(t, err)
}
