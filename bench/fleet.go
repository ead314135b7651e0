package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/drivers/secret"
	"github.com/drover-dr/drover/lab/pgcluster"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

// The goal of the fleet benchmark.
const (
	// FleetGoalGrowth is how much a plan's RTO among many may exceed a lone
	// plan's and still meet the goal.
	FleetGoalGrowth = 1.10
	// FleetMaxPlans bounds --plans: three processes per plan on one
	// machine.
	FleetMaxPlans = 500
)

// FleetOptions shape `drover bench fleet`.
type FleetOptions struct {
	// Counts are the numbers of plans failed over together.
	Counts []int
	// Dir is the work folder; empty: a new temporary folder, removed
	// afterwards unless Keep.
	Dir  string
	Keep bool
	// Timeout bounds one batch.
	Timeout time.Duration
	// Postgres keeps Temporal's state; nil starts a throwaway cluster
	// (initdb and pg_ctl of Debian's postgresql) for the run.
	Postgres *devserver.Postgres
	// Tuning is the worker's pollers and slots (zero: drover's defaults).
	Tuning Tuning
}

// Tuning is the worker options that move the fleet's figures.
type Tuning struct {
	ActivityPollers            int `json:"activityPollers,omitempty"`
	WorkflowPollers            int `json:"workflowPollers,omitempty"`
	MaxConcurrentActivities    int `json:"maxConcurrentActivities,omitempty"`
	MaxConcurrentWorkflowTasks int `json:"maxConcurrentWorkflowTasks,omitempty"`
}

func (t Tuning) apply(o *worker.Options) {
	o.ActivityPollers, o.WorkflowPollers = t.ActivityPollers, t.WorkflowPollers
	o.MaxConcurrentActivities, o.MaxConcurrentWorkflowTasks = t.MaxConcurrentActivities, t.MaxConcurrentWorkflowTasks
}

func (t Tuning) String() string {
	d := func(v int, def string) string {
		if v == 0 {
			return def
		}
		return strconv.Itoa(v)
	}
	return fmt.Sprintf("activity pollers %s, workflow pollers %s, activity slots %s, workflow task slots %s",
		d(t.ActivityPollers, "SDK default"), d(t.WorkflowPollers, "SDK default"),
		d(t.MaxConcurrentActivities, "SDK default"), d(t.MaxConcurrentWorkflowTasks, "SDK default"))
}

// FleetCPU is CPU seconds per plan, by part.
type FleetCPU struct {
	Server      float64 `json:"serverSeconds"`
	Worker      float64 `json:"workerSeconds"`
	Persistence float64 `json:"persistenceSeconds"`
	// Processes are the components' commands (shells, sleeps).
	Processes float64 `json:"processSeconds"`
	// Other is the process's CPU outside the server and the worker (the
	// Go runtime's own goroutines, the benchmark).
	Other float64 `json:"otherSeconds"`
}

func (c FleetCPU) total() float64 { return c.Server + c.Worker + c.Persistence + c.Processes + c.Other }

// FleetPhase is where a run's time went, averaged over the plans of a
// batch (seconds): the same split as `drover bench rto`.
type FleetPhase struct {
	Critical  float64 `json:"criticalSeconds"`
	OtherWork float64 `json:"otherWorkSeconds"`
	RunStart  float64 `json:"runStartSeconds"`
	Reactions float64 `json:"reactionsSeconds"`
	Dispatch  float64 `json:"dispatchSeconds"`
	Skew      float64 `json:"skewSeconds"`
	Tail      float64 `json:"tailSeconds"`
	// Schedule-to-start of activities' first attempts, mean and max (ms).
	DispatchMeanMs float64 `json:"dispatchMeanMs"`
	DispatchMaxMs  float64 `json:"dispatchMaxMs"`
}

