package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver/pgtest"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// dbRewriteDatabase is the test's database in the package's PostgreSQL
// cluster: the application's configuration, held in a table.
const dbRewriteDatabase = "dbrewrite"

// dbRewritePlan adds to the lab plan a rewrite of the endpoints the
// application keeps in PostgreSQL, and a user step with the sql driver that
// checks, after the environment phase, that they name the restored site.
func dbRewritePlan(text string) string {
	text = strings.Replace(text, "\nenvironment:\n", `
environment:
  - name: endpoints-in-db
    sql:
      dsn: env:DROVER_DBREWRITE_DSN
      password: env:DROVER_DBREWRITE_PASSWORD
      statement: "UPDATE app_endpoints SET host = $1 WHERE host = $2"
    primary: 127.0.1.1
    secondary: 127.0.2.1
    sandbox: 127.0.3.1
`, 1)
	return text + `
steps:
  - name: endpoints-moved
    after: environment
    runs: [failover]
    driver: sql
    settings:
      dsn: env:DROVER_DBREWRITE_DSN
      password: env:DROVER_DBREWRITE_PASSWORD
      query: "SELECT name, host FROM app_endpoints WHERE host = $1 ORDER BY name"
      args: ['{{index .Site.Settings "host"}}']
      expect:
        rows: [[bpm-datasource, 127.0.2.1], [orders-api, 127.0.2.1]]
`
}

// TestDatabaseRewriteInALabFailover: the application's endpoints are held
// in a PostgreSQL table; the lab failover's environment phase rewrites
// them from dc1's address to dc2's through the sql driver, beside the file
// rewrite, and the report records how many rows changed where, as it does
// for files. A user step with the sql driver reads them back at dc2.
func TestDatabaseRewriteInALabFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	c := pg.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dbRewriteSetup(t, ctx, c)
	t.Setenv("DROVER_DBREWRITE_DSN", c.URL(dbRewriteDatabase))
	c.PasswordEnv(t, "DROVER_DBREWRITE_PASSWORD")

	e := newLabEnv(t, envOptions{name: "dbrewrite", edit: dbRewritePlan})
	e.up()
	e.enable()
	pt := e.backup(ctx, e.p, contract.ModeFull, "dbrewrite")
	_, err := e.l.Disaster("dc1")
	require.NoError(t, err)

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, PointID: pt.ID})
	require.NoError(t, err)
	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "failover")

	assert.Equal(t, map[string]string{
		"bpm-datasource": "127.0.2.1",
		"orders-api":     "127.0.2.1",
		"payments-api":   "payments.example.com",
	}, dbRewriteRows(t, ctx, c), "the endpoints name dc2 after the failover; the others are untouched")

	var r report.Report
	readJSON(t, res.Report.JSON, &r)
	env := userStepsStep(t, r, "apply environment changes")
	assert.Equal(t, "ok", env.Outcome)
	assert.Equal(t, "dc2", env.Site)
	assert.Contains(t, env.Detail, "site-host: ", "the file rewrite is reported")
	assert.Contains(t, env.Detail, "endpoints-in-db: 2 rows changed in 127.0.0.1:", "the database rewrite is reported like it")
	assert.Contains(t, env.Detail, "/"+dbRewriteDatabase)
	assert.NotContains(t, env.Detail, c.Password)

	s := userStepsStep(t, r, "user step endpoints-moved")
	assert.Equal(t, "ok", s.Outcome)
	assert.Equal(t, "dc2", s.Site)
	assert.Contains(t, s.Detail, "after environment")
	assert.True(t, !env.Ended.After(s.Started), "the sql step ran after the environment phase")
}

// dbRewriteSetup creates the test's database with its endpoints table, two
// rows naming dc1's address and one naming neither site.
func dbRewriteSetup(t *testing.T, ctx context.Context, c *pgtest.Cluster) {
	t.Helper()
	admin := dbRewriteConnect(t, ctx, c, "postgres")
	_, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbRewriteDatabase)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+dbRewriteDatabase)
	require.NoError(t, err)
	conn := dbRewriteConnect(t, ctx, c, dbRewriteDatabase)
	_, err = conn.Exec(ctx, `CREATE TABLE app_endpoints (name text PRIMARY KEY, host text NOT NULL);
INSERT INTO app_endpoints VALUES ('orders-api', '127.0.1.1'), ('bpm-datasource', '127.0.1.1'), ('payments-api', 'payments.example.com')`)
	require.NoError(t, err)
}

func dbRewriteConnect(t *testing.T, ctx context.Context, c *pgtest.Cluster, database string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(c.URL(database))
	require.NoError(t, err)
	cfg.Password = c.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func dbRewriteRows(t *testing.T, ctx context.Context, c *pgtest.Cluster) map[string]string {
	t.Helper()
	rows, err := dbRewriteConnect(t, ctx, c, dbRewriteDatabase).Query(ctx, "SELECT name, host FROM app_endpoints")
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var name, host string
		require.NoError(t, rows.Scan(&name, &host))
		out[name] = host
	}
	require.NoError(t, rows.Err())
	return out
}
