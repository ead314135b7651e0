package bench

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "512MiB": 512 << 20, "64M": 64 << 20, "2G": 2 << 30, "1048576": 1 << 20, "1.5KiB": 1536} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "lots", "-1G", "0"} {
		_, err := ParseSize(bad)
		assert.Error(t, err, bad)
	}
}

// A small run of the benchmark end to end: every figure is there with its
// baseline and ratio (or says why it was skipped). The figures themselves
// are not asserted: timing belongs to the benchmark's output, not a test.
func TestBenchBackupSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the backup benchmark on 16 MiB")
	}
	dir := t.TempDir()
	doc, err := Backup(context.Background(), testEnv(t), BackupOptions{Size: 16 << 20, Dir: dir, Rounds: 1, Btrfs: true, Snapshots: 3})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, doc.Size, int64(16<<20))
	require.Len(t, doc.Figures, 9)
	_, zerr := exec.LookPath("zstd")
	btrfsFigures := map[int]bool{3: true, 8: true}
	for i, f := range doc.Figures {
		if f.Skipped != "" {
			if !btrfsFigures[i] {
				assert.NotNil(t, zerr, "only a missing zstd CLI skips %s", f.Name)
			}
			continue
		}
		assert.NotEmpty(t, f.Ours, f.Name)
		assert.NotEmpty(t, f.Baseline, f.Name)
		assert.Positive(t, f.Ratio, f.Name)
	}
	assert.Contains(t, doc.Figures[1].Name, "cumulative")
	assert.Contains(t, doc.Figures[4].Name, "encryption on")
	assert.Contains(t, doc.Figures[5].Name, "compressor ceiling")
	assert.Positive(t, doc.Figures[5].Ratio, "the ceiling needs no zstd CLI")
	assert.Contains(t, doc.Figures[6].Name, "quiesce window, archive capture, storage encryption off")
	assert.Contains(t, doc.Figures[7].Name, "quiesce window, archive capture, storage encryption on")
	assert.Contains(t, doc.Figures[8].Name, "quiesce window, btrfs")
	assert.Equal(t, doc.Figures[3].Skipped, doc.Figures[8].Skipped, "the btrfs window comes from the snapshot experiment")
	if os.Geteuid() != 0 {
		assert.Contains(t, doc.Figures[3].Skipped, "root")
	} else if doc.Figures[3].Skipped == "" {
		assert.Contains(t, doc.Figures[3].Ours, "median of 3 captures")
		assert.Contains(t, doc.Figures[3].Baseline, "median of 3 captures")
	}
}

func TestAlternateSwapsOrderEveryRound(t *testing.T) {
	var seq []int
	require.NoError(t, alternate(4, func(side int) error { seq = append(seq, side); return nil }))
	assert.Equal(t, []int{0, 1, 1, 0, 0, 1, 1, 0}, seq)

	calls := 0
	err := alternate(3, func(side int) error {
		calls++
		if calls == 2 {
			return assert.AnError
		}
		return nil
	})
	assert.ErrorIs(t, err, assert.AnError)
	assert.Equal(t, 2, calls, "stops at the first error")
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	assert.Equal(t, time.Duration(0), median(nil))
	assert.Equal(t, 3*time.Millisecond, median(ms(9, 3, 1)))
	assert.Equal(t, 2500*time.Microsecond, median(ms(4, 1, 2, 3)))
	assert.Equal(t, 5*time.Millisecond, median(ms(5, 100, 1, 5, 6)), "an outlier does not move it")
}

func TestBtrfsTreeRootParsing(t *testing.T) {
	roots := `root tree: 151814144 level 1
fs tree key (FS_TREE ROOT_ITEM 0) 151863296 level 1
file tree key (256 ROOT_ITEM 0) 143982592 level 1
file tree key (2570 ROOT_ITEM 11) 44040192 level 2
file tree key (257 ROOT_ITEM 0) 151781376 level 1
`
	b, err := rootBytenr(roots, 257)
	require.NoError(t, err)
	assert.Equal(t, uint64(151781376), b, "257 is not taken for 2570")
	b, err = rootBytenr(roots, 2570)
	require.NoError(t, err)
	assert.Equal(t, uint64(44040192), b)
	_, err = rootBytenr(roots, 258)
	assert.ErrorContains(t, err, "258")

	lvl, items, err := nodeHeader("btrfs-progs v6.2\nnode 30687232 level 1 items 48 free space 445 generation 7 owner 256\nnode 30687232 flags 0x1(WRITTEN)\n")
	require.NoError(t, err)
	assert.Equal(t, 1, lvl)
	assert.Equal(t, 48, items)
	lvl, items, err = nodeHeader("leaf 30621696 items 2 free space 16061 generation 7 owner 258\n")
	require.NoError(t, err)
	assert.Equal(t, 0, lvl)
	assert.Equal(t, 2, items)
	_, _, err = nodeHeader("leaf 30621696 items x free space")
	assert.Error(t, err)
	_, _, err = nodeHeader("ERROR: bad block")
	assert.Error(t, err)
}
