// Package codec encrypts what drover puts in Temporal's history: every
// payload (workflow inputs and results, activity arguments, signals, query
// results, memos) with AES-256-GCM, and error messages and stack traces
// through the failure converter. The Temporal server and anyone reading the
// history without the key see only "binary/encrypted" blobs; the Web UI shows
// them decrypted through the codec server (`drover codec-server`).
//
// Search attributes are not payload data and stay readable: they are what
// the UI filters on.
package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	// EncodingEncrypted is the payload's "encoding" metadata value.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// KeySize is the AES-256 key size in bytes.
const KeySize = 32

// aadPrefix binds the ciphertext to drover's format and to the key id in the
// metadata, so neither can be swapped without the decryption failing.
const aadPrefix = "drover-payload-v1:"

// Key is an AES-256 key and its id. The id is derived from the key (a
// truncated SHA-256 under a label), so it names the key without revealing
// it and needs no configuration.
type Key struct {
	id     string
	secret []byte
}

// ID is the key's id, as payload metadata carries it.
func (k Key) ID() string { return k.id }

// String never shows the secret.
func (k Key) String() string { return "aes256:" + k.id }

// NewKey makes a Key from KeySize raw bytes.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("encryption key: %d bytes, AES-256 needs %d", len(raw), KeySize)
	}
	sum := sha256.Sum256(append([]byte("drover-encryption-key-id:"), raw...))
	return Key{id: hex.EncodeToString(sum[:8]), secret: bytes.Clone(raw)}, nil
}

// GenerateKey makes a random key.
func GenerateKey() (Key, error) {
	raw := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return Key{}, fmt.Errorf("generate encryption key: %w", err)
	}
	return NewKey(raw)
}

// Text is the key as LoadKey reads it back: base64 and a newline.
func (k Key) Text() []byte {
	return []byte(base64.StdEncoding.EncodeToString(k.secret) + "\n")
}

// maxKeyFile bounds what LoadKey reads: a key file is tiny, and a wrong
// path (a log, a disk image) should fail fast rather than fill memory.
const maxKeyFile = 4096

// LoadKey reads a key file: exactly 32 raw bytes, or the key as 64 hex
// digits or as base64 (standard or URL alphabet, padded or not), with
// surrounding whitespace ignored.
func LoadKey(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("encryption key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Key{}, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return Key{}, fmt.Errorf("encryption key file %s: more than %d bytes; a key file holds one %d-byte key", path, maxKeyFile, KeySize)
	}
	k, err := ParseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return k, nil
}

// ParseKey reads a key file's content (see LoadKey).
func ParseKey(data []byte) (Key, error) {
	if len(data) == KeySize {
		return NewKey(data)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return Key{}, errors.New("empty; want 32 raw bytes, 64 hex digits or base64 of 32 bytes (drover keys new-encryption-key makes one)")
	}
	if len(text) == 2*KeySize {
		if raw, err := hex.DecodeString(text); err == nil {
			return NewKey(raw)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.Strict().DecodeString(text)
		if err != nil {
			continue
		}
		if len(raw) != KeySize {
			return Key{}, fmt.Errorf("base64 text decodes to %d bytes; AES-256 needs %d", len(raw), KeySize)
		}
		return NewKey(raw)
	}
	return Key{}, fmt.Errorf("%d bytes that are neither 32 raw bytes, 64 hex digits nor base64 of 32 bytes", len(data))
}

// Codec is a converter.PayloadCodec that encrypts with one key and decrypts
// with that key or any older key given, so keys can be rotated: runs
// started under the old key stay readable.
type Codec struct {
	encryptID string
	aeads     []keyedAEAD // the encrypting key first
}

type keyedAEAD struct {
	id   string
	aead cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// NewCodec returns a codec that encrypts with primary and decrypts with
// primary or older.
func NewCodec(primary Key, older ...Key) (*Codec, error) {
	c := &Codec{encryptID: primary.id}
	for _, k := range append([]Key{primary}, older...) {
		if len(k.secret) != KeySize {
			return nil, errors.New("codec: zero or invalid Key; make keys with NewKey, LoadKey or GenerateKey")
		}
		block, err := aes.NewCipher(k.secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %s: %w", k.id, err)
		}
		c.aeads = append(c.aeads, keyedAEAD{id: k.id, aead: aead})
	}
	return c, nil
}

// Encode encrypts each payload whole (data and metadata): the result's data
// is a random 12-byte nonce followed by the GCM ciphertext and tag.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	enc := c.aeads[0]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload %d: marshal: %w", i, err)
		}
		nonce := make([]byte, enc.aead.NonceSize(), enc.aead.NonceSize()+len(plain)+enc.aead.Overhead())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload %d: nonce: %w", i, err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(enc.id),
			},
			Data: enc.aead.Seal(nonce, nonce, plain, aad(enc.id)),
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads and passes any other payload through
// unchanged, so history written before encryption was turned on (or by a
// client without a key) still reads.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		dec, err := c.decrypt(p)
		if err != nil {
			return nil, fmt.Errorf("decrypt payload %d: %w", i, err)
		}
		out[i] = dec
	}
	return out, nil
}

func (c *Codec) decrypt(p *commonpb.Payload) (*commonpb.Payload, error) {
	id := string(p.GetMetadata()[MetadataKeyID])
	var k *keyedAEAD
	for i := range c.aeads {
		if c.aeads[i].id == id {
			k = &c.aeads[i]
			break
		}
	}
	if k == nil {
		return nil, fmt.Errorf("encrypted with key %q, but this process has key %s; give the matching --encryption-key-file", id, c.keyIDs())
	}
	ns := k.aead.NonceSize()
	if len(p.Data) < ns+k.aead.Overhead() {
		return nil, fmt.Errorf("encrypted payload is %d bytes, too short to hold a nonce and tag", len(p.Data))
	}
	plain, err := k.aead.Open(nil, p.Data[:ns], p.Data[ns:], aad(id))
	if err != nil {
		return nil, fmt.Errorf("key %s: authentication failed: the payload was altered or not made with this key", id)
	}
	var out commonpb.Payload
	if err := proto.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("key %s: decrypted data is not a payload: %w", id, err)
	}
	return &out, nil
}

func (c *Codec) keyIDs() string {
	ids := make([]string, len(c.aeads))
	for i, k := range c.aeads {
		ids[i] = fmt.Sprintf("%q", k.id)
	}
	return strings.Join(ids, ", ")
}

func aad(keyID string) []byte { return []byte(aadPrefix + keyID) }

// NewDataConverter wraps Temporal's default data converter with the codec.
func NewDataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// NewFailureConverter is Temporal's default failure converter with error
// messages and stack traces moved into an encoded (so encrypted) payload;
// the history then shows only "Encoded failure".
func NewFailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}

// Converters loads the key file and returns the data and failure
// converters a client (and so its workers) should use.
func Converters(keyFile string) (converter.DataConverter, converter.FailureConverter, error) {
	k, err := LoadKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	c, err := NewCodec(k)
	if err != nil {
		return nil, nil, err
	}
	dc := NewDataConverter(c)
	return dc, NewFailureConverter(dc), nil
}
