package btrfs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Output of btrfs-progs v6.2 for a read-only snapshot.
const showV62 = `/mnt/pool/.drover-snapshots/bpm.f1.cell
	Name: 			bpm.f1.cell
	UUID: 			c7829431-5e4f-2341-8217-a43884756db9
	Parent UUID: 		3c54074d-6842-514d-a486-bd665a2f590b
	Received UUID: 		-
	Creation time: 		2026-11-23 14:52:07 +0000
	Subvolume ID: 		257
	Generation: 		7
	Gen at creation: 	7
	Parent ID: 		5
	Top level ID: 		5
	Flags: 			readonly
	Send transid: 		0
	Send time: 		2026-11-23 14:52:07 +0000
	Receive transid: 	0
	Receive time: 		-
	Snapshot(s):
`

func TestParseSubvolumeShow(t *testing.T) {
	info, err := ParseSubvolumeShow(showV62)
	require.NoError(t, err)
	assert.Equal(t, "bpm.f1.cell", info.Name)
	assert.Equal(t, "c7829431-5e4f-2341-8217-a43884756db9", info.UUID)
	assert.Equal(t, "3c54074d-6842-514d-a486-bd665a2f590b", info.ParentUUID)
	assert.Empty(t, info.ReceivedUUID)
	assert.True(t, info.ReadOnly)
	assert.True(t, info.Created.Equal(time.Date(2026, 11, 23, 14, 52, 7, 0, time.UTC)))

	// A writable subvolume, older progs with "Flags: -".
	info, err = ParseSubvolumeShow("data\n\tName: data\n\tUUID: 3c54074d-6842-514d-a486-bd665a2f590b\n\tCreation time: 2024-01-02 03:04:05 +0100\n\tFlags: -\n")
	require.NoError(t, err)
	assert.False(t, info.ReadOnly)

	for name, bad := range map[string]string{
		"no UUID line":      "x\n\tName: x\n\tCreation time: 2024-01-02 03:04:05 +0100\n",
		"creation time":     "x\n\tUUID: 3c54074d-6842-514d-a486-bd665a2f590b\n\tCreation time: yesterday\n",
		"not a UUID":        "x\n\tUUID: -\n",
		"no creation time":  "x\n\tUUID: 3c54074d-6842-514d-a486-bd665a2f590b\n",
		"no UUID line (not": "ERROR: Not a Btrfs subvolume: Invalid argument\n",
	} {
		_, err := ParseSubvolumeShow(bad)
		assert.ErrorContains(t, err, name)
	}
}

func FuzzParseSubvolumeShow(f *testing.F) {
	f.Add(showV62)
	f.Fuzz(func(t *testing.T, out string) {
		info, err := ParseSubvolumeShow(out)
		if err != nil {
			return
		}
		if checkUUID(info.UUID) != nil || info.Created.IsZero() {
			t.Fatalf("accepted %+v", info)
		}
	})
}
