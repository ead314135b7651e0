package sqlprobe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/drover-dr/drover/drivers"
)

func endpoints(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsnValue())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS endpoints;
		CREATE TABLE endpoints (name text PRIMARY KEY, host text);
		INSERT INTO endpoints VALUES ('bpmdb', 'db.dc1'), ('mondb', 'db.dc1'), ('mail', 'mail.example')`); err != nil {
		t.Fatal(err)
	}
	return conn
}

func hosts(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), `SELECT string_agg(name || '=' || host, ',' ORDER BY name) FROM endpoints`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

var rewriteSite = drivers.Site{Name: "dc2", Role: "secondary", Settings: map[string]any{"dbhost": "127.0.0.1"}}

func TestRewriteChangesTheRowsOnceAndNamesNoSecret(t *testing.T) {
	need(t)
	conn := endpoints(t)
	st := Statement{DSN: "env:" + dsnEnv, Host: `{{index .Site.Settings "dbhost"}}`, SQL: "UPDATE endpoints SET host = $1 WHERE host = $2"}
	res, err := Rewrite(context.Background(), rewriteSite, "p", st, "db.dc2", "db.dc1")
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if res.Rows != 2 || res.Evidence.AlreadyDone {
		t.Fatalf("want 2 rows changed, got %+v", res)
	}
	if got := hosts(t, conn); got != "bpmdb=db.dc2,mail=mail.example,mondb=db.dc2" {
		t.Fatalf("table after the rewrite: %s", got)
	}
	again, err := Rewrite(context.Background(), rewriteSite, "p", st, "db.dc2", "db.dc1")
	if err != nil {
		t.Fatalf("second rewrite: %v", err)
	}
	if again.Rows != 0 || !again.Evidence.AlreadyDone {
		t.Fatalf("a second run must change nothing, got %+v", again)
	}
	for _, r := range []Applied{res, again} {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), env.Password) {
			t.Fatalf("evidence carries the password: %s", b)
		}
	}
}

func TestRewriteThatFailsRollsBackAndHidesTheDSN(t *testing.T) {
	need(t)
	conn := endpoints(t)
	// The second statement fails: the first one's change must not stay.
	st := Statement{DSN: "env:" + dsnEnv, SQL: "WITH u AS (UPDATE endpoints SET host = $1 WHERE host = $2 RETURNING 1) SELECT 1/0 FROM u"}
	_, err := Rewrite(context.Background(), rewriteSite, "p", st, "db.dc2", "db.dc1")
	if err == nil || errors.Is(err, drivers.ErrBadSettings) {
		t.Fatalf("want a database error, got %v", err)
	}
	if strings.Contains(err.Error(), env.Password) {
		t.Fatalf("error carries the password: %v", err)
	}
	if got := hosts(t, conn); got != "bpmdb=db.dc1,mail=mail.example,mondb=db.dc1" {
		t.Fatalf("a failed rewrite changed the table: %s", got)
	}
}

func TestRewriteBadSettingsArePermanent(t *testing.T) {
	need(t)
	for name, st := range map[string]Statement{
		"literal dsn":        {DSN: dsnValue(), SQL: "UPDATE endpoints SET host = $1 WHERE host = $2"},
		"unset reference":    {DSN: "env:DROVER_SQLPROBE_NOT_SET", SQL: "UPDATE endpoints SET host = $1 WHERE host = $2"},
		"no statement":       {DSN: "env:" + dsnEnv},
		"unknown site value": {DSN: "env:" + dsnEnv, Host: `{{index .Site.Settings "nohost"}}`, SQL: "UPDATE endpoints SET host = $1 WHERE host = $2"},
	} {
		_, err := Rewrite(context.Background(), rewriteSite, "p", st, "db.dc2", "db.dc1")
		if !errors.Is(err, drivers.ErrBadSettings) {
			t.Errorf("%s: want a bad-settings error, got %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), env.Password) {
			t.Errorf("%s: error carries the password: %v", name, err)
		}
	}
}

func dsnValue() string { return os.Getenv(dsnEnv) }
