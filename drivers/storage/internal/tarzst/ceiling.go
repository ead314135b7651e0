package tarzst

import "github.com/klauspost/compress/zstd"

// EncodeSerial runs the capture's compression stage over data on the
// calling goroutine, chunk by chunk as an archive is written (incompressible
// segments stored raw, the rest through the same encoder), and returns the
// encoded size. Timed, it is one core's compression rate: the ceiling of a
// capture is that rate times the cores.
func EncodeSerial(data []byte) int64 {
	enc := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(enc)
	var out []byte
	var spans []span
	var n int64
	for off := 0; off < len(data); off += DefaultChunkSize {
		chunk := data[off:min(off+DefaultChunkSize, len(data))]
		out, spans = encodeChunk(enc, chunk, out[:0], spans[:0])
		for _, s := range spans {
			n += int64(s.end - s.start)
		}
	}
	return n
}
