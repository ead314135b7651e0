package approval

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newKey(t *testing.T, name string) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(name)
	require.NoError(t, err)
	return k
}

func statement(t *testing.T, approver string) Statement {
	t.Helper()
	n, err := NewNonce()
	require.NoError(t, err)
	return Statement{
		WorkflowID: "failover-bpm-prod", RunID: "7d1c7d0e-0000-4000-8000-000000000001",
		Gate: "start-secondary", Decision: "approve", Nonce: n, Approver: approver, Comment: "racks cabled",
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := newKey(t, "alice")
	st := statement(t, "alice")
	sig := k.Sign(st)
	require.NoError(t, Verify(k.PublicKey(), st, sig))
	// ed25519 is deterministic, so re-signing gives the same bytes.
	assert.Equal(t, sig, Sign(k.Key, st))
}

func TestVerifyRejectsTampering(t *testing.T) {
	k := newKey(t, "alice")
	st := statement(t, "alice")
	sig := k.Sign(st)
	tamper := map[string]func(*Statement){
		"workflow": func(s *Statement) { s.WorkflowID = "failover-other" },
		"run":      func(s *Statement) { s.RunID += "x" },
		"gate":     func(s *Statement) { s.Gate = "accept-data-loss" },
		"decision": func(s *Statement) { s.Decision = "reject" },
		"nonce":    func(s *Statement) { s.Nonce = strings.Repeat("0", NonceLen) },
		"approver": func(s *Statement) { s.Approver = "bob" },
		"comment":  func(s *Statement) { s.Comment = "" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			changed := st
			f(&changed)
			err := Verify(k.PublicKey(), changed, sig)
			require.ErrorIs(t, err, ErrMismatch)
		})
	}
}

func TestCanonicalIsUnambiguous(t *testing.T) {
	// Moving bytes between adjacent fields must change the encoding; a
	// plain concatenation would not.
	a := Statement{Gate: "ab", Decision: "c"}
	b := Statement{Gate: "a", Decision: "bc"}
	assert.NotEqual(t, a.Canonical(), b.Canonical())
	assert.True(t, bytes.HasPrefix(a.Canonical(), []byte("\x00\x00\x00\x12drover-approval-v1")))
}

func TestVerifyErrors(t *testing.T) {
	k := newKey(t, "alice")
	other := newKey(t, "mallory")
	st := statement(t, "alice")
	sig := k.Sign(st)

	require.ErrorIs(t, Verify(other.PublicKey(), st, sig), ErrMismatch, "another key")
	require.ErrorIs(t, Verify(k.PublicKey(), st, other.Sign(st)), ErrMismatch, "signed by another key")
	require.ErrorIs(t, Verify("", st, sig), ErrBadPublicKey)
	require.ErrorIs(t, Verify("not base64!", st, sig), ErrBadPublicKey)
	require.ErrorIs(t, Verify(base64.StdEncoding.EncodeToString(make([]byte, 31)), st, sig), ErrBadPublicKey)
	require.ErrorIs(t, Verify(k.PublicKey(), st, ""), ErrBadSignature)
	require.ErrorIs(t, Verify(k.PublicKey(), st, "%%%"), ErrBadSignature)
	require.ErrorIs(t, Verify(k.PublicKey(), st, base64.StdEncoding.EncodeToString(make([]byte, 63))), ErrBadSignature)
	err := Verify(k.PublicKey(), st, base64.StdEncoding.EncodeToString(make([]byte, 31)))
	require.ErrorIs(t, err, ErrBadSignature)
	assert.Contains(t, err.Error(), "31 bytes")
}

// checkFixture is a plan with alice and bob (keyed) and carol (no key), a
// run, and alice's valid approval for the open gate.
type checkFixture struct {
	alice, bob *PrivateKey
	keys       []Key
	exp        Expect
	used       map[string]bool
	signed     Signed
}

func newFixture(t *testing.T) *checkFixture {
	f := &checkFixture{alice: newKey(t, "alice"), bob: newKey(t, "bob"), used: map[string]bool{}}
	f.keys = []Key{{Name: "alice", PublicKey: f.alice.PublicKey()}, {Name: "bob", PublicKey: f.bob.PublicKey()}, {Name: "carol"}}
	st := statement(t, "alice")
	f.exp = Expect{WorkflowID: st.WorkflowID, RunID: st.RunID, Gate: st.Gate}
	f.signed = Signed{Statement: st, Signature: f.alice.Sign(st)}
	return f
}

