package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// The six verification levels of the BPM seed, served by every lab server
// from its copy of the cell configuration (like Business Space's System
// Health widget). A check that ran and found a problem answers Passed=false;
// only a check that could not run at all is an HTTP error.

// Verification levels.
const (
	LevelSystem      = "system"
	LevelApplication = "application"
	LevelInstance    = "instance"
	LevelConsistency = "consistency"
	LevelSCA         = "sca"
	LevelMonitoring  = "monitoring"
)

// Levels lists the six levels in order.
var Levels = []string{LevelSystem, LevelApplication, LevelInstance, LevelConsistency, LevelSCA, LevelMonitoring}

// ProbeResult is the outcome of one level's check.
type ProbeResult struct {
	Level    string           `json:"level"`
	Passed   bool             `json:"passed"`
	Summary  string           `json:"summary"`
	Problems []string         `json:"problems,omitempty"`
	Counts   map[string]int64 `json:"counts,omitempty"`
	Server   string           `json:"server"`
	Site     string           `json:"site"`
	Millis   float64          `json:"ms"`
}

type probeOptions struct {
	stuckAfter time.Duration
	timeout    time.Duration
}

func (s *labServer) handleProbe(w http.ResponseWriter, r *http.Request) {
	level := r.PathValue("level")
	o := probeOptions{stuckAfter: time.Minute, timeout: 30 * time.Second}
	if d, err := time.ParseDuration(r.URL.Query().Get("stuckAfter")); err == nil && d > 0 {
		o.stuckAfter = d
	}
	if d, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && d > 0 {
		o.timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), o.timeout+5*time.Second)
	defer cancel()
	start := time.Now()
	res := ProbeResult{Level: level, Server: s.o.server, Site: s.o.site, Counts: map[string]int64{}}
	var err error
	switch level {
	case LevelSystem:
		err = s.probeSystem(ctx, &res)
	case LevelApplication:
		err = s.probeApplication(ctx, &res)
	case LevelInstance:
		err = s.probeInstance(ctx, &res, o)
	case LevelConsistency:
		err = s.probeConsistency(ctx, &res)
	case LevelSCA:
		err = s.probeSCA(ctx, &res)
	case LevelMonitoring:
		err = s.probeMonitoring(ctx, &res, o)
	default:
		writeError(w, http.StatusNotFound, fmt.Errorf("no verification level %q (levels: %s)", level, strings.Join(Levels, ", ")))
		return
	}
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		// The check could not look at what it checks: that is a failure of
		// the level, with the reason.
		res.Passed = false
		res.Problems = append(res.Problems, err.Error())
		if res.Summary == "" {
			res.Summary = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// cellDB is the database server as the cell configuration names it.
func (s *labServer) cellDB() (*dbClient, error) {
	if s.db != nil {
		return s.db, nil
	}
	for _, m := range s.prof.Cell.Servers {
		if m.Role == RoleDatabase {
			return newDBClient(m.Address, m.Name, s.o.site), nil
		}
	}
	return nil, errors.New("the cell configuration names no database server")
}

func (s *labServer) member(m CellMember) *client {
	return &client{hc: s.hc, addr: m.Address, name: roleLabel(m.Role) + " " + m.Name, site: s.o.site}
}

func (s *labServer) membersOf(role Role, product string) []CellMember {
	var out []CellMember
	for _, m := range s.prof.Cell.Servers {
		if m.Role == role && (product == "" || m.Product == product) {
			out = append(out, m)
		}
	}
	return out
}

// runningMember returns the first member of a role that answers as running.
func (s *labServer) runningMember(ctx context.Context, role Role, product string) (CellMember, error) {
	var last error
	for _, m := range s.membersOf(role, product) {
		var h Health
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.member(m).call(cctx, "/health", nil, &h)
		cancel()
		if err == nil && h.State == StateRunning {
			return m, nil
		}
		if err == nil {
			err = fmt.Errorf("%s %s is %s", roleLabel(role), m.Name, h.State)
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("the cell has no %s %s", product, roleLabel(role))
	}
	return CellMember{}, last
}

// probeSystem: every server of the cell is up, messaging engines started,
// the BPC and HTM containers of the BPM app servers started.
func (s *labServer) probeSystem(ctx context.Context, res *ProbeResult) error {
	type answer struct {
		m   CellMember
		h   Health
		err error
	}
	answers := make([]answer, len(s.prof.Cell.Servers))
	done := make(chan struct{})
	for i, m := range s.prof.Cell.Servers {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			a := answer{m: m}
			a.err = s.member(m).call(cctx, "/health", nil, &a.h)
			answers[i] = a
			done <- struct{}{}
		}()
	}
	for range s.prof.Cell.Servers {
		<-done
	}
	for _, a := range answers {
		res.Counts["servers"]++
		switch {
		case a.err != nil:
			res.Problems = append(res.Problems, a.err.Error())
			continue
		case a.h.State != StateRunning:
			res.Problems = append(res.Problems, fmt.Sprintf("%s %s is %s", roleLabel(a.m.Role), a.m.Name, a.h.State))
			continue
		}
		res.Counts["running"]++
		switch a.m.Role {
		case RoleMessaging:
			if a.h.Detail["engine"] != "started" {
				res.Problems = append(res.Problems, fmt.Sprintf("messaging engine %s: bus %v is not started", a.m.Name, a.h.Detail["bus"]))
			} else {
				res.Counts["messagingEngines"]++
			}
		case RoleApp:
			if cs, ok := a.h.Detail["containers"].(map[string]any); ok {
				for name, st := range cs {
					if st != "started" {
						res.Problems = append(res.Problems, fmt.Sprintf("app server %s: container %s is %v", a.m.Name, name, st))
					}
				}
			}
		}
	}
	res.Passed = len(res.Problems) == 0
	res.Summary = fmt.Sprintf("%d of %d servers running, %d messaging engines started", res.Counts["running"], res.Counts["servers"], res.Counts["messagingEngines"])
	return nil
}

// probeApplication: every application in the configuration started, the
// process templates installed and able to start, the monitor model active.
func (s *labServer) probeApplication(ctx context.Context, res *ProbeResult) error {
	for _, m := range s.membersOf(RoleApp, "") {
		var resp struct {
			Applications []struct{ Name, State string } `json:"applications"`
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := s.member(m).call(cctx, "/apps", nil, &resp)
		cancel()
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			continue
		}
		started := map[string]bool{}
		for _, a := range resp.Applications {
			started[a.Name] = a.State == "started"
		}
		for _, want := range m.Applications {
			res.Counts["applications"]++
			if started[want] {
				res.Counts["started"]++
			} else {
				res.Problems = append(res.Problems, fmt.Sprintf("application %s on %s is not started", want, m.Name))
			}
		}
	}
	app, err := s.runningMember(ctx, RoleApp, ProductBPM)
	if err != nil {
		res.Problems = append(res.Problems, "process templates cannot be checked: "+err.Error())
	} else {
		var resp struct {
			Templates []struct {
				Name     string `json:"name"`
				CanStart bool   `json:"canStart"`
				Detail   string `json:"detail"`
			} `json:"templates"`
		}
		if err := s.member(app).call(ctx, "/apps/validate-start", struct{}{}, &resp); err != nil {
			res.Problems = append(res.Problems, err.Error())
		}
		for _, t := range resp.Templates {
			res.Counts["templates"]++
			if t.CanStart {
				res.Counts["templatesCanStart"]++
			} else {
				res.Problems = append(res.Problems, fmt.Sprintf("process template %s cannot start: %s", t.Name, t.Detail))
			}
		}
	}
	db, err := s.cellDB()
	if err != nil {
		return err
	}
	rs, err := db.Query(ctx, false, Stmt{SQL: "SELECT name, state FROM mon.model"})
	if err != nil {
		res.Problems = append(res.Problems, "monitor model: "+err.Error())
	} else {
		for _, row := range rs[0].Rows {
			if st := jsonString(row[1]); st != "started" {
				res.Problems = append(res.Problems, fmt.Sprintf("monitor model %s is %s", jsonString(row[0]), st))
			}
		}
		if len(rs[0].Rows) == 0 {
			res.Problems = append(res.Problems, "no monitor model is installed in MONDB")
		}
	}
	res.Passed = len(res.Problems) == 0
	res.Summary = fmt.Sprintf("%d of %d applications started, %d of %d process templates can start",
		res.Counts["started"], res.Counts["applications"], res.Counts["templatesCanStart"], res.Counts["templates"])
	return nil
}

// probeInstance: every process instance in a valid state. Failures here are
// reported, not fatal: the seed tolerates instance-level losses.
func (s *labServer) probeInstance(ctx context.Context, res *ProbeResult, o probeOptions) error {
	db, err := s.cellDB()
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-o.stuckAfter).UnixNano()
	tpls := make([]string, len(Templates))
	for i, t := range Templates {
		tpls[i] = "'" + t.Name + "'"
	}
	rs, err := db.Query(ctx, true,
		Stmt{SQL: "SELECT template || '.' || state, count(*) FROM bpm.instances GROUP BY template, state"},
		Stmt{SQL: "SELECT count(*) FROM bpm.instances WHERE state NOT IN ('running', 'completed') OR template NOT IN (" + strings.Join(tpls, ",") + ")"},
		Stmt{SQL: `SELECT count(*) FROM bpm.instances i WHERE template = 'OrderHandling' AND state = 'completed' AND (
  (outcome = 'completed' AND (SELECT count(*) FROM bpm.steps s WHERE s.instance = i.id AND s.seq IN (1, 2, 3, 4)) < 4) OR
  (outcome = 'cancelled' AND (SELECT count(*) FROM bpm.steps s WHERE s.instance = i.id AND s.seq IN (1, 2)) < 2))`},
		Stmt{SQL: "SELECT count(*) FROM bpm.steps s WHERE NOT EXISTS (SELECT 1 FROM bpm.instances i WHERE i.id = s.instance)"},
		Stmt{SQL: `SELECT count(*) FROM bpm.instances i WHERE i.state = 'running' AND i.updated < ?
  AND NOT EXISTS (SELECT 1 FROM me.messages m WHERE m.instance = i.id AND m.dest = 'bpm.work')
  AND NOT EXISTS (SELECT 1 FROM bpm.instances c WHERE c.parent = i.id AND c.state = 'running')
  AND NOT EXISTS (SELECT 1 FROM bpm.xa_locks l WHERE l.key = 'pi:' || i.id)`, Args: []any{cutoff}},
		Stmt{SQL: "SELECT (SELECT count(*) FROM bpm.xa_pending WHERE created < ?1) + (SELECT count(*) FROM mon.xa_pending WHERE created < ?1) + (SELECT count(*) FROM me.xa_pending WHERE created < ?1)", Args: []any{cutoff}},
		Stmt{SQL: "SELECT (SELECT count(*) FROM bpm.xa_done WHERE outcome = 'heuristic') + (SELECT count(*) FROM mon.xa_done WHERE outcome = 'heuristic') + (SELECT count(*) FROM me.xa_done WHERE outcome = 'heuristic')"},
		Stmt{SQL: "SELECT count(*) FROM me.messages WHERE dest IN ('bpm.error', 'mon.error')"},
	)
	if err != nil {
		return err
	}
	var total, running int64
	for _, row := range rs[0].Rows {
		n := jsonInt(row[1])
		res.Counts[jsonString(row[0])] = n
		total += n
		if strings.HasSuffix(jsonString(row[0]), ".running") {
			running += n
		}
	}
	res.Counts["instances"] = total
	checks := []struct {
		key, what string
		i         int
	}{
		{"invalid", "instances in an unknown state or of an unknown template", 1},
		{"broken", "completed orders missing navigation steps", 2},
		{"orphanSteps", "steps of instances that do not exist", 3},
		{"stuck", fmt.Sprintf("running instances with no pending work for %s", o.stuckAfter), 4},
		{"inDoubt", fmt.Sprintf("transactions in doubt for more than %s", o.stuckAfter), 5},
		{"heuristic", "transactions with a heuristic outcome", 6},
		{"deadLetters", "messages in dead letter destinations", 7},
	}
	for _, c := range checks {
		n := jsonInt(rs[c.i].Rows[0][0])
		res.Counts[c.key] = n
		if n > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%d %s", n, c.what))
		}
	}
	res.Passed = len(res.Problems) == 0
	res.Summary = fmt.Sprintf("%d instances (%d running); %d invalid, %d stuck, %d in doubt, %d dead letters",
		total, running, res.Counts["invalid"]+res.Counts["broken"]+res.Counts["orphanSteps"], res.Counts["stuck"], res.Counts["inDoubt"], res.Counts["deadLetters"])
	return nil
}