// FleetRow is one batch beside the lone plan measured just before it.
type FleetRow struct {
	Plans int `json:"plans"`
	// AllRedirectedSeconds: from the one declaration to the last plan
	// redirected.
	AllRedirectedSeconds float64 `json:"allRedirectedSeconds"`
	// SlowestCriticalSeconds: the longest critical path of the batch's
	// plans (its activities' own work).
	SlowestCriticalSeconds float64 `json:"slowestCriticalSeconds"`
	OverheadRatio          float64 `json:"overheadRatio"`
	RTOP50Seconds          float64 `json:"rtoP50Seconds"`
	RTOP99Seconds          float64 `json:"rtoP99Seconds"`
	LoneRTOSeconds         float64 `json:"loneRtoSeconds"`
	LoneCriticalSeconds    float64 `json:"loneCriticalSeconds"`
	P50Ratio               float64 `json:"p50OverLone"`
	P99Ratio               float64 `json:"p99OverLone"`
	GoalMet                bool    `json:"goalMet"`
	// CPU per plan in the batch, and of the lone plan.
	CPU     FleetCPU `json:"cpuPerPlan"`
	LoneCPU FleetCPU `json:"loneCpu"`
	// Utilisation is the batch's CPU over wall time × CPUs.
	Utilisation float64    `json:"utilisation"`
	Phase       FleetPhase `json:"phase"`
	LonePhase   FleetPhase `json:"lonePhase"`
	// Bend names where the batch's RTO grew beyond the lone plan's, and
	// why, from the figures above.
	Bend string `json:"bend"`
}

// FleetDoc is what `drover bench fleet` measured.
type FleetDoc struct {
	CPUs        int        `json:"cpus"`
	LoadBefore  float64    `json:"loadBefore"`
	LoadAfter   float64    `json:"loadAfter"`
	Persistence string     `json:"persistence"`
	Tuning      Tuning     `json:"tuning"`
	Components  int        `json:"componentsPerPlan"`
	Rows        []FleetRow `json:"rows"`
	Notes       []string   `json:"notes"`
}

// fleetComponents are each plan's components: a tier each.
var fleetComponents = []struct{ name, role, product string }{{"db", "database", ""}, {"app", "app", "shop"}, {"web", "webserver", ""}}

// Fleet fails over batches of independent plans at once, each batch beside
// a lone plan failed over just before it on the same server.
func Fleet(ctx context.Context, env Env, o FleetOptions) (doc FleetDoc, err error) {
	log := env.log()
	dir, cleanup, err := workDir(o.Dir, o.Keep, "drover-bench-fleet-")
	if err != nil {
		return doc, err
	}
	defer cleanup()
	pg := o.Postgres
	pgPort := 0
	if pg == nil {
		env.progress("starting a throwaway PostgreSQL cluster ...")
		cluster, err := pgcluster.Start(ctx)
		if err != nil {
			return doc, fmt.Errorf("the fleet runs on PostgreSQL: %w", err)
		}
		defer func() {
			if serr := cluster.Stop(); serr != nil {
				log.Warn("stop the throwaway PostgreSQL", zap.Error(serr))
			}
		}()
		const pwEnv = "DROVER_BENCH_FLEET_PG_PASSWORD"
		restore := setenv(map[string]string{pwEnv: cluster.Password})
		defer restore()
		pg = &devserver.Postgres{Host: cluster.Host, Port: cluster.Port, User: cluster.User, Database: "temporal", Password: secret.Ref("env:" + pwEnv)}
		pgPort = cluster.Port
	} else {
		pgPort = pg.Port
		if pgPort == 0 {
			pgPort = portOfURL(pg.URL)
		}
	}

	rec := &rtoRecorder{}
	env.progress("starting Temporal on PostgreSQL (%s) and the worker ...", pg.Describe())
	st, err := env.startStack(ctx, stack.Options{Postgres: pg, Interceptors: []interceptor.WorkerInterceptor{rec},
		Worker: o.Tuning.apply})
	if err != nil {
		return doc, err
	}
	reg := builtin.Registry(log)
	var fleet []*fleetPlan
	defer func() {
		st.Close()
		// The components' processes end with the benchmark.
		for _, fp := range fleet {
			if rerr := ResetFleetSecondary(context.WithoutCancel(ctx), reg, fp.p); rerr != nil {
				log.Warn("stop a fleet plan's processes", zap.String("plan", fp.p.Name), zap.Error(rerr))
			}
		}
	}()

	most := slices.Max(o.Counts)
	env.progress("%d plans: writing them, enabling them and taking a recovery point of each ...", most)
	if fleet, err = fleetPrepare(ctx, st, reg, dir, most); err != nil {
		return doc, err
	}
	doc = FleetDoc{CPUs: runtime.NumCPU(), LoadBefore: loadAverage(), Persistence: "PostgreSQL " + pg.Describe(),
		Tuning: o.Tuning, Components: len(fleetComponents)}
	for _, n := range o.Counts {
		env.progress("%d plans: a lone plan, then %d at once ...", n, n)
		bctx, cancel := context.WithTimeout(ctx, o.Timeout)
		lone, err := fleetBatch(bctx, st, rec, reg, fleet[:1], pgPort)
		if err != nil {
			cancel()
			return doc, fmt.Errorf("lone plan before the batch of %d: %w", n, err)
		}
		batch, err := fleetBatch(bctx, st, rec, reg, fleet[:n], pgPort)
		cancel()
		if err != nil {
			return doc, fmt.Errorf("batch of %d plans: %w", n, err)
		}
		doc.Rows = append(doc.Rows, fleetMakeRow(n, lone, batch, doc.CPUs))
	}
	doc.LoadAfter = loadAverage()
	doc.Notes = []string{
		"every plan: three components (database, app, webserver tiers), each a real process started and watched by the exec driver; an archive group restored from the plan's recovery point; one system check",
		"the batch is one declaration: every plan's unplanned FailoverWorkflow gets the same declaration time and is started at once; RTO = redirected - declared, as the run reports it",
		"the plans have no front door, so 'redirected' is the instant each run marks its secondary live (where a redirect would run)",
		"the lone plan runs just before each batch on the same server, worker and database: its RTO, critical path and CPU are the baseline",
		"critical path: the activities' own work on the plan's longest chain (restore, each tier's start, each verification level), recorded by a worker interceptor",
		"CPU: server and worker by goroutine label in a CPU profile of this process; persistence from /proc of the PostgreSQL processes; processes from the children this process waited for",
		"site workers, orchestrator and server share this process and its cores, as `drover dev` does",
	}
	if pgPort == 0 {
		doc.Notes = append(doc.Notes, "persistence CPU not measured: the PostgreSQL port is unknown")
	}
	return doc, nil
}

