package pgestate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/examples/plans"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

// Plan is examples/plans/postgres.yaml for the estate: its directory and
// OS user filled in, the sites at the estate's addresses, written to
// plan.yaml in the estate's directory.
func (e *Estate) Plan() (*plan.Plan, error) {
	text := strings.NewReplacer("${DROVER_PG_DIR}", e.Dir, "${DROVER_PG_OSUSER}", e.Tools.OSUser, "127.0.0.1:15400", e.Front).Replace(string(plans.Postgres))
	file := filepath.Join(e.Dir, "plan.yaml")
	if err := os.WriteFile(file, []byte(text), 0o640); err != nil {
		return nil, err
	}
	p, err := plan.Parse(file, []byte(text))
	if err != nil {
		return nil, err
	}
	for _, s := range []struct {
		site *plan.Site
		at   Site
	}{{p.Sites.Primary, e.Primary}, {p.Sites.Secondary, e.Standby}} {
		s.site.Settings["pghost"], s.site.Settings["pgport"] = s.at.Host, strconv.Itoa(s.at.Port)
	}
	return p, plan.Validate(p, builtin.Registry(nil))
}

// Drover is drover's side of an estate: the estate's plan and a worker
// per site on a running drover (a stack's client and orchestrator), as
// `drover estate postgres` and `drover bench pgfailover` run it. The
// plan's secrets are this process's environment (DROVER_PG_PASSWORD,
// DROVER_PG_DSN): one estate at a time.
type Drover struct {
	Estate *Estate
	Plan   *plan.Plan
	Client client.Client
	log    *zap.Logger
	sites  map[string]*worker.Group
}

// NewDrover writes the estate's plan, sets the variables its secret
// references name and starts a worker for each of its two sites.
func NewDrover(ctx context.Context, c client.Client, log *zap.Logger, e *Estate) (*Drover, error) {
	p, err := e.Plan()
	if err != nil {
		return nil, err
	}
	os.Setenv("DROVER_PG_PASSWORD", e.Password)
	os.Setenv("DROVER_PG_DSN", e.DSN(e.Primary.Addr()))
	d := &Drover{Estate: e, Plan: p, Client: c, log: log, sites: map[string]*worker.Group{}}
	for _, s := range []string{e.Primary.Name, e.Standby.Name} {
		if err := d.StartSite(ctx, s); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// StartSite starts a drover worker placed at site and waits until it
// polls, so a run started next finds it.
func (d *Drover) StartSite(ctx context.Context, site string) error {
	w, err := worker.New(d.Client, worker.Options{Sites: []contract.Placement{{Site: site}}, Registry: builtin.Registry(d.log),
		Logger: d.log.With(zap.String("site", site))})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	d.sites[site] = w
	return stack.WaitPolling(ctx, d.Client, contract.SiteQueue(site), 30*time.Second)
}

// StopSite stops site's worker, as a lost site loses it.
func (d *Drover) StopSite(site string) {
	if w, ok := d.sites[site]; ok {
		w.Stop()
		delete(d.sites, site)
	}
}

// Close stops the sites' workers and ends the plan's RPO monitor (the
// next estate on the same server starts its own).
func (d *Drover) Close() {
	for s := range d.sites {
		d.StopSite(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := d.Client.TerminateWorkflow(ctx, contract.MonitorID(d.Plan.Name), "", "the estate is torn down")
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		d.log.Warn("end the estate's RPO monitor", zap.Error(err))
	}
}

// StartPrimary initdb's the primary's cluster, starts it through drover's
// postgres driver as the primary site's worker would, and creates
// pgbench's tables.
func (d *Drover) StartPrimary(ctx context.Context) error {
	if err := d.Estate.InitPrimary(ctx); err != nil {
		return err
	}
	p, c := d.Plan, d.Plan.Components[0]
	drv, err := builtin.Registry(nil).Middleware(c.Driver)
	if err != nil {
		return err
	}
	_, err = drv.Start(ctx, drivers.Target{Plan: p.Name, Site: drivers.Site{Name: p.Sites.Primary.Name, Role: "primary", Settings: p.Sites.Primary.Settings},
		Component: drivers.Component{Name: c.Name, Role: string(c.Role), Settings: c.Settings}})
	if err != nil {
		return fmt.Errorf("start %s at %s: %w", c.Name, p.Sites.Primary.Name, err)
	}
	return d.Estate.InitPgbench(ctx)
}

// Enable is `drover plan apply`'s enable: the plan enabled in its catalog
// and its RPO monitor started, which seeds the standby (pg_basebackup -R);
// it returns once every standby streams.
func (d *Drover) Enable(ctx context.Context, by string) (workflows.RPOStatus, error) {
	dir := filepath.Join(d.Estate.Dir, "store")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return workflows.RPOStatus{}, err
	}
	store, err := catalog.Open(dir)
	if err != nil {
		return workflows.RPOStatus{}, err
	}
	if _, err := store.Transition(d.Plan.Name, catalog.StateEnabled, "secondary", by, time.Now()); err != nil {
		return workflows.RPOStatus{}, err
	}
	if err := stack.StartMonitor(ctx, d.Client, d.Plan); err != nil {
		return workflows.RPOStatus{}, err
	}
	return d.waitStreaming(ctx, 5*time.Minute)
}

// waitStreaming waits until the RPO monitor says every standby streams.
func (d *Drover) waitStreaming(ctx context.Context, within time.Duration) (workflows.RPOStatus, error) {
	deadline := time.Now().Add(within)
	var st workflows.RPOStatus
	for {
		if v, err := d.Client.QueryWorkflow(ctx, contract.MonitorID(d.Plan.Name), "", contract.QueryRPO); err == nil && v.Get(&st) == nil {
			ok := len(st.Replicas) > 0
			for _, r := range st.Replicas {
				ok = ok && r.Streaming
			}
			if ok {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("the standby does not stream after %s: %+v", within, st.Replicas)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Disaster at the primary's site: its postmaster killed and its drover
// worker stopped, as a lost site leaves them.
func (d *Drover) Disaster() (int, error) {
	pid, err := d.Estate.KillPrimary()
	if err != nil {
		return pid, err
	}
	d.StopSite(d.Estate.Primary.Name)
	return pid, nil
}

// StartFailover starts the plan's unplanned failover, declared at
// declared.
func (d *Drover) StartFailover(ctx context.Context, declared time.Time) (client.WorkflowRun, error) {
	return d.start(ctx, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *d.Plan, DeclaredAt: declared})
}

// Failback starts the primary's site's worker again and fails back to it.
func (d *Drover) Failback(ctx context.Context) (workflows.FailbackResult, error) {
	var res workflows.FailbackResult
	if err := d.StartSite(ctx, d.Estate.Primary.Name); err != nil {
		return res, err
	}
	run, err := d.start(ctx, contract.KindFailback, workflows.FailbackWorkflow, workflows.FailbackInput{Plan: *d.Plan})
	if err != nil {
		return res, err
	}
	if err := run.Get(ctx, &res); err != nil {
		return res, fmt.Errorf("failback: %w", err)
	}
	return res, nil
}

func (d *Drover) start(ctx context.Context, kind string, wf, in any) (client.WorkflowRun, error) {
	id := contract.SwitchoverID(d.Plan.Name)
	run, err := d.Client.ExecuteWorkflow(ctx, stack.StartOptions(id, d.Plan.Name, kind), wf, in)
	if err != nil {
		return nil, fmt.Errorf("start %s %s: %w", kind, id, err)
	}
	return run, nil
}
