package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// configchangeWatched returns the points of the plan that record a
// configuration, oldest first (none when the store cannot be read: it is
// polled).
func configchangeWatched(e *labEnv) []catalog.Point {
	pts, _ := e.store.List(e.p.Name)
	var out []catalog.Point
	for _, pt := range pts {
		if pt.Configuration != nil {
			out = append(out, pt)
		}
	}
	return out
}

// configchangeBackupRun waits until the backup the RPO monitor started for
// a configuration has completed.
func configchangeBackupRun(t *testing.T, ctx context.Context, e *labEnv, fingerprint string) {
	t.Helper()
	id := contract.ConfigBackupID(e.p.Name, fingerprint)
	require.Eventually(t, func() bool {
		d, err := e.c.DescribeWorkflowExecution(ctx, id, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, time.Minute, 250*time.Millisecond, "no completed backup %s for configuration %s", id, fingerprint)
}

// TestConfigChangeTakesABackup (issue 16, seed 000 §4.1): the plan watches
// the configuration folders of every server at the primary; the backup
// schedule is paused, so every point comes from the RPO monitor's watch. The
// first configuration gets a point by itself; a changed profile at dc1 gets
// another within the monitor's interval, recording the new fingerprint and
// when it was first seen. After a disaster the failover restores that point,
// the changed profile is at dc2, and the report says which configuration it
// restored.
func TestConfigChangeTakesABackup(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	// An RPO of 1m: the monitor (and its watch) checks every 10s.
	const interval = 10 * time.Second
	e := newLabEnv(t, envOptions{name: "cfgchange", edit: func(s string) string {
		s = strings.Replace(s, "\nrpo: 5m\n", "\nrpo: 1m\n", 1)
		return strings.Replace(s, "\n  schedule:\n    validate: none\n",
			"\n  schedule:\n    validate: none\n    onChange: {paths: [\"*/config\"]}\n", 1)
	}})
	require.NotNil(t, e.p.Storage.Schedule.OnChange)
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sched := e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name))
	require.NoError(t, sched.Pause(ctx, client.SchedulePauseOptions{Note: "end-to-end test: only the configuration watch takes points"}))

	// The configuration the cell runs with has no point yet: one is taken.
	var first catalog.Point
	require.Eventually(t, func() bool {
		pts := configchangeWatched(e)
		if len(pts) > 0 {
			first = pts[0]
		}
		return len(pts) > 0
	}, 90*time.Second, 250*time.Millisecond, "no point was taken for the cell's configuration")
	fpA := first.Configuration.Fingerprint
	t.Logf("first configuration %s: point %s", fpA, first.ID)
	configchangeBackupRun(t, ctx, e, fpA)

	// A profile changes at dc1.
	changedFile := filepath.Join("dmgr", "config", "tuning.properties")
	require.NoError(t, os.WriteFile(filepath.Join(e.l.L.DataRoot("dc1"), changedFile), []byte("maxThreads=50\n"), 0o644))
	changed := time.Now()
	var second catalog.Point
	require.Eventually(t, func() bool {
		for _, pt := range configchangeWatched(e) {
			if pt.Configuration.Fingerprint != fpA {
				second = pt
				return true
			}
		}
		return false
	}, 2*interval+time.Minute, 250*time.Millisecond, "no point after the configuration changed")
	fpB := second.Configuration.Fingerprint
	t.Logf("changed configuration %s: point %s captured %s after the change", fpB, second.ID, second.Instant.Sub(changed).Round(time.Millisecond))
	configchangeBackupRun(t, ctx, e, fpB)
	// Within the monitor's interval, with room for a loaded machine.
	assert.Less(t, second.Started.Sub(changed), interval+20*time.Second, "the backup started long after the change")
	assert.False(t, second.Configuration.FirstSeen.Before(changed.Add(-time.Second)), "first seen %s, before the change", second.Configuration.FirstSeen)
	assert.True(t, second.Instant.After(first.Instant))
	// One point per configuration: the watch takes no more while the
	// configuration stays.
	time.Sleep(interval + 2*time.Second)
	assert.Len(t, configchangeWatched(e), 2, "points while the configuration stayed the same")

	var st workflows.RPOStatus
	v, err := e.c.QueryWorkflow(ctx, contract.MonitorID(e.p.Name), "", contract.QueryRPO)
	require.NoError(t, err)
	require.NoError(t, v.Get(&st))
	require.NotNil(t, st.Configuration)
	assert.Equal(t, fpB, st.Configuration.Fingerprint)
	assert.Equal(t, contract.ConfigBackupID(e.p.Name, fpB), st.Configuration.Backup)
	assert.Equal(t, 2, st.Configuration.Backups)

	out, err := e.drover("points", "describe", second.ID, "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("drover points describe:\n%s", out)
	assert.Regexp(t, `configuration +`+fpB+` \(first seen `, out)

	// The disaster, and the failover restores the newest point: the
	// changed configuration.
	_, err = e.l.Disaster("dc1")
	require.NoError(t, err)
	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, DeclaredAt: time.Now()})
	require.NoError(t, err)
	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "unplanned failover")
	assert.Equal(t, second.ID, res.Point.ID)
	data, err := os.ReadFile(filepath.Join(e.l.L.DataRoot("dc2"), changedFile))
	require.NoError(t, err, "the changed profile at dc2")
	assert.Equal(t, "maxThreads=50\n", string(data))

	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	require.NotNil(t, r.Point)
	assert.Equal(t, second.ID, r.Point.ID)
	assert.Equal(t, fpB, r.Point.Configuration, "the report names the configuration restored")
	assert.True(t, r.Point.ConfigurationSince.Equal(second.Configuration.FirstSeen), "report: first seen %s, point: %s",
		r.Point.ConfigurationSince, second.Configuration.FirstSeen)
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	assert.Contains(t, string(md), "configuration `"+fpB+"` (first seen ")
}
