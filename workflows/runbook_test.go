package workflows

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// pointsByInstant lists the plan's points oldest first.
func (e *drEnv) pointsByInstant() []catalog.Point {
	pts := e.points()
	sort.Slice(pts, func(i, j int) bool { return pts[i].Started.Before(pts[j].Started) })
	return pts
}

// Seed 000 §4.1: a change to the configuration (the installation manifest or
// a watched folder) is followed by a backup, so a point exists for every
// configuration the cell ran with; a change to runtime data is not; the
// failover's report names the configuration it restored and when it was
// first seen.
func TestAConfigurationChangeTakesABackupAndTheFailoverNamesIt(t *testing.T) {
	e := newDREnv(t)
	e.plan.Storage.Schedule.Validate = "none"
	e.plan.Storage.Schedule.OnChange = &plan.ConfigWatch{Installation: true, Paths: []string{"*/config"}}
	env := e.env()
	start := env.Now()
	env.RegisterDelayedCallback(func() {
		e.writeData("app", "config/server.json", `{"db":"127.0.1.1:50000","me":"127.0.1.1:7277"}`)
	}, 25*time.Minute)
	env.RegisterDelayedCallback(func() { e.writeData("db", "runtime/orders.dat", "order-1\norder-2\n") }, 45*time.Minute)
	var seen []RPOStatus
	queryRPOAt(t, env, &seen, 55*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e.plan, Interval: 10 * time.Minute, ChecksPerRun: 7})

	pts := e.pointsByInstant()
	require.Len(t, pts, 2, "one point for the first configuration seen, one for the change; none for runtime data")
	first, second := pts[0].Configuration, pts[1].Configuration
	require.NotNil(t, first)
	require.NotNil(t, second)
	require.NotEqual(t, first.Fingerprint, second.Fingerprint)
	require.Equal(t, start.UTC(), first.FirstSeen.UTC())
	require.Equal(t, start.Add(30*time.Minute).UTC(), second.FirstSeen.UTC(), "the change was seen at the first check after it")
	require.Len(t, seen, 1)
	require.NotNil(t, seen[0].Configuration)
	require.Equal(t, second.Fingerprint, seen[0].Configuration.Fingerprint)
	require.Equal(t, 2, seen[0].Configuration.Backups)

	e.setValidity(pts[1].ID, catalog.Valid)
	env = e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	res, rep := failoverReport(t, env)
	require.Equal(t, pts[1].ID, rep.Point.ID)
	require.Equal(t, second.Fingerprint, rep.Point.Configuration)
	require.Equal(t, second.FirstSeen.UTC(), rep.Point.ConfigurationSince.UTC())
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	require.Contains(t, string(md), "configuration `"+second.Fingerprint+"` (first seen")
}

// A scheduled backup of a plan that watches its configuration records the
// fingerprint too, and keeps the first-seen time of an earlier point of the
// same configuration.
func TestEveryPointOfAWatchedPlanRecordsItsConfiguration(t *testing.T) {
	e := newDREnv(t)
	e.plan.Storage.Schedule.OnChange = &plan.ConfigWatch{Paths: []string{"*/config"}}
	a := e.backup(contract.ModeFull).Point
	b := e.backup("").Point
	require.NotNil(t, a.Configuration)
	require.NotNil(t, b.Configuration)
	require.Equal(t, a.Configuration.Fingerprint, b.Configuration.Fingerprint)
	require.Equal(t, a.Configuration.FirstSeen, b.Configuration.FirstSeen, "the same configuration keeps the time it was first seen")
	e.writeData("db", "config/datasource.json", `{"db":"127.0.1.9:50000"}`)
	c := e.backup("").Point
	require.NotEqual(t, a.Configuration.Fingerprint, c.Configuration.Fingerprint)
}

func (e *drEnv) coldPlan() {
	e.plan.Storage.Schedule.Cold = &plan.ColdSchedule{Every: plan.Duration(24 * time.Hour), Approve: true}
	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: contract.GateColdBackup, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true
}

// Seed 000 §2.3.2.1: the simple server backup stops the whole scope in
// reverse order, captures it with nothing running, starts it again in order
// and verifies it; the point is marked cold.
func TestAColdBackupStopsCapturesStartsAndVerifies(t *testing.T) {
	e := newDREnv(t)
	e.coldPlan()
	env := e.env()
	env.RegisterWorkflow(ColdBackupWorkflow)
	e.approve(env, time.Minute, contract.GateColdBackup)
	env.ExecuteWorkflow(ColdBackupWorkflow, ColdBackupInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res ColdBackupResult
	require.NoError(t, env.GetWorkflowResult(&res))

	require.Equal(t, []string{"dc1/app", "dc1/db"}, e.cell.stops, "stopped in reverse order")
	require.Equal(t, []string{"dc1/db", "dc1/app"}, e.cell.starts, "started again in order")
	require.Zero(t, e.cell.quiesces, "nothing runs, nothing to quiesce")
	require.True(t, e.cell.running["dc1/db"] && e.cell.running["dc1/app"])
	require.True(t, res.BringUp.Verify.Valid)
	pts := e.points()
	require.Len(t, pts, 1)
	require.True(t, pts[0].Cold, "the point's manifest says it is cold")
	require.True(t, res.Backup.Point.Cold)
	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	require.True(t, rep.Point.Cold)
	require.Equal(t, contract.GateColdBackup, rep.Gates[0].Name)
}

// A refused gate leaves the cell running and takes no point.
func TestAColdBackupRefusedAtItsGateTouchesNothing(t *testing.T) {
	e := newDREnv(t)
	e.coldPlan()
	env := e.env()
	env.RegisterWorkflow(ColdBackupWorkflow)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateColdBackup, Approver: "ops", Decision: contract.DecisionReject})
	}, time.Minute)
	env.ExecuteWorkflow(ColdBackupWorkflow, ColdBackupInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	require.Empty(t, e.cell.stops)
	require.Empty(t, e.points())
}

