package starter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
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
