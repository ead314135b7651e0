package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// waitCount waits until table on port holds want rows (a standby replays
// asynchronously).
func waitCount(t *testing.T, port int, table string, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := count(t, port, table)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on port %d holds %d rows after 60s; want %d", table, port, n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func currentLSN(t *testing.T, port int, sql string) uint64 {
	t.Helper()
	var s string
	if err := sqlConn(t, port).QueryRow(ctxFor(t, 10*time.Second), sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	v, ok := parseLSN(s)
	if !ok {
		t.Fatalf("LSN %q", s)
	}
	return v
}

// The seed's HADR takeover in PostgreSQL's words: a standby seeded at dc2,
// the primary at dc1 killed, dc1 fenced, dc2 promoted and taking writes,
// dc1 rewound as dc2's standby and caught up, then a planned switchover
// back to dc1 losing nothing.
func TestReplicationFailoverAndFailback(t *testing.T) {
	needPG(t)
	dir1, port1 := newCluster(t, "dc1")
	dir2 := filepath.Join(env.Base, "dc2")
	track(dir2)
	port2 := freePort(t)
	d := newDriver(t)
	ctx := ctxFor(t, 8*time.Minute)
	dc1 := target("dc1", dir1, port1, nil)
	dc2 := target("dc2", dir2, port2, nil)
	dc2.Site.Role = "secondary"

	if _, err := d.Start(ctx, dc1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, port1, "CREATE TABLE ledger (id bigserial PRIMARY KEY, site text, at timestamptz DEFAULT now())")
	mustExec(t, port1, "INSERT INTO ledger (site) SELECT 'dc1' FROM generate_series(1, 500)")

	// Seed: pg_basebackup -R into an empty directory owned by the server's user.
	res, err := d.Seed(ctx, dc1, dc2)
	if err != nil {
		t.Fatalf("seed: %v\n%+v", err, res)
	}
	if res.Role != drivers.RoleStandby || res.Method != "pg_basebackup" || res.AlreadyDone {
		t.Fatalf("seed result = %+v", res)
	}
	noSecret(t, "seed result", res)
	if res, err := d.Seed(ctx, dc1, dc2); err != nil || !res.AlreadyDone {
		t.Fatalf("second seed = %+v, %v; want a no-op", res, err)
	}
	if st, err := d.Status(ctx, dc2); err != nil || st.State != drivers.StateRunning || st.Detail != drivers.RoleStandby {
		t.Fatalf("standby status = %+v, %v", st, err)
	}

	// Rows written at the primary appear at the standby; lag is measured.
	mustExec(t, port1, "INSERT INTO ledger (site) SELECT 'dc1' FROM generate_series(1, 500)")
	waitCount(t, port2, "ledger", 1000)
	lag, err := d.Lag(ctx, dc1, dc2)
	if err != nil {
		t.Fatalf("lag: %v", err)
	}
	if !lag.PrimaryReachable || !lag.StandbyReachable || !lag.Streaming || !lag.BytesKnown || !lag.SecondsKnown ||
		lag.PrimaryPosition == "" || lag.ReplayedPosition == "" || lag.Bytes < 0 {
		t.Fatalf("lag = %+v", lag)
	}
	t.Logf("lag while streaming: %d bytes, %.3fs (primary %s, replayed %s)", lag.Bytes, lag.Seconds, lag.PrimaryPosition, lag.ReplayedPosition)
	noSecret(t, "lag", lag)

	// Disaster at dc1: the postmaster is killed.
	st, err := d.Status(ctx, dc1)
	if err != nil || st.PID <= 0 {
		t.Fatalf("primary status = %+v, %v", st, err)
	}
	lastAtPrimary := count(t, port1, "ledger")
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, d, dc1)
	lag, err = d.Lag(ctx, dc1, dc2)
	if err != nil || lag.PrimaryReachable || !lag.StandbyReachable || lag.BytesKnown || lag.ReplayedPosition == "" {
		t.Fatalf("lag with the primary down = %+v, %v; want the standby's side only", lag, err)
	}

	// Failover: fence the old primary where reachable, promote the standby.
	fres, err := d.Fence(ctx, dc1)
	if err != nil || fres.Method != "already stopped" {
		t.Fatalf("fence = %+v, %v", fres, err)
	}
	if _, err := os.Stat(filepath.Join(dir1, "standby.signal")); err != nil {
		t.Fatalf("fence left no standby.signal: %v", err)
	}
	pres, err := d.Promote(ctx, dc2)
	if err != nil {
		t.Fatalf("promote: %v\n%+v", err, pres)
	}
	if pres.Role != drivers.RolePrimary || pres.Timeline != 2 || pres.Position == "" {
		t.Fatalf("promote result = %+v", pres)
	}
	if res, err := d.Promote(ctx, dc2); err != nil || !res.AlreadyDone {
		t.Fatalf("second promote = %+v, %v; want a no-op", res, err)
	}
	if n := count(t, port2, "ledger"); n != lastAtPrimary {
		t.Fatalf("dc2 holds %d rows after promotion; dc1 had committed %d (all replicated before the kill)", n, lastAtPrimary)
	}
	mustExec(t, port2, "INSERT INTO ledger (site) SELECT 'dc2' FROM generate_series(1, 300)")

	// Failback, part one: dc1 rewound as a standby of dc2, catching up.
	rres, err := d.Reseed(ctx, dc2, dc1)
	if err != nil {
		t.Fatalf("reseed: %v\n%+v", err, rres)
	}
	if rres.Method != "pg_rewind" || rres.Role != drivers.RoleStandby {
		t.Fatalf("reseed = %+v; want pg_rewind", rres)
	}
	noSecret(t, "reseed result", rres)
	t.Logf("reseed: %s (%s)", rres.Method, rres.Detail)
	mustExec(t, port2, "INSERT INTO ledger (site) SELECT 'dc2' FROM generate_series(1, 200)")
	total := count(t, port2, "ledger")
	waitCount(t, port1, "ledger", total)
	if st, err := d.Status(ctx, dc1); err != nil || st.Detail != drivers.RoleStandby {
		t.Fatalf("dc1 after reseed = %+v, %v; want a standby", st, err)
	}
	if res, err := d.Reseed(ctx, dc2, dc1); err != nil || !res.AlreadyDone {
		t.Fatalf("second reseed = %+v, %v; want a no-op", res, err)
	}

	// Failback, part two: a planned switchover back to dc1, nothing lost.
	mustExec(t, port2, "INSERT INTO ledger (site) SELECT 'dc2-final' FROM generate_series(1, 100)")
	total = count(t, port2, "ledger")
	lastLSN := currentLSN(t, port2, "SELECT pg_current_wal_lsn()::text")
	sres, err := d.Switchover(ctx, dc2, dc1)
	if err != nil {
		t.Fatalf("switchover: %v\n%+v", err, sres)
	}
	if sres.LostBytes != 0 || sres.Role != drivers.RoleStandby || sres.Timeline != 3 {
		t.Fatalf("switchover = %+v", sres)
	}
	t.Logf("switchover: %s", sres.Detail)
	if n := count(t, port1, "ledger"); n != total {
		t.Fatalf("dc1 holds %d rows after the switchover; dc2 had committed %d", n, total)
	}
	if at := currentLSN(t, port1, "SELECT pg_current_wal_lsn()::text"); at < lastLSN {
		t.Fatalf("new primary at %s is behind the old primary's last position %s", formatLSN(at), formatLSN(lastLSN))
	}
	mustExec(t, port1, "INSERT INTO ledger (site) SELECT 'dc1-again' FROM generate_series(1, 50)")
	waitCount(t, port2, "ledger", total+50)
	lag, err = d.Lag(ctx, dc1, dc2)
	if err != nil || !lag.Streaming {
		t.Fatalf("lag after switchover = %+v, %v", lag, err)
	}
	for _, tg := range []drivers.Target{dc2, dc1} {
		if _, err := d.Stop(ctx, tg, drivers.StopGraceful); err != nil {
			t.Fatal(err)
		}
	}
}

