package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// userStepsPlan adds the operators' own steps to the lab plan: a marker
// written at the restored site, a step before the BPM application tier, a
// manual step at a gate of its own with a checklist, a step that fails and
// goes on, one cut off by its timeout, and one that refuses drills (abort).
func userStepsPlan(dir string) func(string) string {
	return func(text string) string {
		text = strings.Replace(text, "\ngates:\n", `
gates:
  - name: post-restore
    approvers: [alice, bob]
    quorum: 1
    timeout: 30m
    onTimeout: abort
    checklist:
      - Compare the restored configuration with the change log
`, 1)
		return text + strings.ReplaceAll(`
steps:
  - name: mark-restored
    after: restore
    runs: [failover]
    driver: exec
    settings:
      command: |
        echo "restored {{.Site.Name}} by $PPID" > DIR/marker-{{.Site.Name}}
        echo "marker written at {{.Site.Name}} by worker $PPID"
  - name: before-bpm-apps
    before: tier
    tier: bpm-app
    runs: [failover]
    driver: exec
    settings:
      command: "echo bpm apps next at {{.Site.Name}}"
  - name: license-keys
    after: environment
    runs: [failover]
    gate: post-restore
    checklist:
      - Enter the recovery machines' license keys
  - name: notify-cmdb
    after: verify
    runs: [failover]
    driver: exec
    onFailure: continue
    settings:
      command: "echo cmdb unreachable from {{.Site.Name}} >&2; exit 3"
  - name: slow-warmup
    before: redirect
    runs: [failover]
    driver: exec
    timeout: 3s
    onFailure: continue
    settings:
      command: "echo $$ > DIR/slow.pid; exec sleep 300"
  - name: change-freeze
    before: restore
    runs: [drill]
    driver: exec
    settings:
      command: "echo change freeze in force at {{.Site.Name}}; exit 1"
`, "DIR", dir)
	}
}