// portOfURL is the port of postgres://USER@HOST:PORT/DB, 5432 without one,
// 0 when it cannot be read.
func portOfURL(u string) int {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return 0
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.HasSuffix(rest, "]") {
		p, err := strconv.Atoi(rest[i+1:])
		if err != nil {
			return 0
		}
		return p
	}
	return 5432
}

// fleetPlan is one plan of the fleet and its sites' folders.
type fleetPlan struct {
	p     *plan.Plan
	point string
}

// fleetPlanText is a plan of three exec components whose processes are
// sleeps with pid files under the site's runDir, an archive group of the
// database's data, and one system check.
func fleetPlanText(name, dir string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: drover/v1\nname: %s\ndescription: drover bench fleet\nrpo: 24h\nrto: 1h\nproducts: [shop]\nsites:\n", name)
	for _, s := range []struct{ role, name string }{{"primary", "dc1"}, {"secondary", "dc2"}} {
		fmt.Fprintf(&b, "  %s:\n    name: %s\n    settings:\n      dataRoot: %s\n      runDir: %s\n", s.role, s.name,
			q(filepath.Join(dir, s.name, "data")), q(filepath.Join(dir, s.name, "run")))
	}
	const run = `{{index .Site.Settings "runDir"}}`
	pid := run + `/{{.Component.Name}}.pid`
	b.WriteString("components:\n")
	for _, c := range fleetComponents {
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    driver: exec\n    startTimeout: 1m\n", c.name, c.role)
		if c.product != "" {
			fmt.Fprintf(&b, "    product: %s\n", c.product)
		}
		b.WriteString("    settings:\n")
		fmt.Fprintf(&b, "      start: %s\n", q(`mkdir -p `+run+` && (sleep 900 </dev/null >/dev/null 2>&1 & echo $! > `+pid+`)`))
		fmt.Fprintf(&b, "      stop: %s\n", q(`if [ -f `+pid+` ]; then kill "$(cat `+pid+`)" 2>/dev/null; rm -f `+pid+`; fi; true`))
		fmt.Fprintf(&b, "      pidfile: %s\n      timeout: 30s\n", q(pid))
	}
	fmt.Fprintf(&b, `storage:
  store:
    path: %s
  groups:
    - name: data
      driver: archive
      classes: [configuration]
      components: [db]
      settings:
        members: [db]
verification:
  system:
    - name: web-running
      driver: exec
      settings:
        command: %s
approvers:
  - name: bench
gates:
  - {name: start-secondary, approvers: none}
  - {name: failback, approvers: none}
  - {name: accept-data-loss, approvers: [bench], timeout: 1m, onTimeout: abort}
  - {name: start-failed, approvers: [bench], timeout: 1m, onTimeout: abort}
`, q(filepath.Join(dir, "store")), q(`kill -0 "$(cat `+run+`/web.pid)"`))
	return b.String()
}

