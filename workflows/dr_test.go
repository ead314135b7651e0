package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/sitefs"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/archive"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// These tests run the DR workflows on the SDK's test environment with the
// real activities and the real archive storage driver over real files in a
// temporary directory; only the middleware, probes and redirect are fakes
// of the cell (per site), so failures can be injected.

type siteCell struct {
	mu          sync.Mutex
	failQuiesce map[string]bool // site/component whose quiesce fails
	running     map[string]bool // site/component
	starts      []string
	stops       []string
	quiesced    map[string]bool
	quiesces    int
	resumes     int
	failCheck   map[string]bool // site/check -> fails
	failStop    map[string]bool // site/component whose stop fails
	prepared    []string        // site/component prepared after a restore
	// failStarts is how many starts of a site/component fail first.
	failStarts map[string]int
	// failRedirects is how many redirects fail before one works.
	failRedirects int
	pointsAt      string
	drained       []string
}

func newSiteCell() *siteCell {
	return &siteCell{running: map[string]bool{}, quiesced: map[string]bool{}, failCheck: map[string]bool{}, failQuiesce: map[string]bool{},
		failStop: map[string]bool{}, failStarts: map[string]int{}}
}

func key(t drivers.Target) string { return t.Site.Name + "/" + t.Component.Name }

func (c *siteCell) Start(_ context.Context, t drivers.Target) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failStarts[key(t)] > 0 {
		c.failStarts[key(t)]--
		return drivers.Evidence{Output: "SRVE0000E: cannot bind port"}, fmt.Errorf("%s: start failed", key(t))
	}
	if c.running[key(t)] {
		return drivers.Evidence{AlreadyDone: true}, nil
	}
	c.running[key(t)] = true
	c.starts = append(c.starts, key(t))
	return drivers.Evidence{Action: "start " + key(t), Output: "ADMU3000I: Server " + key(t) + " open for e-business"}, nil
}

func (c *siteCell) Stop(_ context.Context, t drivers.Target, _ drivers.StopMode) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failStop[key(t)] {
		return drivers.Evidence{}, drivers.BadSettingsf("%s: stop refused: no route to host", key(t))
	}
	if c.running[key(t)] {
		c.stops = append(c.stops, key(t))
	}
	c.running[key(t)] = false
	return drivers.Evidence{Action: "stop " + key(t)}, nil
}

func (c *siteCell) Status(_ context.Context, t drivers.Target) (drivers.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[key(t)] {
		return drivers.Status{State: drivers.StateRunning}, nil
	}
	return drivers.Status{State: drivers.StateStopped}, nil
}

func (c *siteCell) Quiesce(_ context.Context, t drivers.Target) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failQuiesce[key(t)] {
		return drivers.Evidence{}, drivers.Unsupported(fmt.Errorf("%s: write suspend refused: log full", key(t)))
	}
	c.quiesced[key(t)] = true
	c.quiesces++
	return drivers.Evidence{Action: "quiesce " + key(t)}, nil
}

func (c *siteCell) Resume(_ context.Context, t drivers.Target) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.quiesced[key(t)] = false
	c.resumes++
	return drivers.Evidence{Action: "resume " + key(t)}, nil
}

func (c *siteCell) Check(_ context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failCheck[req.Site.Name+"/"+req.Name] {
		return drivers.CheckResult{Passed: false, Summary: req.Name + " failed at " + req.Site.Name}, nil
	}
	return drivers.CheckResult{Passed: true, Summary: req.Name + " ok at " + req.Site.Name}, nil
}

func (c *siteCell) PointTo(_ context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failRedirects > 0 {
		c.failRedirects--
		return drivers.Evidence{}, fmt.Errorf("front door at %s: connection refused", req.Site.Name)
	}
	c.pointsAt = req.Site.Name
	return drivers.Evidence{Action: "point to " + req.Site.Name}, nil
}

func (c *siteCell) Current(context.Context, drivers.RedirectRequest) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pointsAt, nil
}

func (c *siteCell) Drain(_ context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drained = append(c.drained, req.Site.Name)
	return drivers.Evidence{Action: "drain " + req.Site.Name}, nil
}

// flakyStorage wraps the archive driver to fail a capture on demand.
type flakyStorage struct {
	*archive.Driver
	failCapture bool
}

func (f *flakyStorage) Capture(ctx context.Context, req storage.Request, p storage.Progress) (storage.Result, error) {
	if f.failCapture {
		return storage.Result{}, drivers.BadSettingsf("injected capture failure")
	}
	return f.Driver.Capture(ctx, req, p)
}

type drEnv struct {
	schedules *scheduleLog
	runs      int
	t         *testing.T
	dir       string
	cell      *siteCell
	stor      *flakyStorage
	plan      plan.Plan
	ts        testsuite.WorkflowTestSuite
	// register adds drivers of a test's own to each environment's registry.
	register func(*drivers.Registry)
	// missingQueues are task queues no worker polls (a lost site).
	missingQueues map[string]bool
}