func (f *checkFixture) check(s Signed) error {
	return Check(f.keys, f.exp, func(n string) bool { return f.used[n] }, s)
}

func TestCheckAccepts(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.check(f.signed))
	// nil used means no nonce was seen yet.
	require.NoError(t, Check(f.keys, f.exp, nil, f.signed))
}

func TestCheckRejections(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(t *testing.T, f *checkFixture) Signed
		reason Reason
		detail string
	}{
		{"unsigned", func(t *testing.T, f *checkFixture) Signed {
			s := f.signed
			s.Signature = ""
			return s
		}, ReasonUnsigned, "has no signature"},
		{"unknown approver", func(t *testing.T, f *checkFixture) Signed {
			m := newKey(t, "mallory")
			st := statement(t, "mallory")
			return Signed{Statement: st, Signature: m.Sign(st)}
		}, ReasonUnknownApprover, `"mallory" is not an approver in the plan`},
		{"approver without key", func(t *testing.T, f *checkFixture) Signed {
			c := newKey(t, "carol")
			st := statement(t, "carol")
			return Signed{Statement: st, Signature: c.Sign(st)}
		}, ReasonNoKey, `"carol" has no publicKey`},
		{"forged: signed by another key", func(t *testing.T, f *checkFixture) Signed {
			m := newKey(t, "alice")
			return Signed{Statement: f.signed.Statement, Signature: m.Sign(f.signed.Statement)}
		}, ReasonForged, "signature does not match"},
		{"forged: bob's key claiming alice", func(t *testing.T, f *checkFixture) Signed {
			return Signed{Statement: f.signed.Statement, Signature: f.bob.Sign(f.signed.Statement)}
		}, ReasonForged, "signature does not match"},
		{"forged: garbage signature", func(t *testing.T, f *checkFixture) Signed {
			s := f.signed
			s.Signature = "AAAA"
			return s
		}, ReasonForged, "bad signature encoding"},
		{"tampered decision", func(t *testing.T, f *checkFixture) Signed {
			s := f.signed
			s.Decision = "reject"
			return s
		}, ReasonForged, "signature does not match"},
		{"tampered gate", func(t *testing.T, f *checkFixture) Signed {
			s := f.signed
			s.Gate = "accept-data-loss"
			return s
		}, ReasonForged, "signature does not match"},
		{"tampered run", func(t *testing.T, f *checkFixture) Signed {
			s := f.signed
			s.RunID = "another-run"
			return s
		}, ReasonForged, "signature does not match"},
		{"wrong run: signed for an earlier run", func(t *testing.T, f *checkFixture) Signed {
			st := statement(t, "alice")
			st.RunID = "an-earlier-run"
			return Signed{Statement: st, Signature: f.alice.Sign(st)}
		}, ReasonWrongRun, `signed for workflow "failover-bpm-prod" run "an-earlier-run"`},
		{"wrong run: another workflow", func(t *testing.T, f *checkFixture) Signed {
			st := statement(t, "alice")
			st.WorkflowID = "drill-bpm-prod"
			return Signed{Statement: st, Signature: f.alice.Sign(st)}
		}, ReasonWrongRun, `workflow "drill-bpm-prod"`},
		{"wrong gate", func(t *testing.T, f *checkFixture) Signed {
			st := statement(t, "alice")
			st.Gate = "accept-data-loss"
			return Signed{Statement: st, Signature: f.alice.Sign(st)}
		}, ReasonWrongGate, `signed for gate "accept-data-loss", not "start-secondary"`},
		{"replayed nonce", func(t *testing.T, f *checkFixture) Signed {
			f.used[f.signed.Nonce] = true
			return f.signed
		}, ReasonReplayed, "reuses nonce " + "%s"},
		{"missing run id", func(t *testing.T, f *checkFixture) Signed {
			st := f.signed.Statement
			st.RunID, st.WorkflowID = "", ""
			return Signed{Statement: st, Signature: f.alice.Sign(st)}
		}, ReasonMalformed, "lacks workflowId, runId"},
		{"short nonce", func(t *testing.T, f *checkFixture) Signed {
			st := f.signed.Statement
			st.Nonce = "1"
			return Signed{Statement: st, Signature: f.alice.Sign(st)}
		}, ReasonMalformed, `nonce "1" is not 32 lowercase hex digits`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			s := c.mutate(t, f)
			err := f.check(s)
			require.Error(t, err)
			assert.Equal(t, c.reason, ReasonOf(err), "%v", err)
			detail := c.detail
			if strings.Contains(detail, "%s") {
				detail = strings.ReplaceAll(detail, "%s", s.Nonce)
			}
			assert.Contains(t, err.Error(), detail)
		})
	}
}