func waitStopped(t *testing.T, d *Driver, tg drivers.Target) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := d.Status(context.Background(), tg)
		if err == nil && st.State == drivers.StateStopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %v (%v) 30s after the kill", tg.Site.Name, st.State, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A running primary is fenced by stopping it; one that cannot be seeded
// over is refused with a permanent error.
func TestFenceStopsARunningPrimaryAndSeedRefusesData(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "fence")
	d := newDriver(t)
	ctx := ctxFor(t, 3*time.Minute)
	tg := target("dc1", dir, port, nil)
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	res, err := d.Seed(ctx, target("dc2", filepath.Join(env.Base, "nowhere"), freePort(t), nil), tg)
	if err == nil || !drivers.Permanent(err) || !strings.Contains(err.Error(), "running primary") {
		t.Fatalf("seed over a running primary = %+v, %v; want a permanent refusal", res, err)
	}
	fres, err := d.Fence(ctx, tg)
	if err != nil || fres.Method != "stopped" || fres.AlreadyDone {
		t.Fatalf("fence = %+v, %v", fres, err)
	}
	// Restarted by someone, it comes up read-only, not as a second primary.
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	_, err = sqlConn(t, port).Exec(ctx, "CREATE TABLE should_fail (x int)")
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write on a fenced server restarted = %v; want read-only", err)
	}
	if _, err := d.Stop(ctx, tg, drivers.StopImmediate); err != nil {
		t.Fatal(err)
	}
	fres, err = d.Fence(ctx, tg)
	if err != nil || !fres.AlreadyDone {
		t.Fatalf("fence of a stopped server = %+v, %v; want a no-op", fres, err)
	}
}

