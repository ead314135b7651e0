package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/builtin"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/workflows"
)

// serverRestarted stops the Temporal server in the middle of a planned
// failover (SIGTERM or SIGKILL, by the seed) and starts it again on the
// same database file and port. The worker is left alone: it must reconnect
// by itself.
func (h *harness) serverRestarted(t *testing.T) {
	stopLoad := h.load(t)
	defer stopLoad()
	sig := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}[h.rng.IntN(2)]
	n := 1 + h.rng.IntN(len(h.plan.Components))
	tr := trigger{kind: "launch", site: "dc2", n: n}
	if h.rng.IntN(2) == 0 {
		tr = trigger{kind: "stop", site: "dc1", n: n}
	}
	down := time.Duration(500+h.rng.IntN(3500)) * time.Millisecond
	worker := h.currentWorker()
	id := "drover/chaos/switchover"
	before := h.counts(t)
	_, basePoints := h.storeState()
	var restarted time.Time
	var injectErr error
	inject := func(ctx context.Context, r *liveRun) {
		for !h.triggered(tr, before, basePoints, r.start) {
			select {
			case <-ctx.Done():
				return
			case <-r.done:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
		if err := h.server.kill(sig, 30*time.Second); err != nil {
			injectErr = err
			return
		}
		where := fmt.Sprintf("%s: %s %s, at %.1fs, down %s", id, sig, tr, time.Since(r.start).Seconds(), down.Round(time.Millisecond))
		h.sum.fault("Temporal server "+sig.String(), where)
		r.fault(where)
		time.Sleep(down)
		if injectErr = h.startServerNoT(); injectErr == nil {
			restarted = time.Now()
		}
	}
	var res workflows.FailoverResult
	r, err := h.execute(t, runSpec{id: id, kind: contract.KindFailover, wf: workflows.FailoverWorkflow,
		in: workflows.FailoverInput{Plan: *h.plan, Planned: true}, out: &res, inject: inject})
	require.NoError(t, injectErr)
	require.NoError(t, err, "planned failover across a Temporal restart %v", faultsOf(r))
	ended := time.Now()
	require.False(t, restarted.IsZero(), "the run ended before the server could be restarted (trigger %s)", tr)
	require.Same(t, worker, h.currentWorker())
	require.True(t, worker.alive(), "the worker died with the server")

	// The worker reconnected by itself: the activities after the restart
	// ran on it, the same process.
	identity := strconv.Itoa(worker.cmd.Process.Pid) + "@"
	after, others := h.activitiesSince(t, id, restarted)
	require.Positive(t, after, "no activity ran after the server restart")
	require.Empty(t, others, "activities after the restart ran on workers other than %s", identity)

	noStartFailed(t, r)
	h.expectCounts(t, "failover across a server restart", before, h.counts(t), map[string]int{"dc2": 1}, map[string]int{"dc1": 1})
	h.checkLedger(t, "failover across a server restart", "dc2", ended)
	h.checkPoints(t)
	h.sum.scenario("server restarted (%s, %s, down %s): failover completed, worker %s reconnected by itself and ran the %d activities after it",
		sig, tr, down.Round(time.Millisecond), identity, after)
}

// activitiesSince counts activity executions of a run and its children
// that started after at, and lists the worker identities other than the
// current worker's that ran them.
func (h *harness) activitiesSince(t *testing.T, id string, at time.Time) (int, []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	execs, err := h.listExecutions(ctx, "")
	require.NoError(t, err)
	identity := strconv.Itoa(h.currentWorker().cmd.Process.Pid) + "@"
	n := 0
	var others []string
	for _, e := range execs {
		if e.id != id && !strings.HasPrefix(e.id, id+"/") || e.start.Before(at.Add(-10*time.Minute)) {
			continue
		}
		events, err := h.history(ctx, e.id, e.runID)
		require.NoError(t, err)
		for _, ev := range events {
			if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED || ev.GetEventTime().AsTime().Before(at) {
				continue
			}
			n++
			if who := ev.GetActivityTaskStartedEventAttributes().GetIdentity(); !strings.HasPrefix(who, identity) && !slices.Contains(others, who) {
				others = append(others, who)
			}
		}
	}
	return n, others
}

// hangPlan is a one-component plan whose start command never returns: a
// shell that starts a sleep and waits for it, both writing their pids.
const hangPlan = `apiVersion: drover/v1
name: hang
rpo: 1h
rto: 1h
products: [shop]
sites:
  primary:
    name: local
    settings: {host: 127.0.0.1}
  secondary:
    name: standby
    settings: {host: 127.0.0.1}
components:
  - name: db
    role: database
    driver: exec
    settings:
      start: %s
      stop: "true"
      status: "exit 3"
      killGrace: 1s
    startTimeout: 3s
    # The hang is cut off by the retry policy alone: a restart policy would
    # run the three attempts again before the gate.
    onFailure: gate
verification:
  system:
    - name: db-listening
      driver: tcp
      settings: {address: "127.0.0.1:1"}
approvers:
  - name: operator
gates:
  - {name: start-secondary, approvers: none}
  - {name: failback, approvers: none}
  - name: start-failed
    approvers: [operator]
    timeout: 5m
    onTimeout: abort
`

// execSleeps starts a component whose start command sleeps: the start
// activity's timeout fires, the command's process group is killed, the
// retry policy runs it three times, and the run waits at the start-failed
// gate, which the test then aborts.
func (h *harness) execSleeps(t *testing.T) {
	dir := filepath.Join(h.dir, "hang")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	pids := filepath.Join(dir, "pids")
	start := fmt.Sprintf("echo $$ >> %s; sleep 600 & echo $! >> %s; wait", pids, pids)
	path := filepath.Join(dir, "hang.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(hangPlan, strconv.Quote(start))), 0o644))
	p, err := plan.LoadAndValidate(path, builtin.Registry(nil))
	require.NoError(t, err)

	id := "drover/hang/restart"
	var gate workflows.GateRecord
	var gateAfter time.Duration
	var alive []int
	var injectErr error
	inject := func(ctx context.Context, r *liveRun) {
		injectErr = waitFor(time.Minute, func() error {
			st, err := h.status(ctx, id)
			if err != nil {
				return err
			}
			for _, g := range st.Gates {
				if g.Name == contract.GateStartFailed && g.Outcome == workflows.OutcomePending {
					gate = g
					return nil
				}
			}
			return fmt.Errorf("no start-failed gate open yet (phase %s)", st.Phase)
		})
		if injectErr != nil {
			h.abort(r, injectErr)
			return
		}
		gateAfter = time.Since(r.start)
		h.sum.fault("hung driver command", fmt.Sprintf("%s: start command sleeps, gate %s open after %.1fs", id, gate.Name, gateAfter.Seconds()))
		// Every process of every attempt is gone before anyone decides.
		alive = livePids(pids)
		var payload any
		if payload, injectErr = labkeys.Payload(ctx, h.c, id, contract.GateStartFailed, "operator", contract.DecisionAbort, "chaos: hung start"); injectErr == nil {
			injectErr = h.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload)
		}
	}
	var res workflows.RestartResult
	_, err = h.execute(t, runSpec{id: id, kind: contract.KindRestart, wf: workflows.RestartWorkflow,
		in:    workflows.RestartInput{Plan: *p, Site: contract.SiteRef{Role: "primary", Site: *p.Sites.Primary}},
		out:   &res,
		gates: leaveStartFailed, inject: inject, timeout: 2 * time.Minute})
	require.NoError(t, injectErr)
	require.Error(t, err, "the run must end at the gate's abort")
	require.Contains(t, err.Error(), "gate start-failed: abort")
	require.Contains(t, gate.Detail, "db did not start at local")
	require.Less(t, gateAfter, time.Minute, "the gate opened late: the hung start was not cut off by its timeout")
	require.Empty(t, alive, "processes of the hung start command survived the timeout: %v", alive)
	started := readPids(t, pids)
	require.Len(t, started, 3*2, "three attempts, each a shell and its sleep: %v", started)

	// The history shows the retry policy: one start activity, its last
	// attempt the third, ended by its timeout or the driver's kill.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, err := h.history(ctx, id, "")
	require.NoError(t, err)
	var attempts int32
	var ended string
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			attempts = max(attempts, ev.GetActivityTaskStartedEventAttributes().GetAttempt())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			ended = "timed out: " + ev.GetActivityTaskTimedOutEventAttributes().GetFailure().GetMessage()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			ended = "failed: " + ev.GetActivityTaskFailedEventAttributes().GetFailure().GetMessage()
		}
	}
	require.EqualValues(t, 3, attempts, "start attempts")
	require.NotEmpty(t, ended)
	t.Logf("hung start: gate after %s, last attempt %s; gate detail: %s", gateAfter.Round(time.Millisecond), ended, gate.Detail)
	h.sum.add(func(s *summary) { s.RunsFailedClearly++ })
	h.sum.scenario("hang: exec start command that sleeps cut off by its 3s timeout, group killed (%d processes), 3 attempts, start-failed gate after %s, aborted",
		len(started), gateAfter.Round(time.Second))
}

