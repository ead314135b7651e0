package archive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sinkData(n int, seed uint64) []byte {
	b := make([]byte, n)
	fillRandom(rand.New(rand.NewPCG(seed, 1)), b)
	return b
}

// addPieces adds b in pieces of random sizes, as the writer does frames.
func addPieces(t *testing.T, s *sink, b []byte, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for len(b) > 0 {
		n := min(len(b), rng.IntN(3<<20))
		require.NoError(t, s.add(b[:n]))
		b = b[n:]
	}
}

// The file holds exactly the bytes added, whatever their total (none, less
// than a block, whole blocks, whole stages, several stages and a tail),
// through O_DIRECT and through the page cache.
func TestSinkWritesExactlyTheBytesAdded(t *testing.T) {
	for _, direct := range []bool{true, false} {
		if !direct {
			old := directFlag
			directFlag = 0
			t.Cleanup(func() { directFlag = old })
		}
		dir := t.TempDir()
		for i, n := range []int{0, 1, dioAlign - 1, dioAlign, stageSize - 1, stageSize, 3*stageSize + 12345} {
			want := sinkData(n, uint64(i))
			p := filepath.Join(dir, "a.tmp")
			s, err := createSink(p)
			require.NoError(t, err)
			if direct && i == 0 {
				t.Logf("O_DIRECT on %s: %v", dir, s.isDirect())
			}
			if !direct {
				assert.False(t, s.isDirect())
			}
			addPieces(t, s, want, uint64(i))
			require.NoError(t, s.commit())
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Equal(t, len(want), len(got), "direct=%v n=%d", direct, n)
			assert.True(t, bytes.Equal(want, got), "direct=%v n=%d", direct, n)
		}
	}
}

// A file system that takes O_DIRECT at open but refuses a write (here: a
// buffer that is not aligned) is written through the page cache instead.
func TestSinkFallsBackWhenADirectWriteIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tmp")
	s, err := createSink(p)
	require.NoError(t, err)
	if !s.isDirect() {
		s.abort()
		t.Skip("this file system refuses O_DIRECT at open")
	}
	b := make([]byte, 2*dioAlign)[1 : 1+100] // misaligned and not a block
	copy(b, "not aligned")
	err = s.writeAt(b, 0)
	if s.isDirect() {
		s.abort()
		t.Skipf("this file system took a misaligned direct write (err %v)", err)
	}
	require.NoError(t, err)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, b, got)

	// The stages that follow (written from the start of the file again)
	// go through the page cache too, tail included, with no padding.
	want := sinkData(stageSize+10, 9)
	addPieces(t, s, want, 9)
	require.NoError(t, s.commit())
	got, err = os.ReadFile(p)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got))
}

// An aborted sink leaves no file behind.
func TestSinkAbortRemovesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tmp")
	s, err := createSink(p)
	require.NoError(t, err)
	addPieces(t, s, sinkData(2*stageSize+5, 3), 3)
	s.abort()
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err))
	s.abort() // twice is harmless
}
