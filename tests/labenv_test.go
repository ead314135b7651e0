package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/examples/plans"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/starter"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

// labEnv is the DR story's cast for one test, all real: an embedded
// Temporal server, a drover worker in this process, and the lab cell from
// examples/plans/lab.yaml running as OS processes (the drover binary built
// by TestMain) in the test's temp dir on free ports.
type labEnv struct {
	t   *testing.T
	log *zap.Logger
	// logs holds what the worker and the workflows logged (warn and up).
	logs     *observer.ObservedLogs
	dir      string
	labDir   string
	planPath string
	p        *plan.Plan
	l        *lab.Lab
	srv      *devserver.Server
	c        client.Client
	store    *catalog.Store
	// worker is the orchestrator (and the sites, unless they run as
	// processes of their own).
	worker *worker.Group
	// srvOpts started the server, for a restart.
	srvOpts devserver.Options
	// siteWorkerArgs adds flags to a site's worker process.
	siteWorkerArgs func(e *labEnv, site string) []string
}

// restartServer stops the Temporal server and starts it again on the same
// address and state, as an operator restarting it would: clients and
// workers reconnect by themselves.
func (e *labEnv) restartServer() {
	e.t.Helper()
	addr := e.srv.FrontendAddress()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(e.t, err)
	require.NoError(e.t, e.srv.Stop(), "stop Temporal")
	o := e.srvOpts
	o.Port, err = strconv.Atoi(port)
	require.NoError(e.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.srv, err = devserver.Start(ctx, o)
	require.NoError(e.t, err, "start Temporal again on %s", addr)
}

type envOptions struct {
	// name is the plan's name (and the lab's): every test its own, so
	// workflow ids never meet.
	name string
	// timeScale scales the servers' start-up times (the plan's 0.05 when 0).
	timeScale float64
	// labDir puts the lab there (a btrfs mount) instead of the temp dir.
	labDir string
	// edit changes the plan's YAML before it is loaded.
	edit func(string) string
	// postgres keeps Temporal's state in this PostgreSQL database instead
	// of SQLite in memory, so the server can be stopped and started again.
	postgres *devserver.Postgres
	// siteWorkers runs each site's worker as a process of its own (drover
	// worker --site SITE), started and killed with its site by the lab;
	// otherwise this process serves every site beside the orchestrator.
	siteWorkers bool
	// siteWorkerArgs adds flags to a site's worker process (siteWorkers).
	siteWorkerArgs func(e *labEnv, site string) []string
	// webUI serves the Temporal Web UI beside the server (srv.UIURL()).
	webUI bool
}

// testTimeScale keeps the lab's start-up order and proportions while
// making a failover's restart take seconds.
const testTimeScale = 0.01

// planText is examples/plans/lab.yaml for one test: its own name, the lab
// dir spelled out (the worker expands ${DROVER_LAB_DIR} at run time, and
// this process may run several labs one after another) and its time scale.
func planText(name, labDir string, timeScale float64, edit func(string) string) string {
	text := string(plans.Lab)
	text = strings.Replace(text, "\nname: lab\n", "\nname: "+name+"\n", 1)
	text = strings.ReplaceAll(text, "${DROVER_LAB_DIR}", labDir)
	text = strings.ReplaceAll(text, "timeScale: 0.05", fmt.Sprintf("timeScale: %g", timeScale))
	if edit != nil {
		text = edit(text)
	}
	return text
}

func newLabEnv(t *testing.T, o envOptions) *labEnv {
	t.Helper()
	if o.timeScale == 0 {
		o.timeScale = testTimeScale
	}
	e := &labEnv{t: t, dir: t.TempDir(), siteWorkerArgs: o.siteWorkerArgs}
	var obs zapcore.Core
	obs, e.logs = observer.New(zap.WarnLevel)
	e.log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel),
		zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, obs) })))
	e.labDir = filepath.Join(e.dir, "lab")
	if o.labDir != "" {
		e.labDir = o.labDir
	}
	require.NoError(t, os.MkdirAll(filepath.Join(e.labDir, "store"), 0o755))
	// The worker's lab drivers start servers from the drover binary, and
	// every server watches this process, so a crashed test leaves nothing.
	t.Setenv("DROVER_LAB_DIR", e.labDir)
	t.Setenv(lab.EnvExe, droverBin)
	t.Setenv(lab.EnvWatchPID, fmt.Sprint(os.Getpid()))

	e.planPath = filepath.Join(e.dir, o.name+".yaml")
	require.NoError(t, os.WriteFile(e.planPath, []byte(planText(o.name, e.labDir, o.timeScale, o.edit)), 0o644))
	p, err := plan.LoadAndValidate(e.planPath, builtin.Registry(e.log))
	require.NoError(t, err, "the test's plan")
	e.p = p
	e.store, _, err = catalog.OpenFromSettings(p.Storage.Store)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.srvOpts = devserver.Options{UIPort: -1, SearchAttributes: contract.SearchAttributes, Postgres: o.postgres}
	if o.webUI {
		e.srvOpts.UIPort = 0
	}
	e.srv, err = devserver.Start(ctx, e.srvOpts)
	require.NoError(t, err)
	e.c, err = client.Dial(client.Options{HostPort: e.srv.FrontendAddress(), Namespace: e.srv.Namespace(),
		Logger: worker.NewSDKLogger(e.log)})
	if err != nil {
		_ = e.srv.Stop()
		t.Fatal(err)
	}
	places := starter.PlanPlaces(p)
	if o.siteWorkers {
		places = nil
	}
	w, err := worker.New(e.c, worker.Options{Orchestrator: true, Sites: places, Registry: builtin.Registry(e.log), Logger: e.log,
		PollerFreshness: devserver.PollerFreshness})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	e.worker = w

	base, err := lab.FreeBasePort(len(p.Components) + 1)
	require.NoError(t, err)
	topo, err := starter.LabTopology(p, base, -1)
	require.NoError(t, err)
	e.l, err = lab.Create(e.labDir, topo, e.log)
	require.NoError(t, err)
	// Stop the worker first (no activity starts a server after the lab
	// is down), then the lab, then Temporal.
	t.Cleanup(func() { e.teardown(w) })
	if o.siteWorkers {
		for _, site := range topo.SiteNames() {
			e.startSiteWorker(site)
		}
	}
	return e
}

