package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/examples/plans"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/workflows"
)

// TestNoSecretInHistory runs a whole unplanned failover of the lab through
// the CLI, as an operator does (drover dev, plan apply, backup run, points
// validate, lab disaster, failover, approve, report), with secrets in the
// plan as references only: an external connectivity check and a failing
// monitoring check both see secret values (one from the environment, one
// from a file) and print them. Then it reads every event of every workflow
// history and every report: no secret value may appear anywhere.
func TestNoSecretInHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lab: skipped with -short")
	}
	const envSecret = "ldap-Pa55word-7f3a91"
	const fileSecret = "api-token-c0ffee-4242"
	// The control is no secret: it is in the plan, so it travels in the
	// workflows' inputs, and the scan must find it there, or it is blind.
	const control = "drover-control-9d2e61"
	dir := t.TempDir()
	labDir := filepath.Join(dir, "lab")
	secretFile := filepath.Join(dir, "api-token")
	require.NoError(t, os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600))

	base, err := lab.FreeBasePort(16)
	require.NoError(t, err)
	text := strings.ReplaceAll(string(plans.Lab), "basePort: 17100", fmt.Sprintf("basePort: %d", base))
	text = strings.Replace(text, "# Restore step 9:", `# Secrets, as references only.
external:
  - name: ldap-bind
    driver: exec
    settings:
      command: 'echo "binding to ldap with $LDAP_PW"; test -n "$LDAP_PW" # `+control+`'
      env: {LDAP_PW: "env:DROVER_TEST_LDAP_PW"}

# Restore step 9:`, 1)
	text = strings.Replace(text, "  monitoring:\n", `  monitoring:
    - name: leaky-exporter
      driver: exec
      settings:
        command: 'echo "exporter refused token=$API_TOKEN" >&2; exit 3'
        env: {API_TOKEN: "file:`+secretFile+`"}
`, 1)
	planPath := filepath.Join(dir, "lab.yaml")
	require.NoError(t, os.WriteFile(planPath, []byte(text), 0o644))

	port, err := freePort()
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "DROVER_LAB_DIR="+labDir, "TEMPORAL_ADDRESS="+addr, "DROVER_TEST_LDAP_PW="+envSecret,
		"DROVER_LAB_EXE="+droverBin)

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dev := exec.CommandContext(ctx, droverBin, "dev", "--lab-plan", planPath, "--lab-dir", labDir,
		"--db-file", filepath.Join(dir, "temporal.db"), "--port", fmt.Sprint(port), "--ui-port", "-1")
	dev.Env = env
	stdout, err := dev.StdoutPipe()
	require.NoError(t, err)
	devLog, err := os.Create(filepath.Join(dir, "dev.log"))
	require.NoError(t, err)
	dev.Stderr = devLog
	require.NoError(t, dev.Start())
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		_ = dev.Wait()
		if l, err := lab.Open(labDir, nil); err == nil {
			_ = l.Down()
		}
		if t.Failed() {
			b, _ := os.ReadFile(devLog.Name())
			t.Logf("drover dev log (tail):\n%s", tail(string(b), 4000))
		}
	})
	waitLine(t, stdout, "Lab:", 2*time.Minute)
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(devNull{}) }()

	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, droverBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "drover %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	c, err := client.Dial(client.Options{HostPort: addr})
	require.NoError(t, err)
	defer c.Close()
	// The site workers are started by drover dev a moment before they
	// poll; a backup sent earlier finds no worker at dc1.
	for _, site := range []string{"dc1", "dc2", "sandbox"} {
		waitPollers(t, ctx, c, contract.SiteQueue(site), true)
	}
	require.Contains(t, cli("plan", "apply", planPath), "enabled as primary")
	out := cli("backup", "run", "--plan", planPath, "--full")
	require.Contains(t, out, "point ")
	pointID := strings.Fields(out[strings.LastIndex(out, "point "):])[1]
	pointID = strings.TrimSuffix(pointID, ":")
	require.Contains(t, cli("points", "validate", pointID, "--plan", planPath), "valid")
	cli("lab", "disaster", "--site", "dc1")
	cli("failover", "--plan", planPath, "--unplanned")

	id := "drover/lab/switchover"
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, id, "", contract.QueryStatus)
		if err != nil {
			return false
		}
		var st workflows.Status
		return v.Get(&st) == nil && len(st.Gates) > 0 && st.Gates[len(st.Gates)-1].Outcome == workflows.OutcomePending
	}, time.Minute, 200*time.Millisecond, "the start-secondary gate opens")
	// The lab plan's quorum of two needs signed approvals: the lab's
	// throwaway keys, in private files as `drover approve --key` insists.
	keyFile := func(who string) string {
		data, err := os.ReadFile(filepath.Join("..", "examples", "keys", "lab", who+".key"))
		require.NoError(t, err)
		path := filepath.Join(dir, who+".key")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		return path
	}
	cli("approve", id, "--gate", "start-secondary", "--as", "alice", "--comment", "fenced dc1", "--key", keyFile("alice"))
	cli("approve", id, "--gate", "start-secondary", "--as", "bob", "--key", keyFile("bob"))
	var res workflows.FailoverResult
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &res))
	require.True(t, res.Verify.Valid)
	require.NotEmpty(t, res.Verify.Findings, "the leaky check failed and was reported as a finding")
	rep := cli("report", id, "--plan", planPath)
	require.Contains(t, rep, "leaky-exporter")
	require.Contains(t, rep, "[redacted]", "the secret printed by the check is redacted in its evidence")

	// Every event of every run, and every report file.
	scanned, controlSeen := 0, 0
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: token})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			it := c.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				texts := eventTexts(t, ev)
				found := findSecret(texts, envSecret, fileSecret)
				require.Empty(t, found, "secret in history of %s event %d", e.GetExecution().GetWorkflowId(), ev.GetEventId())
				if findSecret(texts, control) != "" {
					controlSeen++
				}
				scanned++
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	require.Greater(t, scanned, 200, "the scan read the failover's whole history tree")
	require.Positive(t, controlSeen, "the control value in the plan was found in the workflows' inputs: the scan decodes payloads")
	reports, _ := filepath.Glob(filepath.Join(labDir, "store", "lab", "reports", "*"))
	require.NotEmpty(t, reports)
	for _, f := range append(reports, devLog.Name()) {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Empty(t, findSecret([]string{string(b)}, envSecret, fileSecret), "secret in %s", f)
	}
	t.Logf("scanned %d history events and %d report files: no secret value", scanned, len(reports))
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

func waitLine(t *testing.T, r interface{ Read([]byte) (int, error) }, prefix string, timeout time.Duration) {
	t.Helper()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), prefix) {
				close(found)
				return
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(timeout):
		t.Fatalf("no %q line from drover dev within %s", prefix, timeout)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