// WriteFleetPlan writes the fleet's plan NAME as dir/NAME.yaml (a folder of
// plan files), its sites' folders and store under dir/NAME and a little
// data at its primary. edit, when set, changes the plan's text first (the
// tests give plans their own gates and approvers).
func WriteFleetPlan(dir, name string, edit func(string) string) (string, error) {
	pdir := filepath.Join(dir, name)
	if err := os.RemoveAll(pdir); err != nil {
		return "", err
	}
	data := filepath.Join(pdir, "dc1", "data", "db")
	// dc2 holds nothing until a restore; its folder is where the data root
	// goes (plan apply looks for it).
	for _, d := range []string{data, filepath.Join(pdir, "store"), filepath.Join(pdir, "dc2")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(data, "rows.txt"), []byte(strings.Repeat(name+" row\n", 1000)), 0o644); err != nil {
		return "", err
	}
	text := fleetPlanText(name, pdir)
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(dir, name+".yaml")
	return path, os.WriteFile(path, []byte(text), 0o644)
}

// PrepareFleetPlan loads a plan WriteFleetPlan wrote, enables it in its
// store and takes a full recovery point of it, returning the plan and the
// point.
func PrepareFleetPlan(ctx context.Context, c client.Client, reg *drivers.Registry, path string) (*plan.Plan, string, error) {
	p, err := plan.LoadAndValidate(path, reg)
	if err != nil {
		return nil, "", fmt.Errorf("the fleet's plan does not validate: %w", err)
	}
	store, _, err := catalog.OpenFromSettings(p.Storage.Store)
	if err != nil {
		return nil, "", fmt.Errorf("plan %s: recovery point store: %w", p.Name, err)
	}
	if _, err := store.Transition(p.Name, catalog.StateEnabled, "secondary", "drover bench fleet", time.Now()); err != nil {
		return nil, "", fmt.Errorf("enable plan %s: %w", p.Name, err)
	}
	var backup workflows.BackupResult
	err = stack.RunWorkflow(ctx, c, fmt.Sprintf("drover/%s/backup/bench", p.Name), p.Name, contract.KindBackup,
		workflows.BackupWorkflow, workflows.BackupInput{Plan: *p, Reason: "bench", Mode: contract.ModeFull}, &backup)
	if err != nil {
		return nil, "", fmt.Errorf("recovery point of %s: %w", p.Name, err)
	}
	return p, backup.Point.ID, nil
}

// fleetPrepare writes n plans, enables each in its store, puts a little
// data at each primary and takes a recovery point of each (several at
// once; not measured).
func fleetPrepare(ctx context.Context, st *stack.Stack, reg *drivers.Registry, dir string, n int) ([]*fleetPlan, error) {
	paths := make([]string, n)
	for i := range paths {
		var err error
		if paths[i], err = WriteFleetPlan(dir, fmt.Sprintf("fleet-%03d", i+1), nil); err != nil {
			return nil, err
		}
	}
	// Backups a few at a time: they are set-up, not the figure.
	fleet := make([]*fleetPlan, n)
	sem := make(chan struct{}, 8)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p, point, err := PrepareFleetPlan(ctx, st.Client, reg, path)
			fleet[i], errs[i] = &fleetPlan{p: p, point: point}, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return fleet, nil
}

// ResetFleetSecondary stops a fleet plan's processes at its secondary and
// empties its data root, through the plan's own driver and the activities'
// target.
func ResetFleetSecondary(ctx context.Context, reg *drivers.Registry, p *plan.Plan) error {
	sec := contract.SiteRef{Role: plan.SiteSecondary, Site: *p.Sites.Secondary}
	for _, c := range p.Components {
		m, err := reg.Middleware(c.Driver)
		if err != nil {
			return err
		}
		if _, err := m.Stop(ctx, activities.Target(contract.ComponentInput{Plan: p.Name, Site: sec, Component: c}), drivers.StopImmediate); err != nil {
			return fmt.Errorf("stop %s of %s: %w", c.Name, p.Name, err)
		}
	}
	root, _ := sec.Site.Settings["dataRoot"].(string)
	if root == "" {
		return fmt.Errorf("plan %s: the secondary has no dataRoot", p.Name)
	}
	return os.RemoveAll(root)
}

