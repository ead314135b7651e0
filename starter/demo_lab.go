package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/builtin"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/examples/plans"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

// demoStory is the whole DR story on the lab: lab up, load, scheduled
// backups, validation, a disaster on the primary, an unplanned failover, the
// report, the primary back, a planned failback and its report.
type demoStory struct {
	g           *Globals
	out         io.Writer
	log         *zap.Logger
	dir, labDir string
	planPath    string
	p           *plan.Plan
	st          *stack.Stack
	l           *lab.Lab
	store       *catalog.Store
	interactive bool
	// stopStore stops the S3 server the demo started for its store.
	stopStore func()
	// lost is the work the unplanned failover gave up (its point's capture
	// to the disaster): the failback check does not expect it.
	lost lab.LostWindow
	// summary lines printed at the end.
	summary []string
}

func (d *demoStory) say(format string, args ...any) {
	fmt.Fprintf(d.out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func runLabDemo(ctx context.Context, g *Globals, o demoOptions) (err error) {
	d := &demoStory{g: g, out: g.Stdout, log: g.Logger(), interactive: o.interactive, stopStore: func() {}}
	if d.dir, err = filepath.Abs(o.dir); err != nil {
		return BadInputf("--dir: %v", err)
	}
	d.labDir = filepath.Join(d.dir, "lab")
	// A demo run starts from nothing: the previous lab (if any) is stopped
	// and removed; its Temporal history stays in temporal.db.
	if old, err := lab.Open(d.labDir, d.log); err == nil {
		_ = old.Down()
	}
	if err := os.RemoveAll(d.labDir); err != nil {
		return fmt.Errorf("clear the previous demo lab: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(d.labDir, "store"), 0o755); err != nil {
		return BadInputf("--dir: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The lab's servers and the worker in this process find the lab and the
	// binary to start servers from through the environment.
	os.Setenv("DROVER_LAB_DIR", d.labDir)
	os.Setenv("DROVER_LAB_EXE", exe)
	os.Setenv("DROVER_LAB_WATCH_PID", fmt.Sprint(os.Getpid()))

	if err := d.writePlan(ctx, o.store); err != nil {
		return err
	}
	defer d.stopStore()
	if d.st, err = startStack(ctx, g, stack.Options{Port: o.port, UIPort: o.uiPort, DBFile: filepath.Join(d.dir, "temporal.db")}); err != nil {
		return err
	}
	defer d.st.Close()
	d.say("Temporal at %s, Web UI at %s", d.st.Server.FrontendAddress(), d.st.Server.UIURL())
	defer func() {
		if d.l != nil {
			if derr := d.l.Down(); derr != nil {
				d.log.Warn("lab down", zap.Error(derr))
			}
		}
		fmt.Fprintln(d.out)
		for _, s := range d.summary {
			fmt.Fprintln(d.out, s)
		}
		fmt.Fprintf(d.out, "Web UI: %s\n  runs of plan %s: %s\n", d.st.Server.UIURL(), d.p.Name, runsURL(d.st.Server.UIURL(), g.Namespace, d.p.Name))
	}()

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"lab up", d.labUp},
		{"enable the plan", d.enable},
		{"backups and validation under load", d.backups},
		{"disaster and unplanned failover", d.failover},
		{"primary back and planned failback", d.failback},
	}
	for _, s := range steps {
		d.say("== %s", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("demo step %q: %w", s.name, err)
		}
	}
	if o.stay {
		d.say("Web UI stays up; press Ctrl-C to stop.")
		<-ctx.Done()
	}
	return nil
}

// writePlan writes the lab's plan for the demo: the example plan with an RPO
// short enough that the schedule fires within the demo.
func (d *demoStory) writePlan(ctx context.Context, store demoStore) error {
	text := strings.Replace(string(plans.Lab), "rpo: 5m\n", "rpo: 1m\n", 1)
	// The drivers read start-up times from the plan: scale them with the lab.
	text = strings.ReplaceAll(text, "timeScale: 0.05", "timeScale: 0.03")
	if store.kind == "s3" {
		var err error
		if text, d.stopStore, err = d.objectStore(ctx, store, text); err != nil {
			return err
		}
	}
	d.planPath = filepath.Join(d.dir, "lab-plan.yaml")
	if err := os.WriteFile(d.planPath, []byte(text), 0o644); err != nil {
		return err
	}
	p, err := plan.LoadAndValidate(d.planPath, builtin.Registry(d.log))
	if err != nil {
		return fmt.Errorf("the demo's plan does not validate (a bug): %w", err)
	}
	d.p = p
	return nil
}

func (d *demoStory) labUp(ctx context.Context) error {
	base, err := lab.FreeBasePort(len(d.p.Components) + 1)
	if err != nil {
		return err
	}
	// Start-up times keep their realistic proportions, scaled to fit the
	// demo in two minutes.
	t, _, err := labplan.Topology(d.p, base, 0.03)
	if err != nil {
		return err
	}
	if d.l, err = lab.Create(d.labDir, t, d.log); err != nil {
		return err
	}
	begin := time.Now()
	if err := d.l.Up(ctx); err != nil {
		return err
	}
	d.say("lab %s up at %s in %s: %d servers at dc1, front door %s", t.Name, d.labDir, time.Since(begin).Round(time.Millisecond), len(t.Servers), t.FrontDoor.Addr())
	if err := startSiteWorkers(ctx, d.g, d.st.Client, d.l); err != nil {
		return err
	}
	d.say("site workers: one drover worker process per site (%s), each running only the steps placed at its site; the orchestrator runs in this process",
		strings.Join(t.SiteNames(), ", "))
	return nil
}

// enable is `drover plan apply`: validated, then enabled as secondary (the
// RPO monitor) and as primary (the backup schedule).
func (d *demoStory) enable(ctx context.Context) error {
	st, err := openPlanStore(d.p)
	if err != nil {
		return err
	}
	d.store = st
	if problems := validateForEnable(ctx, d.g, d.p, st, nil); len(problems) > 0 {
		return fmt.Errorf("plan not validated: %s", strings.Join(problems, "; "))
	}
	now := time.Now()
	if _, err := st.Transition(d.p.Name, catalog.StateValidated, "", "demo", now); err != nil {
		return err
	}
	if err := stack.StartMonitor(ctx, d.st.Client, d.p); err != nil {
		return err
	}
	if _, err := st.Transition(d.p.Name, catalog.StateEnabled, "secondary", "RPO monitor", now); err != nil {
		return err
	}
	interval, why, err := scheduleBackups(ctx, d.g, d.st.Client, d.p, st)
	if err != nil {
		return err
	}
	if _, err := st.Transition(d.p.Name, catalog.StateEnabled, "primary", "backup schedule", now); err != nil {
		return err
	}
	d.say("plan %s enabled: RPO monitor %s; backup schedule %s every %s (%s)", d.p.Name, contract.MonitorID(d.p.Name), contract.BackupScheduleID(d.p.Name), interval, why)
	return nil
}

// load runs the workload until ctx ends.
func (d *demoStory) load(ctx context.Context, rate float64, wg *sync.WaitGroup, report *lab.LoadReport) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		rep, err := d.l.RunLoad(ctx, lab.LoadOptions{Rate: rate, Duration: time.Hour, Concurrency: 16})
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Warn("load", zap.Error(err))
		}
		*report = rep
	}()
}