func TestCheckReplayAfterAccept(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.check(f.signed))
	f.used[f.signed.Nonce] = true
	err := f.check(f.signed)
	assert.Equal(t, ReasonReplayed, ReasonOf(err))
	// A fresh approval by the same person is a new statement and passes.
	st := statement(t, "alice")
	require.NoError(t, f.check(Signed{Statement: st, Signature: f.alice.Sign(st)}))
}

func TestRequired(t *testing.T) {
	assert.False(t, Required(nil))
	assert.False(t, Required([]Key{{Name: "a"}, {Name: "b"}}))
	assert.True(t, Required([]Key{{Name: "a"}, {Name: "b", PublicKey: "x"}}))
	assert.Equal(t, Reason(""), ReasonOf(os.ErrNotExist))
}

func TestNonce(t *testing.T) {
	a, err := NewNonce()
	require.NoError(t, err)
	b, err := NewNonce()
	require.NoError(t, err)
	assert.True(t, ValidNonce(a), a)
	assert.NotEqual(t, a, b)
	assert.False(t, ValidNonce(strings.ToUpper(a)))
	assert.False(t, ValidNonce(a[:31]))
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, "alice")
	privPath, pubPath, err := WriteKeyPair(dir, k)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "alice.key"), privPath)

	st, err := os.Stat(privPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	loaded, err := LoadPrivateKey(privPath)
	require.NoError(t, err)
	assert.Equal(t, "alice", loaded.Name)
	assert.True(t, k.Key.Equal(loaded.Key))

	pub, err := LoadPublicKey(pubPath)
	require.NoError(t, err)
	assert.Equal(t, k.PublicKey(), pub)

	// No temp files left behind.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2)

	// Never overwritten, and the first key is intact.
	_, _, err = WriteKeyPair(dir, newKey(t, "alice"))
	require.ErrorIs(t, err, ErrExists)
	again, err := LoadPrivateKey(privPath)
	require.NoError(t, err)
	assert.True(t, k.Key.Equal(again.Key))

	// A lone .pub also blocks, and no .key is left behind.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bob.pub"), []byte("x\n"), 0o644))
	_, _, err = WriteKeyPair(dir, newKey(t, "bob"))
	require.ErrorIs(t, err, ErrExists)
	assert.NoFileExists(t, filepath.Join(dir, "bob.key"))
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, "alice")
	good, err := MarshalPrivateKey(k)
	require.NoError(t, err)

	write := func(name string, data []byte, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, perm))
		require.NoError(t, os.Chmod(p, perm))
		return p
	}
	_, err = LoadPrivateKey(write("open.key", good, 0o644))
	require.ErrorContains(t, err, "mode 0644 lets others read it")

	_, err = LoadPrivateKey(write("empty.key", nil, 0o600))
	require.ErrorContains(t, err, "no PEM block")

	_, err = LoadPrivateKey(write("cert.key", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600))
	require.ErrorContains(t, err, `PEM block is "CERTIFICATE"`)

	_, err = LoadPrivateKey(write("trailing.key", append(append([]byte{}, good...), "junk"...), 0o600))
	require.ErrorContains(t, err, "unexpected data after")

	_, err = LoadPrivateKey(filepath.Join(dir, "missing.key"))
	require.ErrorContains(t, err, "missing.key")

	// A key without the name line still loads (e.g. made by openssl).
	noName := bytes.SplitN(good, []byte("\n"), 2)[1]
	loaded, err := LoadPrivateKey(write("plain.key", noName, 0o600))
	require.NoError(t, err)
	assert.Equal(t, "", loaded.Name)
	assert.True(t, k.Key.Equal(loaded.Key))

	_, err = LoadPublicKey(write("bad.pub", []byte("hello\n"), 0o644))
	require.ErrorIs(t, err, ErrBadPublicKey)
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"alice", "ops.lead", "a", "jane_doe-2", "bob@example.com"} {
		assert.NoError(t, ValidName(ok), ok)
	}
	for _, bad := range []string{"", ".hidden", "../x", "a/b", "with space", strings.Repeat("a", 65)} {
		assert.Error(t, ValidName(bad), bad)
	}
	_, err := GenerateKey("../etc")
	require.Error(t, err)
}

