package devserver

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/devserver/pgtest"
)

// One throwaway PostgreSQL cluster for the package's tests; each test uses
// databases of its own on it.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop throwaway PostgreSQL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const pgPasswordEnv = "DEVSERVER_TEST_PGPASSWORD"

// pgOptions is a Postgres on the package's cluster for database (created by
// Start when missing), with the password as an env: reference.
func pgOptions(t *testing.T, database string) *Postgres {
	c := pg.Get(t)
	return &Postgres{URL: c.URL(database), Password: "env:" + pgPasswordEnv}
}

// pgQuery opens database on the package's cluster for checks.
func pgQuery(t *testing.T, database string) *sql.DB {
	c := pg.Get(t)
	cfg := (&Postgres{Host: c.Host, Port: c.Port, User: c.User}).sqlConfig(database, c.Password, 2)
	dsn, err := postgresDSN(cfg, c.Password)
	require.NoError(t, err)
	db, err := sql.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func schemaVersion(t *testing.T, db *sql.DB, database string) (version string, updates int) {
	t.Helper()
	require.NoError(t, db.QueryRow(`SELECT curr_version FROM schema_version WHERE db_name = $1`, database).Scan(&version))
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM schema_update_history`).Scan(&updates))
	return version, updates
}

func TestPostgresSchemaSetUpOnEmptyDatabaseAndIdempotent(t *testing.T) {
	c := pg.Get(t)
	t.Setenv(pgPasswordEnv, c.Password)
	o, err := Options{Postgres: pgOptions(t, "schema_idem"), SearchAttributes: testSearchAttributes}.withDefaults()
	require.NoError(t, err)
	logger := zaptest.NewLogger(t)

	began := time.Now()
	st, err := preparePostgres(o, logger)
	require.NoError(t, err, "first set-up on an empty cluster (databases created)")
	t.Logf("schema set-up on empty databases took %s", time.Since(began))
	assert.Equal(t, int32(PostgresHistoryShards), st.historyShards)
	assert.Equal(t, PostgresPlugin, st.defaultStore.PluginName)
	assert.Equal(t, "schema_idem_visibility", st.visibility.DatabaseName)

	main, vis := pgQuery(t, "schema_idem"), pgQuery(t, "schema_idem_visibility")
	v, mainUpdates := schemaVersion(t, main, "schema_idem")
	assert.Equal(t, PostgresSchemaVersion, v)
	v, visUpdates := schemaVersion(t, vis, "schema_idem_visibility")
	assert.Equal(t, PostgresVisibilitySchemaVersion, v)
	assert.Greater(t, mainUpdates, 10, "every versioned step from 0.0 is recorded")

	var namespaces int
	require.NoError(t, main.QueryRow(`SELECT count(*) FROM namespaces WHERE name = 'default'`).Scan(&namespaces))
	assert.Equal(t, 1, namespaces)

	// The second time: nothing to do, nothing changes.
	began = time.Now()
	_, err = preparePostgres(o, logger)
	require.NoError(t, err, "second set-up on the same databases")
	t.Logf("schema set-up on up-to-date databases took %s", time.Since(began))
	v, updates := schemaVersion(t, main, "schema_idem")
	assert.Equal(t, PostgresSchemaVersion, v)
	assert.Equal(t, mainUpdates, updates, "no schema step ran again")
	_, updates = schemaVersion(t, vis, "schema_idem_visibility")
	assert.Equal(t, visUpdates, updates)
	require.NoError(t, main.QueryRow(`SELECT count(*) FROM namespaces WHERE name = 'default'`).Scan(&namespaces))
	assert.Equal(t, 1, namespaces, "the namespace is not created twice")

	// A database at a newer version than this server knows is refused.
	_, err = vis.Exec(`UPDATE schema_version SET curr_version = '99.1' WHERE db_name = $1`, "schema_idem_visibility")
	require.NoError(t, err)
	_, err = preparePostgres(o, logger)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "99.1")
	assert.Contains(t, err.Error(), "newer than "+PostgresVisibilitySchemaVersion)
	assert.Contains(t, err.Error(), "schema_idem_visibility")
}

func TestPostgresWrongPasswordIsAClearErrorWithoutThePassword(t *testing.T) {
	pg.Get(t)
	const wrong = "not-the-password-4711"
	t.Setenv(pgPasswordEnv, wrong)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Start(ctx, Options{Postgres: pgOptions(t, "wrong_pw"), UIPort: -1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "password authentication failed")
	assert.NotContains(t, err.Error(), wrong)
}

func TestPostgresOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Postgres
		want string
	}{
		{"password in URL", Postgres{URL: "postgres://u:secret@h/db"}, "secret reference"},
		{"URL and host", Postgres{URL: "postgres://u@h/db", Host: "h"}, "either URL or"},
		{"other scheme", Postgres{URL: "mysql://u@h/db"}, `scheme "mysql"`},
		{"no host", Postgres{User: "u"}, "no host"},
		{"no user", Postgres{URL: "postgres://h/db"}, "no user"},
		{"bad port", Postgres{Host: "h", User: "u", Port: 70000}, "out of range"},
		{"password not a reference", Postgres{Host: "h", User: "u", Password: "hunter2"}, "not a secret reference"},
		{"same databases", Postgres{Host: "h", User: "u", Database: "x", VisibilityDatabase: "x"}, "must differ"},
		{"quote in name", Postgres{Host: "h", User: "u", Database: `x"y`}, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options{Postgres: &tc.p}.withDefaults()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
			assert.NotContains(t, err.Error(), "secret@")
		})
	}
	_, err := Options{Postgres: &Postgres{Host: "h", User: "u"}, DBFile: "x.db"}.withDefaults()
	assert.ErrorContains(t, err, "exclusive")

	p, err := Postgres{URL: "postgresql://temporal@db.example:6432/tdb?sslmode=require", Password: "env:X"}.resolved()
	require.NoError(t, err)
	assert.Equal(t, Postgres{Host: "db.example", Port: 6432, User: "temporal", Database: "tdb", VisibilityDatabase: "tdb_visibility",
		Password: "env:X", ConnectAttributes: map[string]string{"sslmode": "require"}}, p)
	assert.Equal(t, "postgres://temporal@db.example:6432/tdb", p.Describe())
	p, err = Postgres{Host: "h", User: "u"}.resolved()
	require.NoError(t, err)
	assert.Equal(t, "temporal", p.Database)
	assert.Equal(t, "temporal_visibility", p.VisibilityDatabase)
	assert.Equal(t, 5432, p.Port)
}

