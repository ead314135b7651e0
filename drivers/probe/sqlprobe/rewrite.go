package sqlprobe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// DefaultRewriteTimeout bounds a rewrite's connect and statement.
const DefaultRewriteTimeout = 30 * time.Second

// Statement is an environment rewrite of values held in a database (the
// seed's step 5 for host names and endpoints a product keeps in its tables).
// SQL runs with $1 = the value at the site being restored and $2 = the value
// it replaces; it selects its rows by $2, so a second run changes nothing.
type Statement struct {
	// DSN and Password are secret references (templates), as in the probe.
	DSN      string
	Password string
	// Host, Port and Database override the DSN's (templates).
	Host     string
	Port     string
	Database string
	SQL      string
	Timeout  time.Duration
}

// Applied is what a rewrite statement changed.
type Applied struct {
	// Database is host:port/database, never the DSN.
	Database string
	// Rows is the number of rows the statement changed.
	Rows     int64
	Evidence drivers.Evidence
}

// Rewrite runs st at site in one transaction, replacing from with to. The
// DSN and password never appear in the evidence or the error. Settings that
// cannot work (a reference that does not resolve, a bad DSN) are
// drivers.ErrBadSettings; a database that refuses the statement is an error
// a retry may fix.
func Rewrite(ctx context.Context, site drivers.Site, plan string, st Statement, to, from string) (Applied, error) {
	var res Applied
	if strings.TrimSpace(st.SQL) == "" {
		return res, bad(errors.New("statement: required"))
	}
	c := &config{timeout: st.Timeout}
	if c.timeout <= 0 {
		c.timeout = DefaultRewriteTimeout
	}
	var errs []error
	tpl := func(field, src string) *tmpl.Template {
		if src == "" {
			return nil
		}
		t, err := tmpl.Parse(field, src, tmpl.ProbeData{})
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	c.dsn, c.password = tpl("dsn", st.DSN), tpl("password", st.Password)
	c.host, c.port, c.database = tpl("host", st.Host), tpl("port", st.Port), tpl("database", st.Database)
	if c.dsn == nil {
		errs = append(errs, errors.New("dsn: required (a secret reference, env:NAME or file:PATH)"))
	}
	if len(errs) > 0 {
		return res, bad(errors.Join(errs...))
	}
	var secrets []string
	redact := func(s string) string { return tmpl.Redact(s, secrets) }
	cfg, err := c.connConfig(tmpl.ProbeData{Plan: plan, Site: site}, &secrets)
	if err != nil {
		return res, drivers.BadSettingsf("%s", redact(err.Error()))
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "off"
	cfg.RuntimeParams["application_name"] = "drover-sql-rewrite"
	res.Database = fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	res.Evidence.Action = "sql rewrite on " + res.Database + ": " + short(st.SQL)
	if from == to {
		res.Evidence.AlreadyDone = true
		res.Evidence.Output = "the value is the same at both sites: nothing to change"
		return res, nil
	}
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	res.Rows, err = execInTx(qctx, cfg, st.SQL, to, from)
	res.Evidence.Duration = time.Since(start)
	if err != nil {
		msg := redact(err.Error())
		if ctx.Err() == nil && qctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %s", c.timeout)
		}
		res.Evidence.ExitCode = 1
		res.Evidence.Output = drivers.Truncate(msg, EvidenceLimit)
		return res, fmt.Errorf("sql rewrite on %s: %s", res.Database, msg)
	}
	res.Evidence.AlreadyDone = res.Rows == 0
	res.Evidence.Output = fmt.Sprintf("%d row(s) changed", res.Rows)
	return res, nil
}

// execInTx runs the statement in its own transaction and returns the rows
// it changed.
func execInTx(ctx context.Context, cfg *pgx.ConnConfig, sql, to, from string) (int64, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	tag, err := tx.Exec(ctx, sql, to, from)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