// startSiteWorker starts site's drover worker as a process, as a real
// site runs it.
func (e *labEnv) startSiteWorker(site string) {
	e.t.Helper()
	argv := []string{droverBin, "worker", "--site", site, "--address", e.srv.FrontendAddress(),
		"--namespace", e.srv.Namespace(), "--log-level", "warn"}
	if e.siteWorkerArgs != nil {
		argv = append(argv, e.siteWorkerArgs(e, site)...)
	}
	_, err := e.l.StartWorker(site, argv)
	require.NoError(e.t, err)
}

func (e *labEnv) teardown(w *worker.Group) {
	if e.t.Failed() {
		e.dumpLogs()
	}
	w.Stop()
	if err := e.l.Down(); err != nil {
		e.t.Errorf("lab down: %v", err)
	}
	e.c.Close()
	if err := e.srv.Stop(); err != nil {
		e.t.Logf("stop Temporal: %v", err)
	}
}

// dumpLogs writes the end of every lab log to the test log.
func (e *labEnv) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(e.labDir, "sites", "*", "logs", "*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(data) > 1500 {
			data = data[len(data)-1500:]
		}
		e.t.Logf("==== %s\n%s", path, data)
	}
}

// up starts the primary site and the front door.
func (e *labEnv) up() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	require.NoError(e.t, e.l.Up(ctx), "lab up")
	e.t.Logf("lab %s up in %s", e.p.Name, time.Since(begin).Round(time.Millisecond))
}

