package starter

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
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// declPlan writes the lab plan under another name into dir, edit changing
// its text, and returns the file.
func declPlan(t *testing.T, dir, name string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(labPlan)
	require.NoError(t, err)
	text := strings.Replace(string(b), "\nname: lab\n", "\nname: "+name+"\n", 1)
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// setLabDir gives the lab plan's variables a folder with its store.
func setLabDir(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "store"), 0o755))
	t.Setenv("DROVER_LAB_DIR", dir)
}

// Flags a declaration cannot take are bad input (exit 2), before any
// server is asked: nothing listens at the address.
func TestFailoverManyBadFlagsExitTwo(t *testing.T) {
	setLabDir(t)
	dir := t.TempDir()
	a := declPlan(t, dir, "decl-a", nil)
	twin := declPlan(t, t.TempDir(), "decl-a", nil)
	empty := t.TempDir()
	conn := []string{"--address", "127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"failover", "--site", "dc1", "--unplanned"}, "give exactly one of --plans F1,F2 or --all"},
		{[]string{"failover", "--plans", a, "--unplanned"}, "need --site S"},
		{[]string{"failover", "--site", "dc1", "--plans", a, "--all", "--plan-dir", dir, "--unplanned"}, "exactly one of --plans"},
		{[]string{"failover", "--site", "dc1", "--all", "--plan-dir", "", "--unplanned"}, "give --plan-dir DIR"},
		{[]string{"failover", "--site", "dc1", "--all", "--plan-dir", empty, "--unplanned"}, "no plan file"},
		{[]string{"failover", "--site", "dc1", "--plans", a, "--plan", a, "--unplanned"}, "not both"},
		{[]string{"failover", "--site", "dc1", "--plans", a, "--point", "p1", "--unplanned"}, "--point names one plan's"},
		{[]string{"failover", "--site", "dc1", "--plans", a, "--watch", "--unplanned"}, "status --declaration"},
		{[]string{"failover", "--site", "dc1", "--plans", a}, "exactly one of --planned or --unplanned"},
		{[]string{"failover", "--site", "dc9", "--plans", a, "--unplanned"}, "--site dc9: no plan given has a site of that name"},
		{[]string{"failover", "--site", "dc1", "--plans", a + "," + twin, "--unplanned"}, "name: plan decl-a is the plan of " + a + " too"},
		{[]string{"failover", "--site", "dc1", "--plans", filepath.Join(dir, "missing.yaml"), "--unplanned"}, "missing.yaml"},
		{[]string{"gates", "approve", "drover/x/switchover", "--declaration", "d1", "--gate", "g", "--as", "alice"}, "not both"},
		{[]string{"gates", "approve", "--gate", "g", "--as", "alice"}, "or --declaration D"},
		{[]string{"gates", "approve", "--declaration", "d'1", "--gate", "g", "--as", "alice"}, "not a declaration ID"},
		{[]string{"gates", "list", "--declaration", "d 1"}, "not a declaration ID"},
		{[]string{"status"}, "or --declaration D"},
		{[]string{"status", "drover/x/switchover", "--declaration", "d1"}, "not both"},
	} {
		code, out, errs := runDrover(append(c.args, conn...)...)
		assert.Equal(t, ExitBadInput, code, "%v: stdout %s stderr %s", c.args, out, errs)
		assert.Contains(t, errs, c.want, "%v", c.args)
		assert.NotContains(t, out, "started", "%v", c.args)
	}
}

// One bad plan file among many starts nothing: the error names the file
// and the field, and no run of the good plan exists on the server.
func TestFailoverManyBadPlanStartsNothing(t *testing.T) {
	addr := sharedServer(t)
	setLabDir(t)
	dir := t.TempDir()
	good := declPlan(t, dir, "decl-good", nil)
	bad := declPlan(t, dir, "decl-bad", func(s string) string { return strings.Replace(s, "\nrpo: 5m\n", "\nrpo: soon\n", 1) })
	conn := []string{"--address", addr, "--namespace", testNamespace}
	for _, args := range [][]string{
		{"failover", "--site", "dc1", "--plans", good + "," + bad, "--unplanned"},
		{"failover", "--site", "dc1", "--all", "--plan-dir", dir, "--planned"},
	} {
		code, out, errs := runDrover(append(args, conn...)...)
		assert.Equal(t, ExitBadInput, code, "%v: stdout %s stderr %s", args, out, errs)
		assert.Contains(t, errs, bad)
		assert.Contains(t, errs, "rpo")
		assert.Contains(t, errs, "nothing started")
		assert.NotContains(t, out, "declaration")
	}
	c, err := client.Dial(client.Options{HostPort: addr, Namespace: testNamespace})
	require.NoError(t, err)
	defer c.Close()
	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("%s = 'decl-good'", contract.SAPlan.GetName())})
	require.NoError(t, err)
	assert.Empty(t, resp.GetExecutions(), "a bad plan in the list must start nothing")
}

