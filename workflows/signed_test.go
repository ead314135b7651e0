package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

const (
	testWorkflowID = "default-test-workflow-id"
	testRunID      = "default-test-run-id"
)

type signers struct{ alice, bob, mallory *approval.PrivateKey }

func newSigners(t *testing.T) signers {
	t.Helper()
	var s signers
	var err error
	for _, k := range []struct {
		name string
		dst  **approval.PrivateKey
	}{{"alice", &s.alice}, {"bob", &s.bob}, {"mallory", &s.mallory}} {
		*k.dst, err = approval.GenerateKey(k.name)
		require.NoError(t, err)
	}
	return s
}

// signedPlan gives alice and bob keys; mallory has a key the plan does not
// know.
func signedPlan(s signers) plan.Plan {
	p := testPlan()
	p.Approvers = []plan.Approver{{Name: "alice", PublicKey: s.alice.PublicKey()}, {Name: "bob", PublicKey: s.bob.PublicKey()}}
	p.Gates = []plan.Gate{
		{Name: "one", Approvers: []string{"alice", "bob"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
		{Name: "two-person", Approvers: []string{"alice", "bob"}, Quorum: 2, Timeout: plan.Duration(time.Hour)},
	}
	return p
}

func sign(t *testing.T, k *approval.PrivateKey, wf, run, gate, decision, as string) approval.Signed {
	t.Helper()
	s, err := k.Approve(wf, run, gate, decision, as, "")
	require.NoError(t, err)
	return s
}

func runSignedGate(t *testing.T, p plan.Plan, gate string, signals ...any) (string, Status) {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(gateTestWorkflow)
	for i, sig := range signals {
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(contract.SignalApprove, sig) }, time.Duration(i+1)*time.Minute)
	}
	env.ExecuteWorkflow(gateTestWorkflow, p, gate)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var out string
	require.NoError(t, env.GetWorkflowResult(&out))
	v, err := env.QueryWorkflow(contract.QueryStatus)
	require.NoError(t, err)
	var st Status
	require.NoError(t, v.Get(&st))
	return out, st
}

func TestSignedApprovalCountedWithSigner(t *testing.T) {
	s := newSigners(t)
	out, st := runSignedGate(t, signedPlan(s), "one", sign(t, s.alice, testWorkflowID, testRunID, "one", contract.DecisionApprove, "alice"))
	require.Equal(t, contract.DecisionApprove, out)
	rec := st.Gates[0].Approvals[0]
	require.True(t, rec.Signed)
	require.Equal(t, approval.Fingerprint(s.alice.PublicKey()), rec.Signer)
}

func TestForgedReplayedWrongRunAndUnsignedApprovalsAreRejected(t *testing.T) {
	s := newSigners(t)
	p := signedPlan(s)
	good := sign(t, s.alice, testWorkflowID, testRunID, "two-person", contract.DecisionApprove, "alice")
	forged := sign(t, s.mallory, testWorkflowID, testRunID, "two-person", contract.DecisionApprove, "mallory")
	forged.Approver = "bob" // mallory signs in bob's name
	forged.Signature = s.mallory.Sign(forged.Statement)
	tampered := sign(t, s.bob, testWorkflowID, testRunID, "two-person", contract.DecisionReject, "bob")
	tampered.Decision = contract.DecisionApprove // the signature covered reject
	wrongRun := sign(t, s.bob, testWorkflowID, "another-run", "two-person", contract.DecisionApprove, "bob")
	out, st := runSignedGate(t, p, "two-person",
		good,
		good, // replayed: same nonce
		forged,
		tampered,
		wrongRun,
		Approval{Gate: "two-person", Approver: "bob", Decision: contract.DecisionApprove}, // unsigned
		sign(t, s.bob, testWorkflowID, testRunID, "one", contract.DecisionApprove, "bob"), // a gate that is not open
		sign(t, s.bob, testWorkflowID, testRunID, "two-person", contract.DecisionApprove, "bob"),
	)
	require.Equal(t, contract.DecisionApprove, out)
	reasons := make([]string, len(st.Ignored))
	for i, ig := range st.Ignored {
		reasons[i] = ig.Reason
	}
	require.Len(t, reasons, 6, "%q", reasons)
	require.Contains(t, reasons[0], "replayed")
	require.Contains(t, reasons[1], "forged")
	require.Contains(t, reasons[2], "forged")
	require.Contains(t, reasons[3], "wrong-run")
	require.Contains(t, reasons[4], "unsigned")
	require.Contains(t, reasons[5], `gate "one" is not open`)
	g := st.Gates[0]
	require.Len(t, g.Approvals, 2, "a two-person gate needs two distinct signers")
	require.Equal(t, "alice", g.Approvals[0].Approver)
	require.Equal(t, "bob", g.Approvals[1].Approver)
}