func (d *demoStory) backups(ctx context.Context) error {
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	var rep lab.LoadReport
	d.load(loadCtx, 20, &wg, &rep)
	d.say("workload running: OrderHandling orders through the front door at 20/s")
	time.Sleep(3 * time.Second)

	// The schedule fires on its own every interval; the demo triggers it
	// now rather than wait, as `temporal schedule trigger` would.
	for i := 1; i <= 2; i++ {
		pt, err := d.triggerBackup(ctx)
		if err != nil {
			return err
		}
		d.say("scheduled backup %d: point %s (%s, %s, %d bytes)", i, pt.ID, pt.Mode, pt.Consistency, pt.Size)
		if i == 1 {
			time.Sleep(2 * time.Second)
		}
	}
	stopLoad()
	wg.Wait()
	d.say("workload stopped: %s", rep.String())

	pts, err := d.store.List(d.p.Name)
	if err != nil {
		return err
	}
	newest := pts[len(pts)-1]
	var res workflows.ValidateResult
	id := contract.ValidateID(d.p.Name, newest.ID)
	if err := stack.RunWorkflow(ctx, d.st.Client, id, d.p.Name, contract.KindValidate, workflows.ValidateWorkflow,
		workflows.ValidateInput{Plan: *d.p, PointID: newest.ID}, &res); err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("point %s failed validation: %s", newest.ID, res.Reason)
	}
	d.say("validation in the sandbox: point %s is valid (sandbox torn down; report %s)", newest.ID, res.Report.Markdown)
	return nil
}