// probeConsistency: BPM and Monitor agree. For every instance Monitor has
// seen at most the steps BPM committed, and the difference is exactly the
// events still on the bus; the dashboard counters match what was seen.
func (s *labServer) probeConsistency(ctx context.Context, res *ProbeResult) error {
	db, err := s.cellDB()
	if err != nil {
		return err
	}
	rs, err := db.Query(ctx, true,
		Stmt{SQL: `WITH b AS (SELECT instance, count(*) AS n FROM bpm.steps GROUP BY instance),
 m AS (SELECT instance, steps_seen AS n FROM mon.monitored),
 p AS (SELECT instance, count(*) AS n FROM me.messages WHERE dest IN ('mon.events', 'mon.error') GROUP BY instance),
 a AS (SELECT instance FROM b UNION SELECT instance FROM m UNION SELECT instance FROM p)
SELECT a.instance, coalesce(b.n, 0), coalesce(m.n, 0), coalesce(p.n, 0)
FROM a LEFT JOIN b ON b.instance = a.instance LEFT JOIN m ON m.instance = a.instance LEFT JOIN p ON p.instance = a.instance
WHERE coalesce(m.n, 0) > coalesce(b.n, 0) OR coalesce(b.n, 0) != coalesce(m.n, 0) + coalesce(p.n, 0)
ORDER BY a.instance LIMIT 1000`},
		Stmt{SQL: "SELECT (SELECT count(*) FROM bpm.steps), (SELECT coalesce(sum(steps_seen), 0) FROM mon.monitored), (SELECT count(*) FROM me.messages WHERE dest IN ('mon.events', 'mon.error')), (SELECT count(*) FROM bpm.instances), (SELECT count(*) FROM mon.monitored)"},
		Stmt{SQL: "SELECT (SELECT coalesce(sum(value), 0) FROM mon.counters WHERE name LIKE 'started.%'), (SELECT count(*) FROM mon.events_seen WHERE seq = 1), (SELECT coalesce(sum(steps_seen), 0) FROM mon.monitored), (SELECT count(*) FROM mon.events_seen)"},
	)
	if err != nil {
		return err
	}
	var ahead, unaccounted int64
	for _, row := range rs[0].Rows {
		inst, b, m, p := jsonString(row[0]), jsonInt(row[1]), jsonInt(row[2]), jsonInt(row[3])
		if m > b {
			ahead++
			if ahead <= 5 {
				res.Problems = append(res.Problems, fmt.Sprintf("instance %s: Monitor has seen %d steps, BPM committed %d (Monitor ahead of BPM)", inst, m, b))
			}
		} else {
			unaccounted++
			if unaccounted <= 5 {
				res.Problems = append(res.Problems, fmt.Sprintf("instance %s: BPM committed %d steps, Monitor saw %d and %d events are pending (gap not accounted for)", inst, b, m, p))
			}
		}
	}
	tot := rs[1].Rows[0]
	res.Counts["bpmSteps"], res.Counts["monitorSteps"], res.Counts["pendingEvents"] = jsonInt(tot[0]), jsonInt(tot[1]), jsonInt(tot[2])
	res.Counts["bpmInstances"], res.Counts["monitoredInstances"] = jsonInt(tot[3]), jsonInt(tot[4])
	res.Counts["monitorAhead"], res.Counts["unaccounted"] = ahead, unaccounted
	c := rs[2].Rows[0]
	if started, seen := jsonInt(c[0]), jsonInt(c[1]); started != seen {
		res.Problems = append(res.Problems, fmt.Sprintf("dashboard counts %d started instances, Monitor saw %d first events", started, seen))
	}
	if sum, seen := jsonInt(c[2]), jsonInt(c[3]); sum != seen {
		res.Problems = append(res.Problems, fmt.Sprintf("monitored instances count %d steps, Monitor recorded %d events", sum, seen))
	}
	if more := ahead + unaccounted - int64(min(ahead, 5)+min(unaccounted, 5)); more > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("… and %d more instances", more))
	}
	res.Passed = len(res.Problems) == 0
	res.Summary = fmt.Sprintf("BPM %d steps, Monitor %d, %d events pending; %d instances with Monitor ahead, %d with an unaccounted gap",
		res.Counts["bpmSteps"], res.Counts["monitorSteps"], res.Counts["pendingEvents"], ahead, unaccounted)
	return nil
}