func newDREnv(t *testing.T) *drEnv {
	dir := t.TempDir()
	e := &drEnv{t: t, dir: dir, cell: newSiteCell(), stor: &flakyStorage{Driver: archive.New(nil)}, schedules: &scheduleLog{}}
	site := func(name string) *plan.Site {
		return &plan.Site{Name: name, Settings: plan.Settings{"dataRoot": filepath.Join(dir, name)},
			Installation: filepath.Join(dir, name+"-installation.json")}
	}
	for _, s := range []string{"dc1", "dc2", "sandbox"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, s), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, s+"-installation.json"), []byte(`{"bpm":{"version":"7.5","fixes":["IF1"]}}`), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "store"), 0o755))
	e.writeData("db", "config/datasource.json", `{"db":"127.0.1.1:50000"}`)
	e.writeData("db", "runtime/orders.dat", "order-1\n")
	e.writeData("app", "config/server.json", `{"db":"127.0.1.1:50000","me":"127.0.1.1:7276"}`)
	e.writeData("app", "runtime/tranlog", "tx-1\n")
	check := func(name string) []plan.DriverCheck { return []plan.DriverCheck{{Name: name, Driver: "cell"}} }
	e.plan = plan.Plan{
		APIVersion: plan.APIVersion, Name: "cell", RPO: plan.Duration(time.Hour), RTO: plan.Duration(time.Hour),
		Products: []string{"bpm"},
		Sites:    plan.Sites{Primary: site("dc1"), Secondary: site("dc2"), Sandbox: site("sandbox")},
		Components: []plan.Component{
			{Name: "db", Role: plan.RoleDatabase, Driver: "cell"},
			{Name: "app", Role: plan.RoleApp, Product: "bpm", Driver: "cell"},
		},
		Storage: plan.Storage{
			Store:  plan.Settings{"path": filepath.Join(dir, "store")},
			Groups: []plan.ConsistencyGroup{{Name: "cell", Driver: "archive", Classes: []plan.DataClass{plan.DataConfiguration, plan.DataRuntime}, Components: []string{"db", "app"}, Quiesce: true}},
		},
		Verification: plan.Verification{System: check("system"), Application: check("apps"), Instance: check("instances")},
		Recovery:     check("inflight"),
		Redirect:     &plan.DriverRef{Driver: "cell", Check: &plan.DriverCheck{Name: "front-door", Driver: "cell"}},
		Environment: []plan.Rewrite{{Name: "hosts", Files: []string{"*/config/*.json"},
			Primary: "127.0.1.1", Secondary: "127.0.2.1", Sandbox: "127.0.3.1"}},
		Approvers: []plan.Approver{{Name: "ops"}},
		Gates: []plan.Gate{
			{Name: contract.GateStartSecondary, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour), Checklist: []string{"configure the top-of-rack switches"}},
			{Name: contract.GateAcceptDataLoss, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
			{Name: contract.GateRollback, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
			{Name: contract.GateStartFailed, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
			{Name: contract.GateRecoveryStalled, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
			{Name: contract.GateFailback, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)},
		},
	}
	st, err := catalog.Open(filepath.Join(dir, "store"))
	require.NoError(t, err)
	_, err = st.Transition("cell", catalog.StateEnabled, "secondary", "test", time.Now())
	require.NoError(t, err)
	return e
}

func (e *drEnv) writeData(member, rel, content string) {
	path := filepath.Join(e.dir, "dc1", member, rel)
	require.NoError(e.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(e.t, os.WriteFile(path, []byte(content), 0o644))
}

func (e *drEnv) env() *testsuite.TestWorkflowEnvironment {
	env := e.ts.NewTestWorkflowEnvironment()
	// Each run gets its own workflow id, as on a real server, so point ids
	// derived from the run differ.
	e.runs++
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: fmt.Sprintf("run-%d", e.runs)})
	reg := drivers.NewRegistry()
	reg.RegisterMiddleware("cell", e.cell)
	reg.RegisterProbe("cell", e.cell)
	reg.RegisterRedirect("cell", e.cell)
	reg.RegisterStorage("archive", e.stor)
	if e.register != nil {
		e.register(reg)
	}
	acts := testActivitiesWith(reg, e.schedules)
	acts.Workers = everyQueue{missing: e.missingQueues}
	env.RegisterActivity(acts)
	for _, wf := range []any{RestartWorkflow, VerifyWorkflow, ShutdownWorkflow, BackupWorkflow, ValidateWorkflow, DrillWorkflow, FailoverWorkflow, FailbackWorkflow} {
		env.RegisterWorkflow(wf)
	}
	env.SetTestTimeout(2 * time.Minute)
	return env
}

func (e *drEnv) approve(env *testsuite.TestWorkflowEnvironment, after time.Duration, gate string) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: gate, Approver: "ops", Decision: contract.DecisionApprove})
	}, after)
}

func (e *drEnv) backup(mode contract.Mode) BackupResult {
	env := e.env()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Plan: e.plan, Mode: mode})
	require.NoError(e.t, env.GetWorkflowError())
	var res BackupResult
	require.NoError(e.t, env.GetWorkflowResult(&res))
	return res
}

func (e *drEnv) points() []catalog.Point {
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(e.t, err)
	pts, err := st.List("cell")
	require.NoError(e.t, err)
	return pts
}

func (e *drEnv) setValidity(id string, state catalog.ValidityState) {
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(e.t, err)
	require.NoError(e.t, st.SetValidity("cell", id, catalog.Validity{State: state, Reason: "test"}))
}

func TestBackupQuiescesCapturesAndRecordsOnePoint(t *testing.T) {
	e := newDREnv(t)
	full := e.backup("")
	require.Equal(t, contract.ModeFull, full.Point.Mode, "no full exists yet")
	require.Equal(t, string(catalog.ConsistencyQuiesced), full.Point.Consistency)
	require.Equal(t, 2, e.cell.quiesces)
	require.Equal(t, 2, e.cell.resumes)
	require.False(t, e.cell.quiesced["dc1/db"], "writes resumed")

	e.writeData("db", "runtime/orders.dat", "order-1\norder-2\n")
	cum := e.backup("")
	require.Equal(t, contract.ModeCumulative, cum.Point.Mode)
	require.Equal(t, full.Point.ID, cum.Point.BaseID)
	require.Len(t, e.points(), 2)
}

func TestBackupResumesWritesWhenCaptureFailsAndLeavesNoPoint(t *testing.T) {
	e := newDREnv(t)
	e.stor.failCapture = true
	env := e.env()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "injected capture failure")
	require.Equal(t, e.cell.quiesces, e.cell.resumes, "every paused component is resumed")
	require.False(t, e.cell.quiesced["dc1/db"])
	require.Empty(t, e.points(), "a failed backup leaves no point")
	staging, _ := filepath.Glob(filepath.Join(e.dir, "store", "cell", "staging", "*"))
	require.Empty(t, staging, "nor any staging")
}

func TestValidateMarksPointsValidOrInvalidAndTearsDownTheSandbox(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point

	env := e.env()
	env.ExecuteWorkflow(ValidateWorkflow, ValidateInput{Plan: e.plan, PointID: pt.ID})
	require.NoError(t, env.GetWorkflowError())
	var res ValidateResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.True(t, res.Valid)
	require.Equal(t, catalog.Valid, e.points()[0].Validity.State)
	// The restored config was rewritten for the sandbox, then wiped.
	require.Contains(t, e.cell.starts, "sandbox/db")
	entries := sandboxData(t, filepath.Join(e.dir, "sandbox"))
	require.Empty(t, entries, "sandbox torn down")
	require.False(t, e.cell.running["sandbox/app"])
	require.FileExists(t, res.Report.Markdown)

	e.cell.failCheck["sandbox/system"] = true
	env = e.env()
	env.ExecuteWorkflow(ValidateWorkflow, ValidateInput{Plan: e.plan, PointID: pt.ID})
	require.NoError(t, env.GetWorkflowError())
	require.NoError(t, env.GetWorkflowResult(&res))
	require.False(t, res.Valid)
	require.Equal(t, catalog.Invalid, e.points()[0].Validity.State)
	require.Contains(t, e.points()[0].Validity.Reason, "system level")
	entries = sandboxData(t, filepath.Join(e.dir, "sandbox"))
	require.Empty(t, entries, "sandbox torn down after a failed validation too")
}