// triggerBackup fires the backup schedule once and waits for its point.
func (d *demoStory) triggerBackup(ctx context.Context) (catalog.Point, error) {
	before, err := d.store.List(d.p.Name)
	if err != nil {
		return catalog.Point{}, err
	}
	if err := d.st.Client.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(d.p.Name)).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return catalog.Point{}, fmt.Errorf("trigger the backup schedule: %w", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		pts, err := d.store.List(d.p.Name)
		if err == nil && len(pts) > len(before) {
			return pts[len(pts)-1], nil
		}
		select {
		case <-ctx.Done():
			return catalog.Point{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return catalog.Point{}, fmt.Errorf("the scheduled backup produced no point in 90s (see the backup runs in the Web UI)")
}

// autoApprove approves every gate the run opens, as the plan's approvers,
// and says so; with --interactive it only prints how a person approves.
func (d *demoStory) autoApprove(ctx context.Context, id string) {
	seen := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
		st, target, err := statusTree(ctx, d.st.Client, id)
		if err != nil {
			continue
		}
		for _, gt := range st.Gates {
			if gt.Outcome != workflows.OutcomePending {
				continue
			}
			key := target + gt.Name + gt.Opened.String()
			if d.interactive {
				if !seen[key] {
					seen[key] = true
					d.say("GATE %s at %s waits for %s of %s: %s", gt.Name, target, quorumText(gt.Quorum), strings.Join(gt.Approvers, ", "), gt.Detail)
					for _, item := range gt.Checklist {
						d.say("  [ ] %s", item)
					}
					d.say("  approve: drover --address %s approve %s --gate %s --as %s --key KEYFILE (the lab's keys: examples/keys/lab/README.md)",
						d.st.Server.FrontendAddress(), target, gt.Name, gt.Approvers[0])
				}
				continue
			}
			for i := 0; i < gt.Quorum && i < len(gt.Approvers); i++ {
				who := gt.Approvers[i]
				if seen[key+who] {
					continue
				}
				seen[key+who] = true
				// Approve what asks for approval; go on (retry) where the
				// gate asks what to do with a step.
				decision := contract.DecisionApprove
				if !slices.Contains(gt.Options, decision) {
					decision = contract.DecisionRetry
				}
				d.say("demo approves gate %s as %s (a person would: drover approve %s --gate %s --as %s; --interactive waits for one)",
					gt.Name, who, target, gt.Name, who)
				// The lab plan's approvers have public keys (a quorum of two
				// needs signed approvals): sign with the lab's throwaway keys.
				key, err := labkeys.Key(who)
				if err != nil {
					d.log.Warn("demo approval unsigned", zap.Error(err))
					key = nil
				}
				if _, err := approve(ctx, d.st.Client, target, workflows.Approval{Gate: gt.Name, Approver: who, Decision: decision,
					Comment: "approved by drover demo"}, key); err != nil {
					d.log.Warn("demo approval", zap.Error(err))
				}
			}
		}
	}
}

func (d *demoStory) failover(ctx context.Context) error {
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var rep lab.LoadReport
	d.load(loadCtx, 20, &wg, &rep)
	time.Sleep(2 * time.Second)
	declared, err := d.l.Disaster("dc1")
	if err != nil {
		stopLoad()
		return err
	}
	stopLoad()
	wg.Wait()
	d.say("DISASTER at dc1 (%s): every server and dc1's drover worker killed, its data root unreachable; load: %s", declared.Format("15:04:05.000"), rep.String())

	id := contract.SwitchoverID(d.p.Name)
	run, err := startRun(ctx, d.st.Client, id, d.p.Name, contract.KindFailover, workflows.FailoverWorkflow,
		workflows.FailoverInput{Plan: *d.p, DeclaredAt: declared})
	if err != nil {
		return err
	}
	d.say("unplanned failover %s started", id)
	actx, stopApprover := context.WithCancel(ctx)
	defer stopApprover()
	go d.autoApprove(actx, id)
	var res workflows.FailoverResult
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, &res) }()
	watchStatus(ctx, d.out, d.st.Client, id, done)
	if err := <-done; err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	stopApprover()
	ledger, err := lab.CheckLedger(d.labDir, "dc2", res.Point.Instant)
	if err != nil {
		return err
	}
	d.lost = lab.LostWindow{Site: "dc1", From: res.Point.Instant, To: declared}
	d.say("failover done: dc2 serves traffic from point %s; RPO %s (target %s), RTO %s (target %s)",
		res.Point.ID, res.RPO.Achieved.Round(time.Millisecond), res.RPO.Target, res.RTO.Achieved.Round(time.Millisecond), res.RTO.Target)
	d.say("ledger check at dc2: %d of %d steps committed before the capture instant present, %d missing, %d duplicated",
		ledger.Present, ledger.Expected, ledger.MissingCount, ledger.DuplicateCount)
	d.summary = append(d.summary,
		fmt.Sprintf("unplanned failover: RPO %s (target %s, met %v), RTO %s (target %s, met %v); ledger: %d missing, %d duplicated",
			res.RPO.Achieved.Round(time.Millisecond), res.RPO.Target, res.RPO.Met, res.RTO.Achieved.Round(time.Millisecond), res.RTO.Target, res.RTO.Met,
			ledger.MissingCount, ledger.DuplicateCount),
		"  report: "+res.Report.Markdown)
	if ledger.MissingCount > 0 || ledger.DuplicateCount > 0 {
		return fmt.Errorf("ledger check failed at dc2: %s", ledger.String())
	}
	return nil
}

