package lab

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The database server owns BPMDB, MONDB and the ME store (SQLite files in
// WAL mode in its runtime dir) and serves SQL to the other servers over
// HTTP: plain reads and writes, and the resource-manager half of two-phase
// commit (prepare, commit, rollback, recover) for the app servers'
// transaction managers. While quiesced it holds new writes and lets
// in-flight ones finish, so the files can be captured at one instant.

// Stmt is one SQL statement.
type Stmt struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args,omitempty"`
	// Expect, when set, is the number of rows the statement must change.
	Expect *int64 `json:"expect,omitempty"`
	// Rows asks for the rows a SELECT or RETURNING statement yields.
	Rows bool `json:"rows,omitempty"`
}

// StmtResult is what one statement did.
type StmtResult struct {
	Affected int64    `json:"affected"`
	Columns  []string `json:"columns,omitempty"`
	Rows     [][]any  `json:"rows,omitempty"`
}

type execRequest struct {
	Stmts []Stmt `json:"stmts"`
	// Rollback runs the statements and rolls them back: a dry run.
	Rollback bool `json:"rollback,omitempty"`
}

type execResponse struct {
	Results []StmtResult `json:"results"`
}

type queryRequest struct {
	Queries []Stmt `json:"queries"`
	// Consistent reads every database at the same commit boundary.
	Consistent bool `json:"consistent,omitempty"`
}

type queryResponse struct {
	Results []StmtResult `json:"results"`
}

// Branch is one database's part of a global transaction.
type Branch struct {
	DB    string   `json:"db"`
	Stmts []Stmt   `json:"stmts"`
	Locks []string `json:"locks,omitempty"`
}

// XATx is a global transaction's branches at this database server.
type XATx struct {
	XID      string   `json:"xid"`
	Branches []Branch `json:"branches"`
}

type prepareRequest struct {
	Owner string `json:"owner"`
	Txns  []XATx `json:"txns"`
}