func TestDrillLeavesPrimaryUntouchedAndSandboxGone(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true

	env := e.env()
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res DrillResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.True(t, res.RTO.Known)
	require.True(t, e.cell.running["dc1/db"] && e.cell.running["dc1/app"], "primary untouched")
	for _, s := range e.cell.stops {
		require.False(t, strings.HasPrefix(s, "dc1/"), "drill stopped %s", s)
	}
	entries := sandboxData(t, filepath.Join(e.dir, "sandbox"))
	require.Empty(t, entries)
}

func TestDrillCancelledStillCleansUp(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	// Cancel once the sandbox holds restored data.
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "ApplyEnvironment" {
			env.CancelWorkflow()
		}
	})
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	entries := sandboxData(t, filepath.Join(e.dir, "sandbox"))
	require.Empty(t, entries, "a cancelled drill still tears the sandbox down")
}

func TestUnplannedFailoverRestoresRewritesStartsVerifiesRedirectsAndReports(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res FailoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, pt.ID, res.Point.ID)
	require.Equal(t, "dc2", e.cell.pointsAt)
	require.True(t, res.RPO.Known && res.RTO.Known)

	ds, err := os.ReadFile(filepath.Join(e.dir, "dc2", "db", "config", "datasource.json"))
	require.NoError(t, err)
	require.Equal(t, `{"db":"127.0.2.1:50000"}`, string(ds), "data source rewritten to the secondary (step 5)")
	orders, err := os.ReadFile(filepath.Join(e.dir, "dc2", "db", "runtime", "orders.dat"))
	require.NoError(t, err)
	require.Equal(t, "order-1\n", string(orders))
	require.Equal(t, []string{"dc2/db", "dc2/app"}, e.cell.starts, "database before app")

	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	require.Equal(t, "completed", rep.Outcome)
	require.Equal(t, contract.GateStartSecondary, rep.Gates[0].Name)
	require.Equal(t, "ops", rep.Gates[0].Approvals[0].Approver)
	require.NotNil(t, rep.Verification)
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	require.Contains(t, string(md), "configure the top-of-rack switches")
	require.Contains(t, string(md), "live (serving traffic)")
}

func TestFailoverRollsBackToThePreviousValidPoint(t *testing.T) {
	e := newDREnv(t)
	older := e.backup("").Point
	e.setValidity(older.ID, catalog.Valid)
	e.writeData("db", "runtime/orders.dat", "order-1\norder-2\n")
	newer := e.backup("").Point
	e.setValidity(newer.ID, catalog.Valid)

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	// The newer point fails the application level at the secondary; the
	// operator approves the rollback, and the older point verifies.
	e.cell.failCheck["dc2/apps"] = true
	env.RegisterDelayedCallback(func() {
		e.cell.mu.Lock()
		e.cell.failCheck["dc2/apps"] = false
		e.cell.mu.Unlock()
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateRollback, Approver: "ops", Decision: contract.DecisionApprove})
	}, 2*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res FailoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, older.ID, res.Point.ID)
	byID := map[string]catalog.Point{}
	for _, p := range e.points() {
		byID[p.ID] = p
	}
	require.Equal(t, catalog.Invalid, byID[newer.ID].Validity.State, "the point that failed verification is marked invalid")
	orders, err := os.ReadFile(filepath.Join(e.dir, "dc2", "db", "runtime", "orders.dat"))
	require.NoError(t, err)
	require.Equal(t, "order-1\n", string(orders), "the older point's data")
	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	require.Len(t, rep.Abandoned, 1)
}

func TestPlannedFailoverDrainsBacksUpAndStopsPrimaryInReverse(t *testing.T) {
	e := newDREnv(t)
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Planned: true})
	require.NoError(t, env.GetWorkflowError())
	var res FailoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, []string{"dc1"}, e.cell.drained)
	require.Equal(t, []string{"dc1/app", "dc1/db"}, e.cell.stops, "reverse order")
	require.Equal(t, time.Duration(0), res.RPO.Achieved, "the invocation backup loses nothing")
	require.Len(t, e.points(), 1, "the invocation backup is the point restored")
	require.Equal(t, res.Point.ID, e.points()[0].ID)
}

func TestFailoverAsksToAcceptDataLossWhenThePointIsOlderThanTheRPO(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptDataLoss, Approver: "ops", Decision: contract.DecisionReject, Comment: "wait for the primary"})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, DeclaredAt: time.Now().Add(3 * time.Hour)})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "accept-data-loss: reject")
	require.Empty(t, e.cell.starts, "nothing restored or started after a refused data loss")
}

func TestFailbackReturnsTheCellToThePrimary(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	// Work done at the secondary while it was live.
	path := filepath.Join(e.dir, "dc2", "db", "runtime", "orders.dat")
	require.NoError(t, os.WriteFile(path, []byte("order-1\norder-3-at-dc2\n"), 0o644))
	require.NoError(t, os.RemoveAll(filepath.Join(e.dir, "dc1", "db")))

	env = e.env()
	e.approve(env, time.Minute, contract.GateFailback)
	env.ExecuteWorkflow(FailbackWorkflow, FailbackInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res FailbackResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "dc1", e.cell.pointsAt)
	orders, err := os.ReadFile(filepath.Join(e.dir, "dc1", "db", "runtime", "orders.dat"))
	require.NoError(t, err)
	require.Equal(t, "order-1\norder-3-at-dc2\n", string(orders), "work done at the secondary comes back")
	ds, err := os.ReadFile(filepath.Join(e.dir, "dc1", "db", "config", "datasource.json"))
	require.NoError(t, err)
	require.Equal(t, `{"db":"127.0.1.1:50000"}`, string(ds), "rewritten back to the primary")
	require.False(t, e.cell.running["dc2/db"], "secondary stopped")
}

