package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/bench"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/starter"
	"github.com/drover-dr/drover/worker"
)

// fleetApprovers turns the fleet plan's lone approver into the lab's alice
// and bob (their keys sign), has alice accept an unvalidated point (the
// fleet has no sandbox to validate one in) and startGate decide
// start-secondary.
func fleetApprovers(startGate string) func(string) string {
	key := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "examples", "keys", "lab", name+".pub"))
		if err != nil {
			panic(err) // the repository's own files
		}
		return strings.TrimSpace(string(b))
	}
	return func(text string) string {
		text = strings.Replace(text, "approvers:\n  - name: bench\n", fmt.Sprintf("approvers:\n  - name: alice\n    publicKey: %s\n  - name: bob\n    publicKey: %s\n",
			key("alice"), key("bob")), 1)
		text = strings.ReplaceAll(text, "approvers: [bench]", "approvers: [alice]")
		return strings.Replace(text, "{name: start-secondary, approvers: none}",
			"{name: start-secondary, approvers: ["+startGate+"], timeout: 10m, onTimeout: abort}\n  - {name: accept-unvalidated-point, approvers: [alice], timeout: 10m, onTimeout: abort}", 1)
	}
}

// TestRegionalDisasterOneDeclaration loses dc1 under three plans whose
// components are real processes: one `drover failover --all --site dc1`
// starts the three failovers on one declaration; one shared approval
// decides the gate in every run that waits there for alice, and skips the
// plan whose gate only bob decides; bob approves his alone; `drover status
// --declaration` shows all three done.
func TestRegionalDisasterOneDeclaration(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	reg := builtin.Registry(log)
	dir := t.TempDir()
	var paths []string
	for _, pl := range []struct{ name, startGate string }{{"region-a", "alice"}, {"region-b", "alice"}, {"region-c", "bob"}} {
		path, err := bench.WriteFleetPlan(dir, pl.name, fleetApprovers(pl.startGate))
		require.NoError(t, err)
		paths = append(paths, path)
	}
	first, err := plan.LoadAndValidate(paths[0], reg)
	require.NoError(t, err, "the test's plan")

	st, err := stack.Start(ctx, stack.Options{UIPort: -1, Namespace: devserver.DefaultNamespace, Sites: starter.PlanPlaces(first), Logger: log,
		Dial: func(addr string) (client.Client, error) {
			return client.Dial(client.Options{HostPort: addr, Namespace: devserver.DefaultNamespace, Logger: worker.NewSDKLogger(log)})
		}})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	var plans []*plan.Plan
	for _, path := range paths {
		p, _, err := bench.PrepareFleetPlan(ctx, st.Client, reg, path)
		require.NoError(t, err)
		plans = append(plans, p)
	}
	t.Cleanup(func() {
		for _, p := range plans {
			if err := bench.ResetFleetSecondary(context.Background(), reg, p); err != nil {
				t.Logf("stop the processes of %s: %v", p.Name, err)
			}
		}
	})
	drover := func(args ...string) (int, string, string) {
		t.Helper()
		return runDrover(t, append([]string{"--address", st.Server.FrontendAddress(), "--namespace", st.Server.Namespace()}, args...)...)
	}

	code, out, errs := drover("-o", "json", "failover", "--all", "--site", "dc1", "--plan-dir", dir, "--unplanned")
	require.Equal(t, 0, code, "stdout %s\nstderr %s", out, errs)
	var decl starter.Declaration
	require.NoError(t, json.Unmarshal([]byte(out), &decl), out)
	require.Len(t, decl.Plans, 3)
	for _, p := range decl.Plans {
		assert.Equal(t, "started", p.Outcome, "%+v", p)
	}
	d := decl.Declaration
	t.Logf("declaration %s", d)

	// Declared again, a plan whose failover runs is skipped, said so, and
	// the exit is non-zero.
	code, out, errs = drover("failover", "--site", "dc1", "--plans", paths[0], "--unplanned")
	assert.Equal(t, 1, code, "stdout %s\nstderr %s", out, errs)
	assert.Contains(t, out, "a failover or failback is already running")

	approveAll := func(gate string, counted, skipped int) {
		t.Helper()
		waitDeclarationGates(t, ctx, drover, d, gate, 3)
		code, out, errs := drover("-o", "json", "gates", "approve", "--declaration", d, "--gate", gate, "--as", "alice", "--key", keyFile(t, "alice"))
		require.Equal(t, 0, code, "stdout %s\nstderr %s", out, errs)
		var res []starter.DeclaredApproval
		require.NoError(t, json.Unmarshal([]byte(out), &res), out)
		n := map[string]int{}
		for _, a := range res {
			n[a.Outcome]++
			if a.Plan == "region-c" && skipped > 0 {
				assert.Equal(t, "skipped", a.Outcome)
				assert.Contains(t, a.Reason, "alice is not an approver of start-secondary")
			}
		}
		assert.Equal(t, counted, n["counted"], "runs that counted alice's %s: %s", gate, out)
		assert.Equal(t, skipped, n["skipped"], "runs skipped: %s", out)
		assert.Len(t, res, counted+skipped, "%s", out)
	}
	approveAll("accept-unvalidated-point", 3, 0)
	approveAll("start-secondary", 2, 1)

	// bob decides his plan's gate on its own.
	id := ""
	for _, p := range decl.Plans {
		if p.Plan == "region-c" {
			id = p.WorkflowID
		}
	}
	code, out, errs = drover("gates", "approve", id, "--gate", "start-secondary", "--as", "bob", "--key", keyFile(t, "bob"))
	require.Equal(t, 0, code, "stdout %s\nstderr %s", out, errs)

	var sum starter.DeclarationStatus
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		code, out, errs := drover("-o", "json", "status", "--declaration", d)
		require.Equal(t, 0, code, "stdout %s\nstderr %s", out, errs)
		require.NoError(t, json.Unmarshal([]byte(out), &sum), out)
		require.Zero(t, sum.Totals.Other, "a run failed: %s", out)
		if sum.Totals.Completed == 3 {
			break
		}
		require.True(t, time.Now().Before(deadline), "all three failovers complete: %s", out)
	}
	require.Len(t, sum.Runs, 3)
	for _, r := range sum.Runs {
		assert.Positive(t, r.RTO, "%s: RTO", r.Plan)
		assert.True(t, r.RTOFinal, "%s: the achieved RTO", r.Plan)
		assert.Empty(t, r.OpenGates)
	}
	code, out, errs = drover("status", "--declaration", d)
	require.Equal(t, 0, code, errs)
	t.Logf("status --declaration:\n%s", out)
	assert.Contains(t, out, "total: 3 plans: 3 completed, 0 running, 0 failed or stopped; 0 open gates")
	for _, p := range plans {
		assert.Contains(t, out, p.Name)
	}
}

// keyFile is a copy of the lab's private key of name, readable by its
// owner only, as the CLI wants a key file.
func keyFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "keys", "lab", name+".key"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name+".key")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// waitDeclarationGates waits until n runs of declaration d wait at gate.
func waitDeclarationGates(t *testing.T, ctx context.Context, drover func(...string) (int, string, string), d, gate string, n int) {
	t.Helper()
	var out string
	for ctx.Err() == nil {
		var code int
		var errs string
		code, out, errs = drover("-o", "json", "gates", "list", "--declaration", d)
		require.Equal(t, 0, code, errs)
		var gates []starter.GateView
		require.NoError(t, json.Unmarshal([]byte(out), &gates), out)
		waiting := 0
		for _, g := range gates {
			if g.Name == gate {
				waiting++
			}
		}
		if waiting == n {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%d runs of %s never waited at %s together; last gates: %s", n, d, gate, out)
}
