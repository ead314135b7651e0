package catalog

import (
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// ChecksumAlgo is the checksum every file and artifact gets.
//
// xxh64 rather than sha256: the threat is accidental damage (a flipped bit,
// a truncated copy, a half-written file after a crash), which a 64-bit
// checksum catches, and it runs at several GB/s a core, so hashing every
// file and every archive costs next to nothing beside zstd on two cores
// (sha256, even with SHA-NI, would take about a third of the backup's CPU).
// It is no defence against deliberate tampering, but neither would sha256
// be: whoever can rewrite an archive in the store can rewrite its manifest.
// The algorithm is written into every checksum ("xxh64:…"), so a stronger
// one can be added without breaking old points.
const ChecksumAlgo = "xxh64"

// NewHash returns a hasher for ChecksumAlgo.
func NewHash() hash.Hash64 { return xxhash.New() }

// FormatChecksum writes a sum as "xxh64:<16 hex digits>".
func FormatChecksum(sum uint64) string {
	return fmt.Sprintf("%s:%016x", ChecksumAlgo, sum)
}

// ParseChecksum reads what FormatChecksum wrote.
func ParseChecksum(s string) (uint64, error) {
	hex, ok := strings.CutPrefix(s, ChecksumAlgo+":")
	if !ok {
		return 0, fmt.Errorf("checksum %q: want %s:<16 hex digits>", s, ChecksumAlgo)
	}
	if len(hex) != 16 {
		return 0, fmt.Errorf("checksum %q: want 16 hex digits", s)
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("checksum %q: not hex", s)
	}
	return v, nil
}
