package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/examples/plans"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/workflows"
)

// config is how much chaos one run of the suite makes. Every field has a
// default that fits CI on two cores and an environment variable.
// DROVER_CHAOS_SUMMARY names a file the summary is also written to.
type config struct {
	// Seed drives every random choice (DROVER_CHAOS_SEED; default from
	// the clock, printed so a run can be repeated).
	Seed uint64
	// Kills is how many times the worker is SIGKILLed over the suite's
	// backups, drill, failover and failback (DROVER_CHAOS_KILLS, default 12).
	Kills int
	// Backups is how many backup runs the worker is killed in
	// (DROVER_CHAOS_BACKUPS, default 4).
	Backups int
	// Rate is the workload in orders per second through the front door
	// while backups and switchovers run (DROVER_CHAOS_RATE, default 8).
	Rate float64
	// TimeScale scales the lab servers' start-up times
	// (DROVER_CHAOS_TIME_SCALE, default 0.02).
	TimeScale float64
	// RunTimeout bounds one run; a run still open after it fails the
	// suite with what it waits for (DROVER_CHAOS_RUN_TIMEOUT, default 4m).
	RunTimeout time.Duration
	// KillInQuiesce lets a kill land while a backup holds the database's
	// writes (DROVER_CHAOS_KILL_IN_QUIESCE=1). Off by default: the dead
	// worker holds the quiesce until its activities are retried (the
	// liveness timeout, 15s), and the lab turns a write pause of more than
	// about 8s under load into heuristic transaction outcomes and dead
	// letters that its instance probe reports for ever — a lab bug that
	// would fail every later recovery check. Kills due in that window wait
	// for the resume.
	KillInQuiesce bool
	// KillInLaunch lets a kill land between a lab server's launch and its
	// pid file (DROVER_CHAOS_KILL_IN_LAUNCH=1). Off by default: the lab's
	// launcher writes the pid file after the process starts, and a start
	// retried after a worker died in that window launches a second
	// process, which fails to listen while the first, unrecorded one
	// answers for it — a lab bug. Kills due then wait for the pid file.
	KillInLaunch bool
	// Skip names scenarios not to run, comma-separated
	// (DROVER_CHAOS_SKIP), to work on a later one; a skipped scenario
	// leaves the cell where it found it, so later ones may not apply.
	Skip []string
}

func loadConfig(t *testing.T) config {
	c := config{Seed: uint64(time.Now().UnixNano()), Kills: 12, Backups: 4, Rate: 8, TimeScale: 0.02, RunTimeout: 4 * time.Minute}
	env := func(name string, parse func(string) error) {
		if v := os.Getenv(name); v != "" {
			require.NoError(t, parse(v), "%s=%q", name, v)
		}
	}
	env("DROVER_CHAOS_SEED", func(v string) (err error) { c.Seed, err = strconv.ParseUint(v, 10, 64); return })
	env("DROVER_CHAOS_KILLS", func(v string) (err error) { c.Kills, err = strconv.Atoi(v); return })
	env("DROVER_CHAOS_BACKUPS", func(v string) (err error) { c.Backups, err = strconv.Atoi(v); return })
	env("DROVER_CHAOS_RATE", func(v string) (err error) { c.Rate, err = strconv.ParseFloat(v, 64); return })
	env("DROVER_CHAOS_TIME_SCALE", func(v string) (err error) { c.TimeScale, err = strconv.ParseFloat(v, 64); return })
	env("DROVER_CHAOS_RUN_TIMEOUT", func(v string) (err error) { c.RunTimeout, err = time.ParseDuration(v); return })
	env("DROVER_CHAOS_SKIP", func(v string) error { c.Skip = strings.Split(v, ","); return nil })
	env("DROVER_CHAOS_KILL_IN_LAUNCH", func(v string) (err error) { c.KillInLaunch, err = strconv.ParseBool(v); return })
	env("DROVER_CHAOS_KILL_IN_QUIESCE", func(v string) (err error) { c.KillInQuiesce, err = strconv.ParseBool(v); return })
	require.True(t, c.Kills >= 0 && c.Backups >= 1 && c.Rate > 0 && c.TimeScale >= 0 && c.RunTimeout > 0, "chaos config out of range: %+v", c)
	return c
}

