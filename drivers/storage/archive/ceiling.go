package archive

import "github.com/drover-dr/drover/drivers/storage/internal/tarzst"

// EncodeOneCore compresses data as a capture does (same chunks, same
// encoder, incompressible parts stored raw) on the calling goroutine and
// returns the compressed size. Timed, it is one core's compression rate: a
// capture on every core cannot beat that rate times the cores.
func EncodeOneCore(data []byte) int64 { return tarzst.EncodeSerial(data) }