// probeSCA: a synchronous and an asynchronous invocation round-trip.
func (s *labServer) probeSCA(ctx context.Context, res *ProbeResult) error {
	app, err := s.runningMember(ctx, RoleApp, ProductBPM)
	if err != nil {
		return fmt.Errorf("no BPM app server to invoke: %w", err)
	}
	var parts []string
	for _, mode := range []string{"sync", "async"} {
		var r SCAResult
		if err := s.member(app).call(ctx, "/sca/invoke?mode="+mode, struct{}{}, &r); err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("%s invocation: %v", mode, err))
			continue
		}
		if !r.OK {
			res.Problems = append(res.Problems, fmt.Sprintf("%s invocation failed: %s", mode, r.Detail))
			continue
		}
		res.Counts[mode+"Ms"] = int64(r.Millis)
		parts = append(parts, fmt.Sprintf("%s %.1fms (by %s)", mode, r.Millis, r.Handled))
	}
	res.Passed = len(res.Problems) == 0
	res.Summary = "SCA round trips: " + strings.Join(parts, ", ")
	if len(parts) == 0 {
		res.Summary = "no SCA invocation completed"
	}
	return nil
}

// probeMonitoring: a new instance shows up in the dashboard counts.
func (s *labServer) probeMonitoring(ctx context.Context, res *ProbeResult, o probeOptions) error {
	app, err := s.runningMember(ctx, RoleApp, ProductBPM)
	if err != nil {
		return fmt.Errorf("no BPM app server to start an instance: %w", err)
	}
	sup, err := s.runningMember(ctx, RoleSupport, ProductMonitor)
	if err != nil {
		return fmt.Errorf("no Monitor dashboard: %w", err)
	}
	var before Dashboard
	if err := s.member(sup).call(ctx, "/dashboard", nil, &before); err != nil {
		return err
	}
	var order OrderResponse
	if err := s.member(app).call(ctx, "/order", orderRequest{Customer: "verification-probe", Amount: 1}, &order); err != nil {
		return fmt.Errorf("start a new instance: %w", err)
	}
	start := time.Now()
	key := "started." + TemplateOrderHandling
	deadline := start.Add(o.timeout)
	for {
		var d Dashboard
		err := s.member(sup).call(ctx, "/dashboard", nil, &d)
		if err == nil && d.Counters[key] > before.Counters[key] {
			db, derr := s.cellDB()
			if derr != nil {
				return derr
			}
			n, qerr := db.QueryInt(ctx, "SELECT count(*) FROM mon.monitored WHERE instance = ?", order.Instance)
			if qerr == nil && n == 1 {
				res.Passed = true
				res.Counts["started"] = d.Counters[key]
				res.Counts["latencyMs"] = time.Since(start).Milliseconds()
				res.Summary = fmt.Sprintf("new instance %s appeared in the dashboard after %s (%s %d → %d)",
					order.Instance, time.Since(start).Round(time.Millisecond), key, before.Counters[key], d.Counters[key])
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.Summary = fmt.Sprintf("new instance %s did not appear in the dashboard within %s", order.Instance, o.timeout)
			res.Problems = append(res.Problems, res.Summary)
			if err != nil {
				res.Problems = append(res.Problems, err.Error())
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sortedKeys is for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