// fleetRun is one plan's failover in a batch.
type fleetRun struct {
	rto, took time.Duration
	work      rtoWork
	overhead  rtoOverhead
}

// fleetBatchResult is a batch's runs and what they cost.
type fleetBatchResult struct {
	runs []fleetRun
	// all: from the declaration to the last plan redirected.
	all time.Duration
	cpu FleetCPU // totals, not per plan
}

// fleetBatch resets the plans' secondaries, declares one disaster for all
// of them and fails them over at once.
func fleetBatch(ctx context.Context, st *stack.Stack, rec *rtoRecorder, reg *drivers.Registry, plans []*fleetPlan, pgPort int) (fleetBatchResult, error) {
	var out fleetBatchResult
	for _, fp := range plans {
		if err := ResetFleetSecondary(ctx, reg, fp.p); err != nil {
			return out, err
		}
	}
	rec.reset()
	prof, err := startCPU(stack.PartLabel)
	if err != nil {
		return out, err
	}
	pgBefore := postgresCPU(pgPort)
	childBefore := childCPU()
	declared := time.Now()
	runs := make([]fleetRun, len(plans))
	errs := make([]error, len(plans))
	var last time.Time
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, fp := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := contract.SwitchoverID(fp.p.Name)
			begin := time.Now()
			run, err := st.Client.ExecuteWorkflow(ctx, stack.StartOptions(id, fp.p.Name, contract.KindFailover), workflows.FailoverWorkflow,
				workflows.FailoverInput{Plan: *fp.p, PointID: fp.point, DeclaredAt: declared})
			if err != nil {
				errs[i] = fmt.Errorf("start %s: %w", id, err)
				return
			}
			var res workflows.FailoverResult
			err = run.Get(ctx, &res)
			end := time.Now()
			if err != nil {
				errs[i] = fmt.Errorf("failover %s: %w", id, err)
				return
			}
			if !res.Verify.Valid || res.Redirected.IsZero() {
				errs[i] = fmt.Errorf("failover %s ended without a verified, live secondary (valid=%v, failed level %q)", id, res.Verify.Valid, res.Verify.FailedLevel)
				return
			}
			tiers, err := plan.Tiers(fp.p)
			if err != nil {
				errs[i] = err
				return
			}
			r := fleetRun{rto: res.RTO.Achieved, took: end.Sub(begin)}
			r.work, r.overhead = rtoAnalyse(rec.take(id), tiers, begin, end)
			runs[i] = r
			mu.Lock()
			if res.Redirected.After(last) {
				last = res.Redirected
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	byPart, perr := prof.stop()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	if perr != nil {
		return out, perr
	}
	out.runs = runs
	out.all = last.Sub(declared)
	out.cpu = FleetCPU{Server: byPart[stack.PartServer].Seconds(), Worker: byPart[stack.PartWorker].Seconds(),
		Other: byPart[""].Seconds(), Processes: (childCPU() - childBefore).Seconds()}
	if pgBefore >= 0 {
		if after := postgresCPU(pgPort); after >= 0 {
			out.cpu.Persistence = (after - pgBefore).Seconds()
		}
	}
	return out, nil
}

// percentile of sorted ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(k, 0), len(ds)-1)]
}

func fleetPhase(runs []fleetRun) FleetPhase {
	var ph FleetPhase
	if len(runs) == 0 {
		return ph
	}
	var dispatchSum float64
	var activitiesN int
	for _, r := range runs {
		ph.Critical += r.work.critical().Seconds()
		ph.OtherWork += r.work.Other.Seconds()
		ph.RunStart += r.overhead.RunStart.Seconds()
		ph.Reactions += r.overhead.Reactions.Seconds()
		ph.Dispatch += r.overhead.Dispatch.Seconds()
		ph.Skew += r.overhead.Skew.Seconds()
		ph.Tail += r.overhead.Tail.Seconds()
		dispatchSum += float64(r.overhead.DispatchMean.Microseconds()) / 1000 * float64(r.overhead.Activities)
		activitiesN += r.overhead.Activities
		ph.DispatchMaxMs = max(ph.DispatchMaxMs, float64(r.overhead.DispatchMax.Microseconds())/1000)
	}
	n := float64(len(runs))
	ph.Critical /= n
	ph.OtherWork /= n
	ph.RunStart /= n
	ph.Reactions /= n
	ph.Dispatch /= n
	ph.Skew /= n
	ph.Tail /= n
	if activitiesN > 0 {
		ph.DispatchMeanMs = dispatchSum / float64(activitiesN)
	}
	return ph
}

