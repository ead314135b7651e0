package starter

import (
	"context"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/metrics"
	"github.com/drover-dr/drover/plan"
)

// metricsFlags are the worker's --metrics-* flags.
type metricsFlags struct {
	address string
	plans   []string
	stores  []string
	sites   []string
	// workerPlan is the worker's --plan, whose sites are watched too.
	workerPlan string
	// freshness is the worker's --poller-freshness.
	freshness time.Duration
}

// dialAndServe dials Temporal with the SDK's metrics handler and, when
// --metrics-address is set, serves /metrics there until ctx ends. Without
// the flag it is plain Dial.
func (f *metricsFlags) dialAndServe(ctx context.Context, g *Globals, log *zap.Logger) (client.Client, error) {
	if f.address == "" {
		return g.Dial()
	}
	cfg := metrics.Config{Logger: log.Named("metrics"), SiteQueues: map[string]string{}}
	var sitePlans []*plan.Plan
	if f.workerPlan != "" {
		p, err := plan.Load(f.workerPlan)
		if err != nil {
			return nil, BadInputf("--plan: %v", err)
		}
		sitePlans = append(sitePlans, p)
	}
	for _, path := range f.plans {
		p, err := plan.Load(path)
		if err != nil {
			return nil, BadInputf("--metrics-plan: %v", err)
		}
		mp, err := metrics.PlanFromFile(p)
		if err != nil {
			return nil, BadInputf("--metrics-plan %s: %v", path, err)
		}
		cfg.Plans = append(cfg.Plans, mp)
		sitePlans = append(sitePlans, p)
	}
	for _, dir := range f.stores {
		path, err := drivers.ExpandPath(dir)
		if err != nil {
			return nil, BadInputf("--metrics-store %s: %v", dir, err)
		}
		st, err := catalog.Open(path)
		if err != nil {
			return nil, BadInputf("--metrics-store %s: %v", dir, err)
		}
		cfg.Stores = append(cfg.Stores, st)
	}
	for _, s := range f.sites {
		site, queue, ok := strings.Cut(s, "=")
		if !ok || site == "" || queue == "" {
			return nil, BadInputf("--metrics-site %q: want SITE=TASK_QUEUE", s)
		}
		cfg.SiteQueues[site] = queue
	}
	if len(f.sites) == 0 {
		// Without --metrics-site, every site of the plans this worker
		// knows is watched (a missing site worker is an alert).
		for _, p := range sitePlans {
			for _, place := range PlanPlaces(p) {
				if !place.HostWorker {
					cfg.SiteQueues[place.Site] = contract.Queue(place)
				}
			}
		}
	}
	reg, err := metrics.NewRegistry(log.Named("metrics"))
	if err != nil {
		return nil, err
	}
	c, err := g.DialWith(func(o *client.Options) { o.MetricsHandler = reg.SDKHandler() })
	if err != nil {
		return nil, err
	}
	vis := metrics.NewTemporalVisibility(c, g.Namespace)
	vis.Freshness = f.freshness
	cfg.Visibility = vis
	if err := reg.Register(metrics.NewCollector(cfg)); err != nil {
		c.Close()
		return nil, err
	}
	addr, done, err := reg.Serve(ctx, f.address)
	if err != nil {
		c.Close()
		return nil, BadInputf("%v", err)
	}
	go func() {
		if err := <-done; err != nil {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics served", zap.String("url", "http://"+addr.String()+"/metrics"),
		zap.Int("plans", len(cfg.Plans)), zap.Int("stores", len(cfg.Stores)))
	return c, nil
}