func (d *demoStory) failback(ctx context.Context) error {
	if err := d.l.RestoreSite("dc1"); err != nil {
		return err
	}
	if err := startSiteWorkers(ctx, d.g, d.st.Client, d.l); err != nil {
		return err
	}
	d.say("dc1 is back (its old data root returned, its drover worker started again; no server runs there)")
	// Work at the new primary before failing back: it must come home too.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var rep lab.LoadReport
	d.load(loadCtx, 20, &wg, &rep)
	time.Sleep(3 * time.Second)
	stopLoad()
	wg.Wait()
	d.say("orders at dc2 meanwhile: %s", rep.String())

	id := contract.SwitchoverID(d.p.Name)
	run, err := startRun(ctx, d.st.Client, id, d.p.Name, contract.KindFailback, workflows.FailbackWorkflow, workflows.FailbackInput{Plan: *d.p})
	if err != nil {
		return err
	}
	d.say("planned failback %s started", id)
	actx, stopApprover := context.WithCancel(ctx)
	defer stopApprover()
	go d.autoApprove(actx, id)
	var res workflows.FailbackResult
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, &res) }()
	watchStatus(ctx, d.out, d.st.Client, id, done)
	if err := <-done; err != nil {
		return fmt.Errorf("failback: %w", err)
	}
	ledger, err := lab.CheckLedgerExcept(d.labDir, "dc1", res.Point.Instant, d.lost)
	if err != nil {
		return err
	}
	d.say("failback done: dc1 serves traffic again; RTO %s; ledger at dc1: %d of %d steps present, %d missing, %d duplicated (%d lost by the failover's RPO, not expected)",
		res.RTO.Achieved.Round(time.Millisecond), ledger.Present, ledger.Expected, ledger.MissingCount, ledger.DuplicateCount, ledger.Excused)
	d.summary = append(d.summary,
		fmt.Sprintf("planned failback: RTO %s (target %s); ledger: %d missing, %d duplicated", res.RTO.Achieved.Round(time.Millisecond),
			res.RTO.Target, ledger.MissingCount, ledger.DuplicateCount),
		"  report: "+res.Report.Markdown)
	if ledger.MissingCount > 0 || ledger.DuplicateCount > 0 {
		return fmt.Errorf("ledger check failed at dc1: %s", ledger.String())
	}
	return nil
}
