package workflows

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/report"
)

// One sender with a 1 MiB approver field and thousands of junk signals must
// not jam a run (issue 11 item 12): the real reject still decides the gate,
// the status query stays small enough for Temporal to answer, and the report
// is written with the ignored signals bounded and counted.
func TestOversizedAndNumerousSignalsDoNotJamTheRun(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	huge := strings.Repeat("m", 1<<20)
	const junk = 3000
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: huge, Decision: contract.DecisionApprove})
		env.SignalWorkflow(contract.SignalApprove, map[string]any{"gate": huge, "approver": "ops", "decision": "approve", huge: "x"})
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: "ops", Decision: contract.DecisionApprove, Comment: huge})
	}, time.Minute)
	// In batches: the test environment queues at most about a thousand
	// signals per callback.
	const batch = 100
	for b := range junk / batch {
		env.RegisterDelayedCallback(func() {
			for i := b * batch; i < (b+1)*batch; i++ {
				env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: fmt.Sprintf("mallory-%d", i), Decision: contract.DecisionApprove})
			}
		}, time.Minute+time.Duration(b+1)*time.Second)
	}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: "ops", Decision: contract.DecisionReject, Comment: "wait for the primary", SignalID: "real-one"})
	}, 5*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, DeclaredAt: time.Now().Add(3 * time.Hour)})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "accept-data-loss: reject", "the real reject decided the gate")

	v, err := env.QueryWorkflow(contract.QueryStatus)
	require.NoError(t, err)
	var st Status
	require.NoError(t, v.Get(&st))
	payload, err := converter.GetDefaultDataConverter().ToPayload(st)
	require.NoError(t, err)
	require.Less(t, len(payload.GetData()), 64<<10, "the status query stays far below Temporal's payload limits")
	require.Len(t, st.Ignored, maxIgnored)
	require.Equal(t, junk+3-(maxIgnored-1), st.Ignored[0].Dropped, "the dropped signals are counted")
	last := st.Ignored[len(st.Ignored)-1]
	require.Equal(t, fmt.Sprintf("mallory-%d", junk-1), last.Approver, "the newest ignored signals are kept")
	var gate GateRecord
	for _, g := range st.Gates {
		if g.Name == contract.GateAcceptDataLoss {
			gate = g
		}
	}
	require.Equal(t, contract.DecisionReject, gate.Outcome)
	require.Len(t, gate.Approvals, 1)
	require.Equal(t, "real-one", gate.Approvals[0].Signal)

	reports, err := filepath.Glob(filepath.Join(e.dir, "store", "cell", "reports", "*.json"))
	require.NoError(t, err)
	require.Len(t, reports, 1, "the report is written")
	rep, err := report.Read(reports[0])
	require.NoError(t, err)
	require.Equal(t, "failed", rep.Outcome)
	require.Len(t, rep.Ignored, maxIgnored)
}

// Every field is bounded before it is kept, and quoted text is clipped.
func TestOversizedFieldsAreMalformedAndClipped(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte runes
	for field := range fieldLimits {
		raw := map[string]any{"gate": "g", "approver": "ops", "decision": "approve", field: huge}
		a, err := decodeApproval(raw)
		require.Error(t, err, field)
		require.Contains(t, err.Error(), fmt.Sprintf("field %q is %d bytes, at most %d", field, len(huge), fieldLimits[field]))
		for _, v := range []string{a.Gate, a.Approver, a.Decision, a.Comment, a.WorkflowID, a.RunID, a.Nonce, a.Signature, a.SignalID} {
			require.LessOrEqual(t, len(v), fieldLimits[field]+len("…"), field)
		}
	}
	_, err := decodeApproval(map[string]any{"gate": "g", "approver": "ops", "decision": "approve", huge: "x"})
	require.Error(t, err)
	require.Less(t, len(err.Error()), 200, "an unknown field's name is clipped in the reason")
	many := map[string]any{}
	for i := range 10000 {
		many[fmt.Sprint(i)] = "x"
	}
	_, err = decodeApproval(many)
	require.ErrorContains(t, err, "10000 fields")
	require.Equal(t, "ab…", clip("abc", 2))
	require.Equal(t, "é…", clip("éé", 3), "cut on a rune boundary")
}

// The run echoes the sender's signal id with what it did, so `drover
// approve` can tell its own signal from an earlier one (issue 11 item 14).
func (s *WorkflowSuite) TestGateEchoesTheSignalIDOfCountedAndIgnored() {
	s.approveLater(time.Minute, Approval{Gate: "two-person", Approver: "alice", Decision: contract.DecisionApprove, SignalID: "first"})
	s.approveLater(2*time.Minute, Approval{Gate: "two-person", Approver: "alice", Decision: contract.DecisionApprove, SignalID: "second"})
	s.approveLater(3*time.Minute, Approval{Gate: "two-person", Approver: "bob", Decision: contract.DecisionApprove, SignalID: "third"})
	out, err := s.runGate("two-person")
	s.Require().NoError(err)
	s.Equal(contract.DecisionApprove, out)
	st := s.status()
	s.Require().Len(st.Gates[0].Approvals, 2)
	s.Equal("first", st.Gates[0].Approvals[0].Signal)
	s.Equal("third", st.Gates[0].Approvals[1].Signal)
	s.Require().Len(st.Ignored, 1)
	s.Equal("second", st.Ignored[0].Signal)
	s.Contains(st.Ignored[0].Reason, "already decided")
}