// proc is one drover process the suite started: the Temporal server, a
// worker, or a CLI command.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill signals the process group and waits until the process ended; a
// process that outlives wait is killed.
func (p *proc) kill(sig syscall.Signal, wait time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) did not end within %s of %s; killed", p.name, p.cmd.Process.Pid, wait, sig)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survives SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitLog waits until the process's log holds want; a process that ends
// first, or a timeout, is an error quoting the log's tail.
func (p *proc) waitLog(want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(p.log); err == nil && bytes.Contains(b, []byte(want)) {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("%s exited before it logged %q; its log ends:\n%s", p.name, want, tail(p.log, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s; its log ends:\n%s", p.name, want, timeout, tail(p.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// harness is one chaos environment: a lab, a Temporal server on a database
// file, a worker, a client, and the tally the summary prints.
type harness struct {
	cfg      config
	rng      *rand.Rand
	dir      string
	logDir   string
	labDir   string
	planPath string
	plan     *plan.Plan
	port     int
	httpPort int
	dbFile   string
	server   *proc
	// worker is replaced by injector goroutines: read it with
	// currentWorker.
	workerMu sync.Mutex
	worker   *proc
	nServers int
	nWorkers int
	nCLI     int
	c        client.Client
	lab      *lab.Lab
	sum      *summary
	// counted are the executions whose histories the summary counted.
	counted map[string]bool
	// lostPoints are points whose backup runs' history was lost with the
	// Temporal database on purpose.
	lostPoints map[string]bool
}

func newHarness(t *testing.T, cfg config) *harness {
	dir, err := os.MkdirTemp("", "drover-chaos-")
	require.NoError(t, err)
	h := &harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), dir: dir,
		logDir: filepath.Join(dir, "logs"), labDir: filepath.Join(dir, "lab"), dbFile: filepath.Join(dir, "temporal.db"),
		sum: newSummary(), counted: map[string]bool{}, lostPoints: map[string]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos: logs, lab and Temporal database kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	require.NoError(t, os.MkdirAll(h.logDir, 0o755))
	h.port, h.httpPort = freePort(t), freePort(t)
	t.Cleanup(h.teardown(t))
	c, err := client.NewLazyClient(client.Options{
		HostPort: h.address(), Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	})
	require.NoError(t, err)
	h.c = c
	return h
}

// teardown stops everything the suite started, whatever state it is in:
// lab servers (also ones whose pid files a disaster took), the worker, the
// server.
func (h *harness) teardown(t *testing.T) func() {
	return func() {
		if h.lab != nil {
			if err := h.lab.Down(); err != nil {
				t.Errorf("lab down: %v", err)
			}
		}
		if err := h.killWorker(); err != nil {
			t.Error(err)
		}
		if h.server != nil {
			if err := h.server.kill(syscall.SIGTERM, 20*time.Second); err != nil {
				t.Error(err)
			}
		}
		if h.c != nil {
			h.c.Close()
		}
		if t.Failed() {
			for _, p := range []*proc{h.currentWorker(), h.server} {
				if p != nil {
					t.Logf("%s log ends:\n%s", p.name, tail(p.log, 30))
				}
			}
		}
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (h *harness) address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(h.port)) }

// procEnv is the environment of every drover process: where Temporal is,
// the lab and the binary its servers run from, and this test's pid, which
// lab servers watch so a crashed test leaves none behind.
func (h *harness) procEnv() []string {
	return []string{
		"TEMPORAL_ADDRESS=" + h.address(),
		"TEMPORAL_NAMESPACE=default",
		lab.EnvExe + "=" + droverBin,
		"DROVER_LAB_DIR=" + h.labDir,
		lab.EnvWatchPID + "=" + strconv.Itoa(os.Getpid()),
		"DROVER_LOG_LEVEL=info",
	}
}

func (h *harness) spawn(t *testing.T, name string, args ...string) *proc {
	p, err := h.spawnNoT(name, args...)
	require.NoError(t, err)
	return p
}

// spawnNoT starts a drover process; injector goroutines, which have no
// testing.T, use it directly.
func (h *harness) spawnNoT(name string, args ...string) (*proc, error) {
	path := filepath.Join(h.logDir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(droverBin, args...)
	cmd.Env = append(os.Environ(), h.procEnv()...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own group, so a kill reaches what it runs; and killed with this
	// test if the test dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: path, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// cli runs one drover command to its end and returns its output.
func (h *harness) cli(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	h.nCLI++
	p := h.spawn(t, fmt.Sprintf("cli-%02d-%s", h.nCLI, args[0]), args...)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.kill(syscall.SIGKILL, time.Second)
		b, _ := os.ReadFile(p.log)
		return string(b), fmt.Errorf("drover %s: still running after %s", strings.Join(args, " "), timeout)
	}
	b, _ := os.ReadFile(p.log)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return string(b), fmt.Errorf("drover %s: exit %d:\n%s", strings.Join(args, " "), code, b)
	}
	return string(b), nil
}

// startServer starts the Temporal server on the database file and waits
// until it answers.
func (h *harness) startServer(t *testing.T) {
	require.NoError(t, h.startServerNoT())
}

// startServerNoT is startServer for injector goroutines.
func (h *harness) startServerNoT() error {
	h.nServers++
	p, err := h.spawnNoT(fmt.Sprintf("server-%d", h.nServers), "server", "--db-file", h.dbFile,
		"--port", strconv.Itoa(h.port), "--http-port", strconv.Itoa(h.httpPort), "--ui-port", "-1")
	if err != nil {
		return err
	}
	h.server = p
	if err := p.waitLog("Namespace:", 2*time.Minute); err != nil {
		return err
	}
	if err := waitFor(time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := h.c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}); err != nil {
		return fmt.Errorf("Temporal server %s does not answer: %w", h.address(), err)
	}
	return nil
}

// stopServer stops the Temporal server with sig and waits until it ended.
func (h *harness) stopServer(t *testing.T, sig syscall.Signal) {
	require.NoError(t, h.server.kill(sig, 30*time.Second))
}

// startWorker starts a worker and waits until it polls.
func (h *harness) startWorker(t *testing.T) {
	require.NoError(t, h.restartWorker())
}

// restartWorker starts a new worker and waits until it polls; injector
// goroutines call it too.
func (h *harness) restartWorker() error {
	h.workerMu.Lock()
	defer h.workerMu.Unlock()
	h.nWorkers++
	// One worker process plays the orchestrator and every site of the
	// plans: killing it kills them all, as the scenarios expect.
	p, err := h.spawnNoT(fmt.Sprintf("worker-%d", h.nWorkers), "worker", "--plan", h.planPath,
		// and the sites of the hang scenario's one-machine plan
		"--site", "local", "--site", "standby", "--poller-freshness", devserver.PollerFreshness.String())
	if err != nil {
		return err
	}
	h.worker = p
	return p.waitLog("worker polling", time.Minute)
}

// currentWorker is the worker running now (or last).
func (h *harness) currentWorker() *proc {
	h.workerMu.Lock()
	defer h.workerMu.Unlock()
	return h.worker
}

// killWorker SIGKILLs the worker: no goodbye to the server, activities in
// flight abandoned mid-way.
func (h *harness) killWorker() error {
	if w := h.currentWorker(); w != nil {
		return w.kill(syscall.SIGKILL, 5*time.Second)
	}
	return nil
}

func waitFor(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writePlan writes the suite's plan: the example lab plan with the lab's
// directory and ports, fast start-ups, start timeouts short enough that a
// lost start costs seconds, an RPO so long that the backup schedule never
// fires during the suite (every backup is one the suite counts), retention
// that keeps every point, and a failback gate one approver decides.
func (h *harness) writePlan(t *testing.T, basePort int) {
	text := strings.ReplaceAll(string(plans.Lab), "${DROVER_LAB_DIR}", h.labDir)
	p, err := plan.Parse("examples/plans/lab.yaml", []byte(text))
	require.NoError(t, err)
	p.Name = "chaos"
	p.RPO = plan.Duration(time.Hour)
	for _, s := range []*plan.Site{p.Sites.Primary, p.Sites.Secondary, p.Sites.Sandbox} {
		s.Settings["timeScale"] = h.cfg.TimeScale
		s.Settings["basePort"] = basePort
	}
	for i := range p.Components {
		p.Components[i].StartTimeout = plan.Duration(time.Minute)
	}
	p.Storage.Store["retention"] = map[string]any{"cumulative": 1000, "weekly": 1000, "monthly": 1000}
	failback := plan.Gate{Name: contract.GateFailback, Approvers: []string{"alice"}, Quorum: 1,
		Timeout: plan.Duration(30 * time.Minute), OnTimeout: plan.EscalateAbort,
		Checklist: []string{"The point of the secondary is shipped; the secondary may stop"}}
	p.Gates = slices.DeleteFunc(p.Gates, func(g plan.Gate) bool { return g.Name == contract.GateFailback })
	p.Gates = append(p.Gates, failback)
	data, err := yaml.Marshal(p)
	require.NoError(t, err)
	h.planPath = filepath.Join(h.dir, "chaos-plan.yaml")
	require.NoError(t, os.WriteFile(h.planPath, data, 0o644))
	h.plan, err = plan.LoadAndValidate(h.planPath, builtin.Registry(nil))
	require.NoError(t, err, "the chaos plan does not validate:\n%s", data)
}

// storeRoot is the plan's recovery point store directory.
func (h *harness) storeRoot() string {
	return h.plan.Storage.Store["path"].(string)
}

// store opens the plan's recovery point store.
func (h *harness) store(t *testing.T) *catalog.Store {
	st, _, err := catalog.OpenFromSettings(h.plan.Storage.Store)
	require.NoError(t, err)
	return st
}

// liveRun is a run the suite started and watches.
type liveRun struct {
	id    string
	runID string
	start time.Time
	done  chan struct{}
	err   error

	mu    sync.Mutex
	gates []seenGate
	// faults are what the injector did during the run; nKills counts the
	// worker kills among them.
	faults []string
	nKills int
}

func (r *liveRun) kills() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nKills
}

type seenGate struct {
	Target, Name, Detail, Decision string
}

func (r *liveRun) open() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *liveRun) fault(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, what)
}

func (r *liveRun) seen() []seenGate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenGate(nil), r.gates...)
}

