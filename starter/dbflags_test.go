package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/devserver/pgtest"
)

// One throwaway PostgreSQL cluster for this package's tests.
var pg pgtest.Shared

func TestDBFlagsRejectBadInput(t *testing.T) {
	t.Setenv("DROVER_TEST_UNSET_PW", "")
	os.Unsetenv("DROVER_TEST_UNSET_PW")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--db", "mysql://u@h/db"}, "--db: want sqlite or postgres://"},
		{[]string{"--db", "hunter2"}, "not a URL"},
		{[]string{"--db", "postgres://u:hunter2@h/db"}, "secret reference"},
		{[]string{"--db", "postgres://h/db"}, "no user"},
		{[]string{"--db-password", "env:PGPASSWORD"}, "only with --db postgres"},
		{[]string{"--db", "postgres://u@h/db", "--db-password", "hunter2"}, "not a secret reference"},
		{[]string{"--db", "postgres://u@h/db", "--db-password", "env:DROVER_TEST_UNSET_PW"}, "DROVER_TEST_UNSET_PW is not set"},
		{[]string{"--db", "postgres://u@h/db", "--db-file", "x.db"}, "--db-file is SQLite's"},
	} {
		for _, cmd := range []string{"server", "dev"} {
			var stderr bytes.Buffer
			code := Main(append([]string{cmd, "--port", "0", "--ui-port", "-1"}, tc.args...), io.Discard, &stderr)
			assert.Equal(t, ExitBadInput, code, "%s %v: %s", cmd, tc.args, stderr.String())
			assert.Contains(t, stderr.String(), tc.want, "%s %v", cmd, tc.args)
			assert.NotContains(t, stderr.String(), "hunter2", "%s %v: the secret is echoed", cmd, tc.args)
		}
	}
}

func TestServerCommandOnPostgres(t *testing.T) {
	c := pg.Get(t)
	t.Setenv("DROVER_TEST_PGPASSWORD", c.Password)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	root, _ := NewRootCommand(&stdout, io.Discard)
	root.SetArgs([]string{"server", "--port", "0", "--ui-port", "-1", "-o", "json",
		"--db", c.URL("drover_cli"), "--db-password", "env:DROVER_TEST_PGPASSWORD"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var info map[string]string
	deadline := time.After(2 * time.Minute)
	for info == nil {
		select {
		case err := <-done:
			t.Fatalf("drover server returned before it was stopped: %v", err)
		case <-deadline:
			t.Fatalf("drover server printed no address; stdout: %q", stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
		if line, _, ok := bytes.Cut([]byte(stdout.String()), []byte("\n")); ok {
			require.NoError(t, json.Unmarshal(line, &info), "stdout: %s", line)
		}
	}
	assert.Equal(t, c.URL("drover_cli"), info["db"], "the state's place, without the password")

	cl, err := client.Dial(client.Options{HostPort: info["frontend"], Namespace: "default"})
	require.NoError(t, err)
	ns, err := cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	cl.Close()
	require.NoError(t, err)
	assert.Equal(t, "default", ns.GetNamespaceInfo().GetName())

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("drover server did not stop after its context was cancelled")
	}
}
