// Package metrics exports drover's figures to Prometheus. Every figure is
// read when Prometheus scrapes: points and RPO from the store's catalog,
// runs and open gates from Temporal visibility. Nothing is only counted in
// memory, so a restarted worker reports the same values as the one before.
package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
)

// Namespace prefixes every drover metric.
const Namespace = "drover"

// Trust labels of drover_point_captured_timestamp_seconds.
const (
	// TrustValidated is the newest restorable point that validation found
	// valid: the one a failover restores now.
	TrustValidated = "validated"
	// TrustIntact is the newest restorable point whatever its validation:
	// readable, not invalid, its full point present.
	TrustIntact = "intact"
)

// Validity label of drover_points for a point whose manifest cannot be read.
const ValidityUnreadable = "unreadable"

// Outcomes of drover_runs_total, from a closed run's execution status.
const (
	OutcomeCompleted  = "completed"
	OutcomeFailed     = "failed"
	OutcomeCancelled  = "cancelled"
	OutcomeTerminated = "terminated"
	OutcomeTimedOut   = "timed_out"
)

// Plan is what the collector needs to know about one plan.
type Plan struct {
	Name string
	// RPO is the plan's target; 0 when only the store knows the plan (no
	// plan file was given), and then no target is exported.
	RPO time.Duration
	// Store holds the plan's points and lifecycle.
	Store *catalog.Store
	// Reminders are the gates that remind (onTimeout: remind) with their
	// timeout, so an alert can compare a waiting gate with it.
	Reminders map[string]time.Duration
}

// PlanFromFile turns a loaded plan into the collector's view of it, opening
// its store the way activities do (path expanded from the environment).
func PlanFromFile(p *plan.Plan) (Plan, error) {
	st, _, err := catalog.OpenFromSettings(p.Storage.Store)
	if err != nil {
		return Plan{}, fmt.Errorf("plan %s: %w", p.Name, err)
	}
	out := Plan{Name: p.Name, RPO: p.RPO.D(), Store: st, Reminders: map[string]time.Duration{}}
	for _, g := range p.Gates {
		if g.OnTimeout == plan.EscalateRemind && g.Timeout.D() > 0 {
			out.Reminders[g.Name] = g.Timeout.D()
		}
	}
	return out, nil
}

// RunCount is how many closed runs of one kind ended with one outcome.
type RunCount struct {
	Kind    string
	Outcome string
	Count   int64
}

// OpenGate is a gate a running workflow waits at.
type OpenGate struct {
	Gate       string
	Since      time.Time
	WorkflowID string
}

// Visibility is what the collector reads from Temporal. The Temporal
// implementation is NewTemporalVisibility; tests give their own.
type Visibility interface {
	// RunCounts counts the plan's closed runs by kind and outcome.
	RunCounts(ctx context.Context, plan string) ([]RunCount, error)
	// OpenGates lists the gates the plan's running workflows wait at.
	OpenGates(ctx context.Context, plan string) ([]OpenGate, error)
	// Pollers counts the workers polling a task queue now.
	Pollers(ctx context.Context, taskQueue string) (int, error)
}

// Lag is how far a replica is behind its source.
type Lag struct {
	Seconds float64
	Bytes   float64
}

// Replication reports a plan's replication lag; ok is false for a plan that
// does not replicate, which then exports no lag series.
type Replication interface {
	Lag(ctx context.Context, plan string) (lag Lag, ok bool, err error)
}

// Config builds a Collector.
type Config struct {
	// Plans given as plan files (they carry the RPO target).
	Plans []Plan
	// Stores are searched for more plans (every plan folder with points or
	// a lifecycle), known then by name only.
	Stores []*catalog.Store
	// Visibility reads runs and gates; nil exports no run or gate series.
	Visibility Visibility
	// SiteQueues maps a site to the task queue its workers poll; each gives
	// drover_site_workers{site}.
	SiteQueues map[string]string
	// Replication gives replication lag; nil exports none.
	Replication Replication
	// Timeout bounds the Temporal reads of one scrape (default 10s).
	Timeout time.Duration
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *zap.Logger
}

// Collector is a prometheus.Collector computing drover's metrics at scrape
// time.
type Collector struct {
	cfg Config

	rpoAge, rpoTarget, captured, points, enabledSince *prometheus.Desc
	backupDuration, backupBytes                       *prometheus.Desc
	runs, gateSince, gateReminder, siteWorkers        *prometheus.Desc
	lagSeconds, lagBytes, scrapeErrors                *prometheus.Desc
	durationBuckets, bytesBuckets                     []float64
}

