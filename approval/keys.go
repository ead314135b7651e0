package approval

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// This file is for the CLI: randomness and files. Nothing here may be
// called from workflow code.

// PrivateKey is an approver's signing key with the name it was made for.
type PrivateKey struct {
	// Name is the approver name the key file says it belongs to ("" when
	// the file does not say).
	Name string
	Key  ed25519.PrivateKey
}

// PublicKey is the plan's form of the key's public half.
func (k *PrivateKey) PublicKey() string {
	return FormatPublicKey(k.Key.Public().(ed25519.PublicKey))
}

// Sign signs st with the key.
func (k *PrivateKey) Sign(st Statement) string { return Sign(k.Key, st) }

// Approve makes a signed approval with a fresh nonce for what `drover
// approve` sends. approver defaults to the name in the key file; a
// different name is refused here rather than as a forgery by the workflow.
func (k *PrivateKey) Approve(workflowID, runID, gate, decision, approver, comment string) (Signed, error) {
	if approver == "" {
		approver = k.Name
	}
	if approver == "" {
		return Signed{}, errors.New("approve: no approver name given and the key file names none")
	}
	if k.Name != "" && k.Name != approver {
		return Signed{}, fmt.Errorf("approve: the key file belongs to %q, not %q", k.Name, approver)
	}
	nonce, err := NewNonce()
	if err != nil {
		return Signed{}, err
	}
	st := Statement{WorkflowID: workflowID, RunID: runID, Gate: gate, Decision: decision, Nonce: nonce, Approver: approver, Comment: comment}
	if missing := missingFields(st); missing != "" {
		return Signed{}, fmt.Errorf("approve: missing %s", missing)
	}
	return Signed{Statement: st, Signature: k.Sign(st)}, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidName reports whether name can name an approver's key files: 1 to 64
// letters, digits, '.', '_', '@' or '-', not starting with a punctuation
// mark (so no hidden files and no paths).
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("approver name %q: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

// GenerateKey makes a new key pair for the approver name.
func GenerateKey(name string) (*PrivateKey, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key for %s: %w", name, err)
	}
	return &PrivateKey{Name: name, Key: priv}, nil
}

// NewNonce returns 128 random bits as NonceLen lowercase hex digits.
func NewNonce() (string, error) {
	b := make([]byte, NonceLen/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make approval nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// The private key file is a PKCS#8 PEM block ("PRIVATE KEY", which openssl
// and other tools read) preceded by a comment line naming the approver; PEM
// decoders skip text before the block.
const nameLinePrefix = "# drover approver key: "

// MarshalPrivateKey is the key file's content.
func MarshalPrivateKey(k *PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		return nil, fmt.Errorf("encode private key of %s: %w", k.Name, err)
	}
	var b strings.Builder
	if k.Name != "" {
		b.WriteString(nameLinePrefix + k.Name + "\n")
	}
	b.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return []byte(b.String()), nil
}

// ParsePrivateKey reads a key file's content; file names the file in errors.
func ParsePrivateKey(file string, data []byte) (*PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("private key file %s: no PEM block in it (want a drover approver key made by `drover keys new`)", file)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("private key file %s: PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", file, block.Type)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("private key file %s: unexpected data after the PEM block", file)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key file %s: %w", file, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key file %s: a %T, want an ed25519 key", file, parsed)
	}
	k := &PrivateKey{Key: key}
	// The name line is optional and only informative; the signature is what
	// counts, and the plan decides which key belongs to which approver.
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), nameLinePrefix); ok {
			k.Name = strings.TrimSpace(name)
			break
		}
		if strings.HasPrefix(line, "-----BEGIN") {
			break
		}
	}
	return k, nil
}

// LoadPrivateKey reads an approver's key file. Like ssh, it refuses a file
// that others than its owner may read: a signing key others can read is a
// key others can approve with.
func LoadPrivateKey(path string) (*PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("private key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("private key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("private key file %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private key file %s: mode %04o lets others read it; run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	if st.Size() > 64<<10 {
		return nil, fmt.Errorf("private key file %s: %d bytes is far too big for a key", path, st.Size())
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("private key file %s: %w", path, err)
	}
	return ParsePrivateKey(path, data)
}

// LoadPublicKey reads a public key file (one base64 line, as `drover keys
// new` writes NAME.pub).
func LoadPublicKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("public key file: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if _, err := ParsePublicKey(s); err != nil {
		return "", fmt.Errorf("public key file %s: %w", path, err)
	}
	return s, nil
}

// ErrExists is returned by the Write functions when a file is already
// there: a key is never overwritten.
var ErrExists = errors.New("already exists")

// KeyPairFiles are the file names `drover keys new` writes in dir.
func KeyPairFiles(dir, name string) (privPath, pubPath string) {
	return filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
}

// WriteKeyPair writes NAME.key (0600) and NAME.pub (0644) into dir and
// returns their paths. It refuses, with ErrExists, when either exists; it
// leaves neither behind when it fails half way.
func WriteKeyPair(dir string, k *PrivateKey) (privPath, pubPath string, err error) {
	if err := ValidName(k.Name); err != nil {
		return "", "", err
	}
	privPath, pubPath = KeyPairFiles(dir, k.Name)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s: %w; a key is never overwritten (remove it first, and its entry in the plan)", p, ErrExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("check %s: %w", p, err)
		}
	}
	privPEM, err := MarshalPrivateKey(k)
	if err != nil {
		return "", "", err
	}
	if err := WriteNewFile(privPath, privPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := WriteNewFile(pubPath, []byte(k.PublicKey()+"\n"), 0o644); err != nil {
		_ = os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

// WriteNewFile writes data to path atomically and only if path does not
// exist yet: a temp file in the same directory, fsynced, then hard-linked
// to path (which fails if path appeared meanwhile, unlike rename, which
// would replace it), then the directory is fsynced.
func WriteNewFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	// CreateTemp makes the file 0600; chmod before any byte is written so a
	// secret is never readable by others, even for a moment.
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
