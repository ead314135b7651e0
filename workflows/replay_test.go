package workflows

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayCommittedHistories replays the histories of shipped workflows
// (recorded from real runs on the embedded server by the end-to-end tests
// with DROVER_RECORD_HISTORIES=workflows/testdata/histories) against the
// current code. A change that would break a running workflow fails here:
// make it behind workflow.GetVersion instead.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no committed histories to replay")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			for _, wf := range []any{RestartWorkflow, VerifyWorkflow, BringUpWorkflow, ShutdownWorkflow, BackupWorkflow,
				ValidateWorkflow, DrillWorkflow, FailoverWorkflow, FailbackWorkflow, RPOMonitorWorkflow} {
				r.RegisterWorkflow(wf)
			}
			in, err := os.Open(f)
			require.NoError(t, err)
			defer in.Close()
			h, err := client.HistoryFromJSON(in, client.HistoryJSONOptions{})
			require.NoError(t, err)
			ids, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".id")
			require.NoError(t, err, "each history has its workflow and run id beside it")
			parts := strings.Fields(string(ids))
			require.Len(t, parts, 2)
			require.NoError(t, r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: parts[0], RunID: parts[1]},
			}))
		})
	}
}
