package lab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite" // the lab's database engine
)

// xaTables hold, in every database, the branches a transaction manager has
// prepared, the keys they lock, and the outcome of finished ones, so a
// restored database knows what it was in doubt about.
const xaTables = `
CREATE TABLE IF NOT EXISTS %[1]s.xa_pending (xid TEXT PRIMARY KEY, owner TEXT NOT NULL, stmts TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS %[1]s.xa_pending_owner ON xa_pending(owner);
CREATE TABLE IF NOT EXISTS %[1]s.xa_locks (key TEXT PRIMARY KEY, xid TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS %[1]s.xa_locks_xid ON xa_locks(xid);
CREATE TABLE IF NOT EXISTS %[1]s.xa_done (xid TEXT PRIMARY KEY, outcome TEXT NOT NULL, at INTEGER NOT NULL);
`

var schemas = map[string]string{
	DBBPM: `
CREATE TABLE IF NOT EXISTS bpm.cell_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bpm.templates (name TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bpm.instances (
  id TEXT PRIMARY KEY, template TEXT NOT NULL, parent TEXT, state TEXT NOT NULL, step TEXT NOT NULL,
  outcome TEXT, customer TEXT, amount INTEGER, created INTEGER NOT NULL, updated INTEGER NOT NULL, server TEXT);
CREATE INDEX IF NOT EXISTS bpm.instances_state ON instances(state, template);
CREATE INDEX IF NOT EXISTS bpm.instances_parent ON instances(parent);
CREATE TABLE IF NOT EXISTS bpm.steps (
  instance TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, template TEXT NOT NULL,
  committed INTEGER NOT NULL, server TEXT NOT NULL, PRIMARY KEY (instance, seq));
CREATE TABLE IF NOT EXISTS bpm.orders (id TEXT PRIMARY KEY, customer TEXT, amount INTEGER, status TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bpm.notifications (instance TEXT PRIMARY KEY, customer TEXT, message TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bpm.sca_replies (id TEXT PRIMARY KEY, server TEXT NOT NULL, created INTEGER NOT NULL);
`,
	DBMonitor: `
CREATE TABLE IF NOT EXISTS mon.model (name TEXT PRIMARY KEY, version TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mon.monitored (
  instance TEXT PRIMARY KEY, template TEXT NOT NULL, state TEXT NOT NULL, outcome TEXT,
  steps_seen INTEGER NOT NULL, last_seq INTEGER NOT NULL, last_step TEXT NOT NULL, first_seen INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mon.events_seen (instance TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (instance, seq));
CREATE TABLE IF NOT EXISTS mon.counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
`,
	DBME: `
CREATE TABLE IF NOT EXISTS me.buses (name TEXT PRIMARY KEY, engine TEXT NOT NULL, owner TEXT, heartbeat INTEGER);
CREATE TABLE IF NOT EXISTS me.messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT, bus TEXT NOT NULL, dest TEXT NOT NULL, type TEXT NOT NULL, instance TEXT,
  body TEXT NOT NULL, created INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0,
  deliveries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS me.messages_dest ON messages(bus, dest, id);
CREATE INDEX IF NOT EXISTS me.messages_instance ON messages(instance);
`,
}

// Bus and destination names.
const (
	BusBPM        = "BPM.bus"
	BusMonitor    = "MON.bus"
	DestWork      = "bpm.work"   // navigation of BPM processes
	DestEvents    = "mon.events" // events for Monitor
	DeadLetterBPM = "bpm.error"
	DeadLetterMon = "mon.error"
)

// BusOf is the bus of a product.
func BusOf(product string) string {
	if product == ProductMonitor {
		return BusMonitor
	}
	return BusBPM
}

// openAttached opens a connection with the three databases attached as bpm,
// mon and me, in WAL mode. Commits are durable against a process crash
// (synchronous=NORMAL), which is what the lab's faults exercise.
func openAttached(ctx context.Context, db *sql.DB, files map[string]string) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, schema := range []string{DBBPM, DBMonitor, DBME} {
		if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS "+schema, files[schema]); err != nil {
			conn.Close()
			return nil, fmt.Errorf("attach %s (%s): %w", DatabaseNames[schema], files[schema], err)
		}
		for _, p := range []string{"journal_mode=WAL", "synchronous=NORMAL"} {
			if _, err := conn.ExecContext(ctx, "PRAGMA "+schema+"."+p); err != nil {
				conn.Close()
				return nil, fmt.Errorf("%s: pragma %s: %w", DatabaseNames[schema], p, err)
			}
		}
	}
	return conn, nil
}

func openMemory() (*sql.DB, error) {
	return sql.Open("sqlite", ":memory:?_pragma=busy_timeout(10000)")
}

// createDatabases creates BPMDB, MONDB and the ME store with their tables and
// the cell's installed templates, buses and monitor model, as database and
// table creation does when a cell is configured.
func createDatabases(ctx context.Context, l Layout, site string, t *Topology) error {
	files := map[string]string{}
	dbServer := t.Database().Name
	if err := os.MkdirAll(l.RuntimeDir(site, dbServer), 0o755); err != nil {
		return err
	}
	for schema := range DatabaseNames {
		files[schema] = l.DatabaseFile(site, dbServer, schema)
	}
	db, err := openMemory()
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := openAttached(ctx, db, files)
	if err != nil {
		return fmt.Errorf("create databases at %s: %w", site, err)
	}
	defer conn.Close()
	now := time.Now().UnixNano()
	var stmts []string
	for _, schema := range []string{DBBPM, DBMonitor, DBME} {
		stmts = append(stmts, schemas[schema], fmt.Sprintf(xaTables, schema))
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create databases at %s: %w", site, err)
		}
	}
	seed := []struct {
		sql  string
		args []any
	}{
		{"INSERT OR REPLACE INTO bpm.cell_info(key, value) VALUES ('cell', ?)", []any{t.Cell}},
		{"INSERT OR REPLACE INTO bpm.cell_info(key, value) VALUES ('created', ?)", []any{fmt.Sprint(now)}},
		{"INSERT OR REPLACE INTO me.buses(name, engine) VALUES (?, ?)", []any{BusBPM, t.Messaging(ProductBPM).Name}},
		{"INSERT OR REPLACE INTO me.buses(name, engine) VALUES (?, ?)", []any{BusMonitor, t.Messaging(ProductMonitor).Name}},
		{"INSERT OR REPLACE INTO mon.model(name, version, state) VALUES ('OrderMonitorModel', '1.0', 'started')", nil},
	}
	for _, tpl := range Templates {
		seed = append(seed, struct {
			sql  string
			args []any
		}{"INSERT OR REPLACE INTO bpm.templates(name, kind, state, version) VALUES (?, ?, 'started', '1.0')", []any{tpl.Name, tpl.Kind}})
	}
	for _, s := range seed {
		if _, err := conn.ExecContext(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("create databases at %s: %w", site, err)
		}
	}
	return nil
}
