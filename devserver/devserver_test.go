package devserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// The attributes drover registers (the package itself knows none of them).
var testSearchAttributes = map[string]enumspb.IndexedValueType{
	"DroverPlan":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"DroverKind":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"DroverPhase": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

var (
	planKey = temporal.NewSearchAttributeKeyKeyword("DroverPlan")
	kindKey = temporal.NewSearchAttributeKeyKeyword("DroverKind")
)

func echoWorkflow(_ workflow.Context, in string) (string, error) { return "echo: " + in, nil }

func dialTest(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdkLogger{zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Sugar()},
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// listIDs runs a visibility query and returns the workflow IDs it finds.
func listIDs(ctx context.Context, c client.Client, query string) ([]string, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids, nil
}

func TestInMemoryServerRunsWorkflowsSchedulesAndUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	began := time.Now()
	s, err := Start(ctx, Options{
		SearchAttributes: testSearchAttributes,
		Logger:           zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	t.Logf("in-memory Start took %s (frontend %s, UI %s)", time.Since(began), s.FrontendAddress(), s.UIURL())
	t.Cleanup(func() { _ = s.Stop() })

	host, _, err := net.SplitHostPort(s.FrontendAddress())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, "default", s.Namespace())
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, s.UIURL())

	c := dialTest(t, s)

	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, 72*time.Hour, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())

	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	for name, typ := range testSearchAttributes {
		assert.Equal(t, typ, sas.GetCustomAttributes()[name], "search attribute %s", name)
	}

	// A workflow runs to completion on a worker and is found by DroverPlan.
	const tq = "devserver-test"
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(echoWorkflow, workflow.RegisterOptions{Name: "echo"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "devserver-echo",
		TaskQueue:             tq,
		TypedSearchAttributes: temporal.NewSearchAttributes(planKey.ValueSet("bpm-golden"), kindKey.ValueSet("test")),
	}, "echo", "hello")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "echo: hello", out)

	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := listIDs(ctx, c, `DroverPlan = "bpm-golden" AND ExecutionStatus = "Completed"`)
		require.NoError(ct, err)
		assert.Equal(ct, []string{"devserver-echo"}, ids)
	}, 20*time.Second, 50*time.Millisecond)
	ids, err := listIDs(ctx, c, `DroverPlan = "another-plan"`)
	require.NoError(t, err)
	assert.Empty(t, ids, "a query on another plan must not match")

	// A schedule fires: the scheduler runs on the server's per-namespace worker.
	sched, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   "devserver-schedule",
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action: &client.ScheduleWorkflowAction{
			ID: "devserver-scheduled", Workflow: "echo", Args: []any{"tick"}, TaskQueue: tq,
			TypedSearchAttributes: temporal.NewSearchAttributes(planKey.ValueSet("scheduled-plan")),
		},
		TriggerImmediately: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sched.Delete(context.Background()) })
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := listIDs(ctx, c, `DroverPlan = "scheduled-plan" AND ExecutionStatus = "Completed"`)
		require.NoError(ct, err)
		assert.Len(ct, ids, 1)
	}, 30*time.Second, 100*time.Millisecond)

	// The Web UI serves its embedded page and the assets it loads.
	page := httpGet(t, s.UIURL()+"/")
	assert.Contains(t, page, "<!doctype html>")
	asset := regexp.MustCompile(`/_app/immutable/[^"']+\.js`).FindString(page)
	require.NotEmpty(t, asset, "the UI page names no script under /_app/immutable")
	assert.NotEmpty(t, httpGet(t, s.UIURL()+asset))

	// The frontend's HTTP API answers too.
	assert.Contains(t, httpGet(t, "http://"+s.HTTPAddress()+"/api/v1/namespaces/default"), `"name":"default"`)

	// Stop closes the ports, and a second Stop is harmless.
	uiAddr := strings.TrimPrefix(s.UIURL(), "http://")
	w.Stop()
	c.Close()
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop())
	for _, addr := range []string{s.FrontendAddress(), s.HTTPAddress(), uiAddr} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
		}
		assert.Error(t, err, "%s still accepts connections after Stop", addr)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

// The reopen half of TestDBFileOutlivesTheProcess runs in a child process, so
// nothing held in this process's memory (the SQLite plugin keeps connections
// for the process's life) can make it pass.
const (
	envReopenDB = "DEVSERVER_TEST_REOPEN_DB"
	envReopenWF = "DEVSERVER_TEST_REOPEN_WF"
)

func TestDBFileOutlivesTheProcess(t *testing.T) {
	if os.Getenv(envReopenDB) != "" {
		reopenInChild(t)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	db := filepath.Join(dir, "drover.db")

	began := time.Now()
	s, err := Start(ctx, Options{DBFile: db, UIPort: -1, SearchAttributes: testSearchAttributes, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Logf("Start on a new file took %s", time.Since(began))
	t.Cleanup(func() { _ = s.Stop() })
	assert.Empty(t, s.UIURL(), "UIPort -1 runs no UI")

	// No worker: the workflow stays running, as a DR run does across a restart.
	c := dialTest(t, s)
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "devserver-persisted", TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(planKey.ValueSet("persisted-plan")),
	}, "echo", "later")
	require.NoError(t, err)
	c.Close()
	require.NoError(t, s.Stop())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".new-", "schema set-up left a temporary file")
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDBFileOutlivesTheProcess$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envReopenDB+"="+db, envReopenWF+"=devserver-persisted")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "reopen in a child process:\n%s", out)
	require.Contains(t, string(out), "reopened: devserver-persisted running", "child output:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "took") {
			t.Logf("child: %s", strings.TrimSpace(line))
		}
	}
}

// reopenInChild starts on the parent's file, finds the workflow the parent
// started, and registers one more search attribute in the existing namespace.
func reopenInChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sas := map[string]enumspb.IndexedValueType{"DroverSite": enumspb.INDEXED_VALUE_TYPE_KEYWORD}
	for k, v := range testSearchAttributes {
		sas[k] = v
	}
	began := time.Now()
	s, err := Start(ctx, Options{DBFile: os.Getenv(envReopenDB), UIPort: -1, SearchAttributes: sas, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Logf("Start on an existing file took %s", time.Since(began))
	defer func() { require.NoError(t, s.Stop()) }()
	c := dialTest(t, s)

	wf := os.Getenv(envReopenWF)
	desc, err := c.DescribeWorkflowExecution(ctx, wf, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	ids, err := listIDs(ctx, c, `DroverPlan = "persisted-plan"`)
	require.NoError(t, err)
	require.Equal(t, []string{wf}, ids)

	// The attribute added on this start is usable at once.
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "devserver-site", TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("DroverSite").ValueSet("secondary")),
	}, "echo", "x")
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := listIDs(ctx, c, `DroverSite = "secondary"`)
		require.NoError(ct, err)
		assert.Equal(ct, []string{"devserver-site"}, ids)
	}, 20*time.Second, 50*time.Millisecond)
	fmt.Printf("reopened: %s running\n", wf)
}