// Vote is a resource manager's answer to prepare.
type Vote struct {
	XID    string `json:"xid"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

type prepareResponse struct {
	Votes []Vote `json:"votes"`
}

type xidsRequest struct {
	XIDs []string `json:"xids"`
}

// Outcome of commit or rollback of one xid.
type Outcome struct {
	XID string `json:"xid"`
	// Result is committed, rolledback, already-committed, already-rolledback,
	// heuristic (a branch could not be applied) or unknown (never prepared
	// here: the database is older than the transaction log).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

type outcomesResponse struct {
	Outcomes []Outcome `json:"outcomes"`
}

// Pending is a prepared branch waiting for its transaction manager.
type Pending struct {
	XID     string `json:"xid"`
	Owner   string `json:"owner"`
	DB      string `json:"db"`
	Created int64  `json:"created"`
}

type dbServer struct {
	log   *zap.Logger
	files map[string]string
	db    *sql.DB

	wmu   sync.Mutex // one writer connection, one transaction at a time
	w     *sql.Conn
	stmts map[string]*sql.Stmt

	readers chan *sql.Conn

	// gate lets writes through unless quiesced.
	gate       writeGate
	qmu        sync.Mutex
	quiesced   bool
	quiescedAt time.Time
	qTimer     *time.Timer

	version atomic.Int64
	vmu     sync.Mutex
	vcond   *sync.Cond

	commits atomic.Int64
}

const dbReaders = 4

func openDBServer(ctx context.Context, log *zap.Logger, l Layout, site, server string) (*dbServer, error) {
	files := map[string]string{}
	for schema, name := range DatabaseNames {
		path := l.DatabaseFile(site, server, schema)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("database %s not found at %s (runtime data not restored?)", name, path)
		}
		files[schema] = path
	}
	db, err := openMemory()
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(dbReaders + 2)
	db.SetMaxIdleConns(dbReaders + 2)
	db.SetConnMaxLifetime(0)
	s := &dbServer{log: log, files: files, db: db, stmts: map[string]*sql.Stmt{}, readers: make(chan *sql.Conn, dbReaders)}
	s.vcond = sync.NewCond(&s.vmu)
	if s.w, err = openAttached(ctx, db, files); err != nil {
		db.Close()
		return nil, err
	}
	// A database that is not a lab database (or was damaged) is refused
	// here, as DB2 refuses to activate it.
	var n int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM bpm.templates").Scan(&n); err != nil {
		s.close()
		return nil, fmt.Errorf("BPMDB at %s is not usable: %w", files[DBBPM], err)
	}
	for i := 0; i < dbReaders; i++ {
		c, err := openAttached(ctx, db, files)
		if err != nil {
			s.close()
			return nil, err
		}
		if _, err := c.ExecContext(ctx, "PRAGMA query_only=1"); err != nil {
			s.close()
			return nil, err
		}
		s.readers <- c
	}
	return s, nil
}

func (s *dbServer) close() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, st := range s.stmts {
		st.Close()
	}
	if s.w != nil {
		// Fold the WAL into the database files on a clean stop.
		for _, schema := range []string{DBBPM, DBMonitor, DBME} {
			_, _ = s.w.ExecContext(context.Background(), "PRAGMA "+schema+".wal_checkpoint(TRUNCATE)")
		}
		s.w.Close()
	}
	for {
		select {
		case c := <-s.readers:
			c.Close()
			continue
		default:
		}
		break
	}
	s.db.Close()
}

func (s *dbServer) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /db/exec", s.handleExec)
	mux.HandleFunc("POST /db/query", s.handleQuery)
	mux.HandleFunc("GET /db/watch", s.handleWatch)
	mux.HandleFunc("POST /xa/prepare", s.handlePrepare)
	mux.HandleFunc("POST /xa/commit", s.handleCommit)
	mux.HandleFunc("POST /xa/rollback", s.handleRollback)
	mux.HandleFunc("GET /xa/recover", s.handleRecover)
}

// stmt returns a prepared statement on the writer connection.
func (s *dbServer) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	st, err := s.w.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(s.stmts) > 500 {
		for k, old := range s.stmts {
			old.Close()
			delete(s.stmts, k)
		}
	}
	s.stmts[q] = st
	return st, nil
}

func convertArgs(args []any) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		switch x := a.(type) {
		case json.Number:
			if n, err := x.Int64(); err == nil {
				out[i] = n
			} else if f, err := x.Float64(); err == nil {
				out[i] = f
			} else {
				return nil, fmt.Errorf("argument %d: bad number %q", i+1, x)
			}
		case nil, string, bool, int64, float64, int:
			out[i] = x
		default:
			return nil, fmt.Errorf("argument %d: unsupported type %T", i+1, a)
		}
	}
	return out, nil
}

// run executes one statement on the writer connection (inside whatever
// transaction is open) and checks its expectation.
func (s *dbServer) run(ctx context.Context, st Stmt) (StmtResult, error) {
	args, err := convertArgs(st.Args)
	if err != nil {
		return StmtResult{}, err
	}
	ps, err := s.stmt(ctx, st.SQL)
	if err != nil {
		return StmtResult{}, fmt.Errorf("%w: %s", err, shortSQL(st.SQL))
	}
	var res StmtResult
	if st.Rows {
		rows, err := ps.QueryContext(ctx, args...)
		if err != nil {
			return res, fmt.Errorf("%w: %s", err, shortSQL(st.SQL))
		}
		res.Columns, res.Rows, err = scanRows(rows)
		if err != nil {
			return res, fmt.Errorf("%w: %s", err, shortSQL(st.SQL))
		}
		res.Affected = int64(len(res.Rows))
	} else {
		r, err := ps.ExecContext(ctx, args...)
		if err != nil {
			return res, fmt.Errorf("%w: %s", err, shortSQL(st.SQL))
		}
		res.Affected, _ = r.RowsAffected()
	}
	if st.Expect != nil && res.Affected != *st.Expect {
		return res, fmt.Errorf("changed %d rows, expected %d: %s", res.Affected, *st.Expect, shortSQL(st.SQL))
	}
	return res, nil
}

func shortSQL(q string) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > 120 {
		q = q[:120] + "…"
	}
	return q
}

func scanRows(rows *sql.Rows) ([]string, [][]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}

// write runs fn in one transaction on the writer connection, behind the
// quiesce gate, and wakes watchers after a commit.
func (s *dbServer) write(ctx context.Context, fn func(ctx context.Context) error, rollback bool) error {
	if err := s.gate.enter(ctx); err != nil {
		return fmt.Errorf("write held by a quiesce: %w", err)
	}
	defer s.gate.leave()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// The request context may end mid-transaction; the transaction must
	// still end cleanly, so it runs on a context of its own.
	tctx := context.WithoutCancel(ctx)
	if _, err := s.w.ExecContext(tctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	err := fn(tctx)
	if err != nil || rollback {
		if _, rerr := s.w.ExecContext(tctx, "ROLLBACK"); rerr != nil {
			s.log.Error("rollback failed", zap.Error(rerr))
		}
		return err
	}
	if _, err := s.w.ExecContext(tctx, "COMMIT"); err != nil {
		_, _ = s.w.ExecContext(tctx, "ROLLBACK")
		return fmt.Errorf("commit: %w", err)
	}
	s.commits.Add(1)
	s.vmu.Lock()
	s.version.Add(1)
	s.vcond.Broadcast()
	s.vmu.Unlock()
	return nil
}

func (s *dbServer) handleExec(w http.ResponseWriter, r *http.Request) {
	var req execRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var resp execResponse
	err := s.write(r.Context(), func(ctx context.Context) error {
		for i, st := range req.Stmts {
			res, err := s.run(ctx, st)
			if err != nil {
				return fmt.Errorf("statement %d: %w", i+1, err)
			}
			resp.Results = append(resp.Results, res)
		}
		return nil
	}, req.Rollback)
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *dbServer) handleQuery(w http.ResponseWriter, r *http.Request) {
	var req queryRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	resp, err := s.query(r.Context(), req)
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *dbServer) query(ctx context.Context, req queryRequest) (queryResponse, error) {
	var c *sql.Conn
	select {
	case c = <-s.readers:
	case <-ctx.Done():
		return queryResponse{}, ctx.Err()
	}
	defer func() { s.readers <- c }()
	tctx := context.WithoutCancel(ctx)
	if _, err := c.ExecContext(tctx, "BEGIN"); err != nil {
		return queryResponse{}, err
	}
	defer c.ExecContext(tctx, "COMMIT")
	if req.Consistent {
		// Pin a snapshot of every database while no write can commit, so
		// the reads see one commit boundary across the three files.
		s.wmu.Lock()
		var n int
		var err error
		for _, schema := range []string{DBBPM, DBMonitor, DBME} {
			if err = c.QueryRowContext(tctx, "SELECT count(*) FROM "+schema+".sqlite_master").Scan(&n); err != nil {
				break
			}
		}
		s.wmu.Unlock()
		if err != nil {
			return queryResponse{}, err
		}
	}
	var resp queryResponse
	for i, q := range req.Queries {
		args, err := convertArgs(q.Args)
		if err != nil {
			return resp, fmt.Errorf("query %d: %w", i+1, err)
		}
		rows, err := c.QueryContext(tctx, q.SQL, args...)
		if err != nil {
			return resp, fmt.Errorf("query %d: %w: %s", i+1, err, shortSQL(q.SQL))
		}
		cols, vals, err := scanRows(rows)
		if err != nil {
			return resp, fmt.Errorf("query %d: %w", i+1, err)
		}
		resp.Results = append(resp.Results, StmtResult{Columns: cols, Rows: vals, Affected: int64(len(vals))})
	}
	return resp, nil
}

// handleWatch answers when a write has committed after version `after`, or
// after `wait`; consumers long-poll it instead of polling tables.
func (s *dbServer) handleWatch(w http.ResponseWriter, r *http.Request) {
	var after int64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	if wait <= 0 || wait > 30*time.Second {
		wait = time.Second
	}
	deadline := time.Now().Add(wait)
	timer := time.AfterFunc(wait, func() {
		s.vmu.Lock()
		s.vcond.Broadcast()
		s.vmu.Unlock()
	})
	defer timer.Stop()
	s.vmu.Lock()
	for s.version.Load() <= after && time.Now().Before(deadline) && r.Context().Err() == nil {
		s.vcond.Wait()
	}
	v := s.version.Load()
	s.vmu.Unlock()
	writeJSON(w, http.StatusOK, map[string]int64{"version": v})
}

func validSchema(db string) bool { return db == DBBPM || db == DBMonitor || db == DBME }

func (s *dbServer) handlePrepare(w http.ResponseWriter, r *http.Request) {
	var req prepareRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Owner == "" {
		writeError(w, http.StatusBadRequest, errors.New("prepare: owner is empty"))
		return
	}
	var resp prepareResponse
	err := s.write(r.Context(), func(ctx context.Context) error {
		for _, tx := range req.Txns {
			resp.Votes = append(resp.Votes, s.prepareOne(ctx, req.Owner, tx))
		}
		return nil
	}, false)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// prepareOne validates a transaction's statements, rolls them back, and
// records every branch with its locks; or votes no and leaves no trace.
//
// A vote lost to a lock names lockedInDoubt: the work is fine, it waits for
// the transaction manager to decide the holder.
const lockedInDoubt = "locked by in-doubt transaction"

func (s *dbServer) prepareOne(ctx context.Context, owner string, tx XATx) Vote {
	no := func(format string, args ...any) Vote {
		_, _ = s.w.ExecContext(ctx, "ROLLBACK TO xa")
		_, _ = s.w.ExecContext(ctx, "RELEASE xa")
		return Vote{XID: tx.XID, Reason: fmt.Sprintf(format, args...)}
	}
	if tx.XID == "" {
		return Vote{XID: tx.XID, Reason: "empty xid"}
	}
	if _, err := s.w.ExecContext(ctx, "SAVEPOINT xa"); err != nil {
		return Vote{XID: tx.XID, Reason: err.Error()}
	}
	for _, b := range tx.Branches {
		if !validSchema(b.DB) {
			return no("unknown database %q", b.DB)
		}
		var n int
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM "+b.DB+".xa_pending WHERE xid = ?", tx.XID).Scan(&n); err != nil {
			return no("%v", err)
		}
		if n > 0 {
			// Prepared already: a retry of a prepare whose answer was lost.
			_, _ = s.w.ExecContext(ctx, "RELEASE xa")
			return Vote{XID: tx.XID, OK: true}
		}
	}
	for _, b := range tx.Branches {
		for i, st := range b.Stmts {
			if _, err := s.run(ctx, st); err != nil {
				return no("%s statement %d: %v", DatabaseNames[b.DB], i+1, err)
			}
		}
	}
	// Undo the trial run; the statements run again at commit, protected by
	// the locks taken now.
	if _, err := s.w.ExecContext(ctx, "ROLLBACK TO xa"); err != nil {
		return no("%v", err)
	}
	now := time.Now().UnixNano()
	for _, b := range tx.Branches {
		for _, key := range b.Locks {
			var holder string
			err := s.w.QueryRowContext(ctx, "SELECT xid FROM "+b.DB+".xa_locks WHERE key = ?", key).Scan(&holder)
			if err == nil {
				return no("%s is %s %s", key, lockedInDoubt, holder)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return no("%v", err)
			}
			if _, err := s.w.ExecContext(ctx, "INSERT INTO "+b.DB+".xa_locks(key, xid) VALUES (?, ?)", key, tx.XID); err != nil {
				return no("lock %s: %v", key, err)
			}
		}
		data, err := json.Marshal(b.Stmts)
		if err != nil {
			return no("%v", err)
		}
		if _, err := s.w.ExecContext(ctx, "INSERT INTO "+b.DB+".xa_pending(xid, owner, stmts, created) VALUES (?, ?, ?, ?)", tx.XID, owner, string(data), now); err != nil {
			return no("record branch: %v", err)
		}
	}
	if _, err := s.w.ExecContext(ctx, "RELEASE xa"); err != nil {
		return no("%v", err)
	}
	return Vote{XID: tx.XID, OK: true}
}

func (s *dbServer) handleCommit(w http.ResponseWriter, r *http.Request) {
	s.finish(w, r, true)
}

func (s *dbServer) handleRollback(w http.ResponseWriter, r *http.Request) {
	s.finish(w, r, false)
}

func (s *dbServer) finish(w http.ResponseWriter, r *http.Request, commit bool) {
	var req xidsRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	var resp outcomesResponse
	err := s.write(r.Context(), func(ctx context.Context) error {
		resp.Outcomes = resp.Outcomes[:0]
		for _, xid := range req.XIDs {
			o, err := s.finishOne(ctx, xid, commit)
			if err != nil {
				return err
			}
			resp.Outcomes = append(resp.Outcomes, o)
		}
		return nil
	}, false)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// finishOne commits or rolls back every branch of xid held here.
func (s *dbServer) finishOne(ctx context.Context, xid string, commit bool) (Outcome, error) {
	now := time.Now().UnixNano()
	found := false
	var heuristic []string
	for _, db := range []string{DBBPM, DBMonitor, DBME} {
		var raw string
		err := s.w.QueryRowContext(ctx, "SELECT stmts FROM "+db+".xa_pending WHERE xid = ?", xid).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Outcome{}, err
		}
		found = true
		outcome := "rollback"
		if commit {
			outcome = "commit"
			var stmts []Stmt
			dec := json.NewDecoder(strings.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&stmts); err != nil {
				return Outcome{}, fmt.Errorf("xid %s: stored branch: %w", xid, err)
			}
			if _, err := s.w.ExecContext(ctx, "SAVEPOINT br"); err != nil {
				return Outcome{}, err
			}
			for i, st := range stmts {
				if _, err := s.run(ctx, st); err != nil {
					// The branch cannot be applied as prepared: a heuristic
					// outcome, kept for the instance-level check.
					_, _ = s.w.ExecContext(ctx, "ROLLBACK TO br")
					heuristic = append(heuristic, fmt.Sprintf("%s statement %d: %v", DatabaseNames[db], i+1, err))
					outcome = "heuristic"
					break
				}
			}
			if _, err := s.w.ExecContext(ctx, "RELEASE br"); err != nil {
				return Outcome{}, err
			}
		}
		for _, q := range []string{
			"DELETE FROM " + db + ".xa_pending WHERE xid = ?",
			"DELETE FROM " + db + ".xa_locks WHERE xid = ?",
		} {
			if _, err := s.w.ExecContext(ctx, q, xid); err != nil {
				return Outcome{}, err
			}
		}
		if _, err := s.w.ExecContext(ctx, "INSERT OR REPLACE INTO "+db+".xa_done(xid, outcome, at) VALUES (?, ?, ?)", xid, outcome, now); err != nil {
			return Outcome{}, err
		}
	}
	switch {
	case len(heuristic) > 0:
		return Outcome{XID: xid, Result: "heuristic", Detail: strings.Join(heuristic, "; ")}, nil
	case found && commit:
		return Outcome{XID: xid, Result: "committed"}, nil
	case found:
		return Outcome{XID: xid, Result: "rolledback"}, nil
	}
	for _, db := range []string{DBBPM, DBMonitor, DBME} {
		var outcome string
		err := s.w.QueryRowContext(ctx, "SELECT outcome FROM "+db+".xa_done WHERE xid = ?", xid).Scan(&outcome)
		if err == nil {
			if outcome == "commit" {
				return Outcome{XID: xid, Result: "already-committed"}, nil
			}
			return Outcome{XID: xid, Result: "already-" + outcome}, nil
		}
	}
	if !commit {
		// Rollback of an xid never prepared here is what presumed abort means.
		return Outcome{XID: xid, Result: "rolledback"}, nil
	}
	return Outcome{XID: xid, Result: "unknown", Detail: "no branch of this transaction is known here: the database is older than the transaction log"}, nil
}

func (s *dbServer) handleRecover(w http.ResponseWriter, r *http.Request) {
	owner := r.URL.Query().Get("owner")
	var out []Pending
	q := "SELECT xid, owner, created FROM %s.xa_pending"
	var args []any
	if owner != "" {
		q += " WHERE owner = ?"
		args = append(args, owner)
	}
	var stmts []Stmt
	for _, db := range []string{DBBPM, DBMonitor, DBME} {
		stmts = append(stmts, Stmt{SQL: fmt.Sprintf(q, db), Args: args})
	}
	resp, err := s.query(r.Context(), queryRequest{Queries: stmts, Consistent: true})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	for i, db := range []string{DBBPM, DBMonitor, DBME} {
		for _, row := range resp.Results[i].Rows {
			out = append(out, Pending{XID: jsonString(row[0]), Owner: jsonString(row[1]), DB: db, Created: jsonInt(row[2])})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pending": out})
}

// writeGate lets writes through while open. Closing it waits for the writes
// already through; a write that waits at the closed gate gives up when its
// request ends, so nothing a client abandoned during a quiesce runs after
// the resume behind that client's back (it may have sent it again).
type writeGate struct {
	mu      sync.Mutex
	closed  bool
	active  int
	opened  chan struct{} // closed when the gate opens again
	drained chan struct{} // closed when the last write through a closed gate ends
}

func (g *writeGate) enter(ctx context.Context) error {
	g.mu.Lock()
	for g.closed {
		opened := g.opened
		g.mu.Unlock()
		select {
		case <-opened:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
	}
	g.active++
	g.mu.Unlock()
	return nil
}

func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.active == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
}

// close stops new writes and waits for those already through.
func (g *writeGate) close() {
	g.mu.Lock()
	g.closed = true
	g.opened = make(chan struct{})
	var drained chan struct{}
	if g.active > 0 {
		drained = make(chan struct{})
		g.drained = drained
	}
	g.mu.Unlock()
	if drained != nil {
		<-drained
	}
}

func (g *writeGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = false
	close(g.opened)
}

// quiesce blocks new writes and waits for in-flight ones, then folds the
// WAL into the database files so they are complete on their own. It lifts
// itself after max, so a lost resume never leaves the cell frozen.
func (s *dbServer) quiesce(max time.Duration) (bool, error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.quiesced {
		return true, nil
	}
	s.gate.close()
	s.quiesced = true
	s.quiescedAt = time.Now()
	s.wmu.Lock()
	for _, schema := range []string{DBBPM, DBMonitor, DBME} {
		if _, err := s.w.ExecContext(context.Background(), "PRAGMA "+schema+".wal_checkpoint(TRUNCATE)"); err != nil {
			s.log.Warn("checkpoint while quiescing", zap.String("db", schema), zap.Error(err))
		}
	}
	s.wmu.Unlock()
	s.qTimer = time.AfterFunc(max, func() {
		s.log.Warn("quiesce lasted its maximum; resuming writes", zap.Duration("max", max))
		s.resume()
	})
	s.log.Info("writes quiesced")
	return false, nil
}

func (s *dbServer) resume() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if !s.quiesced {
		return false
	}
	if s.qTimer != nil {
		s.qTimer.Stop()
	}
	s.quiesced = false
	s.gate.open()
	s.log.Info("writes resumed", zap.Duration("quiesced", time.Since(s.quiescedAt)))
	return true
}

func (s *dbServer) isQuiesced() bool {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.quiesced
}

func (s *dbServer) handleQuiesce(w http.ResponseWriter, r *http.Request) {
	max, _ := time.ParseDuration(r.URL.Query().Get("max"))
	if max <= 0 {
		max = 10 * time.Minute
	}
	already, err := s.quiesce(max)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quiesced": true, "already": already, "at": time.Now().UTC()})
}

func (s *dbServer) handleResume(w http.ResponseWriter, r *http.Request) {
	was := s.resume()
	writeJSON(w, http.StatusOK, map[string]any{"quiesced": false, "already": !was})
}

// pruneDone forgets finished outcomes after a while; transaction managers
// only ask about recent ones.
func (s *dbServer) pruneDone(ctx context.Context, keep time.Duration) {
	cutoff := time.Now().Add(-keep).UnixNano()
	err := s.write(ctx, func(ctx context.Context) error {
		for _, db := range []string{DBBPM, DBMonitor, DBME} {
			if _, err := s.w.ExecContext(ctx, "DELETE FROM "+db+".xa_done WHERE at < ?", cutoff); err != nil {
				return err
			}
		}
		return nil
	}, false)
	if err != nil {
		s.log.Warn("prune finished transactions", zap.Error(err))
	}
}
