package lab

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// EnvDBTimeout bounds one request of a lab server to its database server
// (a Go duration, default 30s). Tests shrink it to outlast it quickly; a
// request held by a quiesce is sent again however long the quiesce lasts.
const EnvDBTimeout = "DROVER_LAB_DB_TIMEOUT"

// envDuration reads a positive duration from the environment, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// dbClient talks to the database server.
type dbClient struct{ c *client }

func newDBClient(addr, name, site string) *dbClient {
	timeout := envDuration(EnvDBTimeout, 30*time.Second)
	return &dbClient{c: &client{hc: newHTTPClient(timeout), addr: addr, name: "database " + name, site: site}}
}

// call sends one request to the database server. A write the server holds
// while its writes are quiesced (DB2's set write suspend) waits however
// long the quiesce lasts: when the request times out and the database
// answers its health check as quiesced, it is sent again. The server drops
// a held write whose client gave up, so a resend repeats nothing unless the
// quiesce ended in the last instant; and what a resend could repeat is
// idempotent (prepare, commit and rollback by xid, giving a lease back) or
// harmless (a second lease: the first one's messages are redelivered when
// it expires).
func (d *dbClient) call(ctx context.Context, path string, in, out any) error {
	for {
		err := d.c.call(ctx, path, in, out)
		if err == nil || ctx.Err() != nil || !errors.Is(err, ErrUnreachable) || !d.quiesced(ctx) {
			return err
		}
	}
}

// quiesced reports whether the database server answers that it holds its
// writes.
func (d *dbClient) quiesced(ctx context.Context) bool {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var h Health
	return d.c.call(hctx, "/health", nil, &h) == nil && h.Quiesced
}

// Exec runs statements in one local transaction.
func (d *dbClient) Exec(ctx context.Context, stmts ...Stmt) ([]StmtResult, error) {
	var resp execResponse
	if err := d.call(ctx, "/db/exec", execRequest{Stmts: stmts}, &resp); err != nil {
		return nil, err
	}
	return resp.Results, nil
}

// DryRun runs statements and rolls them back.
func (d *dbClient) DryRun(ctx context.Context, stmts ...Stmt) ([]StmtResult, error) {
	var resp execResponse
	if err := d.call(ctx, "/db/exec", execRequest{Stmts: stmts, Rollback: true}, &resp); err != nil {
		return nil, err
	}
	return resp.Results, nil
}

// Query runs read-only queries in one read transaction; consistent pins all
// three databases at one commit boundary.
func (d *dbClient) Query(ctx context.Context, consistent bool, queries ...Stmt) ([]StmtResult, error) {
	var resp queryResponse
	if err := d.call(ctx, "/db/query", queryRequest{Queries: queries, Consistent: consistent}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(queries) {
		return nil, fmt.Errorf("database answered %d results for %d queries", len(resp.Results), len(queries))
	}
	return resp.Results, nil
}

// QueryInt runs a query yielding one integer.
func (d *dbClient) QueryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	res, err := d.Query(ctx, false, Stmt{SQL: sql, Args: args})
	if err != nil {
		return 0, err
	}
	if len(res[0].Rows) == 0 || len(res[0].Rows[0]) == 0 {
		return 0, nil
	}
	return jsonInt(res[0].Rows[0][0]), nil
}

// Watch waits until a write commits after version after, or wait passes.
func (d *dbClient) Watch(ctx context.Context, after int64, wait time.Duration) (int64, error) {
	var resp struct {
		Version int64 `json:"version"`
	}
	q := url.Values{"after": {fmt.Sprint(after)}, "wait": {wait.String()}}
	if err := d.call(ctx, "/db/watch?"+q.Encode(), nil, &resp); err != nil {
		return 0, err
	}
	return resp.Version, nil
}

// Prepare asks the database to prepare transactions for owner.
func (d *dbClient) Prepare(ctx context.Context, owner string, txns []XATx) ([]Vote, error) {
	var resp prepareResponse
	if err := d.call(ctx, "/xa/prepare", prepareRequest{Owner: owner, Txns: txns}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Votes) != len(txns) {
		return nil, fmt.Errorf("database voted %d times for %d transactions", len(resp.Votes), len(txns))
	}
	return resp.Votes, nil
}

// Commit commits prepared transactions.
func (d *dbClient) Commit(ctx context.Context, xids []string) ([]Outcome, error) {
	var resp outcomesResponse
	if err := d.call(ctx, "/xa/commit", xidsRequest{XIDs: xids}, &resp); err != nil {
		return nil, err
	}
	return resp.Outcomes, nil
}

// Rollback rolls prepared transactions back.
func (d *dbClient) Rollback(ctx context.Context, xids []string) ([]Outcome, error) {
	var resp outcomesResponse
	if err := d.call(ctx, "/xa/rollback", xidsRequest{XIDs: xids}, &resp); err != nil {
		return nil, err
	}
	return resp.Outcomes, nil
}

// Recover lists prepared branches of owner ("" for all).
func (d *dbClient) Recover(ctx context.Context, owner string) ([]Pending, error) {
	var resp struct {
		Pending []Pending `json:"pending"`
	}
	if err := d.call(ctx, "/xa/recover?owner="+url.QueryEscape(owner), nil, &resp); err != nil {
		return nil, err
	}
	return resp.Pending, nil
}

func expect(n int64) *int64 { return &n }