// waitThenSignal sleeps on a timer, then waits for the "go" signal.
func waitThenSignal(ctx workflow.Context, d time.Duration) (string, error) {
	if err := workflow.Sleep(ctx, d); err != nil {
		return "", err
	}
	var msg string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &msg)
	return "got " + msg, nil
}

func startPGServer(t *testing.T, ctx context.Context, database string, port int) *Server {
	t.Helper()
	began := time.Now()
	s, err := Start(ctx, Options{Postgres: pgOptions(t, database), Port: port, UIPort: -1,
		SearchAttributes: testSearchAttributes, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Logf("Start on PostgreSQL (%s) took %s", database, time.Since(began))
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func TestPostgresWorkflowSurvivesServerRestart(t *testing.T) {
	c := pg.Get(t)
	t.Setenv(pgPasswordEnv, c.Password)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s := startPGServer(t, ctx, "restart", 0)
	_, portText, _ := strings.Cut(s.FrontendAddress(), ":")
	var port int
	_, err := fmt.Sscan(portText, &port)
	require.NoError(t, err)

	const tq = "pg-restart"
	cl := dialTest(t, s)
	w := worker.New(cl, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(waitThenSignal, workflow.RegisterOptions{Name: "waitThenSignal"})
	require.NoError(t, w.Start())

	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "pg-survivor", TaskQueue: tq,
		TypedSearchAttributes: temporal.NewSearchAttributes(planKey.ValueSet("pg-plan")),
	}, "waitThenSignal", 2*time.Second)
	require.NoError(t, err)
	// The first workflow task ran: the timer is in the history.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		h := cl.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		timer := false
		for h.HasNext() {
			e, err := h.Next()
			require.NoError(ct, err)
			timer = timer || e.GetEventType() == enumspb.EVENT_TYPE_TIMER_STARTED
		}
		assert.True(ct, timer, "timer started")
	}, 30*time.Second, 50*time.Millisecond)

	// Kill the server mid-run: the timer fires while it is down.
	w.Stop()
	cl.Close()
	require.NoError(t, s.Stop())
	time.Sleep(3 * time.Second)

	s2 := startPGServer(t, ctx, "restart", port)
	cl2 := dialTest(t, s2)
	w2 := worker.New(cl2, tq, worker.Options{})
	w2.RegisterWorkflowWithOptions(waitThenSignal, workflow.RegisterOptions{Name: "waitThenSignal"})
	require.NoError(t, w2.Start())
	t.Cleanup(w2.Stop)

	desc, err := cl2.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
	require.NoError(t, cl2.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "go", "after restart"))
	var out string
	require.NoError(t, cl2.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &out))
	assert.Equal(t, "got after restart", out)

	// Visibility (its own database) followed the run across the restart.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := listIDs(ctx, cl2, `DroverPlan = "pg-plan" AND ExecutionStatus = "Completed"`)
		require.NoError(ct, err)
		assert.Equal(ct, []string{"pg-survivor"}, ids)
	}, 20*time.Second, 100*time.Millisecond)
}