// NewCollector returns a collector over cfg.
func NewCollector(cfg Config) *Collector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
	}
	return &Collector{
		cfg:            cfg,
		rpoAge:         d("rpo_age_seconds", "Age of the recovery point a failover would restore now: the newest restorable validated point, else the newest intact one.", "plan"),
		rpoTarget:      d("rpo_target_seconds", "The plan's RPO target.", "plan"),
		captured:       d("point_captured_timestamp_seconds", "Capture instant of the newest restorable point, validated or merely intact.", "plan", "trust"),
		points:         d("points", "Recovery points in the store by validity.", "plan", "validity"),
		enabledSince:   d("plan_enabled_timestamp_seconds", "When the plan was last enabled; absent while it is not enabled.", "plan"),
		backupDuration: d("backup_duration_seconds", "Capture duration of the points in the store (started to ended).", "plan", "mode"),
		backupBytes:    d("backup_bytes", "Stored size of the points in the store.", "plan", "mode"),
		runs:           d("runs_total", "Closed runs by kind and outcome, as Temporal visibility keeps them (retention can lower it).", "plan", "kind", "outcome"),
		gateSince:      d("gate_open_since_timestamp_seconds", "When a gate a run waits at opened.", "plan", "gate", "workflow_id"),
		gateReminder:   d("gate_reminder_seconds", "A reminding gate's timeout from the plan.", "plan", "gate"),
		siteWorkers:    d("site_workers", "Workers polling a site's task queue.", "site", "task_queue"),
		lagSeconds:     d("replication_lag_seconds", "How far the plan's replica is behind, in time.", "plan"),
		lagBytes:       d("replication_lag_bytes", "How far the plan's replica is behind, in bytes.", "plan"),
		scrapeErrors:   d("scrape_errors", "Sources that could not be read in this scrape (store, visibility, replication).", "plan", "source"),
		// A backup takes seconds to hours; sizes range from kilobytes to terabytes.
		durationBuckets: prometheus.ExponentialBuckets(1, 4, 10),
		bytesBuckets:    prometheus.ExponentialBuckets(1<<20, 4, 12),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.rpoAge, c.rpoTarget, c.captured, c.points, c.enabledSince,
		c.backupDuration, c.backupBytes, c.runs, c.gateSince, c.gateReminder, c.siteWorkers,
		c.lagSeconds, c.lagBytes, c.scrapeErrors} {
		ch <- d
	}
}

// plans merges the plan files with the plans found in the stores, sorted
// by name; a plan file wins over a store folder of the same name.
func (c *Collector) plans() []Plan {
	byName := map[string]Plan{}
	for _, p := range c.cfg.Plans {
		byName[p.Name] = p
	}
	for _, st := range c.cfg.Stores {
		ents, err := os.ReadDir(st.Root)
		if err != nil {
			c.cfg.Logger.Warn("metrics: read store", zap.String("store", st.Root), zap.Error(err))
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || catalog.CheckName("plan", e.Name()) != nil {
				continue
			}
			if _, ok := byName[e.Name()]; !ok {
				byName[e.Name()] = Plan{Name: e.Name(), Store: st}
			}
		}
	}
	out := make([]Plan, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Collect computes every series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	now := c.cfg.Now()
	for _, p := range c.plans() {
		c.collectStore(ch, p, now)
		c.collectRuns(ctx, ch, p)
		if c.cfg.Replication != nil {
			lag, ok, err := c.cfg.Replication.Lag(ctx, p.Name)
			if err != nil {
				c.fail(ch, p.Name, "replication", err)
			} else if ok {
				ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, lag.Seconds, p.Name)
				ch <- prometheus.MustNewConstMetric(c.lagBytes, prometheus.GaugeValue, lag.Bytes, p.Name)
			}
		}
	}
	if c.cfg.Visibility != nil {
		sites := make([]string, 0, len(c.cfg.SiteQueues))
		for s := range c.cfg.SiteQueues {
			sites = append(sites, s)
		}
		slices.Sort(sites)
		for _, site := range sites {
			q := c.cfg.SiteQueues[site]
			n, err := c.cfg.Visibility.Pollers(ctx, q)
			if err != nil {
				c.fail(ch, "", "pollers", err)
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.siteWorkers, prometheus.GaugeValue, float64(n), site, q)
		}
	}
}

// fail logs a source that could not be read and exports it, so an alert
// can tell "no point" from "cannot see the store".
func (c *Collector) fail(ch chan<- prometheus.Metric, plan, source string, err error) {
	c.cfg.Logger.Warn("metrics: read failed", zap.String("plan", plan), zap.String("source", source), zap.Error(err))
	ch <- prometheus.MustNewConstMetric(c.scrapeErrors, prometheus.GaugeValue, 1, plan, source)
}