func perPlan(c FleetCPU, n int) FleetCPU {
	f := float64(max(n, 1))
	return FleetCPU{Server: c.Server / f, Worker: c.Worker / f, Persistence: c.Persistence / f, Processes: c.Processes / f, Other: c.Other / f}
}

func fleetMakeRow(n int, lone, batch fleetBatchResult, cpus int) FleetRow {
	rtos := make([]time.Duration, 0, len(batch.runs))
	var slowest time.Duration
	for _, r := range batch.runs {
		rtos = append(rtos, r.rto)
		slowest = max(slowest, r.work.critical())
	}
	sort.Slice(rtos, func(i, j int) bool { return rtos[i] < rtos[j] })
	row := FleetRow{Plans: n, AllRedirectedSeconds: batch.all.Seconds(), SlowestCriticalSeconds: slowest.Seconds(),
		RTOP50Seconds: percentile(rtos, 50).Seconds(), RTOP99Seconds: percentile(rtos, 99).Seconds(),
		CPU: perPlan(batch.cpu, n), LoneCPU: lone.cpu, Phase: fleetPhase(batch.runs), LonePhase: fleetPhase(lone.runs)}
	if len(lone.runs) == 1 {
		row.LoneRTOSeconds = lone.runs[0].rto.Seconds()
		row.LoneCriticalSeconds = lone.runs[0].work.critical().Seconds()
	}
	if slowest > 0 {
		row.OverheadRatio = batch.all.Seconds() / slowest.Seconds()
	}
	if row.LoneRTOSeconds > 0 {
		row.P50Ratio = row.RTOP50Seconds / row.LoneRTOSeconds
		row.P99Ratio = row.RTOP99Seconds / row.LoneRTOSeconds
	}
	row.GoalMet = row.P99Ratio > 0 && row.P99Ratio <= FleetGoalGrowth
	if batch.all > 0 {
		row.Utilisation = batch.cpu.total() / (batch.all.Seconds() * float64(max(cpus, 1)))
	}
	row.Bend = fleetBend(row)
	return row
}

// fleetBend says where a batch's per-plan RTO grew beyond the lone plan's:
// the phase that grew most, what drives that phase and which worker
// options move it.
func fleetBend(r FleetRow) string {
	if r.GoalMet {
		return fmt.Sprintf("does not bend: p99 RTO within %.0f%% of the lone plan's", 100*(FleetGoalGrowth-1))
	}
	growth := []struct {
		name string
		d    float64
		why  string
	}{
		{"activity dispatch", r.Phase.Dispatch + r.Phase.Skew - r.LonePhase.Dispatch - r.LonePhase.Skew,
			fmt.Sprintf("worker slots and pollers: activities waited %.0fms on average to start (lone: %.0fms), up to %.0fms; "+
				"more --activity-pollers (and --max-activities if slots are full) move it, as long as CPU is left",
				r.Phase.DispatchMeanMs, r.LonePhase.DispatchMeanMs, r.Phase.DispatchMaxMs)},
		{"workflow reactions", r.Phase.Reactions + r.Phase.RunStart + r.Phase.Tail - r.LonePhase.Reactions - r.LonePhase.RunStart - r.LonePhase.Tail,
			fmt.Sprintf("workflow tasks: the server and its persistence write every decision (server %.3f, PostgreSQL %.3f CPU s per plan; lone %.3f, %.3f), "+
				"and the worker's workflow task pollers take them (--workflow-pollers, --max-workflow-tasks)",
				r.CPU.Server, r.CPU.Persistence, r.LoneCPU.Server, r.LoneCPU.Persistence)},
		{"the activities' own work", r.Phase.Critical + r.Phase.OtherWork - r.LonePhase.Critical - r.LonePhase.OtherWork,
			"the components' commands and restores ran slower side by side: the processes compete for the same cores; no worker option moves it"},
	}
	sort.SliceStable(growth, func(i, j int) bool { return growth[i].d > growth[j].d })
	g := growth[0]
	sat := ""
	if r.Utilisation >= 0.85 {
		sat = fmt.Sprintf("; the machine's CPUs were %.0f%% busy during the batch (server %.0f%%, PostgreSQL %.0f%%, worker %.0f%%, processes %.0f%% of that CPU): "+
			"more pollers or slots only queue more work on saturated cores",
			100*r.Utilisation, pct(r.CPU.Server, r.CPU), pct(r.CPU.Persistence, r.CPU), pct(r.CPU.Worker, r.CPU), pct(r.CPU.Processes, r.CPU))
	}
	return fmt.Sprintf("bends at %d plans in %s (+%.2fs per plan over the lone plan): %s%s", r.Plans, g.name, g.d, g.why, sat)
}

