// Package seal encrypts what drover writes to a recovery point store:
// AES-256-GCM in a chunked streaming format, so archives of any size are
// sealed and opened in one pass with bounded memory.
//
// Why AES-256-GCM with symmetric keys rather than age/X25519 recipients: a
// site that restores becomes the primary after a failover and must take
// backups from then on, so it needs the sealing key anyway; a restore-only
// private key buys nothing in a two-site DR cell. Symmetric keys also fit
// drover's secret references (env:, file:) with no key files of a new
// format, and AES-GCM runs on the CPU's AES instructions in the standard
// library, with no new dependency.
//
// Format of a sealed stream:
//
//	magic "DRVSEAL1" | idLen (1) | key id | chunkShift (1) | key check (8) | salt (32)
//	chunk 0 | chunk 1 | … | last chunk
//
// Each chunk is at most 1<<chunkShift bytes of plaintext sealed with
// AES-256-GCM (16-byte tag) under a key derived for this stream
// (HKDF-SHA256 of the master key and the salt). The nonce is the chunk's
// counter and a last-chunk flag (the STREAM construction), and the header is
// the additional data of every chunk: chunks cannot be reordered, dropped,
// or moved between streams, and a stream cut after any chunk fails because
// no chunk carrying the last flag is read. The key check (derived from the
// master key) tells a wrong key from damaged data, so the error says which.
package seal

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

const (
	magic      = "DRVSEAL1"
	saltLen    = 32
	checkLen   = 8
	tagLen     = 16
	chunkShift = 20 // 1 MiB chunks: the per-chunk tag costs 0.0015 %
	// ChunkSize is the plaintext bytes per chunk.
	ChunkSize = 1 << chunkShift
)

// Errors a caller can branch on. None is retryable.
var (
	// ErrUnknownKey: the stream was sealed with a key id not in the ring.
	ErrUnknownKey = errors.New("sealed with a key that is not listed")
	// ErrWrongKey: the key listed under the stream's id is not the key that
	// sealed it.
	ErrWrongKey = errors.New("wrong key")
	// ErrDamaged: the stream fails authentication (altered or truncated).
	ErrDamaged = errors.New("sealed data is damaged or truncated")
	// ErrNotSealed: the data does not start with a seal header.
	ErrNotSealed = errors.New("not sealed data")
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Key is one master key and the id written into every stream it seals.
type Key struct {
	ID     string
	secret []byte
	check  []byte
}

// NewKey makes a key from 32 raw bytes.
func NewKey(id string, secret []byte) (*Key, error) {
	if !idRE.MatchString(id) {
		return nil, fmt.Errorf("key id %q: want 1-64 letters, digits, '.', '_' or '-'", id)
	}
	if len(secret) != 32 {
		return nil, fmt.Errorf("key %s: %d bytes, AES-256 needs 32", id, len(secret))
	}
	k := &Key{ID: id, secret: append([]byte(nil), secret...)}
	check, err := hkdf.Key(sha256.New, k.secret, nil, "drover seal key check", checkLen)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	k.check = check
	return k, nil
}

// ParseKey reads a key written as 64 hex digits or as base64 of 32 bytes
// (what `openssl rand -hex 32` or `-base64 32` prints). Errors never quote
// the value.
func ParseKey(id, text string) (*Key, error) {
	text = strings.TrimSpace(text)
	if b, err := hex.DecodeString(text); err == nil && len(b) == 32 {
		return NewKey(id, b)
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == 32 {
		return NewKey(id, b)
	}
	return nil, fmt.Errorf("key %s: want 64 hex digits or base64 of 32 bytes (got %d characters)", id, len(text))
}

// Ring holds the keys a store may be read with; the first seals.
type Ring struct {
	keys []*Key
}

// NewRing makes a ring; keys[0] seals, every key opens.
func NewRing(keys ...*Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("key id %q listed twice", k.ID)
		}
		seen[k.ID] = true
	}
	return &Ring{keys: keys}, nil
}