// drover runs the drover binary against this test's Temporal server.
func (e *labEnv) drover(args ...string) (string, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, droverBin, append([]string{"--address", e.srv.FrontendAddress(), "--namespace", e.srv.Namespace()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("drover %s: %w\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), err
}

// enable is `drover plan apply`: validated, RPO monitor, backup schedule.
func (e *labEnv) enable() {
	e.t.Helper()
	out, err := e.drover("plan", "apply", e.planPath)
	require.NoError(e.t, err)
	require.Contains(e.t, out, "enabled as primary")
}

// run starts a workflow with drover's search attributes and waits for it.
func (e *labEnv) run(ctx context.Context, id, kind string, wf, in, out any) error {
	r, err := e.start(ctx, id, kind, wf, in)
	if err != nil {
		return err
	}
	return r.Get(ctx, out)
}

func (e *labEnv) start(ctx context.Context, id, kind string, wf, in any) (client.WorkflowRun, error) {
	return e.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: contract.OrchestratorQueue,
		TypedSearchAttributes:    workflows.StartSearchAttributes(e.p.Name, kind),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, wf, in)
}

// backup takes one point now with the given plan (a copy of the test's
// plan may change its groups) and returns it as the catalog lists it.
func (e *labEnv) backup(ctx context.Context, p *plan.Plan, mode contract.Mode, tag string) contract.Point {
	e.t.Helper()
	var res workflows.BackupResult
	id := fmt.Sprintf("drover/%s/backup/%s-%d", p.Name, tag, time.Now().UnixNano())
	require.NoError(e.t, e.run(ctx, id, contract.KindBackup, workflows.BackupWorkflow,
		workflows.BackupInput{Plan: *p, Mode: mode, Reason: "manual"}, &res), "backup %s", tag)
	e.t.Logf("backup %s: point %s (%s, %s, %d bytes, captured %s)", tag, res.Point.ID, res.Point.Mode, res.Point.Consistency,
		res.Point.Size, res.Point.Instant.Format("15:04:05.000"))
	return res.Point
}

// validate runs ValidateWorkflow on a point.
func (e *labEnv) validate(ctx context.Context, p *plan.Plan, pointID string) workflows.ValidateResult {
	e.t.Helper()
	var res workflows.ValidateResult
	begin := time.Now()
	id := fmt.Sprintf("drover/%s/validate/%s", p.Name, pointID)
	require.NoError(e.t, e.run(ctx, id, contract.KindValidate, workflows.ValidateWorkflow,
		workflows.ValidateInput{Plan: *p, PointID: pointID}, &res), "validate %s", pointID)
	e.t.Logf("validate %s in %s: valid=%v %s", pointID, time.Since(begin).Round(time.Millisecond), res.Valid, res.Reason)
	for _, lv := range res.Verify.Levels {
		e.t.Logf("  level %s", summarizeLevel(lv))
	}
	return res
}

func summarizeLevel(lv workflows.LevelResult) string {
	var parts []string
	for _, c := range lv.Checks {
		parts = append(parts, fmt.Sprintf("%s passed=%v: %s", c.Name, c.Result.Passed, c.Result.Summary))
	}
	return fmt.Sprintf("%s passed=%v [%s]", lv.Level, lv.Passed, strings.Join(parts, "; "))
}

// load runs orders through the front door until stop is called; stop
// returns what the load did.
type load struct {
	cancel context.CancelFunc
	done   chan struct{}
	rep    lab.LoadReport
	err    error
	once   sync.Once
}

func (e *labEnv) startLoad(rate float64) *load {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &load{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ld.done)
		ld.rep, ld.err = e.l.RunLoad(ctx, lab.LoadOptions{Rate: rate, Duration: time.Hour, Concurrency: 16})
	}()
	e.t.Cleanup(func() { ld.stop() })
	return ld
}

func (ld *load) stop() lab.LoadReport {
	ld.once.Do(func() {
		ld.cancel()
		<-ld.done
	})
	return ld.rep
}

// autoApprove approves every gate a run (or its active child) opens, as
// the gate's approvers up to its quorum, until ctx ends. start-failed gets
// retry. It returns the gates it approved.
func (e *labEnv) autoApprove(ctx context.Context, id string) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var approved []string
		seen := map[string]bool{}
		defer func() { out <- approved }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			targets := []string{id}
			if st, err := queryStatus(ctx, e.c, id); err == nil && st.Child != "" {
				targets = append(targets, st.Child)
			}
			for _, target := range targets {
				st, err := queryStatus(ctx, e.c, target)
				if err != nil {
					continue
				}
				for _, g := range st.Gates {
					if g.Outcome != workflows.OutcomePending {
						continue
					}
					decision := contract.DecisionApprove
					if !slices.Contains(g.Options, decision) {
						decision = contract.DecisionRetry
					}
					for i := 0; i < g.Quorum && i < len(g.Approvers); i++ {
						key := target + "/" + g.Name + "/" + g.Opened.String() + "/" + g.Approvers[i]
						if seen[key] {
							continue
						}
						seen[key] = true
						// Signed with the lab's throwaway keys: the lab plan's
						// quorum of two needs signed approvals.
						payload, err := labkeys.Payload(ctx, e.c, target, g.Name, g.Approvers[i], decision, "approved by the end-to-end test")
						if err == nil {
							err = e.c.SignalWorkflow(ctx, target, "", contract.SignalApprove, payload)
						}
						if err == nil {
							approved = append(approved, g.Name+" by "+g.Approvers[i])
						}
					}
				}
			}
		}
	}()
	return out
}

func queryStatus(ctx context.Context, c client.Client, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, "", contract.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// serverPIDs returns the pid of every server running at a site.
func (e *labEnv) serverPIDs(site string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, s := range e.l.Topo.Servers {
		st, err := e.l.Status(context.Background(), site, s.Name)
		require.NoError(e.t, err)
		if st.State == lab.StatusRunning {
			out[s.Name] = st.PID
		}
	}
	return out
}

// labProcesses lists the lab server processes of this lab's dir at a site
// ("" for every site) by their command lines, whatever their pid files say.
func labProcesses(labDir, site string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, ent := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		line := strings.Join(args, " ")
		if !strings.Contains(line, "lab serve") || !strings.Contains(line, labDir) {
			continue
		}
		if site != "" && !strings.Contains(line, "--site "+site+" ") {
			continue
		}
		out = append(out, ent.Name()+": "+line)
	}
	return out
}

// waitPhase waits until a run reports one of the phases, or ends.
func waitPhase(ctx context.Context, c client.Client, id string, phases ...string) (string, error) {
	for {
		st, err := queryStatus(ctx, c, id)
		if err == nil {
			for _, p := range phases {
				if st.Phase == p {
					return p, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", errors.Join(fmt.Errorf("%s never reached phase %v", id, phases), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