func pct(part float64, c FleetCPU) float64 {
	if t := c.total(); t > 0 {
		return 100 * part / t
	}
	return 0
}

// Print writes the figures as text.
func (doc FleetDoc) Print(out io.Writer) {
	fmt.Fprintf(out, "\ndrover bench fleet: N plans failed over at once on one declaration, each batch beside a lone plan run just before it\n")
	fmt.Fprintf(out, "Temporal on %s; %d CPUs, load average %.2f before, %.2f after; worker: %s\n\n", doc.Persistence, doc.CPUs, doc.LoadBefore, doc.LoadAfter, doc.Tuning)
	fmt.Fprintf(out, "%5s %13s %14s %9s %9s %9s %9s %10s %10s\n",
		"plans", "all redirected", "slowest crit.", "overhead", "RTO p50", "RTO p99", "lone RTO", "p50/lone", "p99/lone")
	for _, r := range doc.Rows {
		fmt.Fprintf(out, "%5d %12.2fs %13.2fs %8.2fx %8.2fs %8.2fs %8.2fs %9.2fx %9.2fx\n",
			r.Plans, r.AllRedirectedSeconds, r.SlowestCriticalSeconds, r.OverheadRatio, r.RTOP50Seconds, r.RTOP99Seconds,
			r.LoneRTOSeconds, r.P50Ratio, r.P99Ratio)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "CPU seconds per plan (batch / lone plan):\n%5s %16s %16s %16s %16s %12s\n", "plans", "server", "worker", "PostgreSQL", "processes", "utilisation")
	ratio := func(a, b float64) string {
		if b <= 0 {
			return fmt.Sprintf("%.3f/%.3f", a, b)
		}
		return fmt.Sprintf("%.3f/%.3f %.1fx", a, b, a/b)
	}
	for _, r := range doc.Rows {
		fmt.Fprintf(out, "%5d %16s %16s %16s %16s %11.0f%%\n", r.Plans, ratio(r.CPU.Server, r.LoneCPU.Server), ratio(r.CPU.Worker, r.LoneCPU.Worker),
			ratio(r.CPU.Persistence, r.LoneCPU.Persistence), ratio(r.CPU.Processes, r.LoneCPU.Processes), 100*r.Utilisation)
	}
	fmt.Fprintln(out)
	for _, r := range doc.Rows {
		p, l := r.Phase, r.LonePhase
		fmt.Fprintf(out, "%d plans, mean per plan (lone): critical %.2fs (%.2fs), other work %.2fs (%.2fs), run start %.3fs (%.3fs), "+
			"workflow reactions %.3fs (%.3fs), activity dispatch %.3fs (%.3fs), skew %.3fs (%.3fs); schedule-to-start mean %.0fms (%.0fms), max %.0fms (%.0fms)\n",
			r.Plans, p.Critical, l.Critical, p.OtherWork, l.OtherWork, p.RunStart, l.RunStart, p.Reactions, l.Reactions, p.Dispatch, l.Dispatch,
			p.Skew, l.Skew, p.DispatchMeanMs, l.DispatchMeanMs, p.DispatchMaxMs, l.DispatchMaxMs)
		fmt.Fprintf(out, "     %s\n", r.Bend)
	}
	fmt.Fprintln(out)
	for _, r := range doc.Rows {
		fmt.Fprintf(out, "goal: %d plans with per-plan RTO within %.0f%% of a lone plan's (p99 %.2fs vs %.2fs, x%.2f): %s\n",
			r.Plans, 100*(FleetGoalGrowth-1), r.RTOP99Seconds, r.LoneRTOSeconds, r.P99Ratio, yesNo(r.GoalMet))
	}
	fmt.Fprintln(out)
	for _, n := range doc.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
}