// SealingID is the id of the key new data is sealed with.
func (r *Ring) SealingID() string { return r.keys[0].ID }

// IDs lists the ring's key ids.
func (r *Ring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.ID
	}
	return ids
}

func (r *Ring) byID(id string) *Key {
	for _, k := range r.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func headerLen(id string) int64 { return int64(len(magic) + 1 + len(id) + 1 + checkLen + saltLen) }

// SealedSize is the size of plain bytes once sealed under key id.
func SealedSize(id string, plain int64) int64 {
	chunks := (plain + ChunkSize - 1) / ChunkSize
	if chunks == 0 {
		chunks = 1
	}
	return headerLen(id) + plain + chunks*tagLen
}

// SealedSize is the size of plain bytes sealed with the ring's sealing key.
func (r *Ring) SealedSize(plain int64) int64 { return SealedSize(r.SealingID(), plain) }

func streamAEAD(k *Key, salt []byte) (cipher.AEAD, error) {
	fk, err := hkdf.Key(sha256.New, k.secret, salt, "drover seal v1 "+k.ID, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(fk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(dst []byte, counter uint64, last bool) []byte {
	dst = dst[:12]
	binary.BigEndian.PutUint64(dst, counter)
	dst[8], dst[9], dst[10] = 0, 0, 0
	dst[11] = 0
	if last {
		dst[11] = 1
	}
	return dst
}

// NewSalt returns a fresh random salt.
func NewSalt() ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal: random salt: %w", err)
	}
	return salt, nil
}

// Writer seals what is written to it; Close writes the last chunk and must
// be called.
type Writer struct {
	w       io.Writer
	aead    cipher.AEAD
	header  []byte
	buf     []byte
	out     []byte
	nonce   [12]byte
	counter uint64
	err     error
	closed  bool
}

// NewWriter seals into w with the ring's sealing key and a fresh salt.
func (r *Ring) NewWriter(w io.Writer) (*Writer, error) {
	salt, err := NewSalt()
	if err != nil {
		return nil, err
	}
	return r.NewWriterSalt(w, salt)
}

// NewWriterSalt seals with a given salt: the same plaintext, key and salt
// give the same bytes, which lets an interrupted upload check the parts it
// already sent. A salt must never seal two different plaintexts.
func (r *Ring) NewWriterSalt(w io.Writer, salt []byte) (*Writer, error) {
	if len(salt) != saltLen {
		return nil, fmt.Errorf("seal: salt of %d bytes, want %d", len(salt), saltLen)
	}
	k := r.keys[0]
	aead, err := streamAEAD(k, salt)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	h := make([]byte, 0, headerLen(k.ID))
	h = append(h, magic...)
	h = append(h, byte(len(k.ID)))
	h = append(h, k.ID...)
	h = append(h, chunkShift)
	h = append(h, k.check...)
	h = append(h, salt...)
	sw := &Writer{w: w, aead: aead, header: h, buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, ChunkSize+tagLen)}
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return sw, nil
}

func (s *Writer) emit(last bool) error {
	s.out = s.aead.Seal(s.out[:0], nonce(s.nonce[:], s.counter, last), s.buf, s.header)
	s.counter++
	s.buf = s.buf[:0]
	_, err := s.w.Write(s.out)
	return err
}

// Write buffers p and seals every full chunk that more data follows.
func (s *Writer) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, errors.New("seal: write after close")
	}
	n := 0
	for len(p) > 0 {
		if len(s.buf) == ChunkSize {
			// More data follows a full chunk: it is not the last.
			if s.err = s.emit(false); s.err != nil {
				return n, s.err
			}
		}
		k := copy(s.buf[len(s.buf):ChunkSize], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

// Close seals the last chunk (possibly empty); it does not close the
// underlying writer.
func (s *Writer) Close() error {
	if s.err != nil || s.closed {
		return s.err
	}
	s.closed = true
	s.err = s.emit(true)
	return s.err
}

// Reader opens a sealed stream, failing on the first chunk that does not
// authenticate and at the end if the last chunk is missing.
type Reader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	header  []byte
	in      []byte
	plain   []byte
	pos     int
	nonce   [12]byte
	counter uint64
	done    bool
	err     error
	keyID   string
}

// NewReader reads the header of a sealed stream and picks its key.
func (r *Ring) NewReader(src io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(src, ChunkSize+tagLen+1)
	head := make([]byte, len(magic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSealed, shortRead(err))
	}
	if string(head[:len(magic)]) != magic {
		return nil, ErrNotSealed
	}
	idLen := int(head[len(magic)])
	rest := make([]byte, idLen+1+checkLen+saltLen)
	if _, err := io.ReadFull(br, rest); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDamaged, shortRead(err))
	}
	id := string(rest[:idLen])
	shift := rest[idLen]
	check := rest[idLen+1 : idLen+1+checkLen]
	salt := rest[idLen+1+checkLen:]
	if shift != chunkShift {
		return nil, fmt.Errorf("%w: chunk size 2^%d, this build reads 2^%d", ErrDamaged, shift, chunkShift)
	}
	k := r.byID(id)
	if k == nil {
		return nil, fmt.Errorf("%w: key id %q (listed: %s)", ErrUnknownKey, id, strings.Join(r.IDs(), ", "))
	}
	if !bytes.Equal(k.check, check) {
		return nil, fmt.Errorf("%w: the key listed as %q is not the key that sealed this data", ErrWrongKey, id)
	}
	aead, err := streamAEAD(k, salt)
	if err != nil {
		return nil, err
	}
	header := append(append([]byte(nil), head...), rest...)
	return &Reader{r: br, aead: aead, header: header, in: make([]byte, ChunkSize+tagLen), keyID: id}, nil
}

