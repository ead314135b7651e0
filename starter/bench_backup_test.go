package starter

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "512MiB": 512 << 20, "64M": 64 << 20, "2G": 2 << 30, "1048576": 1 << 20, "1.5KiB": 1536} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "lots", "-1G", "0"} {
		_, err := parseSize(bad)
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
	code, out, errs := runDrover("bench", "backup", "--size", "16MiB", "--dir", dir, "--rounds", "1", "--output", "json")
	require.Equal(t, ExitOK, code, errs)
	var doc struct {
		Size    int64
		Figures []benchFigure
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.GreaterOrEqual(t, doc.Size, int64(16<<20))
	require.Len(t, doc.Figures, 4)
	_, zerr := exec.LookPath("zstd")
	for i, f := range doc.Figures {
		if f.Skipped != "" {
			if i < 3 {
				assert.NotNil(t, zerr, "only a missing zstd CLI skips %s", f.Name)
			}
			continue
		}
		assert.NotEmpty(t, f.Ours, f.Name)
		assert.NotEmpty(t, f.Baseline, f.Name)
		assert.Positive(t, f.Ratio, f.Name)
	}
	assert.Contains(t, doc.Figures[1].Name, "cumulative")
	if os.Geteuid() != 0 {
		assert.Contains(t, doc.Figures[3].Skipped, "root")
	}
	code, _, errs = runDrover("bench", "backup", "--size", "tiny")
	assert.Equal(t, ExitBadInput, code)
	assert.True(t, strings.Contains(errs, "--size"))
}