// gatePolicy decides an open gate: the decision each approver sends, or ""
// to leave the gate to the test.
type gatePolicy func(target string, g workflows.GateRecord) string

// approveAll approves every gate; a start that failed or in-flight work
// that did not recover (which no fault in the worker-kill scenarios may
// cause) is aborted, so the run fails with the gate's message instead of
// waiting for a person.
func approveAll(_ string, g workflows.GateRecord) string {
	if g.Name == contract.GateStartFailed || g.Name == contract.GateRecoveryStalled {
		return contract.DecisionAbort
	}
	return contract.DecisionApprove
}

// leaveStartFailed approves every gate except start-failed, which the test
// decides itself.
func leaveStartFailed(_ string, g workflows.GateRecord) string {
	if g.Name == contract.GateStartFailed {
		return ""
	}
	return contract.DecisionApprove
}

// runSpec is one run to start and watch.
type runSpec struct {
	id, kind string
	wf, in   any
	out      any
	gates    gatePolicy
	// inject runs beside the run until it returns or ctx ends.
	inject func(ctx context.Context, r *liveRun)
	// timeout overrides the config's RunTimeout.
	timeout time.Duration
}

// execute starts a run, approves its gates, lets the injector loose, and
// waits for the run's end. A run that does not end in time is an error
// that says what it waits for.
func (h *harness) execute(t *testing.T, s runSpec) (*liveRun, error) {
	planName := h.plan.Name
	if p, ok := planOf(s.in); ok {
		planName = p
	}
	run, err := h.c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID:                       s.id,
		TaskQueue:                contract.OrchestratorQueue,
		TypedSearchAttributes:    workflows.StartSearchAttributes(planName, s.kind),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, s.wf, s.in)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.id, err)
	}
	return h.watch(t, s, run.GetRunID())
}