// A capture that fails still starts the cell again.
func TestAColdBackupWhoseCaptureFailsStartsTheCellAgain(t *testing.T) {
	e := newDREnv(t)
	e.coldPlan()
	e.plan.Storage.Schedule.Cold.Approve = false
	e.stor.failCapture = true
	env := e.env()
	env.RegisterWorkflow(ColdBackupWorkflow)
	env.ExecuteWorkflow(ColdBackupWorkflow, ColdBackupInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, []string{"dc1/db", "dc1/app"}, e.cell.starts)
	require.True(t, e.cell.running["dc1/db"] && e.cell.running["dc1/app"])
	require.Empty(t, e.points())
}

// Seed 000 §3: before a failover, the secondary is checked for what a
// restore there needs, each check named in the report with its evidence;
// one that fails stops the failover before anything is restored, unless a
// person approves at site-checks.
func TestFailoverChecksTheSecondarysPrerequisites(t *testing.T) {
	notMounted := t.TempDir()
	for _, approve := range []bool{false, true} {
		e := newDREnv(t)
		e.plan.SiteChecks = &plan.SiteChecks{
			Hosts:  []plan.HostCheck{{Name: "localhost", Addresses: []string{"127.0.0.1"}}},
			Mounts: []plan.MountCheck{{Path: "/"}, {Path: notMounted, Type: "nfs", Writable: true}},
			Paths:  []string{filepath.Join(e.dir, "dc2"), filepath.Join(e.dir, "opt-ibm-db2")},
		}
		pt := e.backup("").Point
		e.setValidity(pt.ID, catalog.Valid)
		if approve {
			e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: contract.GateSiteChecks, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
		}
		env := e.env()
		if approve {
			e.approve(env, time.Minute, contract.GateSiteChecks)
			e.approve(env, 2*time.Minute, contract.GateStartSecondary)
		}
		env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
		if !approve {
			err := env.GetWorkflowError()
			require.Error(t, err)
			require.Contains(t, err.Error(), "site-checks")
			require.Empty(t, e.cell.starts, "nothing started at the secondary")
			_, statErr := os.Stat(filepath.Join(e.dir, "dc2", "db"))
			require.True(t, os.IsNotExist(statErr), "nothing restored")
			continue
		}
		res, rep := failoverReport(t, env)
		require.Equal(t, "completed", rep.Outcome)
		results := map[string]bool{}
		for _, c := range rep.SiteChecks {
			results[c.Name] = c.Result.Passed
			require.NotEmpty(t, c.Result.Evidence.Action, c.Name)
		}
		require.Equal(t, map[string]bool{
			"host localhost": true, "same addresses localhost": true, "mount /": true, "mount " + notMounted: false,
			"path " + filepath.Join(e.dir, "dc2"): true, "path " + filepath.Join(e.dir, "opt-ibm-db2"): false,
		}, results)
		md, err := os.ReadFile(res.Report.Markdown)
		require.NoError(t, err)
		require.Contains(t, string(md), notMounted+" is not a mount point")
	}
}

// Installation manifests that differ stop the failover at
// installation-mismatch; a plan without that gate cannot go on.
func TestFailoverStopsWhenTheInstallationsDiffer(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "dc2-installation.json"), []byte(`{"bpm":{"version":"7.5","fixes":[]}}`), 0o644))
	env := e.env()
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), contract.GateInstallationMismatch)
	require.Empty(t, e.cell.starts)

	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: contract.GateInstallationMismatch, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
	env = e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateInstallationMismatch, Approver: "ops", Decision: contract.DecisionReject})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err = env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "gate installation-mismatch: reject")
	require.Empty(t, e.cell.starts)
}

// The cold schedule stops the cell at the primary: it is paused while a
// failover moves the cell, stays paused while the cell runs at the
// secondary, and resumes once the failback brings it home.
func TestColdBackupsPauseWhileTheCellIsAway(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.schedules.cold, 2)
	require.True(t, e.schedules.cold[0].Pause && e.schedules.cold[1].Pause, "paused, and still paused with the cell at dc2")

	env = e.env()
	e.approve(env, time.Minute, contract.GateFailback)
	env.ExecuteWorkflow(FailbackWorkflow, FailbackInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.schedules.cold, 4)
	require.False(t, e.schedules.cold[3].Pause, "resumed with the cell at the primary")
}

// A cold backup never stops a site the cell has moved away from.
func TestAColdBackupRefusesASiteTheCellLeft(t *testing.T) {
	e := newDREnv(t)
	e.coldPlan()
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(t, err)
	_, err = st.SetPrimary("cell", "dc2", "failover", time.Now())
	require.NoError(t, err)
	env := e.env()
	env.RegisterWorkflow(ColdBackupWorkflow)
	env.ExecuteWorkflow(ColdBackupWorkflow, ColdBackupInput{Plan: e.plan})
	require.ErrorContains(t, env.GetWorkflowError(), "the cell runs at dc2")
	require.Empty(t, e.cell.stops)
	require.Empty(t, e.points())
}
