package tarzst

import "github.com/klauspost/compress/zstd"

// EncodeChunks runs the capture's own encoder (the pooled one, with its raw
// frames for incompressible runs) over data cut in capture-sized chunks, on
// the calling goroutine only: the compressor's per-core rate, which bounds
// how fast a capture on N cores can go.
func EncodeChunks(data []byte) (compressed int) {
	enc := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(enc)
	var dst []byte
	var spans []span
	for start := 0; start < len(data); start += DefaultChunkSize {
		in := data[start:min(start+DefaultChunkSize, len(data))]
		dst, spans = encodeChunk(enc, in, dst[:0], spans[:0])
		for _, s := range spans {
			compressed += s.end - s.start
		}
	}
	return compressed
}
