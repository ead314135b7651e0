package starter

import (
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/codec"
)

// EncryptionConverters returns the data and failure converters for
// --encryption-key-file: nil, nil when keyFile is empty (Temporal's
// defaults, payloads in clear), else AES-256-GCM payload encryption with
// encrypted failure messages. A client dialled with them passes them on to
// every worker made from it. A key file that cannot be used is bad input.
func EncryptionConverters(keyFile string) (converter.DataConverter, converter.FailureConverter, error) {
	if keyFile == "" {
		return nil, nil, nil
	}
	dc, fc, err := codec.Converters(keyFile)
	if err != nil {
		return nil, nil, BadInputf("--encryption-key-file: %v", err)
	}
	return dc, fc, nil
}
