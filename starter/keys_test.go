package starter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/codec"
)

func runMain(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeysNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, stderr := runMain("keys", "new", "--name", "alice", "--dir", dir)
	require.Equal(t, ExitOK, code, stderr)

	pub, err := os.ReadFile(filepath.Join(dir, "alice.pub"))
	require.NoError(t, err)
	assert.Contains(t, out, "    publicKey: "+strings.TrimSpace(string(pub))+"\n")
	assert.Contains(t, out, "  - name: alice\n")

	st, err := os.Stat(filepath.Join(dir, "alice.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// The key signs statements the printed public key verifies.
	k, err := approval.LoadPrivateKey(filepath.Join(dir, "alice.key"))
	require.NoError(t, err)
	s := approval.Statement{Gate: "g", Approver: "alice"}
	require.NoError(t, approval.Verify(string(pub), s, k.Sign(s)))

	// Never overwritten.
	code, _, stderr = runMain("keys", "new", "--name", "alice", "--dir", dir)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, stderr, "alice.key: already exists")
	again, err := approval.LoadPrivateKey(filepath.Join(dir, "alice.key"))
	require.NoError(t, err)
	assert.True(t, k.Key.Equal(again.Key))

	// keys show prints the same public key.
	code, out, stderr = runMain("keys", "show", filepath.Join(dir, "alice.key"))
	require.Equal(t, ExitOK, code, stderr)
	assert.Equal(t, "name: alice\npublicKey: "+string(pub), out)

	code, out, stderr = runMain("-o", "json", "keys", "new", "--name", "bob", "--dir", dir)
	require.Equal(t, ExitOK, code, stderr)
	var js map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &js))
	assert.Equal(t, filepath.Join(dir, "bob.key"), js["privateKeyFile"])
	_, err = approval.ParsePublicKey(js["publicKey"])
	require.NoError(t, err)
}

func TestKeysBadInput(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	k, err := approval.GenerateKey("x")
	require.NoError(t, err)
	pem, err := approval.MarshalPrivateKey(k)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(open, pem, 0o600))
	require.NoError(t, os.Chmod(open, 0o644))

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"keys", "new", "--dir", dir}, "--name: required"},
		{[]string{"keys", "new", "--name", "../etc/passwd", "--dir", dir}, `--name: approver name "../etc/passwd"`},
		{[]string{"keys", "new", "--name", "a", "--dir", "/proc/no/such"}, "--dir:"},
		{[]string{"keys", "show"}, "accepts 1 arg"},
		{[]string{"keys", "show", filepath.Join(dir, "missing.key")}, "missing.key"},
		{[]string{"keys", "show", open}, "lets others read it"},
		{[]string{"keys", "new-encryption-key"}, "--out: required"},
	} {
		code, _, stderr := runMain(c.args...)
		assert.Equal(t, ExitBadInput, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.msg, "%v", c.args)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing written by failed commands")
}

func TestKeysNewEncryptionKey(t *testing.T) {
	out := filepath.Join(t.TempDir(), "payload.key")
	code, stdout, stderr := runMain("keys", "new-encryption-key", "--out", out)
	require.Equal(t, ExitOK, code, stderr)
	k, err := codec.LoadKey(out)
	require.NoError(t, err)
	assert.Contains(t, stdout, "key id "+k.ID())
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	code, _, stderr = runMain("keys", "new-encryption-key", "--out", out)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, stderr, "never overwritten")
	k2, err := codec.LoadKey(out)
	require.NoError(t, err)
	assert.Equal(t, k.ID(), k2.ID())
}

func TestEncryptionConverters(t *testing.T) {
	dc, fc, err := EncryptionConverters("")
	require.NoError(t, err)
	assert.Nil(t, dc)
	assert.Nil(t, fc)

	_, _, err = EncryptionConverters(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	assert.Equal(t, ExitBadInput, ExitCode(err))
	assert.Contains(t, err.Error(), "--encryption-key-file")

	k, err := codec.GenerateKey()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(file, k.Text(), 0o600))
	dc, fc, err = EncryptionConverters(file)
	require.NoError(t, err)
	require.NotNil(t, fc)
	p, err := dc.ToPayload("secret")
	require.NoError(t, err)
	assert.Equal(t, codec.EncodingEncrypted, string(p.Metadata["encoding"]))
	assert.NotContains(t, string(p.Data), "secret")
}