// A former primary pg_rewind cannot handle (here: a cluster of another
// system, as after a reinstall) is moved aside, not deleted, and re-seeded
// with a fresh pg_basebackup.
func TestReseedFallsBackToBasebackup(t *testing.T) {
	needPG(t)
	dirA, portA := newCluster(t, "fallback-primary")
	dirB, portB := newCluster(t, "fallback-other")
	d := newDriver(t)
	ctx := ctxFor(t, 4*time.Minute)
	a := target("dc2", dirA, portA, nil)
	b := target("dc1", dirB, portB, nil)
	if _, err := d.Start(ctx, a); err != nil {
		t.Fatal(err)
	}
	mustExec(t, portA, "CREATE TABLE t AS SELECT generate_series(1, 42) AS n")
	res, err := d.Reseed(ctx, a, b)
	if err != nil {
		t.Fatalf("reseed: %v\n%+v", err, res)
	}
	if res.Method != "pg_basebackup" || !strings.Contains(res.Detail, "pg_rewind failed") || !strings.Contains(res.Detail, "drover-aside-") {
		t.Fatalf("reseed = %+v; want pg_basebackup after a failed pg_rewind", res)
	}
	aside, _ := filepath.Glob(dirB + ".drover-aside-*")
	if len(aside) != 1 {
		t.Fatalf("old data directory not kept aside: %v", aside)
	}
	if _, err := os.Stat(filepath.Join(aside[0], "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
	waitCount(t, portB, "t", 42)
	for _, tg := range []drivers.Target{b, a} {
		if _, err := d.Stop(ctx, tg, drivers.StopGraceful); err != nil {
			t.Fatal(err)
		}
	}
}

// A primary that answers at the component's address but is not in the data
// directory this host sees cannot be stopped from here: it is made
// read-only instead, and says so.
func TestFenceMakesAnUnstoppablePrimaryReadOnly(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "fence-ro")
	d := newDriver(t)
	ctx := ctxFor(t, 2*time.Minute)
	tg := target("dc1", dir, port, nil)
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	elsewhere := target("dc1", filepath.Join(env.Base, "not-its-data-dir"), port, nil)
	res, err := d.Fence(ctx, elsewhere)
	if err != nil || res.Method != "read-only" || res.AlreadyDone {
		t.Fatalf("fence = %+v, %v; want read-only", res, err)
	}
	_, err = sqlConn(t, port).Exec(ctx, "CREATE TABLE should_fail (x int)")
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write after a read-only fence = %v", err)
	}
	if _, err := d.Stop(ctx, tg, drivers.StopGraceful); err != nil {
		t.Fatal(err)
	}
}
