package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// A Monitor app server consumes the events BPM emits, one global transaction
// per event (the event leaves the ME store as the monitored instance and
// the dashboard counters change in MONDB), so Monitor is never ahead of
// BPM and any gap is events still on the bus.

type monApp struct {
	appRuntime
}

func startMonApp(ctx context.Context, s *labServer) (*monApp, error) {
	a := &monApp{}
	if err := a.run(ctx, s, DestEvents, DeadLetterMon, a.observe); err != nil {
		return nil, err
	}
	return a, nil
}

// observe turns an event into the monitor model's update.
func (a *monApp) observe(m Message) (*GlobalTx, error) {
	var ev eventBody
	if err := json.Unmarshal(m.Body, &ev); err != nil {
		return nil, fmt.Errorf("bad event: %w", err)
	}
	if m.Instance == "" || ev.Template == "" || ev.Seq <= 0 {
		return nil, fmt.Errorf("event names no instance, template or step")
	}
	now := time.Now().UnixNano()
	mon := []Stmt{
		// A second delivery of an event already counted fails here and
		// the event goes to the dead letter destination, never counted twice.
		{SQL: "INSERT INTO mon.events_seen(instance, seq, step, at) VALUES (?, ?, ?, ?)", Args: []any{m.Instance, ev.Seq, ev.Step, now}, Expect: expect(1)},
		{SQL: `INSERT INTO mon.monitored(instance, template, state, outcome, steps_seen, last_seq, last_step, first_seen, updated)
VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT(instance) DO UPDATE SET steps_seen = steps_seen + 1,
  state = CASE WHEN excluded.last_seq > last_seq THEN excluded.state ELSE state END,
  outcome = CASE WHEN excluded.last_seq > last_seq AND excluded.outcome IS NOT NULL THEN excluded.outcome ELSE outcome END,
  last_step = CASE WHEN excluded.last_seq > last_seq THEN excluded.last_step ELSE last_step END,
  last_seq = max(last_seq, excluded.last_seq), updated = excluded.updated`,
			Args: []any{m.Instance, ev.Template, ev.State, nullable(ev.Outcome), ev.Seq, ev.Step, now, now}},
	}
	bump := func(name string) {
		mon = append(mon, Stmt{SQL: "INSERT INTO mon.counters(name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1", Args: []any{name}})
	}
	if ev.Seq == 1 {
		bump("started." + ev.Template)
	}
	if ev.Final {
		bump("finished." + ev.Template)
		if ev.Outcome != "" {
			bump("outcome." + ev.Outcome + "." + ev.Template)
		}
	}
	return &GlobalTx{Branches: []Branch{
		// Two events of one step would both pass a trial insert while
		// neither is committed; the lock makes the second vote no.
		{DB: DBMonitor, Stmts: mon, Locks: []string{fmt.Sprintf("ev:%s:%d", m.Instance, ev.Seq)}},
		{DB: DBME, Stmts: []Stmt{consumeStmt(m)}, Locks: []string{fmt.Sprintf("msg:%d", m.ID)}},
	}}, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Dashboard is what a Monitor dashboard shows.
type Dashboard struct {
	Counters  map[string]int64 `json:"counters"`
	Monitored int64            `json:"monitored"`
	Active    int64            `json:"active"`
}

// handleDashboard serves Business Space from a support server: for Monitor
// the dashboard counters, for BPM the process instance counts.
func (s *labServer) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d Dashboard
	d.Counters = map[string]int64{}
	if s.prof.Server.Product == ProductMonitor {
		rs, err := s.db.Query(ctx, true,
			Stmt{SQL: "SELECT name, value FROM mon.counters"},
			Stmt{SQL: "SELECT count(*), coalesce(sum(state = 'running'), 0) FROM mon.monitored"})
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		for _, row := range rs[0].Rows {
			d.Counters[jsonString(row[0])] = jsonInt(row[1])
		}
		d.Monitored = jsonInt(rs[1].Rows[0][0])
		d.Active = jsonInt(rs[1].Rows[0][1])
	} else {
		rs, err := s.db.Query(ctx, false, Stmt{SQL: "SELECT template, state, count(*) FROM bpm.instances GROUP BY template, state"})
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		for _, row := range rs[0].Rows {
			n := jsonInt(row[2])
			d.Counters[jsonString(row[1])+"."+jsonString(row[0])] = n
			d.Monitored += n
			if jsonString(row[1]) == InstanceRunning {
				d.Active += n
			}
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// handleApps lists the applications of an app server and their state.
func (s *labServer) handleApps(w http.ResponseWriter, r *http.Request) {
	m, _ := s.prof.Cell.Find(s.o.server)
	state := "stopped"
	if s.state.Load().(string) == StateRunning {
		state = "started"
	}
	type app struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	var out []app
	for _, name := range m.Applications {
		out = append(out, app{Name: name, State: state})
	}
	writeJSON(w, http.StatusOK, map[string]any{"applications": out})
}

// handleStats reports what the server did; the database server reports the
// cell's instance and message counts.
func (s *labServer) handleStats(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"server": s.o.server, "state": s.state.Load()}
	switch {
	case s.bpm != nil:
		out["processed"] = s.bpm.processed.Load()
		out["orders"] = s.bpm.orders.Load()
		out["deadLettered"] = s.bpm.deadLettered.Load()
		out["transactions"] = s.bpm.tm.stats()
	case s.mon != nil:
		out["processed"] = s.mon.processed.Load()
		out["deadLettered"] = s.mon.deadLettered.Load()
		out["transactions"] = s.mon.tm.stats()
	case s.me != nil:
		s.me.mu.Lock()
		out["delivered"] = s.me.received
		s.me.mu.Unlock()
	case s.dbs != nil:
		c, err := s.cellCounts(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err)
			return
		}
		out["counts"] = c
		out["commits"] = s.dbs.commits.Load()
		out["quiesced"] = s.dbs.isQuiesced()
	}
	writeJSON(w, http.StatusOK, out)
}

// CellCounts are the instance and message counts of a cell's databases.
type CellCounts struct {
	Instances map[string]int64 `json:"instances"`
	Steps     int64            `json:"steps"`
	Messages  map[string]int64 `json:"messages"`
	Monitored int64            `json:"monitored"`
	InDoubt   int64            `json:"inDoubt"`
}

func (s *labServer) cellCounts(ctx context.Context) (CellCounts, error) {
	c := CellCounts{Instances: map[string]int64{}, Messages: map[string]int64{}}
	rs, err := s.dbs.query(ctx, queryRequest{Consistent: true, Queries: []Stmt{
		{SQL: "SELECT template || '/' || state, count(*) FROM bpm.instances GROUP BY template, state"},
		{SQL: "SELECT count(*) FROM bpm.steps"},
		{SQL: "SELECT dest, count(*) FROM me.messages GROUP BY dest"},
		{SQL: "SELECT count(*) FROM mon.monitored"},
		{SQL: "SELECT (SELECT count(*) FROM bpm.xa_pending) + (SELECT count(*) FROM mon.xa_pending) + (SELECT count(*) FROM me.xa_pending)"},
	}})
	if err != nil {
		return c, err
	}
	for _, row := range rs.Results[0].Rows {
		c.Instances[jsonString(row[0])] = jsonInt(row[1])
	}
	c.Steps = jsonInt(rs.Results[1].Rows[0][0])
	for _, row := range rs.Results[2].Rows {
		c.Messages[jsonString(row[0])] = jsonInt(row[1])
	}
	c.Monitored = jsonInt(rs.Results[3].Rows[0][0])
	c.InDoubt = jsonInt(rs.Results[4].Rows[0][0])
	return c, nil
}
