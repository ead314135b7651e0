package approval

import (
	"errors"
	"fmt"
)

// Signed is a statement with its signature: the fields a signed approve
// signal carries. Marshalled to JSON it is the signal's payload: gate,
// approver, decision, comment (as for unsigned approvals) plus workflowId,
// runId, nonce and signature.
type Signed struct {
	Statement
	// Signature is Sign's output: base64 of the ed25519 signature over
	// Statement.Canonical().
	Signature string `json:"signature"`
}

// Key is one approver's public key as the plan lists it
// (approvers[].publicKey); PublicKey may be empty when the plan gives none.
type Key struct {
	Name      string
	PublicKey string
}

// Expect is what the running workflow knows and an approval must match.
type Expect struct {
	WorkflowID string
	RunID      string
	// Gate is the gate the approval is being counted for.
	Gate string
}

// Reason classifies a rejected approval.
type Reason string

// Reasons, in the order Check tests them.
const (
	// ReasonUnsigned: the approval carries no signature.
	ReasonUnsigned Reason = "unsigned"
	// ReasonUnknownApprover: the approver is not in the plan.
	ReasonUnknownApprover Reason = "unknown-approver"
	// ReasonNoKey: the plan lists the approver without a usable publicKey,
	// so nothing they send can be verified.
	ReasonNoKey Reason = "no-key"
	// ReasonMalformed: a field the signature needs is missing or the nonce
	// is not NonceLen lowercase hex digits.
	ReasonMalformed Reason = "malformed"
	// ReasonForged: the signature does not decode or does not verify
	// against the approver's key (another key, or a field changed).
	ReasonForged Reason = "forged"
	// ReasonWrongRun: correctly signed, but for another workflow or run.
	ReasonWrongRun Reason = "wrong-run"
	// ReasonWrongGate: correctly signed, but for another gate.
	ReasonWrongGate Reason = "wrong-gate"
	// ReasonReplayed: correctly signed, but its nonce was already used.
	ReasonReplayed Reason = "replayed"
)

// Rejection is why Check refused an approval.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string { return string(r.Reason) + ": " + r.Detail }

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of a Check error, or "" when err is not a
// Rejection.
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// Required reports whether the plan demands signed approvals: as soon as
// one approver has a public key, every approval must be signed. (A plan
// that mixed signed and unsigned approvers would let anyone forge the
// unsigned ones, so keyless approvers then cannot approve at all.)
func Required(keys []Key) bool {
	for _, k := range keys {
		if k.PublicKey != "" {
			return true
		}
	}
	return false
}

// Check decides whether a signed approval may be counted for exp: it
// returns nil to accept, or a *Rejection saying why not. used reports
// whether a nonce was already accepted in this run (nil: none was); the
// caller records s.Nonce after an accept.
//
// Check is pure and deterministic, safe in workflow code: keys is scanned in
// order, used is only called, nothing reads the clock or the network.
// Whether the approver may approve this gate at all, and whether the
// decision is one the gate offers, is the caller's business.
func Check(keys []Key, exp Expect, used func(nonce string) bool, s Signed) error {
	if s.Signature == "" {
		return reject(ReasonUnsigned, "approval from %q for gate %q has no signature; the plan requires signed approvals (drover approve --key FILE)", s.Approver, s.Gate)
	}
	key, found := findKey(keys, s.Approver)
	if !found {
		return reject(ReasonUnknownApprover, "%q is not an approver in the plan", s.Approver)
	}
	if key.PublicKey == "" {
		return reject(ReasonNoKey, "approver %q has no publicKey in the plan, so their approvals cannot be verified", s.Approver)
	}
	if _, err := ParsePublicKey(key.PublicKey); err != nil {
		return reject(ReasonNoKey, "approver %q: the plan's publicKey is unusable: %v", s.Approver, err)
	}
	if missing := missingFields(s.Statement); missing != "" {
		return reject(ReasonMalformed, "approval from %q lacks %s", s.Approver, missing)
	}
	if !ValidNonce(s.Nonce) {
		return reject(ReasonMalformed, "approval from %q: nonce %q is not %d lowercase hex digits", s.Approver, truncate(s.Nonce, 80), NonceLen)
	}
	if err := Verify(key.PublicKey, s.Statement, s.Signature); err != nil {
		return reject(ReasonForged, "approval claiming to be from %q for gate %q: %v", s.Approver, s.Gate, err)
	}
	if s.WorkflowID != exp.WorkflowID || s.RunID != exp.RunID {
		return reject(ReasonWrongRun, "approval from %q was signed for workflow %q run %q, this is workflow %q run %q",
			s.Approver, s.WorkflowID, s.RunID, exp.WorkflowID, exp.RunID)
	}
	if s.Gate != exp.Gate {
		return reject(ReasonWrongGate, "approval from %q was signed for gate %q, not %q", s.Approver, s.Gate, exp.Gate)
	}
	if used != nil && used(s.Nonce) {
		return reject(ReasonReplayed, "approval from %q for gate %q reuses nonce %s", s.Approver, s.Gate, s.Nonce)
	}
	return nil
}

func findKey(keys []Key, name string) (Key, bool) {
	for _, k := range keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

func missingFields(st Statement) string {
	var missing string
	add := func(name, v string) {
		if v != "" {
			return
		}
		if missing != "" {
			missing += ", "
		}
		missing += name
	}
	add("workflowId", st.WorkflowID)
	add("runId", st.RunID)
	add("gate", st.Gate)
	add("decision", st.Decision)
	add("nonce", st.Nonce)
	add("approver", st.Approver)
	return missing
}

// NonceLen is the length of a nonce: 128 random bits in hex.
const NonceLen = 32

// ValidNonce reports whether n is NonceLen lowercase hex digits.
func ValidNonce(n string) bool {
	if len(n) != NonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