func stepActivity(_ context.Context, n int) (int, error) { return n * 2, nil }

// fanWorkflow runs one activity and a short timer: the writes a DR step makes.
func fanWorkflow(ctx workflow.Context, n int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var got int
	if err := workflow.ExecuteActivity(ctx, "step", n).Get(ctx, &got); err != nil {
		return 0, err
	}
	if err := workflow.Sleep(ctx, 100*time.Millisecond); err != nil {
		return 0, err
	}
	return got, nil
}

func TestPostgresManyConcurrentWorkflowsComplete(t *testing.T) {
	c := pg.Get(t)
	t.Setenv(pgPasswordEnv, c.Password)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startPGServer(t, ctx, "concurrent", 0)
	cl := dialTest(t, s)

	const tq, n = "pg-many", 300
	w := worker.New(cl, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(fanWorkflow, workflow.RegisterOptions{Name: "fan"})
	w.RegisterActivityWithOptions(stepActivity, activity.RegisterOptions{Name: "step"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	began := time.Now()
	var wg sync.WaitGroup
	var done atomic.Int32
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("pg-many-%d", i), TaskQueue: tq}, "fan", i)
			if err != nil {
				errs <- fmt.Errorf("start %d: %w", i, err)
				return
			}
			var got int
			if err := run.Get(ctx, &got); err != nil {
				errs <- fmt.Errorf("workflow %d: %w", i, err)
				return
			}
			if got != 2*i {
				errs <- fmt.Errorf("workflow %d returned %d, want %d", i, got, 2*i)
				return
			}
			done.Add(1)
		}()
	}
	wg.Wait()
	close(errs)
	var failures []string
	for err := range errs {
		failures = append(failures, err.Error())
	}
	require.Empty(t, failures, "%d of %d workflows failed", len(failures), n)
	assert.Equal(t, int32(n), done.Load())
	t.Logf("%d concurrent workflows (activity + timer each) completed on PostgreSQL in %s", n, time.Since(began))
}

func TestRedactErrorHidesThePasswordInEveryForm(t *testing.T) {
	const pw = "p@ss word/1"
	for _, msg := range []string{"dial postgres://u:" + "p%40ss+word%2F1" + "@h/db failed", "bad " + pw, "path p@ss%20word%2F1"} {
		err := redactError(fmt.Errorf("%s", msg), pw)
		assert.NotContains(t, err.Error(), "ss word", msg)
		assert.NotContains(t, err.Error(), "ss+word", msg)
		assert.NotContains(t, err.Error(), "ss%20word", msg)
		assert.Contains(t, err.Error(), "[redacted]", msg)
	}
	plain := fmt.Errorf("nothing secret")
	assert.Same(t, plain, redactError(plain, pw))
	assert.NoError(t, redactError(nil, pw))
}