func TestRPOMonitorReportsABreachWhenNoNewPointArrives(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	var seen []RPOStatus
	query := func() {
		v, err := env.QueryWorkflow(contract.QueryRPO)
		require.NoError(t, err)
		var st RPOStatus
		require.NoError(t, v.Get(&st))
		seen = append(seen, st)
	}
	env.RegisterDelayedCallback(query, 45*time.Minute)
	env.RegisterDelayedCallback(query, 95*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e.plan, Interval: 30 * time.Minute, ChecksPerRun: 4})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can, "the monitor continues as new to keep its history small")
	require.Len(t, seen, 2)
	require.Equal(t, contract.RPOOk, seen[0].Status)
	require.Equal(t, pt.ID, seen[0].PointID)
	require.Equal(t, contract.RPOBreached, seen[1].Status, "an hour's RPO is breached 95 minutes after the only point")
	require.Equal(t, 1, seen[1].Breaches)
	require.Greater(t, seen[1].Age, time.Hour)
}

func TestFailoverRefusesAPlanThatIsNotEnabledUnlessForcedAtAGate(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(t, err)
	_, err = st.Transition("cell", catalog.StateDisabled, "", "test", time.Now())
	require.NoError(t, err)

	env := e.env()
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.ErrorContains(t, env.GetWorkflowError(), `no gate "plan-not-enabled"`)
	require.Empty(t, e.cell.starts)

	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: contract.GatePlanNotEnabled, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
	env = e.env()
	e.approve(env, time.Minute, contract.GatePlanNotEnabled)
	e.approve(env, 2*time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, "dc2", e.cell.pointsAt)
}

func TestQuiesceFailureResumesTheOthersAndFailsClearly(t *testing.T) {
	e := newDREnv(t)
	e.cell.failQuiesce["dc1/app"] = true
	env := e.env()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "quiesce")
	require.Contains(t, err.Error(), "write suspend refused: log full")
	require.False(t, e.cell.quiesced["dc1/db"], "the component that did pause is resumed")
	require.Equal(t, 1, e.cell.quiesces)
	require.Equal(t, 1, e.cell.resumes)
	require.Empty(t, e.points(), "no point from a backup that could not quiesce")
}

func TestCancelledFailoverStopsAtASafePointAndReportsSiteStates(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	// Nobody approves start-secondary; the operator cancels instead.
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	require.Empty(t, e.cell.starts, "nothing started at the secondary after a cancel at the gate")
	reports, err := filepath.Glob(filepath.Join(e.dir, "store", "cell", "reports", "*.json"))
	require.NoError(t, err)
	require.Len(t, reports, 1)
	rep, err := report.Read(reports[0])
	require.NoError(t, err)
	require.Equal(t, "cancelled", rep.Outcome)
	states := map[string]string{}
	for _, s := range rep.Sites {
		states[s.Role] = s.State
	}
	require.Equal(t, "lost (disaster declared)", states["primary"])
	require.Equal(t, "idle (untouched)", states["secondary"])
	require.Equal(t, "cancelled", rep.Gates[0].Outcome)
}

// validBackup takes a point and records it valid, as a validation would.
func (e *drEnv) validBackup(mode contract.Mode) contract.Point {
	pt := e.backup(mode).Point
	e.setValidity(pt.ID, catalog.Valid)
	return pt
}

// failover runs an unplanned failover to its end and returns its result.
func (e *drEnv) failover(env *testsuite.TestWorkflowEnvironment) FailoverResult {
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(e.t, env.GetWorkflowError())
	var res FailoverResult
	require.NoError(e.t, env.GetWorkflowResult(&res))
	return res
}

// damagePoint flips one byte in the middle of every data file of a point,
// as a bad disk or a bad copy would.
func (e *drEnv) damagePoint(id string) []string {
	files, err := filepath.Glob(filepath.Join(e.dir, "store", "cell", "points", id, "*", "*"))
	require.NoError(e.t, err)
	require.NotEmpty(e.t, files, "point %s has no data files", id)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(e.t, err)
		b[len(b)/2] ^= 0x5a
		require.NoError(e.t, os.WriteFile(f, b, 0o640))
	}
	return files
}

func (e *drEnv) pointsByID() map[string]catalog.Point { return catalog.ByID(e.points()) }

func TestFailoverRollsBackWhenRestoreFindsThePointDamaged(t *testing.T) {
	e := newDREnv(t)
	older := e.validBackup("")
	e.writeData("db", "runtime/orders.dat", "order-1\norder-2\n")
	newer := e.validBackup("")
	e.damagePoint(newer.ID)

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	e.approve(env, 2*time.Minute, contract.GateRollback)
	res := e.failover(env)
	require.Equal(t, older.ID, res.Point.ID)

	got := e.pointsByID()[newer.ID]
	require.Equal(t, catalog.Invalid, got.Validity.State, "the damaged point is marked invalid by the run itself")
	require.Contains(t, got.Validity.Reason, "restore refused damaged data")
	require.Equal(t, []string{"dc2/db", "dc2/app"}, e.cell.starts, "nothing started from the damaged point; the older one started once")
	orders, err := os.ReadFile(filepath.Join(e.dir, "dc2", "db", "runtime", "orders.dat"))
	require.NoError(t, err)
	require.Equal(t, "order-1\n", string(orders), "the older point's data")

	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	require.Len(t, rep.Abandoned, 1)
	require.Equal(t, newer.ID, rep.Abandoned[0].ID)
	var gates []string
	for _, g := range rep.Gates {
		gates = append(gates, g.Name+"="+g.Outcome)
	}
	require.Equal(t, []string{contract.GateStartSecondary + "=approve", contract.GateRollback + "=approve"}, gates)
}

func TestFailoverRefusingTheRollbackAfterDamageLeavesNothingStarted(t *testing.T) {
	e := newDREnv(t)
	older := e.validBackup("")
	newer := e.validBackup("")
	e.damagePoint(newer.ID)

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateRollback, Approver: "ops", Decision: contract.DecisionReject})
	}, 2*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Regexp(t, `cell/points/`+newer.ID+`/cell/(db|app)\.tar\.zst`, err.Error(), "the failure names the damaged file")
	require.Contains(t, err.Error(), "gate rollback: reject")
	require.Empty(t, e.cell.starts, "nothing started at the secondary")
	require.Equal(t, catalog.Invalid, e.pointsByID()[newer.ID].Validity.State)
	require.Equal(t, catalog.Valid, e.pointsByID()[older.ID].Validity.State)
}

