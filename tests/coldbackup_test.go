package tests

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// coldbackupEvents are the times a lab server logged its start, its
// readiness and its stop, after a moment.
type coldbackupEvents struct {
	starting, ready, stopping, stopped time.Time
}

// coldbackupLog reads a server's log at a site: the first of each event
// logged after since.
func coldbackupLog(t *testing.T, e *labEnv, site, server string, since time.Time) coldbackupEvents {
	t.Helper()
	f, err := os.Open(e.l.L.LogFile(site, server))
	require.NoError(t, err)
	defer f.Close()
	var ev coldbackupEvents
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", fields[0])
		if err != nil || at.Before(since.Truncate(time.Millisecond)) {
			continue
		}
		var dst *time.Time
		switch fields[2] {
		case "starting":
			dst = &ev.starting
		case "open for e-business":
			dst = &ev.ready
		case "stopping":
			dst = &ev.stopping
		case "stopped":
			dst = &ev.stopped
		}
		if dst != nil && dst.IsZero() {
			*dst = at
		}
	}
	require.NoError(t, sc.Err())
	return ev
}

// TestColdBackupStopsCapturesStarts (issue 16, seed 000 §2.3.2.1): the plan
// asks for cold backups with approval. `drover plan apply` sets the cold
// schedule; triggered, its run waits at the cold-backup gate with every dc1
// server still running; once approved it stops the cell in reverse tier
// order, captures with no lab server running at dc1 (a user step before
// the capture counts them with pgrep), starts the cell in tier order and
// verifies it. The point is recorded cold, with no write pause, and every
// server runs again as a new process.
func TestColdBackupStopsCapturesStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	e := newLabEnv(t, envOptions{name: "cold", edit: func(s string) string {
		s = strings.Replace(s, "\n  schedule:\n    validate: none\n",
			"\n  schedule:\n    validate: none\n    cold: {every: 168h, approve: true}\n", 1)
		s = strings.Replace(s, "\ngates:\n", "\ngates:\n  - {name: cold-backup, approvers: [alice, bob], timeout: 30m, onTimeout: abort}\n", 1)
		// The regexp's bracket keeps pgrep from counting the shell that
		// runs it.
		return s + `
steps:
  - name: no-server-runs-at-dc1
    before: capture
    runs: [backup]
    driver: exec
    settings:
      command: ["/bin/sh", "-c", "n=$(pgrep -c -f \"$1\"); echo \"$n lab servers running at dc1\"; [ \"$n\" = 0 ]", "sh", "[l]ab serve --lab-dir {{index .Site.Settings \"labDir\"}} --site dc1 "]
`
	}})
	require.NotNil(t, e.p.Storage.Schedule.Cold)
	e.up()
	out, err := e.drover("plan", "apply", e.planPath)
	require.NoError(t, err)
	require.Contains(t, out, "enabled as primary")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Only the cold schedule runs.
	require.NoError(t, e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name)).Pause(ctx,
		client.SchedulePauseOptions{Note: "end-to-end test: the cold backup alone"}))
	tiers, err := plan.Tiers(e.p)
	require.NoError(t, err)
	before := e.serverPIDs("dc1")
	require.Len(t, before, len(e.l.Topo.Servers))

	cold := e.c.ScheduleClient().GetHandle(ctx, contract.ColdScheduleID(e.p.Name))
	desc, err := cold.Describe(ctx)
	require.NoError(t, err, "plan apply set no cold backup schedule")
	require.Equal(t, 168*time.Hour, desc.Schedule.Spec.Intervals[0].Every)
	require.NoError(t, cold.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var runs []runRef
	for deadline := time.Now().Add(time.Minute); len(runs) == 0 && time.Now().Before(deadline); {
		runs = listRuns(t, ctx, e.c, e.srv.Namespace(), `DroverPlan = "cold" AND DroverKind = "cold-backup"`)
	}
	require.Len(t, runs, 1, "the cold schedule's runs")
	id := runs[0].id
	require.True(t, strings.HasPrefix(id, contract.ColdScheduleRunID(e.p.Name)), id)

	// The gate holds the cell running until someone approves.
	gate := waitGate(t, ctx, e.c, id, contract.GateColdBackup, time.Minute)
	t.Logf("gate %s: %s", gate.Name, gate.Detail)
	assert.Contains(t, gate.Detail, "stop the whole cell at dc1")
	time.Sleep(2 * time.Second)
	assert.Equal(t, before, e.serverPIDs("dc1"), "servers stopped or restarted before the gate was approved")
	st, err := queryStatus(ctx, e.c, id)
	require.NoError(t, err)
	assert.Equal(t, "waiting:"+contract.GateColdBackup, st.Phase)

	approved := time.Now()
	payload, err := labkeys.Payload(ctx, e.c, id, contract.GateColdBackup, "alice", contract.DecisionApprove, "maintenance window")
	require.NoError(t, err)
	require.NoError(t, e.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload))
	var res workflows.ColdBackupResult
	require.NoError(t, e.c.GetWorkflow(ctx, id, runs[0].runID).Get(ctx, &res), "cold backup")
	pt := res.Backup.Point
	t.Logf("cold point %s captured %s (%s), report %s", pt.ID, pt.Instant.Format("15:04:05.000"), pt.Consistency, res.Report.Markdown)

	// Recorded cold, with no write pause: nothing was running to pause.
	assert.True(t, pt.Cold, "the point is not marked cold")
	assert.Nil(t, pt.Quiesce)
	pts, err := e.store.List(e.p.Name)
	require.NoError(t, err)
	require.Len(t, pts, 1)
	assert.Equal(t, pt.ID, pts[0].ID)
	assert.True(t, pts[0].Cold, "the catalog's point is not cold")
	out, err = e.drover("points", "describe", pt.ID, "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("drover points describe:\n%s", out)
	assert.Regexp(t, `cold +yes: captured with the whole scope stopped`, out)
	assert.Regexp(t, `writes paused +none recorded`, out)

	// The cell is back and verified, every server a new process.
	assert.True(t, res.BringUp.Verify.Valid, "verification after the cold backup")
	after := e.serverPIDs("dc1")
	require.Len(t, after, len(e.l.Topo.Servers), "servers not running after the cold backup")
	for name, pid := range before {
		assert.NotEqual(t, pid, after[name], "%s was not stopped", name)
	}

	// From the servers' logs: stopped in reverse tier order, every one
	// stopped before the capture instant and started after it, then started
	// in tier order.
	ev := map[string]coldbackupEvents{}
	for _, s := range e.l.Topo.Servers {
		ev[s.Name] = coldbackupLog(t, e, "dc1", s.Name, approved)
		t.Logf("%-14s stopping %s stopped %s starting %s ready %s", s.Name, ev[s.Name].stopping.Format("15:04:05.000"),
			ev[s.Name].stopped.Format("15:04:05.000"), ev[s.Name].starting.Format("15:04:05.000"), ev[s.Name].ready.Format("15:04:05.000"))
		require.False(t, ev[s.Name].stopped.IsZero(), "%s never stopped", s.Name)
		require.False(t, ev[s.Name].ready.IsZero(), "%s never started again", s.Name)
		assert.False(t, ev[s.Name].stopped.After(pt.Instant), "%s stopped at %s, after the capture at %s", s.Name, ev[s.Name].stopped, pt.Instant)
		assert.False(t, ev[s.Name].starting.Before(pt.Instant), "%s started at %s, before the capture at %s", s.Name, ev[s.Name].starting, pt.Instant)
	}
	for i, early := range tiers {
		for _, late := range tiers[i+1:] {
			for _, a := range early.Components {
				for _, b := range late.Components {
					assert.False(t, ev[b].stopped.After(ev[a].stopping), "%s (tier %d) still running when %s (tier %d) began to stop", b, late.Index, a, early.Index)
					assert.False(t, ev[b].starting.Before(ev[a].ready), "%s (tier %d) started before %s (tier %d) was ready", b, late.Index, a, early.Index)
				}
			}
		}
	}

	// The report: the user step's evidence, the point cold, dc1 verified.
	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	require.NotNil(t, r.Point)
	assert.True(t, r.Point.Cold)
	var step *report.Step
	for i := range r.Steps {
		if r.Steps[i].Name == "user step no-server-runs-at-dc1" {
			step = &r.Steps[i]
		}
	}
	require.NotNil(t, step, "the report has no user step before the capture")
	assert.Equal(t, "ok", step.Outcome)
	assert.Equal(t, "dc1", step.Site)
	assert.Contains(t, step.Detail+step.Output, "0 lab servers running at dc1")
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	assert.Contains(t, string(md), "started again and verified")
}