// planOf names the plan of a workflow input.
func planOf(in any) (string, bool) {
	switch v := in.(type) {
	case workflows.RestartInput:
		return v.Plan.Name, true
	case workflows.BackupInput:
		return v.Plan.Name, true
	}
	return "", false
}

// watch follows a run started elsewhere (the CLI) as execute does.
func (h *harness) watch(t *testing.T, s runSpec, runID string) (*liveRun, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.sum.add(func(s *summary) { s.RunsStarted++ })
	r := &liveRun{id: s.id, runID: runID, start: time.Now(), done: make(chan struct{})}
	go func() {
		r.err = h.result(ctx, r, s.out)
		close(r.done)
	}()
	policy := s.gates
	if policy == nil {
		policy = approveAll
	}
	go h.approver(ctx, r, policy)
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		if s.inject != nil {
			s.inject(ctx, r)
		}
	}()
	timeout := s.timeout
	if timeout == 0 {
		timeout = h.cfg.RunTimeout
	}
	select {
	case <-r.done:
	case <-time.After(timeout):
		cancel()
		<-injected
		return r, fmt.Errorf("%s did not end within %s; faults injected: %v\n%s", s.id, timeout, r.faults, h.diagnose(s.id))
	}
	cancel()
	<-injected
	if r.err == nil {
		h.sum.add(func(s *summary) { s.RunsCompleted++ })
	}
	return r, r.err
}