func TestFailoverPassesOverCumulativePointsOfADamagedFull(t *testing.T) {
	e := newDREnv(t)
	oldFull := e.validBackup(contract.ModeFull)
	e.writeData("db", "runtime/orders.dat", "order-1\norder-2\n")
	full := e.backup(contract.ModeFull).Point
	e.writeData("db", "runtime/orders.dat", "order-1\norder-2\norder-3\n")
	cum := e.backup(contract.ModeCumulative).Point
	require.Equal(t, full.ID, cum.BaseID)
	// Validated only now: until then the old full is the newest valid
	// point, which retention keeps.
	e.setValidity(full.ID, catalog.Valid)
	e.setValidity(cum.ID, catalog.Valid)
	require.Len(t, e.points(), 3)
	e.damagePoint(full.ID)

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	e.approve(env, 2*time.Minute, contract.GateRollback)
	res := e.failover(env)
	require.Equal(t, oldFull.ID, res.Point.ID, "the rollback skips every point that needs the damaged full")

	pts := e.pointsByID()
	require.Equal(t, catalog.Invalid, pts[full.ID].Validity.State, "the full holding the damage is invalid")
	require.Equal(t, catalog.Invalid, pts[cum.ID].Validity.State, "the cumulative point restored from it is invalid")
	require.Contains(t, pts[cum.ID].Validity.Reason, "its full point "+full.ID+" is damaged")
	require.Equal(t, catalog.Valid, pts[oldFull.ID].Validity.State)
}

func TestValidateMarksADamagedPointInvalid(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.damagePoint(pt.ID)
	env := e.env()
	env.ExecuteWorkflow(ValidateWorkflow, ValidateInput{Plan: e.plan, PointID: pt.ID})
	require.NoError(t, env.GetWorkflowError(), "validation ran to its verdict")
	var res ValidateResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.False(t, res.Valid)
	require.Contains(t, res.Reason, "restore refused damaged data")
	require.Equal(t, catalog.Invalid, e.pointsByID()[pt.ID].Validity.State)
	require.Empty(t, e.cell.starts, "nothing started in the sandbox from a damaged point")
}

// recoveryStalls makes the in-flight check fail at the secondary with a
// short window, so the failover reaches the recovery-stalled gate.
func (e *drEnv) recoveryStalls() {
	e.plan.Recovery[0].Timeout = plan.Duration(3 * time.Second)
	e.cell.failCheck["dc2/inflight"] = true
}

func (e *drEnv) decide(env *testsuite.TestWorkflowEnvironment, after time.Duration, gate, decision string) {
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: gate, Approver: "ops", Decision: decision})
	}, after)
}

func TestStalledRecoveryOpensAGateAndSkipIsReported(t *testing.T) {
	e := newDREnv(t)
	e.validBackup("")
	e.recoveryStalls()
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	e.decide(env, 10*time.Minute, contract.GateRecoveryStalled, contract.DecisionSkip)
	res := e.failover(env)
	require.Equal(t, "dc2", e.cell.pointsAt, "traffic redirected after the skip")
	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	var skipped []string
	for _, st := range rep.Steps {
		if st.Outcome == OutcomeSkipped {
			skipped = append(skipped, st.Detail)
		}
	}
	require.Len(t, skipped, 1)
	require.Contains(t, skipped[0], "inflight failed at dc2")
	require.Contains(t, skipped[0], "skipped at gate "+contract.GateRecoveryStalled)
}

func TestStalledRecoveryRetriedPassesOnceTheCellRecovers(t *testing.T) {
	e := newDREnv(t)
	e.validBackup("")
	e.recoveryStalls()
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		e.cell.mu.Lock()
		e.cell.failCheck["dc2/inflight"] = false
		e.cell.mu.Unlock()
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateRecoveryStalled, Approver: "ops", Decision: contract.DecisionRetry})
	}, 10*time.Minute)
	e.failover(env)
	require.Equal(t, "dc2", e.cell.pointsAt)
}

func TestStalledRecoveryAbortedFailsBeforeTheRedirect(t *testing.T) {
	e := newDREnv(t)
	e.validBackup("")
	e.recoveryStalls()
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	e.decide(env, 10*time.Minute, contract.GateRecoveryStalled, contract.DecisionAbort)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "gate recovery-stalled: abort")
	require.Contains(t, err.Error(), "inflight failed at dc2")
	require.NotEqual(t, "dc2", e.cell.pointsAt, "no traffic to a cell whose in-flight work is stuck")
}

func TestDrillOfADamagedPointMarksItInvalidAndCleansUp(t *testing.T) {
	e := newDREnv(t)
	pt := e.validBackup("")
	e.damagePoint(pt.ID)
	env := e.env()
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "cell/points/"+pt.ID+"/")
	got := e.pointsByID()[pt.ID]
	require.Equal(t, catalog.Invalid, got.Validity.State, "a drill that finds the data damaged has validated the point")
	require.Contains(t, got.Validity.Reason, "restore refused damaged data")
	require.Empty(t, e.cell.starts, "nothing started in the sandbox")
	entries := sandboxData(t, filepath.Join(e.dir, "sandbox"))
	require.Empty(t, entries, "the sandbox is cleaned up")
}

func (e *drEnv) withGate(name string) {
	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: name, Approvers: []string{"ops"}, Quorum: 1, Timeout: plan.Duration(time.Hour)})
}

func (e *drEnv) withoutGate(name string) {
	e.plan.Gates = slices.DeleteFunc(e.plan.Gates, func(g plan.Gate) bool { return g.Name == name })
}

// Seed 001: the people at the primary agree before anything there stops;
// a refusal leaves the primary as it was.
func TestPlannedFailoverRefusedAtThePrimaryGateLeavesThePrimaryUntouched(t *testing.T) {
	e := newDREnv(t)
	e.withGate(contract.GatePlannedPrimary)
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true
	env := e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GatePlannedPrimary, Approver: "ops", Decision: contract.DecisionReject, Comment: "not tonight"})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Planned: true})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "planned-failover-primary: reject")
	require.Empty(t, e.cell.drained, "nothing drained")
	require.Empty(t, e.cell.stops, "nothing stopped at the primary")
	require.Empty(t, e.points(), "no final backup taken")
	require.True(t, e.cell.running["dc1/db"] && e.cell.running["dc1/app"])
}

// Seed 001: an unplanned failover starts the secondary only after a person
// approves start-secondary; a plan without that gate does not run past it.
func TestUnplannedFailoverNeverStartsTheSecondaryWithoutStartSecondary(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.withoutGate(contract.GateStartSecondary)
	env := e.env()
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), `defines no gate "start-secondary"`)
	require.Empty(t, e.cell.starts, "nothing started")

	// Waived in so many words: the run goes on and the report says so.
	e.plan.Gates = append(e.plan.Gates, plan.Gate{Name: contract.GateStartSecondary, NoApproval: true})
	env = e.env()
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	_, rep := failoverReport(t, env)
	require.Contains(t, strings.Join(rep.Notes, "\n"), "gate start-secondary: no approval required by the plan")
}

