package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/drover-dr/drover/lab"
)

// trigger is when the worker is killed during a run: after a delay, or
// right after the nth server launch or graceful stop at a site since the
// run began (a start or stop then is in flight in the dead worker).
type trigger struct {
	kind  string // "delay", "launch", "stop", "staged", "committed"
	site  string
	n     int
	delay time.Duration
}

func (tr trigger) String() string {
	switch tr.kind {
	case "launch":
		return fmt.Sprintf("after launch %d at %s", tr.n, tr.site)
	case "stop":
		return fmt.Sprintf("after graceful stop %d at %s", tr.n, tr.site)
	case "staged":
		return "while the point is staged (capture, ship, verify)"
	case "committed":
		return "right after the point is committed (record, retention)"
	}
	return fmt.Sprintf("after %s", tr.delay.Round(time.Millisecond))
}

// killPlan draws k triggers for a run from the seed. Delays come first
// (early in the run: preflight, drain, backup), then stops, then launches,
// each kind in the order the runbook reaches them.
func (h *harness) killPlan(k int, minDelay, maxDelay time.Duration, stopSite, launchSite string) []trigger {
	var delays, stops, launches []trigger
	servers := len(h.plan.Components)
	for range k {
		kinds := []string{"delay"}
		if stopSite != "" {
			kinds = append(kinds, "stop")
		}
		if launchSite != "" {
			kinds = append(kinds, "launch")
		}
		switch kinds[h.rng.IntN(len(kinds))] {
		case "stop":
			stops = append(stops, trigger{kind: "stop", site: stopSite, n: 1 + h.rng.IntN(servers)})
		case "launch":
			launches = append(launches, trigger{kind: "launch", site: launchSite, n: 1 + h.rng.IntN(servers)})
		default:
			delays = append(delays, trigger{kind: "delay", delay: minDelay + time.Duration(h.rng.Int64N(int64(maxDelay-minDelay)))})
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i].delay < delays[j].delay })
	sort.Slice(stops, func(i, j int) bool { return stops[i].n < stops[j].n })
	sort.Slice(launches, func(i, j int) bool { return launches[i].n < launches[j].n })
	// Delays are measured from the run's start, the others from the run's
	// baseline: a delay after a kill counts from the restart.
	out := append(delays, stops...)
	return append(out, launches...)
}

// backupKillPlan draws k triggers for a backup run: early (preflight,
// quiesce), while the point is staged in the store, or right after it is
// committed.
func (h *harness) backupKillPlan(k int) []trigger {
	var out []trigger
	for range k {
		switch h.rng.IntN(3) {
		case 0:
			out = append(out, trigger{kind: "delay", delay: time.Duration(10+h.rng.IntN(140)) * time.Millisecond})
		case 1:
			out = append(out, trigger{kind: "staged"})
		default:
			out = append(out, trigger{kind: "committed"})
		}
	}
	order := map[string]int{"delay": 0, "staged": 1, "committed": 2}
	sort.SliceStable(out, func(i, j int) bool { return order[out[i].kind] < order[out[j].kind] })
	return out
}

// storeState is what the store holds for the plan: staged points and
// committed ones.
func (h *harness) storeState() (staged, committed int) {
	root := h.storeRoot()
	if e, err := os.ReadDir(filepath.Join(root, h.plan.Name, "staging")); err == nil {
		staged = len(e)
	}
	if e, err := os.ReadDir(filepath.Join(root, h.plan.Name, "points")); err == nil {
		committed = len(e)
	}
	return staged, committed
}

// killer returns an injector that SIGKILLs the worker at each trigger and
// starts a new one after a seeded pause. It records only kills that hit a
// run still open. Call it right before the run starts: the lab counts it
// reads now are the run's baseline.
func (h *harness) killer(t *testing.T, run string, triggers []trigger) func(ctx context.Context, r *liveRun) {
	base := h.counts(t)
	_, basePoints := h.storeState()
	downtimes := make([]time.Duration, len(triggers))
	for i := range downtimes {
		downtimes[i] = time.Duration(h.rng.IntN(1500)) * time.Millisecond
	}
	return func(ctx context.Context, r *liveRun) {
		since := r.start
		for i, tr := range triggers {
			poll := 25 * time.Millisecond
			if tr.kind == "staged" || tr.kind == "committed" {
				poll = 2 * time.Millisecond
			}
			for !h.triggered(tr, base, basePoints, since) {
				select {
				case <-ctx.Done():
					return
				case <-r.done:
					return
				case <-time.After(poll):
				}
			}
			if tr.kind == "launch" && !h.cfg.KillInLaunch {
				h.waitPidFiles(tr.site, base, 2*time.Second)
			}
			if !h.cfg.KillInQuiesce {
				for waited := 0; h.quiesced() && waited < 400; waited++ {
					time.Sleep(25 * time.Millisecond)
				}
			}
			if !r.open() {
				return
			}
			if err := h.killWorker(); err != nil {
				r.fault("kill failed: " + err.Error())
				return
			}
			where := fmt.Sprintf("%s: %s, at %.1fs, worker down %s", run, tr, time.Since(r.start).Seconds(), downtimes[i])
			h.sum.fault("worker SIGKILL", where)
			r.fault(where)
			r.mu.Lock()
			r.nKills++
			r.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(downtimes[i]):
			}
			if err := h.restartWorker(); err != nil {
				r.fault("worker restart failed: " + err.Error())
				return
			}
			since = time.Now()
		}
	}
}

// waitPidFiles waits until every server launched at site since base has
// its pid file naming a live process.
func (h *harness) waitPidFiles(site string, base map[string]map[string]lab.ServerCounts, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		now, err := h.lab.Counts()
		if err != nil {
			return
		}
		running := h.lab.Running(site)
		ok := true
		for server, c := range now[site] {
			if c.Launches > base[site][server].Launches && !slices.Contains(running, server) {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// quiesced reports whether a database server of the lab holds its writes.
func (h *harness) quiesced() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, site := range h.lab.Topo.SiteNames() {
		if st, err := h.lab.Status(ctx, site, h.lab.Topo.Database().Name); err == nil && st.Health != nil && st.Health.Quiesced {
			return true
		}
	}
	return false
}

// triggered reports whether a trigger's moment has come.
func (h *harness) triggered(tr trigger, base map[string]map[string]lab.ServerCounts, basePoints int, since time.Time) bool {
	switch tr.kind {
	case "delay":
		return time.Since(since) >= tr.delay
	case "staged":
		staged, _ := h.storeState()
		return staged > 0
	case "committed":
		_, committed := h.storeState()
		return committed > basePoints
	}
	now, err := h.lab.Counts()
	if err != nil {
		return false
	}
	n := 0
	for server, c := range now[tr.site] {
		b := base[tr.site][server]
		if tr.kind == "launch" {
			n += c.Launches - b.Launches
		} else {
			n += c.GracefulStops - b.GracefulStops
		}
	}
	return n >= tr.n
}

// load runs the workload through the front door until stopped; stop
// returns what it did.
func (h *harness) load(t *testing.T) (stop func() lab.LoadReport) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var rep lab.LoadReport
	wg.Add(1)
	go func() {
		defer wg.Done()
		r, err := h.lab.RunLoad(ctx, lab.LoadOptions{Rate: h.cfg.Rate, Duration: time.Hour, Concurrency: 16})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("load: %v", err)
		}
		rep = r
	}()
	return func() lab.LoadReport {
		cancel()
		wg.Wait()
		return rep
	}
}
