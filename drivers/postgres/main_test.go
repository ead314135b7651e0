package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/pgtest"
)

// One base directory per test package; each test makes its own clusters in
// it and every cluster started is stopped when the package's tests end.
var (
	env        *pgtest.Env
	skipReason string

	startedMu sync.Mutex
	started   []string
)

func TestMain(m *testing.M) {
	if why := pgtest.Unavailable(); why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "FAIL: PostgreSQL tests cannot run in CI: "+why)
			os.Exit(1)
		}
		skipReason = why
		os.Exit(m.Run())
	}
	var err error
	env, err = pgtest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	startedMu.Lock()
	for _, dir := range started {
		env.Stop(dir)
	}
	startedMu.Unlock()
	env.Close()
	os.Exit(code)
}

func needPG(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// track remembers a data directory to stop at the end.
func track(dir string) {
	startedMu.Lock()
	defer startedMu.Unlock()
	started = append(started, dir)
}

// newCluster initdb's a cluster and returns its directory and port.
func newCluster(t *testing.T, name string) (string, int) {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := env.InitDB(name, port)
	if err != nil {
		t.Fatal(err)
	}
	track(dir)
	return dir, port
}

// settings are a component's settings as a plan writes them: templates over
// the site's settings, the password a secret reference.
func testSettings(extra map[string]any) map[string]any {
	s := map[string]any{
		"dataDir":   `{{index .Site.Settings "pgdata"}}`,
		"port":      `{{index .Site.Settings "pgport"}}`,
		"host":      "127.0.0.1",
		"binDir":    env.BinDir,
		"socketDir": env.SocketDir(),
		"password":  "env:" + pgtest.PasswordEnv,
		"timeouts":  map[string]any{"start": "60s", "stopSmart": "10s", "stopFast": "30s", "catchUp": "30s", "promote": "30s"},
	}
	if env.OSUser != "" {
		s["osUser"] = env.OSUser
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func target(site, dir string, port int, extra map[string]any) drivers.Target {
	return drivers.Target{
		Plan: "pgtest",
		Site: drivers.Site{Name: site, Role: "primary", Settings: map[string]any{"pgdata": dir, "pgport": fmt.Sprint(port)}},
		Component: drivers.Component{
			Name: "db", Role: "database", Settings: testSettings(extra),
		},
	}
}

func newDriver(t *testing.T) *Driver {
	d := New(zaptest.NewLogger(t))
	t.Cleanup(d.Close)
	return d
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sqlConn connects as the superuser over TCP.
func sqlConn(t *testing.T, port int) *pgx.Conn {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable password=%s", port, env.Password))
	if err != nil {
		t.Fatalf("connect to %d: %v", port, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func mustExec(t *testing.T, port int, sql string, args ...any) {
	t.Helper()
	if _, err := sqlConn(t, port).Exec(ctxFor(t, 30*time.Second), sql, args...); err != nil {
		t.Fatalf("%s on %d: %v", sql, port, err)
	}
}

func count(t *testing.T, port int, table string) int {
	t.Helper()
	var n int
	if err := sqlConn(t, port).QueryRow(ctxFor(t, 10*time.Second), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s on %d: %v", table, port, err)
	}
	return n
}

// noSecret fails when the password appears anywhere in v's JSON form.
func noSecret(t *testing.T, what string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), env.Password) {
		t.Fatalf("%s carries the password: %s", what, b)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
