package starter

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/workflows"
)

// A second failover while one runs is refused, names the run in progress
// and exits non-zero (issue 11 item 13). No worker polls, so the first run
// stays open.
func TestSecondFailoverIsRefusedWhileOneRuns(t *testing.T) {
	addr := sharedServer(t)
	t.Setenv("DROVER_LAB_DIR", t.TempDir())
	conn := []string{"--address", addr, "--namespace", testNamespace}
	code, out, errs := runDrover(append([]string{"failover", "--plan", labPlan, "--planned"}, conn...)...)
	require.Equal(t, ExitOK, code, errs)
	id := contract.SwitchoverID("lab")
	require.Contains(t, out, "started "+id)

	code, out, errs = runDrover(append([]string{"failover", "--plan", labPlan, "--unplanned"}, conn...)...)
	assert.Equal(t, ExitBadInput, code, "stdout: %s", out)
	assert.NotContains(t, out, "started")
	assert.Contains(t, errs, "a run is already in progress: workflow "+id+" (run ")

	code, _, errs = runDrover(append([]string{"failback", "--plan", labPlan}, conn...)...)
	assert.Equal(t, ExitBadInput, code, "a failback shares the id: refused too")
	assert.Contains(t, errs, "already in progress")
}

// drover approve reports what the run did with this signal, not an earlier
// approval by the same approver (issue 11 item 14): alice approved once
// (counted), then approved again; the run ignored the second, and the CLI
// must say so rather than find the first and call it counted.
func TestApproveReportsWhatTheRunDidWithThisSignal(t *testing.T) {
	st := workflows.Status{
		Gates: []workflows.GateRecord{{Name: "start-secondary", Outcome: workflows.OutcomePending, Quorum: 2,
			Approvals: []workflows.ApprovalRecord{{Approver: "alice", Decision: "approve", Signal: "first"}}}},
		Ignored: []workflows.IgnoredSignal{{Gate: "start-secondary", Approver: "alice", Signal: "second",
			Reason: `"alice" already decided "approve" at this gate`}},
	}
	v := signalVerdict(st, "second")
	assert.False(t, v.counted, "the second signal was not counted")
	assert.True(t, v.ignored)
	assert.Contains(t, v.reason, "already decided")

	v = signalVerdict(st, "first")
	assert.True(t, v.counted)
	assert.Equal(t, workflows.OutcomePending, v.outcome)

	assert.Equal(t, verdict{}, signalVerdict(st, "third"), "not handled yet: keep waiting")

	// The signed form carries the id beside the signed fields, as the run
	// decodes it.
	b, err := json.Marshal(signedSignal{Signed: approval.Signed{Statement: approval.Statement{Gate: "g"}, Signature: "s"}, SignalID: "id"})
	require.NoError(t, err)
	assert.Contains(t, string(b), `"signalId":"id"`)
	assert.Contains(t, string(b), `"gate":"g"`)
}
