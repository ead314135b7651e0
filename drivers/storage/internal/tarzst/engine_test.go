package tarzst

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A chunk mixing text, random and zero runs comes out as several frames,
// some raw; both the Go decoder and the zstd CLI read it back exactly.
func TestEncodeChunkMixesRawAndCompressedFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var in []byte
	for i, kind := range []string{"text", "random", "random", "zero", "text", "random"} {
		seg := make([]byte, 100_000+i*30_000)
		switch kind {
		case "text":
			fillText(rng, seg)
		case "random":
			fillRandom(rng, seg)
		}
		in = append(in, seg...)
	}
	enc := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(enc)
	dst, spans := encodeChunk(enc, in, nil, nil)
	assert.True(t, slices.ContainsFunc(spans, func(s span) bool { return s.fromIn }), "raw blocks are written from the input")
	out := bytes.Join(gather(nil, spans, in, dst), nil)
	assert.Less(t, len(out), len(in), "text and zeros still compress")
	assert.Greater(t, bytes.Count(out, []byte{0x28, 0xB5, 0x2F, 0xFD}), 1, "more than one frame")

	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	got, err := dec.DecodeAll(out, nil)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(in, got))

	if _, err := exec.LookPath("zstd"); err == nil {
		dir := t.TempDir()
		f := filepath.Join(dir, "x.zst")
		require.NoError(t, os.WriteFile(f, out, 0o644))
		got, err := exec.Command("zstd", "-q", "-d", "-c", f).Output()
		require.NoError(t, err)
		assert.True(t, bytes.Equal(in, got), "the zstd CLI reads raw frames too")
	}
}

func TestIncompressible(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, segSize)
	fillRandom(rng, b)
	assert.True(t, incompressible(b))
	fillText(rng, b)
	assert.False(t, incompressible(b))
	assert.False(t, incompressible(make([]byte, segSize)))
	assert.False(t, incompressible(b[:100]), "short segments are always compressed")
	// An empty raw frame is still a valid frame.
	dec := decoders.Get().(*zstd.Decoder)
	defer decoders.Put(dec)
	hdr, spans := appendRawFrame(nil, nil, 0, 0)
	got, err := dec.DecodeAll(bytes.Join(gather(nil, spans, nil, hdr), nil), nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// writev writes everything in order even when the kernel takes less per
// call (a pipe holds 64 KiB; the reader drains it slowly), and skips empty
// buffers.
func TestWritevWritesEverythingInOrder(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	var bufs [][]byte
	var want []byte
	for i := 0; i < 40; i++ {
		b := make([]byte, rng.IntN(100_000))
		fillRandom(rng, b)
		bufs = append(bufs, b, nil)
		want = append(want, b...)
	}
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				got <- all
				return
			}
		}
	}()
	require.NoError(t, writev(w, bufs))
	require.NoError(t, w.Close())
	assert.True(t, bytes.Equal(want, <-got))

	assert.Error(t, writev(w, [][]byte{[]byte("x")}), "a closed file is an error")
}

// fillRandom writes incompressible bytes.
func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// fillText writes log-like lines that compress several times over, as
// server logs do (the archive package's dataset generator writes the same
// kind of text at scale).
func fillText(rng *rand.Rand, b []byte) {
	words := [...]string{"order", "process", "commit", "queue", "message", "engine", "session", "cluster", "node", "task"}
	var line []byte
	for i := 0; i < len(b); {
		line = strconv.AppendInt(line[:0], rng.Int64N(1<<40), 10)
		line = append(line, " INFO WebContainer - "...)
		for w := 4 + rng.IntN(8); w > 0; w-- {
			line = append(line, words[rng.IntN(len(words))]...)
			line = append(line, ' ')
		}
		line = append(line, '\n')
		i += copy(b[i:], line)
	}
}