// A failback starts only after a person approves it.
func TestFailbackWaitsForItsGate(t *testing.T) {
	e := newDREnv(t)
	e.withoutGate(contract.GateFailback)
	env := e.env()
	env.ExecuteWorkflow(FailbackWorkflow, FailbackInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), `defines no gate "failback"`)
	require.Empty(t, e.cell.stops)
	require.Empty(t, e.cell.drained)
}

// No split brain: an unplanned failover whose primary still answers stops
// it before the secondary starts.
func TestUnplannedFailoverFencesAPrimaryThatStillAnswers(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.False(t, e.cell.running["dc1/db"] || e.cell.running["dc1/app"], "the primary is stopped")
	require.Equal(t, []string{"dc1/app", "dc1/db"}, e.cell.stops)
	require.Equal(t, []string{"dc2/db", "dc2/app"}, e.cell.starts, "the secondary starts after the primary is fenced")
	_, rep := failoverReport(t, env)
	require.Contains(t, strings.Join(rep.Notes, "\n"), "the primary still answered: stopped (fenced)")
}

// A primary that answers and cannot be stopped opens primary-alive; a
// refusal ends the run with nothing started at the secondary.
func TestUnplannedFailoverAsksWhenThePrimaryAnswersAndCannotBeStopped(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.withGate(contract.GatePrimaryAlive)
	e.cell.running["dc1/db"], e.cell.running["dc1/app"] = true, true
	e.cell.failStop["dc1/db"] = true
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GatePrimaryAlive, Approver: "ops", Decision: contract.DecisionReject})
	}, 2*time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "primary-alive: reject")
	require.Empty(t, e.cell.starts, "nothing started at the secondary")
	require.True(t, e.cell.running["dc1/db"], "the primary's database still runs")
}

// A step that still fails after its retries asks a person at step-failed
// instead of failing the run; retry resumes at that step.
func TestAStepThatKeepsFailingOpensStepFailedAndRetryResumesThere(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.withGate(contract.GateStepFailed)
	e.cell.failRedirects = 5 // the redirect's attempts, all failing
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateStepFailed, Approver: "ops", Decision: contract.DecisionRetry, Comment: "front door fixed"})
	}, time.Hour)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, "dc2", e.cell.pointsAt)
	_, rep := failoverReport(t, env)
	var gate *report.Gate
	for i := range rep.Gates {
		if rep.Gates[i].Name == contract.GateStepFailed {
			gate = &rep.Gates[i]
		}
	}
	require.NotNil(t, gate, "step-failed opened")
	require.Contains(t, gate.Detail, "Redirect at dc2 failed after its retries: front door at dc2: connection refused")
	require.Equal(t, contract.DecisionRetry, gate.Outcome)
	require.Equal(t, []string{contract.DecisionRetry, contract.DecisionAbort}, gate.Options)
}

// A restore never replaces the data of a component that still runs there.
func TestRestoreRefusesASiteWhereAComponentStillRuns(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.running["dc2/app"] = true
	require.NoError(t, os.MkdirAll(filepath.Join(e.dir, "dc2", "app"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, "dc2", "app", "in-use"), []byte("live"), 0o644))
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), "app still answer as running at dc2")
	_, statErr := os.Stat(filepath.Join(e.dir, "dc2", "app", "in-use"))
	require.NoError(t, statErr, "nothing restored over it")

	// With step-failed, a person stops it and retries.
	e.withGate(contract.GateStepFailed)
	env = e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		e.cell.mu.Lock()
		e.cell.running["dc2/app"] = false
		e.cell.mu.Unlock()
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateStepFailed, Approver: "ops", Decision: contract.DecisionRetry})
	}, time.Hour)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.True(t, e.cell.running["dc2/app"], "restored and started once stopped")
}

// sandboxData lists what a sandbox holds besides drover's marker.
func sandboxData(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if e.Name() != sitefs.MarkerFile {
			names = append(names, e.Name())
		}
	}
	return names
}

// The default configuration can fail over: with no validated point, the
// newest intact one is restored once a person accepts what was not checked.
func TestFailoverOfAnIntactPointAsksWhatWasNotChecked(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point // intact: verified at the store, never validated
	e.withoutGate(contract.GateAcceptUnvalidated)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	err := env.GetWorkflowError()
	require.Error(t, err)
	require.Contains(t, err.Error(), `defines no gate "accept-unvalidated-point"`)
	require.Empty(t, e.cell.starts)

	e.withGate(contract.GateAcceptUnvalidated)
	env = e.env()
	var detail string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(contract.QueryStatus)
		require.NoError(t, err)
		var st Status
		require.NoError(t, v.Get(&st))
		for _, g := range st.Gates {
			if g.Name == contract.GateAcceptUnvalidated {
				detail = g.Detail
			}
		}
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateAcceptUnvalidated, Approver: "ops", Decision: contract.DecisionApprove})
	}, time.Minute)
	e.approve(env, 2*time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	var res FailoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, pt.ID, res.Point.ID)
	require.Contains(t, detail, "is intact")
	require.Contains(t, detail, "never restored, started in order and verified at the six levels")
}

// The RPO monitor judges the point a failover would use now (intact when
// nothing is validated) and says how old the newest validated one is.
func TestRPOMonitorCountsIntactPointsAndReportsTheValidatedAge(t *testing.T) {
	e := newDREnv(t)
	older := e.backup("").Point
	e.setValidity(older.ID, catalog.Valid)
	env := e.env()
	var seen []RPOStatus
	queryRPOAt(t, env, &seen, 45*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e.plan, Interval: 30 * time.Minute, ChecksPerRun: 2})
	require.Len(t, seen, 1)
	require.Equal(t, contract.RPOOk, seen[0].Status)
	require.Equal(t, contract.TrustValidated, seen[0].Trust)
	require.Equal(t, older.ID, seen[0].ValidatedPointID)

	// Only intact points: not "no valid point", the failover would use one.
	e2 := newDREnv(t)
	pt := e2.backup("").Point
	env = e2.env()
	seen = nil
	queryRPOAt(t, env, &seen, 45*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e2.plan, Interval: 30 * time.Minute, ChecksPerRun: 2})
	require.Len(t, seen, 1)
	require.Equal(t, contract.RPOOk, seen[0].Status)
	require.Equal(t, pt.ID, seen[0].PointID)
	require.Equal(t, contract.TrustIntact, seen[0].Trust)
	require.Empty(t, seen[0].ValidatedPointID)
}