// A plan with a failover running is skipped and said so; the others start
// with the declaration's search attribute; the command exits non-zero.
// No worker polls, so the runs stay open.
func TestFailoverManySkipsARunningPlanAndStartsTheRest(t *testing.T) {
	addr := sharedServer(t)
	setLabDir(t)
	dir := t.TempDir()
	busy := declPlan(t, dir, "decl-busy", nil)
	free := declPlan(t, dir, "decl-free", nil)
	conn := []string{"--address", addr, "--namespace", testNamespace}
	code, _, errs := runDrover(append([]string{"failover", "--plan", busy, "--planned"}, conn...)...)
	require.Equal(t, ExitOK, code, errs)

	code, out, errs := runDrover(append([]string{"-o", "json", "failover", "--site", "dc1", "--plans", busy + "," + free, "--unplanned"}, conn...)...)
	assert.Equal(t, ExitRunFailed, code, "a skipped plan makes the exit non-zero: %s", errs)
	assert.Contains(t, errs, "1 started, 1 skipped, 0 failed to start")
	var d Declaration
	require.NoError(t, json.Unmarshal([]byte(out), &d), out)
	require.NotEmpty(t, d.Declaration)
	assert.Equal(t, "dc1", d.Site)
	require.Len(t, d.Plans, 2)
	byPlan := map[string]DeclaredPlan{}
	for _, p := range d.Plans {
		byPlan[p.Plan] = p
	}
	assert.Equal(t, declSkipped, byPlan["decl-busy"].Outcome)
	assert.Contains(t, byPlan["decl-busy"].Reason, "already running: workflow "+contract.SwitchoverID("decl-busy"))
	assert.Equal(t, declStarted, byPlan["decl-free"].Outcome)
	assert.Equal(t, contract.SwitchoverID("decl-free"), byPlan["decl-free"].WorkflowID)

	c, err := client.Dial(client.Options{HostPort: addr, Namespace: testNamespace})
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		rows, err := declarationRuns(context.Background(), c, d.Declaration)
		return err == nil && len(rows) == 1 && rows[0].Plan == "decl-free" && rows[0].RunID == byPlan["decl-free"].RunID
	}, 10*time.Second, 100*time.Millisecond, "the declaration finds the run it started, and only that one")
}

// Which plans a declaration concerns, from where plan status says each
// cell runs: at the site and at its primary, it starts; elsewhere it is
// not affected with --all and skipped when named; already at its
// secondary (a failover recorded it there), a failback is its way back.
func TestDeclarationConcernsPlansRunningAtTheSite(t *testing.T) {
	p := &plan.Plan{Name: "shop", Sites: plan.Sites{Primary: &plan.Site{Name: "dc1"}, Secondary: &plan.Site{Name: "dc2"}}}
	at := func(recorded string, all bool, site string) DeclaredPlan {
		dp := &declaredPlan{file: "shop.yaml", p: p}
		dp.primary, dp.why = currentPrimary(p, catalog.Lifecycle{Primary: recorded})
		dp.classify(site, all)
		return dp.row
	}
	assert.Empty(t, at("", false, "dc1").Outcome, "never failed over, primary dc1: started")
	assert.Empty(t, at("dc1", true, "dc1").Outcome, "failed back to dc1: started")
	r := at("", true, "dc2")
	assert.Equal(t, declNotAffected, r.Outcome)
	assert.Contains(t, r.Reason, "its cell runs at dc1 (the plan's primary; no failover recorded)")
	r = at("", false, "dc2")
	assert.Equal(t, declSkipped, r.Outcome, "named with --plans, it is skipped and said so")
	assert.Contains(t, r.Reason, "not at dc2")
	r = at("dc2", true, "dc2")
	assert.Equal(t, declSkipped, r.Outcome)
	assert.Contains(t, r.Reason, "drover failback --plan shop.yaml moves it back to dc1")
	failed := &declaredPlan{p: p, row: DeclaredPlan{Outcome: declFailed, Reason: "store"}}
	failed.classify("dc1", true)
	assert.Equal(t, declFailed, failed.row.Outcome, "a plan whose store could not be read stays failed")
}
