package lvm

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const lvsOut = `  data                    |      |-wi-ao----|2025-01-10 08:00:00 +0000
  drover-bpm-p1-cell      |data  |swi-a-s---|2026-03-02 10:00:00 +0100
  drover-bpm-p0-cell      |data  |swi-I-s---|2026-03-01 10:00:00 +0100

`

func TestParseLVS(t *testing.T) {
	lvs, err := ParseLVS(lvsOut)
	require.NoError(t, err)
	require.Len(t, lvs, 3)
	assert.False(t, lvs[0].Snapshot())
	assert.True(t, lvs[1].Snapshot())
	assert.Equal(t, "data", lvs[1].Origin)
	assert.False(t, lvs[1].Invalid())
	assert.True(t, lvs[2].Invalid())
	assert.True(t, lvs[1].Time.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)))

	lvs, err = ParseLVS("  data||-wi-ao----|\n")
	require.NoError(t, err, "lvs without lv_time support prints it empty")
	assert.True(t, lvs[0].Time.IsZero())

	for want, bad := range map[string]string{
		"3 fields":         "data|x|y\n",
		"bad volume name":  " -x|||\n",
		"bad origin":       "a|b c||\n",
		"time":             "a|||yesterday\n",
		"bad volume name ": "|||\n",
	} {
		_, err := ParseLVS(bad)
		assert.ErrorContains(t, err, strings.TrimSpace(want))
	}
}

const mountinfo = `22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
28 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
61 28 253:3 / /run/drover/lvm/drover-bpm-p1-cell ro,relatime shared:30 - ext4 /dev/mapper/vg0-drover--bpm--p1--cell ro
62 28 253:4 / /mnt/with\040space rw,relatime shared:31 - xfs /dev/sdb1 rw
`

func TestParseMountinfo(t *testing.T) {
	m, err := ParseMountinfo(mountinfo)
	require.NoError(t, err)
	assert.True(t, m["/run/drover/lvm/drover-bpm-p1-cell"])
	assert.True(t, m["/mnt/with space"])
	assert.False(t, m["/run/drover/lvm"])
	_, err = ParseMountinfo("1 2 3\n")
	assert.ErrorContains(t, err, "want at least 10")
	_, err = ParseMountinfo("22 28 0:21 / /bad\\04 rw shared:1 - proc proc rw\n")
	assert.ErrorContains(t, err, "bad escape")
}

func FuzzParseLVS(f *testing.F) {
	f.Add(lvsOut)
	f.Fuzz(func(t *testing.T, out string) {
		lvs, err := ParseLVS(out)
		if err != nil {
			return
		}
		for _, lv := range lvs {
			if !validLVName(lv.Name) || (lv.Origin != "" && !validLVName(lv.Origin)) {
				t.Fatalf("accepted %+v", lv)
			}
			_ = lv.Invalid()
			_ = lv.Snapshot()
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(mountinfo)
	f.Fuzz(func(t *testing.T, data string) {
		_, _ = ParseMountinfo(data)
	})
}
