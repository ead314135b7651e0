package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
)

// TestDemoEndToEnd runs `drover demo` as a user does, then reopens the
// Temporal database it left behind and finds its runs by DroverPlan, as the
// Web UI's filter does.
func TestDemoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, droverBin, "demo", "--quick", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, err, "drover demo failed\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())

	text := out.String()
	// A quiet demo: the narrative only; the log lines are in the file it names.
	require.Contains(t, text, "log lines go to "+filepath.Join(dir, "demo.log"))
	require.NotRegexp(t, `\t(INFO|WARN|DEBUG)\t`, text+errb.String(), "no log line unless --verbose")
	logs, err := os.ReadFile(filepath.Join(dir, "demo.log"))
	require.NoError(t, err)
	require.Contains(t, string(logs), "INFO")
	require.Contains(t, text, "Web UI: http://127.0.0.1:")
	require.Contains(t, text, "tier 1: db")
	require.Contains(t, text, "tier 2: app")
	require.Contains(t, text, "tier 3: web")
	require.Contains(t, text, "cell stopped in reverse order: web → app → db")
	for _, level := range []string{"system", "application", "monitoring"} {
		require.Regexp(t, `verify `+level+` +passed=true`, text)
	}

	// The demo's processes are gone: each stop took effect.
	for _, node := range []string{"db", "app", "web"} {
		require.NoFileExists(t, filepath.Join(dir, node+".pid"))
	}

	srv, err := devserver.Start(ctx, devserver.Options{DBFile: filepath.Join(dir, "temporal.db"), UIPort: -1,
		SearchAttributes: contract.SearchAttributes})
	require.NoError(t, err)
	defer srv.Stop()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c.Close()

	var kinds []string
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: srv.Namespace(), Query: `DroverPlan = "demo"`,
		})
		if err != nil {
			return false
		}
		kinds = kinds[:0]
		for _, e := range resp.Executions {
			kinds = append(kinds, e.GetType().GetName())
		}
		return len(kinds) >= 4
	}, 30*time.Second, 200*time.Millisecond, "runs filterable by DroverPlan: %v", kinds)
	joined := strings.Join(kinds, ",")
	for _, wf := range []string{"BringUpWorkflow", "RestartWorkflow", "VerifyWorkflow", "ShutdownWorkflow"} {
		require.Contains(t, joined, wf)
	}
	recordHistories(t, ctx, c, srv.Namespace(), `DroverPlan = "demo"`)
}

// recordHistories writes the histories of the runs a query finds to
// $DROVER_RECORD_HISTORIES (one JSON file per workflow type), for the
// replay tests in workflows/ that keep shipped workflows deterministic.
func recordHistories(t *testing.T, ctx context.Context, c client.Client, namespace, query string) {
	recordHistoriesOf(t, ctx, c, namespace, query, nil, "")
}

// recordHistoriesOf records only the given workflow types (all when nil),
// each as TYPE+suffix.json.
func recordHistoriesOf(t *testing.T, ctx context.Context, c client.Client, namespace, query string, types []string, suffix string) {
	dir := os.Getenv("DROVER_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query})
	require.NoError(t, err)
	for _, e := range resp.Executions {
		if types != nil && !slices.Contains(types, e.GetType().GetName()) {
			continue
		}
		it := c.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h := &historypb.History{}
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			h.Events = append(h.Events, ev)
		}
		data, err := protojson.Marshal(h)
		require.NoError(t, err)
		name := filepath.Join(dir, e.GetType().GetName()+suffix+".json")
		require.NoError(t, os.WriteFile(name, data, 0o644))
		// Replay needs the original ids: child workflow ids derive from them.
		ids := e.GetExecution().GetWorkflowId() + "\n" + e.GetExecution().GetRunId() + "\n"
		require.NoError(t, os.WriteFile(strings.TrimSuffix(name, ".json")+".id", []byte(ids), 0o644))
		t.Logf("recorded %s (%d events)", name, len(h.Events))
	}
}