func TestParsePublicKeyAcceptsPlanForm(t *testing.T) {
	k := newKey(t, "alice")
	pub, err := ParsePublicKey("  " + k.PublicKey() + "\n")
	require.NoError(t, err)
	assert.True(t, ed25519.PublicKey(pub).Equal(k.Key.Public()))
}

func TestParsePublicKeyRefusesWeakKeys(t *testing.T) {
	zero := make([]byte, 32)
	identity := make([]byte, 32)
	identity[0] = 1
	// y = p+1, a non-canonical encoding of the identity.
	nonCanonical := bytes.Repeat([]byte{0xff}, 32)
	nonCanonical[0], nonCanonical[31] = 0xee, 0x7f
	for name, raw := range map[string][]byte{"zero": zero, "identity": identity, "non-canonical": nonCanonical} {
		_, err := ParsePublicKey(base64.StdEncoding.EncodeToString(raw))
		require.ErrorIs(t, err, ErrBadPublicKey, name)
	}
	// The reason weak keys matter: the zero key accepts a zero signature
	// over about one statement in four, this one among them (found by
	// FuzzVerify).
	st := Statement{WorkflowID: "w", RunID: "r", Gate: "g", Decision: "approve", Nonce: strings.Repeat("a", NonceLen), Approver: "alice"}
	require.True(t, ed25519.Verify(zero, st.Canonical(), make([]byte, 64)))
	err := Verify(base64.StdEncoding.EncodeToString(zero), st, base64.StdEncoding.EncodeToString(make([]byte, 64)))
	require.ErrorIs(t, err, ErrBadPublicKey)
}

func TestApproveMakesTheSignalPayload(t *testing.T) {
	k := newKey(t, "alice")
	s, err := k.Approve("failover-bpm-prod", "run-1", "start-secondary", "approve", "", "racks cabled")
	require.NoError(t, err)
	assert.Equal(t, "alice", s.Approver)
	assert.True(t, ValidNonce(s.Nonce))
	keys := []Key{{Name: "alice", PublicKey: k.PublicKey()}}
	require.NoError(t, Check(keys, Expect{WorkflowID: "failover-bpm-prod", RunID: "run-1", Gate: "start-secondary"}, nil, s))

	// The JSON is the approve signal's payload, every value a string.
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.ElementsMatch(t, []string{"workflowId", "runId", "gate", "decision", "nonce", "approver", "comment", "signature"}, slices.Collect(maps.Keys(m)))
	for k, v := range m {
		assert.IsType(t, "", v, k)
	}

	_, err = k.Approve("w", "r", "g", "approve", "bob", "")
	require.ErrorContains(t, err, `belongs to "alice", not "bob"`)
	_, err = k.Approve("w", "", "g", "approve", "", "")
	require.ErrorContains(t, err, "missing runId")
	anon := &PrivateKey{Key: k.Key}
	_, err = anon.Approve("w", "r", "g", "approve", "", "")
	require.ErrorContains(t, err, "no approver name")
}

func TestFingerprint(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	fa := Fingerprint(a.PublicKey())
	assert.True(t, strings.HasPrefix(fa, "SHA256:"), fa)
	assert.Len(t, fa, len("SHA256:")+43)
	assert.Equal(t, fa, Fingerprint(" "+a.PublicKey()+"\n"))
	assert.NotEqual(t, fa, Fingerprint(b.PublicKey()))
	assert.Equal(t, "", Fingerprint("junk"))
}
