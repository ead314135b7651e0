package starter

import (
	"context"
	"strings"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
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
}

// dialAndServe dials Temporal with the SDK's metrics handler and, when
// --metrics-address is set, serves /metrics there until ctx ends. Without
// the flag it is plain Dial.
func (f *metricsFlags) dialAndServe(ctx context.Context, g *Globals, log *zap.Logger) (client.Client, error) {
	if f.address == "" {
		return g.Dial()
	}
	cfg := metrics.Config{Logger: log.Named("metrics"), SiteQueues: map[string]string{}}
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
	reg, err := metrics.NewRegistry(log.Named("metrics"))
	if err != nil {
		return nil, err
	}
	c, err := g.DialWith(func(o *client.Options) { o.MetricsHandler = reg.SDKHandler() })
	if err != nil {
		return nil, err
	}
	cfg.Visibility = metrics.NewTemporalVisibility(c, g.Namespace)
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