// TestUserStepsRunAtTheirPhasesInALabFailover runs the plan's own steps in
// real runs of the lab, each site served by its own worker process: a
// drill refused by a step before its restore (abort: the run fails naming
// it, nothing restored), then an unplanned failover whose steps run at dc2
// on dc2's worker around restore, the BPM application tier, environment
// (a manual step whose checklist the operator sees and approves from the
// CLI), verify and redirect; a failing step with onFailure: continue and
// one cut off by its timeout are reported failed and the run goes on.
func TestUserStepsRunAtTheirPhasesInALabFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	marks := t.TempDir()
	e := newLabEnv(t, envOptions{name: "usersteps", siteWorkers: true, edit: userStepsPlan(marks)})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, site := range []string{"dc1", "dc2", "sandbox"} {
		waitPollers(t, ctx, e.c, contract.SiteQueue(site), true)
	}
	pt := e.backup(ctx, e.p, contract.ModeFull, "steps")

	t.Run("abort", func(t *testing.T) {
		out, err := e.drover("drill", "--plan", e.planPath, "--point", pt.ID, "--watch")
		require.Error(t, err, "a drill whose step fails with onFailure abort fails:\n%s", out)
		assert.Contains(t, err.Error(), "user step change-freeze")
		r := userStepsReport(t, e, contract.DrillID(e.p.Name))
		assert.Equal(t, "failed", r.Outcome)
		// The report's error names the step and keeps the command's message.
		assert.Contains(t, r.Error, "change freeze in force at sandbox")
		assert.Contains(t, r.Error, "user step change-freeze", "the report names the step that failed the run")
		s := userStepsStep(t, r, "user step change-freeze")
		assert.Equal(t, workflows.OutcomeFailed, s.Outcome)
		assert.Equal(t, "sandbox", s.Site)
		assert.Contains(t, s.Output, "change freeze in force at sandbox")
		for _, step := range r.Steps {
			assert.NotEqual(t, "restore group cell", step.Name, "the drill restored after its step refused")
		}
	})

	t.Run("failover", func(t *testing.T) {
		_, err := e.l.Disaster("dc1")
		require.NoError(t, err)
		dc2Worker := workerIdentity(t, e.l, "dc2")
		dc2PID := strings.SplitN(dc2Worker, "@", 2)[0]
		id := contract.SwitchoverID(e.p.Name)
		out, err := e.drover("failover", "--plan", e.planPath, "--unplanned", "--point", pt.ID, "-o", "json")
		require.NoError(t, err)
		var ids struct {
			RunID string `json:"runId"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &ids), out)

		waitGate(t, ctx, e.c, id, contract.GateStartSecondary, 2*time.Minute)
		userStepsApprove(t, e, id, contract.GateStartSecondary, "alice", "bob")

		// The manual step: its gate asks with the gate's checklist and the
		// step's, as the operator sees it in drover gates list.
		g := waitGate(t, ctx, e.c, id, "post-restore", 2*time.Minute)
		assert.Equal(t, []string{"Compare the restored configuration with the change log",
			"Enter the recovery machines' license keys"}, g.Checklist)
		assert.Contains(t, g.Detail, "user step license-keys at dc2")
		list, err := e.drover("gates", "list", "--plan", e.planPath)
		require.NoError(t, err)
		assert.Contains(t, list, "post-restore")
		assert.Contains(t, list, "Enter the recovery machines' license keys")
		// The step after the restore ran already, at dc2 by dc2's worker.
		marker, err := os.ReadFile(filepath.Join(marks, "marker-dc2"))
		require.NoError(t, err, "the step after restore wrote its marker at dc2 before the environment phase")
		assert.Equal(t, "restored dc2 by "+dc2PID+"\n", string(marker))
		userStepsApprove(t, e, id, "post-restore", "alice")

		var res workflows.FailoverResult
		began := time.Now()
		require.NoError(t, e.c.GetWorkflow(ctx, id, ids.RunID).Get(ctx, &res), "the failover goes on past the failing steps")
		t.Logf("failover done %s after the manual step; report %s", time.Since(began).Round(time.Millisecond), res.Report.Markdown)
		route, err := e.l.CurrentRoute(ctx)
		require.NoError(t, err)
		assert.Equal(t, "dc2", route)

		var r report.Report
		readJSON(t, res.Report.JSON, &r)
		assert.Equal(t, "completed", r.Outcome)

		s := userStepsStep(t, r, "user step mark-restored")
		assert.Equal(t, workflows.OutcomeOK, s.Outcome)
		assert.Equal(t, "dc2", s.Site)
		assert.Equal(t, dc2Worker, s.Worker)
		assert.Contains(t, s.Output, "marker written at dc2 by worker "+dc2PID)
		assert.Contains(t, s.Detail, "after restore")
		assert.True(t, !s.Ended.After(userStepsStep(t, r, "apply environment changes").Started), "after restore, before the environment")

		// Before the BPM application tier: after the tier before it is up,
		// before any application server starts.
		s = userStepsStep(t, r, "user step before-bpm-apps")
		assert.Equal(t, workflows.OutcomeOK, s.Outcome)
		assert.Equal(t, "dc2", s.Site)
		assert.Contains(t, s.Output, "bpm apps next at dc2")
		assert.Contains(t, s.Detail, "before tier bpm-app")
		for _, name := range []string{"start bpm-support1"} {
			assert.True(t, !userStepsStep(t, r, name).Ended.After(s.Started), "%s ended after the step began", name)
		}
		for _, name := range []string{"start bpm-app1", "start bpm-app2"} {
			assert.True(t, !s.Ended.After(userStepsStep(t, r, name).Started), "%s began before the step ended", name)
		}

		s = userStepsStep(t, r, "user step license-keys")
		assert.Equal(t, workflows.OutcomeOK, s.Outcome)
		assert.Contains(t, s.Detail, "approved at gate post-restore")
		approved := false
		for _, g := range r.Gates {
			if g.Name == "post-restore" {
				for _, a := range g.Approvals {
					approved = approved || a.Approver == "alice" && a.Decision == contract.DecisionApprove
				}
			}
		}
		assert.True(t, approved, "the report records alice's approval at post-restore: %+v", r.Gates)

		s = userStepsStep(t, r, "user step notify-cmdb")
		assert.Equal(t, workflows.OutcomeFailed, s.Outcome)
		assert.Contains(t, s.Detail, "going on (onFailure: continue)")
		assert.Contains(t, s.Output, "cmdb unreachable from dc2")

		// The step's timeout cut the sleep off: failed within seconds, and
		// the command is gone.
		s = userStepsStep(t, r, "user step slow-warmup")
		assert.Equal(t, workflows.OutcomeFailed, s.Outcome)
		assert.Contains(t, s.Detail, "going on (onFailure: continue)")
		assert.Less(t, s.Ended.Sub(s.Started), 30*time.Second, "a 3s step ran %s", s.Ended.Sub(s.Started))
		data, err := os.ReadFile(filepath.Join(marks, "slow.pid"))
		require.NoError(t, err, "the slow step started its command")
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		require.NoError(t, err)
		assert.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 15*time.Second, 250*time.Millisecond,
			"the slow step's command (pid %d) still runs after its timeout", pid)
		// It was cut off before the redirect, which followed.
		assert.True(t, !s.Ended.After(userStepsStep(t, r, "redirect traffic to dc2").Started))
	})
}

// userStepsStep is the report's step of that name.
func userStepsStep(t *testing.T, r report.Report, name string) report.Step {
	t.Helper()
	var names []string
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
		names = append(names, s.Name)
	}
	t.Fatalf("no step %q in the report of %s; steps: %s", name, r.WorkflowID, strings.Join(names, ", "))
	return report.Step{}
}

// userStepsReport reads a run's report as `drover report RUN --format json`
// prints it.
func userStepsReport(t *testing.T, e *labEnv, run string) report.Report {
	t.Helper()
	out, err := e.drover("report", run, "--plan", e.planPath, "--format", "json")
	require.NoError(t, err)
	var r report.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	return r
}

// userStepsApprove approves a gate from the CLI, as each approver with the
// lab's throwaway key (copied readable by its owner only, as the CLI wants).
func userStepsApprove(t *testing.T, e *labEnv, id, gate string, approvers ...string) {
	t.Helper()
	for _, who := range approvers {
		key := filepath.Join(e.dir, who+".key")
		data, err := os.ReadFile(filepath.Join("..", "examples", "keys", "lab", who+".key"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(key, data, 0o600))
		out, err := e.drover("approve", id, "--gate", gate, "--as", who,
			"--key", key, "--comment", "approved by the user steps test")
		require.NoError(t, err)
		t.Logf("%s", strings.TrimSpace(out))
	}
}