// KeyID is the id of the key the stream was sealed with.
func (s *Reader) KeyID() string { return s.keyID }

func shortRead(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("cut short")
	}
	return err
}

func (s *Reader) next() error {
	n, err := io.ReadFull(s.r, s.in)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: ends after chunk %d without its last chunk", ErrDamaged, s.counter)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A short chunk can only be the last one.
	case err != nil:
		return err
	}
	last := n < len(s.in)
	if !last {
		if _, perr := s.r.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			return perr
		}
	}
	if n < tagLen {
		return fmt.Errorf("%w: chunk %d is %d bytes", ErrDamaged, s.counter, n)
	}
	plain, oerr := s.aead.Open(s.plain[:0], nonce(s.nonce[:], s.counter, last), s.in[:n], s.header)
	if oerr != nil {
		if last {
			return fmt.Errorf("%w: chunk %d fails authentication (altered, or the stream was cut)", ErrDamaged, s.counter)
		}
		return fmt.Errorf("%w: chunk %d fails authentication", ErrDamaged, s.counter)
	}
	s.plain, s.pos = plain, 0
	s.counter++
	s.done = last
	return nil
}

// Read returns plaintext that has been authenticated.
func (s *Reader) Read(p []byte) (int, error) {
	for s.pos == len(s.plain) {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			return 0, io.EOF
		}
		if s.err = s.next(); s.err != nil {
			return 0, s.err
		}
	}
	n := copy(p, s.plain[s.pos:])
	s.pos += n
	return n, nil
}

// SealBytes seals a small object (a manifest) in memory.
func (r *Ring) SealBytes(plain []byte) ([]byte, error) {
	var b bytes.Buffer
	w, err := r.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// OpenBytes opens what SealBytes sealed.
func (r *Ring) OpenBytes(sealed []byte) ([]byte, error) {
	rd, err := r.NewReader(bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(rd)
}

// IsSealed reports whether data starts with a seal header.
func IsSealed(data []byte) bool { return bytes.HasPrefix(data, []byte(magic)) }
