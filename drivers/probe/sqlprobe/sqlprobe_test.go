package sqlprobe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
	"github.com/drover-dr/drover/drivers/internal/pgtest"
)

// One throwaway PostgreSQL for the package, started in TestMain.
var (
	env        *pgtest.Env
	port       int
	skipReason string
)

const dsnEnv = "DROVER_SQLPROBE_DSN"

func TestMain(m *testing.M) {
	if why := pgtest.Unavailable(); why != "" {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "FAIL: PostgreSQL tests cannot run in CI: "+why)
			os.Exit(1)
		}
		skipReason = why
		os.Exit(m.Run())
	}
	code, err := runWithServer(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlprobe tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runWithServer(m *testing.M) (int, error) {
	var err error
	if env, err = pgtest.New(); err != nil {
		return 0, err
	}
	defer env.Close()
	if port, err = pgtest.FreePort(); err != nil {
		return 0, err
	}
	dir, err := env.InitDB("probe", port)
	if err != nil {
		return 0, err
	}
	if err := env.Start(dir); err != nil {
		return 0, err
	}
	defer env.Stop(dir)
	// The DSN carries the password: the probe must never repeat it.
	os.Setenv(dsnEnv, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable password=%s", port, env.Password))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv(dsnEnv))
	if err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, state text, amount numeric(10,2), paid boolean, note text);
		INSERT INTO orders VALUES (1, 'open', 10.50, false, NULL), (2, 'shipped', 99.99, true, 'fragile'), (3, 'open', 5, true, NULL)`)
	conn.Close(ctx)
	if err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func need(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

func req(settings map[string]any) drivers.CheckRequest {
	return drivers.CheckRequest{
		Plan: "p", Level: "consistency", Name: "orders",
		Site:     drivers.Site{Name: "dc1", Role: "primary", Settings: map[string]any{"state": "open", "dbport": fmt.Sprint(port)}},
		Settings: settings,
	}
}

func with(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

var base = map[string]any{"dsn": "env:" + dsnEnv, "query": "SELECT count(*) FROM orders"}

func check(t *testing.T, settings map[string]any) drivers.CheckResult {
	t.Helper()
	res, err := New(nil).Check(context.Background(), req(settings))
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), env.Password) {
		t.Fatalf("result carries the password: %s", b)
	}
	return res
}

func TestThresholds(t *testing.T) {
	need(t)
	res := check(t, with(base, "expect", map[string]any{"min": 3, "max": 3}))
	if !res.Passed || res.Details["value"] != "3" {
		t.Fatalf("count = 3 within [3,3]: %+v", res)
	}
	res = check(t, with(base, "expect", map[string]any{"min": 4}))
	if res.Passed || !strings.Contains(res.Summary, "below the minimum 4") {
		t.Fatalf("count 3 with min 4 = %+v; want a failure saying so", res)
	}
	res = check(t, with(base, "query", "SELECT sum(amount) FROM orders", "expect", map[string]any{"max": 100}))
	if res.Passed || !strings.Contains(res.Summary, "115.49") {
		t.Fatalf("sum 115.49 with max 100 = %+v", res)
	}
	res = check(t, with(base, "query", "SELECT id FROM orders", "expect", map[string]any{"min": 1}))
	if res.Passed || !strings.Contains(res.Summary, "one row, one column") {
		t.Fatalf("min on three rows = %+v; want a failure: not a scalar", res)
	}
}

func TestExactRows(t *testing.T) {
	need(t)
	rows := []any{
		[]any{1, "open", 10.5, false, nil},
		[]any{3, "open", 5, true, nil},
	}
	s := with(base,
		"query", "SELECT id, state, amount, paid, note FROM orders WHERE state = $1 ORDER BY id",
		"args", []any{`{{index .Site.Settings "state"}}`},
		"expect", map[string]any{"rows": rows, "rowCount": 2})
	if res := check(t, s); !res.Passed {
		t.Fatalf("exact rows: %+v", res)
	}
	rows[1] = []any{3, "open", 5, false, nil}
	res := check(t, with(s, "expect", map[string]any{"rows": rows}))
	if res.Passed || !strings.Contains(res.Summary, "row 2 column paid") {
		t.Fatalf("mismatch on paid = %+v", res)
	}
	res = check(t, with(s, "expect", map[string]any{"rowCount": 3}))
	if res.Passed || !strings.Contains(res.Summary, "2 row(s), want 3") {
		t.Fatalf("row count = %+v", res)
	}
}

func TestRanButFailedIsNotAnError(t *testing.T) {
	need(t)
	expect := map[string]any{"min": 1}
	// An SQL error, a database that does not answer, a write refused: the
	// check ran and the answer is no.
	res := check(t, with(base, "query", "SELECT count(*) FROM no_such_table", "expect", expect))
	if res.Passed || !strings.Contains(res.Summary, "no_such_table") {
		t.Fatalf("missing table = %+v", res)
	}
	down, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	res = check(t, with(base, "port", fmt.Sprint(down), "expect", expect, "timeout", "3s"))
	if res.Passed || !strings.Contains(res.Summary, "failed") {
		t.Fatalf("database down = %+v", res)
	}
	res = check(t, with(base, "query", "INSERT INTO orders VALUES (9, 'x', 1, true, NULL) RETURNING id", "expect", expect))
	if res.Passed || !strings.Contains(res.Summary, "read-only") {
		t.Fatalf("a write = %+v; want refused by the read-only session", res)
	}
	if n := check(t, with(base, "expect", map[string]any{"rowCount": 1, "min": 3, "max": 3})); !n.Passed {
		t.Fatalf("the write happened: %+v", n)
	}
	// The port from the site's settings, the password apart from the DSN.
	t.Setenv("DROVER_SQLPROBE_NOPW", fmt.Sprintf("postgres://postgres@127.0.0.1:1/postgres?sslmode=disable"))
	t.Setenv("DROVER_SQLPROBE_PW", env.Password)
	res = check(t, with(base, "dsn", "env:DROVER_SQLPROBE_NOPW", "password", "env:DROVER_SQLPROBE_PW",
		"port", `{{index .Site.Settings "dbport"}}`, "expect", map[string]any{"min": 3}))
	if !res.Passed {
		t.Fatalf("password by its own reference, port from the site: %+v", res)
	}
	t.Setenv("DROVER_SQLPROBE_PW", "wrong-password-abc")
	res = check(t, with(base, "dsn", "env:DROVER_SQLPROBE_NOPW", "password", "env:DROVER_SQLPROBE_PW",
		"port", `{{index .Site.Settings "dbport"}}`, "expect", map[string]any{"min": 3}))
	if res.Passed || strings.Contains(res.Summary+res.Evidence.Output, "wrong-password-abc") {
		t.Fatalf("wrong password = %+v", res)
	}
}

func TestCouldNotRunIsAPermanentError(t *testing.T) {
	p := New(nil)
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"literal dsn", with(base, "dsn", "host=x password=hunter22", "expect", map[string]any{"min": 1}), "dsn"},
		{"no dsn", with(base, "dsn", nil, "expect", map[string]any{"min": 1}), "dsn"},
		{"no query", with(base, "query", nil, "expect", map[string]any{"min": 1}), "query"},
		{"no expectation", base, "expect"},
		{"unknown field", with(base, "expect", map[string]any{"min": 1}, "qeury", "x"), `unknown field "qeury"`},
		{"unknown expectation", with(base, "expect", map[string]any{"minimum": 1}), `unknown field "minimum"`},
		{"min above max", with(base, "expect", map[string]any{"min": 2, "max": 1}), "min 2 is above max 1"},
		{"unset variable", with(base, "dsn", "env:DROVER_SQLPROBE_UNSET", "expect", map[string]any{"min": 1}), "DROVER_SQLPROBE_UNSET"},
		{"missing site key", with(base, "host", `{{index .Site.Settings "dbhost"}}`, "expect", map[string]any{"min": 1}), "dbhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Check(context.Background(), req(tc.settings))
			if err == nil || !drivers.Permanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check = %v; want a permanent error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Fatalf("error quotes a secret: %v", err)
			}
		})
	}
	t.Setenv("DROVER_SQLPROBE_BAD", "postgres://user:hunter22@[::1:5432/x")
	_, err := p.Check(context.Background(), req(with(base, "dsn", "env:DROVER_SQLPROBE_BAD", "expect", map[string]any{"min": 1})))
	if err == nil || !drivers.Permanent(err) || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("unparsable dsn = %v; want a permanent error without the dsn", err)
	}
	_, err = p.Check(cancelledCtx(), req(with(base, "expect", map[string]any{"min": 1})))
	if err == nil || errors.Is(err, drivers.ErrBadSettings) {
		t.Fatalf("cancelled = %v; want a plain error", err)
	}
}

func cancelledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestConformance(t *testing.T) {
	need(t)
	pass := req(with(base, "expect", map[string]any{"min": 1}))
	fail := req(with(base, "expect", map[string]any{"max": 1}))
	slow := req(with(base, "query", "SELECT 1 FROM pg_sleep(60)", "timeout", "2m", "expect", map[string]any{"min": 1}))
	driverstest.Probe(t, driverstest.ProbeCase{
		Driver: New(nil),
		Pass:   pass,
		Fail:   &fail,
		Slow:   &slow,
		Secret: env.Password,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with(pass.Settings, "qeury", "x"), Field: "qeury"},
			{Name: "literal dsn", Settings: with(pass.Settings, "dsn", "host=x password="+env.Password), Field: "dsn"},
			{Name: "no expectation", Settings: with(pass.Settings, "expect", nil), Field: "expect"},
		},
		EvidenceLimit: EvidenceLimit,
	})
}