func readPids(t *testing.T, path string) []int {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, n)
	}
	return out
}

// livePids lists the pids of the file still alive (not zombies).
func livePids(path string) []int {
	b, _ := os.ReadFile(path)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || syscall.Kill(pid, 0) != nil {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// frozenServer fails back to dc1 and freezes (SIGSTOP) one server there
// right after its launch, with a start timeout of seconds: the start times
// out, the retries find the process frozen, the restart waits at the
// start-failed gate; the test thaws the server and retries, and the
// failback completes with every server launched once.
func (h *harness) frozenServer(t *testing.T) {
	stopLoad := h.load(t)
	defer stopLoad()
	victim := h.plan.Components[h.rng.IntN(len(h.plan.Components))].Name
	p := *h.plan
	p.Components = slices.Clone(p.Components)
	for i := range p.Components {
		if p.Components[i].Name == victim {
			p.Components[i].StartTimeout = plan.Duration(6 * time.Second)
			// The scenario is the gate's retry: no policy acts first.
			p.Components[i].OnFailure = plan.PolicyGate
		}
	}
	id := "drover/chaos/switchover"
	before := h.counts(t)
	var gate workflows.GateRecord
	var frozenFor time.Duration
	var injectErr error
	inject := func(ctx context.Context, r *liveRun) {
		// Frozen while it starts, before it answers: poll the pid file
		// closely (a node agent starts in a fifth of a second).
		deadline := time.Now().Add(3 * time.Minute)
		for r.open() && !slices.Contains(h.lab.Running("dc1"), victim) {
			if time.Now().After(deadline) {
				injectErr = fmt.Errorf("%s was not launched at dc1 within 3m", victim)
				h.abort(r, injectErr)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		if !r.open() {
			return
		}
		if _, injectErr = h.lab.Signal("dc1", victim, syscall.SIGSTOP); injectErr != nil {
			h.abort(r, injectErr)
			return
		}
		frozen := time.Now()
		h.sum.fault("lab server frozen", fmt.Sprintf("%s: %s at dc1 SIGSTOPped right after its launch", id, victim))
		var target string
		injectErr = waitFor(2*time.Minute, func() error {
			st, err := h.status(ctx, id)
			if err != nil {
				return err
			}
			if st.Child == "" {
				return errors.New("no restart child yet")
			}
			cst, err := h.status(ctx, st.Child)
			if err != nil {
				return err
			}
			for _, g := range cst.Gates {
				if g.Name == contract.GateStartFailed && g.Outcome == workflows.OutcomePending {
					gate, target = g, st.Child
					return nil
				}
			}
			return fmt.Errorf("no start-failed gate yet (phase %s)", cst.Phase)
		})
		if injectErr != nil {
			_, _ = h.lab.Signal("dc1", victim, syscall.SIGCONT)
			h.abort(r, injectErr)
			return
		}
		frozenFor = time.Since(frozen)
		if _, injectErr = h.lab.Signal("dc1", victim, syscall.SIGCONT); injectErr != nil {
			return
		}
		var payload any
		if payload, injectErr = labkeys.Payload(ctx, h.c, target, contract.GateStartFailed, gate.Approvers[0], contract.DecisionRetry, "chaos: thawed"); injectErr == nil {
			injectErr = h.c.SignalWorkflow(ctx, target, "", contract.SignalApprove, payload)
		}
	}
	var res workflows.FailbackResult
	r, err := h.execute(t, runSpec{id: id, kind: contract.KindFailback, wf: workflows.FailbackWorkflow,
		in: workflows.FailbackInput{Plan: p}, out: &res, gates: leaveStartFailed, inject: inject})
	require.NoError(t, injectErr)
	require.NoError(t, err, "failback with %s frozen %v", victim, faultsOf(r))
	ended := time.Now()
	require.Contains(t, gate.Detail, victim+" did not start at dc1")
	require.True(t, strings.Contains(gate.Detail, "frozen") || strings.Contains(gate.Detail, "stopped by a signal"),
		"the gate must say the server hangs: %s", gate.Detail)
	require.Less(t, frozenFor, time.Minute, "the frozen start reached the gate late")
	h.expectCounts(t, "failback with a frozen server", before, h.counts(t), map[string]int{"dc1": 1}, map[string]int{"dc2": 1})
	h.checkLedger(t, "failback with a frozen server", "dc1", ended)
	h.checkPoints(t)
	h.sum.scenario("hang: %s frozen during the failback's restart: start-failed gate after %s (%q), thawed and retried, failback completed",
		victim, frozenFor.Round(time.Second), gate.Detail)
}

var startedRe = regexp.MustCompile(`started (\S+) \(run (\S+)\)`)

// orchestratorLost loses the primary and the Temporal database together:
// a disaster at dc1, the server killed and its database file deleted, the
// worker killed. A fresh server and worker start; the failover (from the
// CLI, as an operator would) finds the plan enabled and the newest valid
// point in the catalog in the store, needing no re-apply.
func (h *harness) orchestratorLost(t *testing.T) {
	stopLoad := h.load(t)
	time.Sleep(2 * time.Second)
	out, err := h.cli(t, 2*time.Minute, "backup", "run", "--plan", h.planPath, "--full", "--validate")
	require.NoError(t, err)
	m := regexp.MustCompile(`point (\S+): `).FindStringSubmatch(out)
	require.NotNil(t, m, "backup run printed no point:\n%s", out)
	point := m[1]
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RunTimeout)
	defer cancel()
	var vres workflows.ValidateResult
	require.NoError(t, h.c.GetWorkflow(ctx, "drover/chaos/validate/"+point, "").Get(ctx, &vres), "validation of %s", point)
	require.True(t, vres.Valid, "point %s not valid: %s", point, vres.Reason)
	time.Sleep(2 * time.Second)

	// Everything Temporal knew is about to go: count it, and remember the
	// points its runs committed.
	h.countHistories(t)
	pts, err := h.store(t).List(h.plan.Name)
	require.NoError(t, err)
	for _, p := range pts {
		h.lostPoints[p.ID] = true
	}
	declared, err := h.lab.Disaster("dc1")
	require.NoError(t, err)
	require.NoError(t, h.killWorker())
	require.NoError(t, h.server.kill(syscall.SIGKILL, 10*time.Second))
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(h.dbFile + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
	}
	rep := stopLoad()
	h.sum.fault("primary site lost", "dc1: every server killed, data root unreachable")
	h.sum.fault("Temporal database lost", "server SIGKILLed with the primary, "+filepath.Base(h.dbFile)+" deleted, worker killed")
	t.Logf("disaster at %s; load: %s", declared.Format(time.RFC3339Nano), rep.String())

	h.startServer(t)
	h.startWorker(t)
	out, err = h.cli(t, time.Minute, "failover", "--plan", h.planPath, "--unplanned")
	require.NoError(t, err)
	m = startedRe.FindStringSubmatch(out)
	require.NotNil(t, m, "drover failover printed no run:\n%s", out)
	before := h.counts(t)
	var res workflows.FailoverResult
	r, err := h.watch(t, runSpec{id: m[1], out: &res}, m[2])
	require.NoError(t, err, "failover on a fresh orchestrator")
	for _, g := range r.seen() {
		require.NotEqual(t, contract.GatePlanNotEnabled, g.Name, "the lifecycle in the store says enabled: no gate needed")
	}
	require.Equal(t, point, res.Point.ID, "the failover must restore the newest valid point of the catalog")
	h.expectCounts(t, "failover on a fresh orchestrator", before, h.counts(t), map[string]int{"dc2": 1}, nil)
	h.checkLedger(t, "failover on a fresh orchestrator", "dc2", res.Point.Instant)
	h.checkPoints(t)
	h.sum.scenario("orchestrator lost with the primary: fresh server and worker, failover from the catalog to point %s (RPO %s, RTO %s)",
		point, res.RPO.Achieved.Round(time.Millisecond), res.RTO.Achieved.Round(time.Millisecond))
}

// damage breaks one file of a point: flips a byte, truncates it, or
// deletes it. It returns the file's path relative to the point.
func (h *harness) damage(t *testing.T, pointID, how string) string {
	rel, err := h.damageNoT(pointID, how)
	require.NoError(t, err)
	return rel
}

// damageNoT is damage for injector goroutines.
func (h *harness) damageNoT(pointID, how string) (string, error) {
	dir := filepath.Join(h.storeRoot(), h.plan.Name, "points", pointID)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no data files in %s (%v)", dir, err)
	}
	slices.Sort(files)
	f := files[h.rng.IntN(len(files))]
	rel, _ := filepath.Rel(dir, f)
	switch how {
	case "corrupt":
		b, err := os.ReadFile(f)
		if err != nil {
			return rel, err
		}
		b[h.rng.IntN(len(b))] ^= 0x5a
		err = os.WriteFile(f, b, 0o640)
		if err != nil {
			return rel, err
		}
	case "truncate":
		st, err := os.Stat(f)
		if err != nil {
			return rel, err
		}
		if err := os.Truncate(f, st.Size()/2); err != nil {
			return rel, err
		}
	case "delete":
		if err := os.Remove(f); err != nil {
			return rel, err
		}
	default:
		return rel, fmt.Errorf("unknown damage %q", how)
	}
	h.sum.fault("recovery point "+how, fmt.Sprintf("%s of point %s", rel, pointID))
	return rel, nil
}

// storageFaults damages recovery points and the store: each drill of a
// damaged point fails at restore naming the file, and nothing starts in
// the sandbox; a full store and a store that vanishes mid-transfer fail
// the backup clearly and leave no point.
func (h *harness) storageFaults(t *testing.T) {
	backup := func(t *testing.T, id string, store plan.Settings, inject func(context.Context, *liveRun)) (workflows.BackupResult, error) {
		var res workflows.BackupResult
		_, err := h.execute(t, runSpec{id: id, kind: contract.KindBackup, wf: workflows.BackupWorkflow,
			in:  workflows.BackupInput{Plan: *h.plan, Store: store, Mode: contract.ModeFull, Reason: "chaos"},
			out: &res, inject: inject})
		return res, err
	}

	for _, how := range []string{"corrupt", "truncate", "delete"} {
		t.Run("Point"+strings.ToUpper(how[:1])+how[1:], func(t *testing.T) {
			res, err := backup(t, "drover/chaos/backup/to-"+how, nil, nil)
			require.NoError(t, err)
			file := h.damage(t, res.Point.ID, how)
			before := h.counts(t)
			id := "drover/chaos/drill-" + how
			_, err = h.execute(t, runSpec{id: id, kind: contract.KindDrill, wf: workflows.DrillWorkflow,
				in: workflows.DrillInput{Plan: *h.plan, PointID: res.Point.ID}, out: &workflows.DrillResult{}})
			require.Error(t, err, "a drill of a point with a %sd file must fail", how)
			require.Contains(t, err.Error(), filepath.Base(file), "the failure must name the damaged file")
			after := h.counts(t)
			for _, s := range h.lab.Topo.Servers {
				require.Equal(t, before["sandbox"][s.Name].Launches, after["sandbox"][s.Name].Launches,
					"%s was started in the sandbox from a damaged point", s.Name)
			}
			require.Empty(t, h.lab.Running("sandbox"))
			// The drill leaves the point unverified; the operator who reads
			// its report marks it invalid, so no backup builds on it.
			h.invalidate(t, res.Point.ID, "drill: "+file+" damaged")
			h.sum.add(func(s *summary) { s.RunsFailedClearly++ })
			h.sum.scenario("storage: %s %s of point %s: drill failed at restore naming it, nothing started: %s", how, file, res.Point.ID, lastLine(err))
		})
	}

	t.Run("DiskFull", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("a small tmpfs store needs root")
		}
		for _, c := range []struct {
			name string
			size string
			fill bool
		}{{"no room at preflight", "64k", false}, {"fills up mid-transfer", "32m", true}} {
			mnt := filepath.Join(h.dir, "tmpfs-"+c.size)
			require.NoError(t, os.MkdirAll(mnt, 0o755))
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+c.size, "tmpfs", mnt).CombinedOutput(); err != nil {
				t.Skipf("mount a tmpfs: %v: %s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
			store := plan.Settings{"path": mnt}
			var inject func(context.Context, *liveRun)
			if c.fill {
				inject = func(ctx context.Context, r *liveRun) {
					for r.open() {
						if e, _ := os.ReadDir(filepath.Join(mnt, h.plan.Name, "staging")); len(e) > 0 {
							fillUp(filepath.Join(mnt, "filler"))
							h.sum.fault("store full", "tmpfs store filled while a point is staged")
							return
						}
						time.Sleep(2 * time.Millisecond)
					}
				}
			}
			_, err := backup(t, "drover/chaos/backup/full-"+c.size, store, inject)
			require.Error(t, err, "backup into a store that %s", c.name)
			msg := strings.ToLower(err.Error())
			require.True(t, strings.Contains(msg, "no space") || strings.Contains(msg, "not enough") || strings.Contains(msg, "full"),
				"a full store must be named as such: %v", err)
			ents, _ := os.ReadDir(filepath.Join(mnt, h.plan.Name, "points"))
			require.Empty(t, ents, "a point was committed to a full store")
			staged, _ := os.ReadDir(filepath.Join(mnt, h.plan.Name, "staging"))
			require.Empty(t, staged, "a failed backup left its staging behind")
			if !c.fill {
				h.sum.fault("store full", "tmpfs store of "+c.size)
			}
			h.sum.add(func(s *summary) { s.RunsFailedClearly++ })
			h.sum.scenario("storage: store %s (%s tmpfs): backup failed clearly, no point, no staging: %s", c.name, c.size, lastLine(err))
		}
	})

	t.Run("StoreVanishes", func(t *testing.T) {
		dir := filepath.Join(h.dir, "vanishing-store")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		gone := dir + ".gone"
		inject := func(ctx context.Context, r *liveRun) {
			for r.open() {
				if e, _ := os.ReadDir(filepath.Join(dir, h.plan.Name, "staging")); len(e) > 0 {
					if err := os.Rename(dir, gone); err == nil {
						h.sum.fault("store vanished", "store directory renamed away while a point is staged")
						r.fault("store renamed")
					}
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		_, err := backup(t, "drover/chaos/backup/vanish", plan.Settings{"path": dir}, inject)
		require.Error(t, err, "a backup whose store vanished mid-transfer must fail")
		require.Contains(t, err.Error(), dir, "the failure must name the store")
		require.NoError(t, os.Rename(gone, dir), "the store was not renamed away: the injection missed the transfer")
		ents, _ := os.ReadDir(filepath.Join(dir, h.plan.Name, "points"))
		require.Empty(t, ents, "a point was committed while its store was gone")
		h.sum.add(func(s *summary) { s.RunsFailedClearly++ })
		h.sum.scenario("storage: store vanished mid-transfer: backup failed clearly, no point: %s", lastLine(err))
	})

	t.Run("FailoverFromCorruptPoint", func(t *testing.T) {
		id := "drover/chaos/switchover"
		before := h.counts(t)
		var file, point string
		inject := func(ctx context.Context, r *liveRun) {
			err := waitFor(2*time.Minute, func() error {
				st, err := h.status(ctx, id)
				if err != nil {
					return err
				}
				for _, g := range st.Gates {
					if g.Name != contract.GateStartSecondary || g.Outcome != workflows.OutcomePending {
						continue
					}
					for _, step := range st.Steps {
						if step.Name == "choose recovery point" && step.Outcome == workflows.OutcomeOK {
							point = strings.Fields(step.Detail)[0]
						}
					}
					if point == "" {
						return errors.New("gate open but no point chosen")
					}
					if file, err = h.damageNoT(point, "corrupt"); err != nil {
						return err
					}
					for _, who := range g.Approvers[:g.Quorum] {
						payload, err := labkeys.Payload(ctx, h.c, id, g.Name, who, contract.DecisionApprove, "chaos")
						if err != nil {
							return err
						}
						if err := h.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload); err != nil {
							return err
						}
					}
					return nil
				}
				return fmt.Errorf("gate %s not open yet (phase %s)", contract.GateStartSecondary, st.Phase)
			})
			if err != nil {
				h.abort(r, err)
			}
		}
		// The rollback the run offers is refused: this scenario is about
		// what a damaged point leaves behind, not about the older point.
		policy := func(target string, g workflows.GateRecord) string {
			switch g.Name {
			case contract.GateStartSecondary:
				return ""
			case contract.GateRollback:
				return contract.DecisionReject
			}
			return approveAll(target, g)
		}
		r, err := h.execute(t, runSpec{id: id, kind: contract.KindFailover, wf: workflows.FailoverWorkflow,
			in: workflows.FailoverInput{Plan: *h.plan}, out: &workflows.FailoverResult{}, gates: policy, inject: inject})
		require.Error(t, err, "a failover to a point corrupted after it was chosen must fail when the rollback is refused")
		require.NotEmpty(t, file, "the point was not damaged: %v", faultsOf(r))
		require.Contains(t, err.Error(), filepath.Base(file), "the failure must name the damaged file")
		after := h.counts(t)
		for _, s := range h.lab.Topo.Servers {
			require.Equal(t, before["dc2"][s.Name].Launches, after["dc2"][s.Name].Launches, "%s started at dc2 from a corrupt point", s.Name)
		}
		require.Empty(t, h.lab.Running("dc2"))
		require.Len(t, h.lab.Running("dc1"), len(h.lab.Topo.Servers), "the primary must be left running")
		v, verr := h.store(t).Validity(h.plan.Name, point)
		require.NoError(t, verr)
		require.Equal(t, catalog.Invalid, v.State, "the run marks the damaged point invalid itself")
		require.Contains(t, v.Reason, "restore refused damaged data")
		rollback := "no older valid point, so no rollback offered"
		for _, g := range r.seen() {
			if g.Name == contract.GateRollback {
				rollback = "rollback offered (" + g.Detail + ") and refused"
			}
		}
		h.sum.add(func(s *summary) { s.RunsFailedClearly++ })
		h.sum.scenario("storage: point %s corrupted (%s) while the failover waited at %s: restore at dc2 failed naming it, the point marked invalid, %s, nothing started, dc1 left running",
			point, file, contract.GateStartSecondary, rollback)
	})
}

// invalidate records a point invalid in the catalog, as an operator does
// after a run found its data damaged (what `drover points invalidate` does).
func (h *harness) invalidate(t *testing.T, pointID, reason string) {
	require.NoError(t, h.store(t).SetValidity(h.plan.Name, pointID, catalog.Validity{
		State: catalog.Invalid, Reason: reason, Run: "chaos suite", At: time.Now()}))
}

// fillUp writes to path until the file system is full.
func fillUp(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// sdkDecoration is what the Temporal SDK adds to each error of a chain.
var sdkDecoration = regexp.MustCompile(`\s*\(type: [^,()]*, retryable: (true|false)\)`)

// lastLine is the end of an error's message without the SDK's decoration,
// for the summary.
func lastLine(err error) string {
	msg := sdkDecoration.ReplaceAllString(err.Error(), "")
	if len(msg) > 160 {
		msg = "…" + msg[len(msg)-160:]
	}
	return msg
}