// result waits for the run's result, across Temporal outages: only the
// run's own end (completed, failed, cancelled, timed out) is final.
func (h *harness) result(ctx context.Context, r *liveRun, out any) error {
	for {
		err := h.c.GetWorkflow(ctx, r.id, r.runID).Get(ctx, out)
		var we *temporal.WorkflowExecutionError
		if err == nil || errors.As(err, &we) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// approver decides every gate the run or its active child opens, once per
// approver the quorum needs.
func (h *harness) approver(ctx context.Context, r *liveRun, policy gatePolicy) {
	sent := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-time.After(250 * time.Millisecond):
		}
		st, err := h.status(ctx, r.id)
		if err != nil {
			continue
		}
		targets := []string{r.id}
		statuses := []workflows.Status{st}
		if st.Child != "" {
			if cst, err := h.status(ctx, st.Child); err == nil {
				targets, statuses = append(targets, st.Child), append(statuses, cst)
			}
		}
		for i, st := range statuses {
			for _, g := range st.Gates {
				if g.Outcome != workflows.OutcomePending {
					continue
				}
				key := targets[i] + "/" + g.Name + "/" + g.Opened.String()
				decision := policy(targets[i], g)
				if !sent[key] {
					sent[key] = true
					r.mu.Lock()
					r.gates = append(r.gates, seenGate{Target: targets[i], Name: g.Name, Detail: g.Detail, Decision: decision})
					r.mu.Unlock()
				}
				if decision == "" {
					continue
				}
				for n := 0; n < g.Quorum && n < len(g.Approvers); n++ {
					who := g.Approvers[n]
					if sent[key+"/"+who] {
						continue
					}
					payload, err := labkeys.Payload(ctx, h.c, targets[i], g.Name, who, decision, "chaos suite")
					if err != nil {
						continue
					}
					if err := h.c.SignalWorkflow(ctx, targets[i], "", contract.SignalApprove, payload); err == nil {
						sent[key+"/"+who] = true
					}
				}
			}
		}
	}
}

// abort ends a run whose fault could not be injected as planned, so the
// test fails at once with why instead of at the run timeout.
func (h *harness) abort(r *liveRun, why error) {
	r.fault("injection failed: " + why.Error())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.c.TerminateWorkflow(ctx, r.id, r.runID, "chaos: injection failed: "+why.Error())
}

// status asks a run for its status (a worker answers: it fails while none
// runs).
func (h *harness) status(ctx context.Context, id string) (workflows.Status, error) {
	var st workflows.Status
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := h.c.QueryWorkflow(qctx, id, "", contract.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// diagnose says what an open run waits for: its phase and steps, and every
// open execution's pending activities with their attempts and last failure.
func (h *harness) diagnose(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b strings.Builder
	if st, err := h.status(ctx, id); err == nil {
		fmt.Fprintf(&b, "phase %s, current step %q, child %q\n", st.Phase, st.CurrentStep, st.Child)
		for _, g := range st.Gates {
			fmt.Fprintf(&b, "  gate %s: %s (%s)\n", g.Name, g.Outcome, g.Detail)
		}
	} else {
		fmt.Fprintf(&b, "status query: %v\n", err)
	}
	it, err := h.listExecutions(ctx, "ExecutionStatus = 'Running'")
	if err != nil {
		fmt.Fprintf(&b, "list open executions: %v\n", err)
		return b.String()
	}
	for _, e := range it {
		d, err := h.c.DescribeWorkflowExecution(ctx, e.id, e.runID)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "open %s (%s)\n", e.id, e.typ)
		for _, pa := range d.GetPendingActivities() {
			fmt.Fprintf(&b, "  activity %s: %s, attempt %d, started %s, last heartbeat %s, heartbeat timeout %s, worker %s, last failure: %s\n",
				pa.GetActivityType().GetName(), pa.GetState(), pa.GetAttempt(), ts(pa.GetLastStartedTime().AsTime()),
				ts(pa.GetLastHeartbeatTime().AsTime()), pa.GetActivityOptions().GetHeartbeatTimeout().AsDuration(), pa.GetLastWorkerIdentity(), pa.GetLastFailure().GetMessage())
		}
	}
	if w := h.currentWorker(); w != nil {
		fmt.Fprintf(&b, "%s log ends:\n%s\n", w.name, tail(w.log, 15))
	}
	return b.String()
}

func ts(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "-"
	}
	return t.Format("15:04:05.000")
}
