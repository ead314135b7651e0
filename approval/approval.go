// Package approval makes gate approvals that cannot be forged: an approver
// signs a statement naming the run, the gate, the decision and a fresh nonce
// with an ed25519 private key, and the workflow checks the signature against
// the public key the plan lists for that approver before counting it.
//
// Anyone with write access to a Temporal namespace can send a signal, so the
// approver field of a signal proves nothing on its own; the signature does.
//
// Statement, Sign, Verify and Check are pure: no I/O, no clock, no
// randomness, no map iteration. Check is meant to be called from workflow
// code. Key generation, key files and NewNonce are for the CLI only.
package approval

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// Statement is what an approver signs. Every field is covered by the
// signature, so none can be changed in transit.
// The JSON names are those of the approve signal's payload.
type Statement struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Gate       string `json:"gate"`
	Decision   string `json:"decision"`
	// Nonce is fresh per approval (NewNonce), so a captured approval
	// cannot be sent again.
	Nonce    string `json:"nonce"`
	Approver string `json:"approver"`
	Comment  string `json:"comment,omitempty"`
}

// domain separates drover approval signatures from anything else the same
// key might ever sign, and versions the encoding.
const domain = "drover-approval-v1"

// Canonical is the exact byte string that is signed: the domain tag, then
// each field in a fixed order as a 4-byte big-endian length and its bytes.
// Length prefixes make it unambiguous: no choice of field values can make
// two different statements encode alike.
func (s Statement) Canonical() []byte {
	fields := [...]string{domain, s.WorkflowID, s.RunID, s.Gate, s.Decision, s.Nonce, s.Approver, s.Comment}
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// Errors of key and signature parsing and of verification. Verify and
// ParsePublicKey wrap them, so callers can tell them apart with errors.Is.
var (
	ErrBadPublicKey = errors.New("bad public key")
	ErrBadSignature = errors.New("bad signature encoding")
	ErrMismatch     = errors.New("signature does not match")
)

// ParsePublicKey reads a public key as a plan stores it: the standard base64
// (with padding) of the 32-byte ed25519 key, surrounding spaces ignored.
// It refuses keys no honest key generator makes: non-canonical point
// encodings and points of small order, for which signatures can be made
// without any private key (the all-zero key "verifies" a zero signature).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := decodeBase64(s, ErrBadPublicKey)
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, an ed25519 public key has %d", ErrBadPublicKey, len(raw), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not a point on the ed25519 curve", ErrBadPublicKey)
	}
	if !bytes.Equal(p.Bytes(), raw) {
		return nil, fmt.Errorf("%w: non-canonical point encoding", ErrBadPublicKey)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("%w: a weak key of small order, which verifies forged signatures", ErrBadPublicKey)
	}
	return ed25519.PublicKey(raw), nil
}

// decodeBase64 decodes strict standard base64 with padding. Only the
// base64 alphabet is allowed inside (the standard decoder would skip
// embedded newlines), so every value has exactly one text form.
func decodeBase64(s string, kind error) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", kind)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, fmt.Errorf("%w: not base64: byte %q at offset %d", kind, c, i)
		}
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", kind, err)
	}
	return raw, nil
}

// FormatPublicKey is the plan's form of a public key (see ParsePublicKey).
func FormatPublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// Fingerprint is a short, stable name for a public key to show in reports
// beside the approver ("SHA256:" and the unpadded base64 of its SHA-256, as
// ssh-keygen -l shows keys). It is pure, so workflows may call it.
func Fingerprint(pub string) string {
	key, err := ParsePublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(key)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// ParseSignature reads a signature: standard base64 of 64 bytes.
func ParseSignature(s string) ([]byte, error) {
	raw, err := decodeBase64(s, ErrBadSignature)
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, an ed25519 signature has %d", ErrBadSignature, len(raw), ed25519.SignatureSize)
	}
	return raw, nil
}

// Sign signs st and returns the signature in base64. ed25519 signing is
// deterministic: the same key and statement give the same signature.
func Sign(priv ed25519.PrivateKey, st Statement) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, st.Canonical()))
}

// Verify checks sig (base64) over st against the base64 public key pub.
// The error wraps ErrBadPublicKey, ErrBadSignature or ErrMismatch.
func Verify(pub string, st Statement, sig string) error {
	key, err := ParsePublicKey(pub)
	if err != nil {
		return err
	}
	raw, err := ParseSignature(sig)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, st.Canonical(), raw) {
		return fmt.Errorf("%w: not signed by this key, or the statement was changed after signing", ErrMismatch)
	}
	return nil
}