// The report tells the whole run: the restart child's steps (with where
// they ran and what they printed) and the approvals decided in it.
func TestTheReportHoldsTheChildRunsStepsAndApprovals(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.failStarts["dc2/app"] = startAttempts     // every attempt of the first start
	e.plan.Components[1].OnFailure = plan.PolicyGate // ask at once, not re-create first
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflowByID(fmt.Sprintf("run-%d/secondary-1/restart", e.runs), contract.SignalApprove,
			Approval{Gate: contract.GateStartFailed, Approver: "ops", Decision: contract.DecisionRetry, Comment: "port freed"})
	}, time.Hour)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	res, rep := failoverReport(t, env)

	child := fmt.Sprintf("run-%d/secondary-1/restart", e.runs)
	var start *report.Step
	for i := range rep.Steps {
		if rep.Steps[i].Name == "start app" && rep.Steps[i].Run == child {
			start = &rep.Steps[i]
		}
	}
	require.NotNil(t, start, "the restart's member steps are in the parent's report")
	require.Equal(t, "dc2", start.Site)
	require.Equal(t, "test-worker", start.Worker)
	require.False(t, start.Ended.IsZero())
	require.Contains(t, start.Output, "Server dc2/app open for e-business")
	var gate *report.Gate
	for i := range rep.Gates {
		if rep.Gates[i].Name == contract.GateStartFailed {
			gate = &rep.Gates[i]
		}
	}
	require.NotNil(t, gate, "the start-failed gate decided in the child is in the parent's report")
	require.Equal(t, child, gate.Run)
	require.Len(t, gate.Approvals, 1)
	require.Equal(t, "port freed", gate.Approvals[0].Comment)
	md, err := os.ReadFile(res.Report.Markdown)
	require.NoError(t, err)
	require.Contains(t, string(md), "<details><summary>"+child+": start app</summary>")
}

// Reprotect (seed 001): a failover pauses the backups while it moves the
// cell, records dc2 as the primary and resumes them at dc2 into the reverse
// store; the failback does the reverse.
func TestFailoverAndFailbackReprotect(t *testing.T) {
	e := newDREnv(t)
	reverse := filepath.Join(e.dir, "reverse-store")
	require.NoError(t, os.MkdirAll(reverse, 0o755))
	e.plan.Storage.ReverseStore = plan.Settings{"path": reverse}
	e.plan.Storage.ReverseStoreAt = plan.StoreSite{Site: "dc1"}
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.schedules.changes, 2)
	require.True(t, e.schedules.changes[0].Pause, "backups paused while the cell moves")
	resumed := e.schedules.changes[1]
	require.False(t, resumed.Pause)
	require.NotNil(t, resumed.Backup)
	require.Equal(t, "dc2", resumed.Backup.Site.Site.Name, "backups of the new primary")
	require.Equal(t, reverse, resumed.Backup.Store["path"], "into a store dc1 can restore from")
	require.Equal(t, "dc1", resumed.Backup.StoreAt.Site)
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(t, err)
	l, err := st.ReadLifecycle("cell")
	require.NoError(t, err)
	require.Equal(t, "dc2", l.Primary)

	env = e.env()
	e.approve(env, time.Minute, contract.GateFailback)
	env.ExecuteWorkflow(FailbackWorkflow, FailbackInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, e.schedules.changes, 4)
	require.True(t, e.schedules.changes[2].Pause)
	back := e.schedules.changes[3]
	require.Equal(t, "dc1", back.Backup.Site.Site.Name)
	require.Empty(t, back.Backup.Store, "back into the plan's store")
	l, err = st.ReadLifecycle("cell")
	require.NoError(t, err)
	require.Equal(t, "dc1", l.Primary)
}

// A failover refused before it moved anything resumes the backups.
func TestAFailoverThatMovedNothingResumesTheBackups(t *testing.T) {
	e := newDREnv(t)
	e.withGate(contract.GatePlannedPrimary)
	env := e.env()
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GatePlannedPrimary, Approver: "ops", Decision: contract.DecisionReject})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan, Planned: true})
	require.Error(t, env.GetWorkflowError())
	require.Len(t, e.schedules.changes, 2)
	require.True(t, e.schedules.changes[0].Pause)
	require.False(t, e.schedules.changes[1].Pause, "resumed as it was")
	require.Nil(t, e.schedules.changes[1].Backup)
}

func (c *siteCell) AfterRestore(_ context.Context, t drivers.Target) (drivers.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared = append(c.prepared, key(t))
	return drivers.Evidence{Action: "db2inidb as snapshot " + key(t)}, nil
}

// A copy taken while a component held its writes goes through the
// product's own step after the restore, before anything starts (DB2:
// db2inidb ... as snapshot).
func TestRestoredDataOfAQuiescedComponentIsPreparedBeforeTheStart(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.ElementsMatch(t, []string{"dc2/db", "dc2/app"}, e.cell.prepared, "the group's quiesced components, at the restored site")
	require.Equal(t, []string{"dc2/db", "dc2/app"}, e.cell.starts)
}

// A run waiting at a gate says so on its page in the Web UI: the gate, its
// approvers and the quorum so far, the checklist and how to decide.
func TestAWaitingGateIsOnTheRunsPage(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	env := e.env()
	var details string
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow("__temporal_workflow_metadata")
		require.NoError(t, err)
		var md sdkpb.WorkflowMetadata
		require.NoError(t, v.Get(&md))
		details = md.GetCurrentDetails()
		env.SignalWorkflow(contract.SignalApprove, Approval{Gate: contract.GateStartSecondary, Approver: "ops", Decision: contract.DecisionApprove})
	}, time.Minute)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	require.Contains(t, details, "**Waiting at gate `start-secondary`**")
	require.Contains(t, details, "Approvers: ops. Quorum: 0 of 1 so far")
	require.Contains(t, details, "- [ ] configure the top-of-rack switches")
	require.Contains(t, details, "drover approve run-")
	require.Contains(t, details, `{"gate":"start-secondary","approver":"NAME","decision":"approve"}`)
}

// countingLogger counts the log lines whose message has a prefix.
type countingLogger struct {
	mu     sync.Mutex
	prefix string
	n      int
}