func (c *Collector) collectStore(ch chan<- prometheus.Metric, p Plan, now time.Time) {
	if p.RPO > 0 {
		ch <- prometheus.MustNewConstMetric(c.rpoTarget, prometheus.GaugeValue, p.RPO.Seconds(), p.Name)
	}
	gates := make([]string, 0, len(p.Reminders))
	for g := range p.Reminders {
		gates = append(gates, g)
	}
	slices.Sort(gates)
	for _, g := range gates {
		ch <- prometheus.MustNewConstMetric(c.gateReminder, prometheus.GaugeValue, p.Reminders[g].Seconds(), p.Name, g)
	}
	if p.Store == nil {
		return
	}
	if lc, err := p.Store.ReadLifecycle(p.Name); err != nil {
		c.fail(ch, p.Name, "lifecycle", err)
	} else if since, ok := enabledSince(lc); ok {
		ch <- prometheus.MustNewConstMetric(c.enabledSince, prometheus.GaugeValue, unix(since), p.Name)
	}
	pts, err := p.Store.List(p.Name)
	if err != nil {
		c.fail(ch, p.Name, "store", err)
		return
	}
	counts := map[string]int{string(catalog.Valid): 0, string(catalog.Unverified): 0, string(catalog.Invalid): 0, ValidityUnreadable: 0}
	byID := catalog.ByID(pts)
	var validated, intact *catalog.Point
	type hist struct {
		count        uint64
		durSum, size float64
		dur, bytes   map[float64]uint64
	}
	hists := map[string]*hist{}
	for i := range pts {
		pt := &pts[i]
		if pt.Problem != "" {
			counts[ValidityUnreadable]++
			continue
		}
		counts[string(pt.Validity.State)]++
		if catalog.Unrestorable(byID, *pt) == "" {
			// List is oldest first: the last restorable point wins.
			intact = pt
			if pt.Validity.State == catalog.Valid {
				validated = pt
			}
		}
		if pt.Started.IsZero() || pt.Ended.Before(pt.Started) {
			continue
		}
		mode := string(pt.Mode)
		h := hists[mode]
		if h == nil {
			h = &hist{dur: map[float64]uint64{}, bytes: map[float64]uint64{}}
			hists[mode] = h
		}
		d := pt.Ended.Sub(pt.Started).Seconds()
		h.count++
		h.durSum += d
		h.size += float64(pt.Size)
		cumulate(h.dur, c.durationBuckets, d)
		cumulate(h.bytes, c.bytesBuckets, float64(pt.Size))
	}
	for _, v := range []string{string(catalog.Valid), string(catalog.Unverified), string(catalog.Invalid), ValidityUnreadable} {
		ch <- prometheus.MustNewConstMetric(c.points, prometheus.GaugeValue, float64(counts[v]), p.Name, v)
	}
	if intact != nil {
		ch <- prometheus.MustNewConstMetric(c.captured, prometheus.GaugeValue, unix(intact.Instant), p.Name, TrustIntact)
	}
	if validated != nil {
		ch <- prometheus.MustNewConstMetric(c.captured, prometheus.GaugeValue, unix(validated.Instant), p.Name, TrustValidated)
	}
	// A failover restores the newest validated point, or, when none was
	// validated, the newest intact one (after its gate): the RPO monitor
	// judges the same point.
	if failoverPoint := cmp.Or(validated, intact); failoverPoint != nil {
		ch <- prometheus.MustNewConstMetric(c.rpoAge, prometheus.GaugeValue, max(0, now.Sub(failoverPoint.Instant).Seconds()), p.Name)
	}
	modes := make([]string, 0, len(hists))
	for m := range hists {
		modes = append(modes, m)
	}
	slices.Sort(modes)
	for _, m := range modes {
		h := hists[m]
		ch <- prometheus.MustNewConstHistogram(c.backupDuration, h.count, h.durSum, h.dur, p.Name, m)
		ch <- prometheus.MustNewConstHistogram(c.backupBytes, h.count, h.size, h.bytes, p.Name, m)
	}
}

// cumulate adds v to every bucket whose upper bound holds it (Prometheus
// buckets are cumulative).
func cumulate(buckets map[float64]uint64, bounds []float64, v float64) {
	for _, b := range bounds {
		if v <= b {
			buckets[b]++
		} else if _, ok := buckets[b]; !ok {
			buckets[b] = 0
		}
	}
}

// enabledSince is the time of the last transition to enabled, when the plan
// is enabled now.
func enabledSince(lc catalog.Lifecycle) (time.Time, bool) {
	if lc.State != catalog.StateEnabled {
		return time.Time{}, false
	}
	for i := len(lc.History) - 1; i >= 0; i-- {
		if lc.History[i].State != catalog.StateEnabled {
			break
		}
		if i == 0 || lc.History[i-1].State != catalog.StateEnabled {
			return lc.History[i].At, true
		}
	}
	return time.Time{}, false
}

func (c *Collector) collectRuns(ctx context.Context, ch chan<- prometheus.Metric, p Plan) {
	if c.cfg.Visibility == nil {
		return
	}
	counts, err := c.cfg.Visibility.RunCounts(ctx, p.Name)
	if err != nil {
		c.fail(ch, p.Name, "visibility", err)
	} else {
		for _, rc := range counts {
			ch <- prometheus.MustNewConstMetric(c.runs, prometheus.CounterValue, float64(rc.Count), p.Name, rc.Kind, rc.Outcome)
		}
	}
	gates, err := c.cfg.Visibility.OpenGates(ctx, p.Name)
	if err != nil {
		c.fail(ch, p.Name, "gates", err)
		return
	}
	for _, g := range gates {
		ch <- prometheus.MustNewConstMetric(c.gateSince, prometheus.GaugeValue, unix(g.Since), p.Name, g.Gate, g.WorkflowID)
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// ErrNoSource is returned by New when the collector would have nothing to
// read.
var ErrNoSource = errors.New("metrics: no plan file, store or Temporal client to read")
