package approval

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// The seed corpus is committed in testdata/fuzz; CI runs these with -fuzz
// for a bounded time.

func FuzzParsePublicKey(f *testing.F) {
	f.Add("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("")
	f.Add("====")
	f.Add(" AAAA\n")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParsePublicKey(s)
		if err != nil {
			if key != nil {
				t.Fatalf("error %v with a key", err)
			}
			return
		}
		if len(key) != ed25519.PublicKeySize {
			t.Fatalf("accepted a %d-byte key", len(key))
		}
		// Strict base64: exactly one text form per key.
		if FormatPublicKey(key) != strings.TrimSpace(s) {
			t.Fatalf("%q parsed but formats as %q", s, FormatPublicKey(key))
		}
	})
}

func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	st := Statement{WorkflowID: "w", RunID: "r", Gate: "g", Decision: "approve", Nonce: strings.Repeat("a", NonceLen), Approver: "alice"}
	f.Add(FormatPublicKey(seed.Public().(ed25519.PublicKey)), Sign(seed, st), "w", "r", "g", "approve", "alice")
	f.Add("", "", "", "", "", "", "")
	f.Add("AAAA", "AAAA", "w", "r", "g", "reject", "bob")
	f.Fuzz(func(t *testing.T, pub, sig, wf, run, gate, decision, approver string) {
		s := Statement{WorkflowID: wf, RunID: run, Gate: gate, Decision: decision, Nonce: st.Nonce, Approver: approver}
		err := Verify(pub, s, sig)
		if err == nil {
			// Only the one real signature over the one real statement
			// verifies; anything else accepted would be a forgery.
			if s != st || strings.TrimSpace(pub) != FormatPublicKey(seed.Public().(ed25519.PublicKey)) {
				t.Fatalf("verified a statement nobody signed: %+v with key %q", s, pub)
			}
		}
		if raw, perr := ParseSignature(sig); perr == nil {
			if len(raw) != ed25519.SignatureSize || base64.StdEncoding.EncodeToString(raw) != strings.TrimSpace(sig) {
				t.Fatalf("signature %q parsed to %d bytes", sig, len(raw))
			}
		}
		// Check must never panic, whatever the payload.
		_ = Check([]Key{{Name: approver, PublicKey: pub}}, Expect{WorkflowID: "w", RunID: "r", Gate: "g"}, nil,
			Signed{Statement: s, Signature: sig})
	})
}