func (l *countingLogger) count(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.HasPrefix(msg, l.prefix) {
		l.n++
	}
}
func (l *countingLogger) Debug(msg string, _ ...interface{}) { l.count(msg) }
func (l *countingLogger) Info(msg string, _ ...interface{})  { l.count(msg) }
func (l *countingLogger) Warn(msg string, _ ...interface{})  { l.count(msg) }
func (l *countingLogger) Error(msg string, _ ...interface{}) { l.count(msg) }

// A new plan with no point yet is waiting, not breached, for its first RPO;
// a breach is alerted once, not at every check.
func TestRPOMonitorWaitsForTheFirstPointAndAlertsOnce(t *testing.T) {
	e := newDREnv(t)
	alerts := &countingLogger{prefix: "ALERT"}
	e.ts.SetLogger(alerts)
	env := e.env()
	var seen []RPOStatus
	queryRPOAt(t, env, &seen, 45*time.Minute, 150*time.Minute)
	env.ExecuteWorkflow(RPOMonitorWorkflow, MonitorInput{Plan: e.plan, Interval: 10 * time.Minute, ChecksPerRun: 18})
	require.Len(t, seen, 2)
	require.Equal(t, contract.RPOWaiting, seen[0].Status, "within the first RPO with no point")
	require.Equal(t, contract.RPONoPoint, seen[1].Status, "an RPO later, still no point")
	require.Equal(t, 1, alerts.n, "one alert for one breach, not one per check")
}

// People are told: a run starting, a gate waiting (with the command to
// decide it), the gate decided, the run ending; each event once.
func TestPeopleAreToldOfGatesAndRuns(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	t.Setenv("DROVER_TEST_HOOK", srv.URL)
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.plan.Notify = plan.Settings{"receivers": []any{map[string]any{"name": "ops", "url": "env:DROVER_TEST_HOOK"}}}
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())

	mu.Lock()
	defer mu.Unlock()
	var types []string
	var opened map[string]any
	for _, ev := range got {
		typ, _ := ev["type"].(string)
		types = append(types, typ)
		if typ == "gate.opened" {
			opened = ev
		}
	}
	require.Contains(t, types, "run.started")
	require.Contains(t, types, "gate.opened")
	require.Contains(t, types, "gate.closed")
	require.Contains(t, types, "run.completed")
	require.NotNil(t, opened)
	require.Equal(t, contract.GateStartSecondary, opened["gate"])
	require.Contains(t, opened["approveCommand"], "drover approve run-")
	require.Contains(t, opened["approveCommand"], "--gate start-secondary")
}

// A restart that fails still tells the parent's report what it did and
// what people decided in it.
func TestTheReportHoldsAFailedRestartsStepsAndGate(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.cell.failStarts["dc2/app"] = 100
	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflowByID(fmt.Sprintf("run-%d/secondary-1/restart", e.runs), contract.SignalApprove,
			Approval{Gate: contract.GateStartFailed, Approver: "ops", Decision: contract.DecisionAbort, Comment: "port still taken"})
	}, time.Hour)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.Error(t, env.GetWorkflowError())
	var res FailoverResult
	_ = env.GetWorkflowResult(&res)
	paths, err := filepath.Glob(filepath.Join(e.dir, "store", "cell", "reports", "*.json"))
	require.NoError(t, err)
	var rep report.Report
	for _, p := range paths {
		if r, err := report.Read(p); err == nil && r.Kind == contract.KindFailover {
			rep = r
		}
	}
	child := fmt.Sprintf("run-%d/secondary-1/restart", e.runs)
	var sawStart, sawGate bool
	for _, s := range rep.Steps {
		if s.Run == child && s.Name == "start app" && s.Outcome == OutcomeFailed {
			sawStart = true
		}
	}
	for _, g := range rep.Gates {
		if g.Run == child && g.Name == contract.GateStartFailed && g.Outcome == contract.DecisionAbort {
			sawGate = true
		}
	}
	require.True(t, sawStart, "the failed start is in the parent's report")
	require.True(t, sawGate, "the abort decided in the child is in the parent's report")
	require.Contains(t, rep.Error, "app did not start at dc2")
}

// queryRPOAt asks the RPO monitor for its status at each of the times.
func queryRPOAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, seen *[]RPOStatus, at ...time.Duration) {
	for _, d := range at {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(contract.QueryRPO)
			require.NoError(t, err)
			var st RPOStatus
			require.NoError(t, v.Get(&st))
			*seen = append(*seen, st)
		}, d)
	}
}

// failoverReport returns a finished failover's result and the report it wrote.
func failoverReport(t *testing.T, env *testsuite.TestWorkflowEnvironment) (FailoverResult, report.Report) {
	t.Helper()
	var res FailoverResult
	require.NoError(t, env.GetWorkflowResult(&res))
	rep, err := report.Read(res.Report.JSON)
	require.NoError(t, err)
	return res, rep
}

// A point records how long writes were paused for it: from the first
// quiesce to the last resume, around the capture, in the manifest as in the
// run's result; a cold backup paused nothing and says so by having none.
func TestBackupRecordsTheWindowWritesWerePaused(t *testing.T) {
	e := newDREnv(t)
	before := time.Now()
	res := e.backup(contract.ModeFull)
	after := time.Now()

	q := res.Point.Quiesce
	require.NotNil(t, q, "a quiesced backup records its window")
	require.Equal(t, []string{"db", "app"}, q.Components)
	require.False(t, q.Start.Before(before) || q.End.After(after), "window %s within the run", q)
	require.Equal(t, q.End.Sub(q.Start), q.Duration)
	require.Positive(t, q.Duration)
	require.Len(t, res.Groups, 1)
	instant := res.Groups[0].Instant
	require.False(t, instant.Before(q.Start) || instant.After(q.End), "capture instant %s inside the window %s", instant, q)

	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(t, err)
	m, err := st.Load("cell", res.Point.ID)
	require.NoError(t, err)
	require.NotNil(t, m.Quiesce, "the manifest holds the window")
	require.True(t, m.Quiesce.Start.Equal(q.Start) && m.Quiesce.End.Equal(q.End), "manifest %v, run %v", m.Quiesce, q)
	require.Equal(t, q.Duration, m.Quiesce.Duration)
	require.Equal(t, q.Components, m.Quiesce.Components)

	env := e.env()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{Plan: e.plan, Mode: contract.ModeFull, Cold: true})
	require.NoError(t, env.GetWorkflowError())
	var cold BackupResult
	require.NoError(t, env.GetWorkflowResult(&cold))
	require.Nil(t, cold.Point.Quiesce, "a cold backup paused no writes")
}
