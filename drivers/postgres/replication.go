package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Streaming replication, in PostgreSQL's words, behind drivers.Replicator.
//
// Where each call runs: Seed on the standby's host (pg_basebackup writes its
// data directory), Fence and Reseed on the old primary's host (pg_ctl,
// pg_rewind), Switchover on the primary's host (it stops it and rewinds
// it), Promote and Lag anywhere that reaches the servers over the network.

// Seed copies primary into standby's empty data directory with
// pg_basebackup -R (standby.signal and primary_conninfo written, WAL
// streamed during the copy), starts the standby and waits until the primary
// sees it streaming. A standby already running in recovery is left alone.
func (d *Driver) Seed(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationResult, error) {
	rp, err := d.resolve(primary)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	rs, err := d.resolve(standby)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	res := drivers.ReplicationResult{Action: "seed", Method: "pg_basebackup"}
	st, ev, err := rs.pgctlStatus(ctx)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("seed %s: %w", rs.name, err)
	}
	if st.running {
		role, err := rs.roleWithin(ctx)
		if err != nil {
			return res, fmt.Errorf("seed %s: running but: %w", rs.name, err)
		}
		if role != drivers.RoleStandby {
			return res, drivers.Unsupported(fmt.Errorf("seed %s: it is a running primary; fence it (or Reseed it) before seeding over it", rs.name))
		}
		res.AlreadyDone, res.Role = true, drivers.RoleStandby
		res.Detail = "already a running standby"
		return res, nil
	}
	if entries, err := os.ReadDir(rs.dataDir); err == nil && len(entries) > 0 {
		return res, drivers.Unsupported(fmt.Errorf("seed %s: data directory %s is not empty; use Reseed for a former primary", rs.name, rs.dataDir))
	}
	ev, err = d.basebackup(ctx, rp, rs)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("seed %s from %s: %w", rs.name, rp.name, err)
	}
	return d.startStandby(ctx, rp, rs, res)
}

// basebackup runs pg_basebackup -R from rp into rs's data directory, as the
// standby's OS user, with the replication password in PGPASSWORD.
func (d *Driver) basebackup(ctx context.Context, rp, rs *resolved) (drivers.Evidence, error) {
	env, err := rp.passwordEnv(rp.replPassword)
	if err != nil {
		return drivers.Evidence{}, err
	}
	rs.secrets = append(rs.secrets, rp.secrets...)
	conninfo := rp.conninfo(rp.replUser, "postgres") + " application_name=" + kwQuote(rs.appName)
	res, ev, err := rs.run(ctx, rs.timeouts.seed, env, "pg_basebackup",
		"-D", rs.dataDir, "-d", conninfo, "-R", "-X", "stream", "-c", "fast", "--no-password")
	if err != nil {
		return ev, err
	}
	if res.ExitCode != 0 {
		return ev, fmt.Errorf("pg_basebackup: %s: %s", res.ExitSummary(), rs.short(res.Output))
	}
	return ev, nil
}

// passwordEnv is PGPASSWORD for a command, resolved now and remembered for
// redaction.
func (r *resolved) passwordEnv(ref secret.Ref) ([]string, error) {
	if ref == "" {
		return nil, nil
	}
	v, err := ref.Resolve()
	if err != nil {
		return nil, drivers.BadSettingsf("postgres %s: %w", r.name, err)
	}
	r.addSecret(v)
	return []string{"PGPASSWORD=" + v}, nil
}

// startStandby starts rs and waits until rp lists it in pg_stat_replication.
func (d *Driver) startStandby(ctx context.Context, rp, rs *resolved, res drivers.ReplicationResult) (drivers.ReplicationResult, error) {
	ev, err := d.start(ctx, rs)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, err
	}
	res.Role = drivers.RoleStandby
	start := time.Now()
	for {
		lag, err := d.lag(ctx, rp, rs)
		if err == nil && lag.Streaming {
			res.Position = lag.ReplayedPosition
			res.Steps = append(res.Steps, drivers.Evidence{
				Action:   "wait for " + rs.appName + " in pg_stat_replication at " + rp.name,
				Output:   fmt.Sprintf("streaming; lag %d bytes, primary at %s, standby replayed %s", lag.Bytes, lag.PrimaryPosition, lag.ReplayedPosition),
				Duration: time.Since(start),
			})
			return res, nil
		}
		if time.Since(start) > rs.timeouts.catchUp {
			detail := "not listed in pg_stat_replication"
			if err != nil {
				detail = err.Error()
			}
			return res, fmt.Errorf("standby %s started but is not streaming from %s within %s: %s%s", rs.name, rp.name, rs.timeouts.catchUp, detail, rs.logTail())
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Lag measures the standby against the primary from both ends: the
// primary's current position and its pg_stat_replication row for the
// standby, the standby's received and replayed positions and the age of
// its last replayed transaction. Either end may be down; both down is an
// error.
func (d *Driver) Lag(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationLag, error) {
	rp, err := d.resolve(primary)
	if err != nil {
		return drivers.ReplicationLag{}, err
	}
	rs, err := d.resolve(standby)
	if err != nil {
		return drivers.ReplicationLag{}, err
	}
	return d.lag(ctx, rp, rs)
}

const primaryLagSQL = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END,
  coalesce(r.state, ''), coalesce(r.replay_lsn::text, ''),
  coalesce(extract(epoch FROM r.replay_lag)::float8, -1)
FROM (SELECT 1) AS one LEFT JOIN pg_stat_replication r ON r.application_name = $1`

const standbyLagSQL = `SELECT pg_is_in_recovery(),
  coalesce(pg_last_wal_receive_lsn()::text, ''), coalesce(pg_last_wal_replay_lsn()::text, ''),
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, -1) END`

func (d *Driver) lag(ctx context.Context, rp, rs *resolved) (drivers.ReplicationLag, error) {
	start := time.Now()
	lag := drivers.ReplicationLag{MeasuredAt: start.UTC()}
	var notes []string

	var pRecovery bool
	var pState, pReplay string
	pLagSecs := -1.0
	perr := rp.queryRow(ctx, func(c *pgx.Conn, qctx context.Context) error {
		return c.QueryRow(qctx, primaryLagSQL, rs.appName).Scan(&pRecovery, &lag.PrimaryPosition, &pState, &pReplay, &pLagSecs)
	})
	if perr == nil {
		lag.PrimaryReachable = true
		if pRecovery {
			notes = append(notes, rp.name+" is in recovery, not a primary")
		}
		lag.Streaming = pState == "streaming"
		if pState != "" && pState != "streaming" {
			notes = append(notes, "standby state at the primary: "+pState)
		}
	} else {
		notes = append(notes, "primary: "+rp.short(perr.Error()))
	}

	var sRecovery bool
	sLagSecs := -1.0
	serr := rs.queryRow(ctx, func(c *pgx.Conn, qctx context.Context) error {
		return c.QueryRow(qctx, standbyLagSQL).Scan(&sRecovery, &lag.ReceivedPosition, &lag.ReplayedPosition, &sLagSecs)
	})
	if serr == nil {
		lag.StandbyReachable = true
		if !sRecovery {
			notes = append(notes, rs.name+" is not in recovery: it is a primary")
		}
	} else {
		notes = append(notes, "standby: "+rs.short(serr.Error()))
		lag.ReplayedPosition = pReplay
	}
	if perr != nil && serr != nil {
		if err := ctx.Err(); err != nil {
			return lag, err
		}
		if drivers.Permanent(perr) {
			return lag, perr
		}
		return lag, fmt.Errorf("lag %s → %s: neither end answers: %s", rp.name, rs.name, strings.Join(notes, "; "))
	}

	if p, ok := parseLSN(lag.PrimaryPosition); ok {
		if s, ok := parseLSN(lag.ReplayedPosition); ok {
			lag.Bytes, lag.BytesKnown = int64(p)-int64(s), true
			if lag.Bytes < 0 {
				lag.Bytes = 0
			}
		}
	}
	switch {
	case serr == nil && sLagSecs >= 0:
		lag.Seconds, lag.SecondsKnown = sLagSecs, true
	case perr == nil && pLagSecs >= 0:
		lag.Seconds, lag.SecondsKnown = pLagSecs, true
	case perr == nil && lag.Streaming && lag.BytesKnown && lag.Bytes == 0:
		lag.Seconds, lag.SecondsKnown = 0, true
	}
	lag.Detail = strings.Join(notes, "; ")
	lag.Evidence = drivers.Evidence{
		Action: fmt.Sprintf("pg_stat_replication at %s:%d; pg_last_wal_replay_lsn at %s:%d", rp.host, rp.port, rs.host, rs.port),
		Output: drivers.Truncate(fmt.Sprintf("primary %s, received %s, replayed %s, state %q; bytes %d (known %t), seconds %.3f (known %t)",
			lag.PrimaryPosition, lag.ReceivedPosition, lag.ReplayedPosition, pState, lag.Bytes, lag.BytesKnown, lag.Seconds, lag.SecondsKnown), EvidenceLimit),
		Duration: time.Since(start),
	}
	return lag, nil
}

// queryRow connects within the connect timeout and runs f within the
// status timeout.
func (r *resolved) queryRow(ctx context.Context, f func(c *pgx.Conn, qctx context.Context) error) error {
	qctx, cancel := context.WithTimeout(ctx, r.timeouts.status)
	defer cancel()
	conn, err := r.connect(qctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := f(conn, qctx); err != nil {
		return errors.New(r.redact(err.Error()))
	}
	return nil
}

func (r *resolved) roleWithin(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeouts.status)
	defer cancel()
	return r.role(cctx)
}

// parseLSN reads PostgreSQL's "X/Y" notation.
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}

// Promote runs pg_promote() on the standby and returns once it takes
// writes (it assigns a transaction id). A primary is left alone.
func (d *Driver) Promote(ctx context.Context, standby drivers.Target) (drivers.ReplicationResult, error) {
	rs, err := d.resolve(standby)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	return d.promote(ctx, rs)
}

func (d *Driver) promote(ctx context.Context, rs *resolved) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "promote", Method: "pg_promote"}
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, rs.timeouts.promote+rs.timeouts.connect)
	defer cancel()
	conn, err := rs.connect(pctx)
	if err != nil {
		return res, fmt.Errorf("promote %s: %w", rs.name, err)
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	if err := conn.QueryRow(pctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return res, fmt.Errorf("promote %s: %s", rs.name, rs.redact(err.Error()))
	}
	if !inRecovery {
		res.AlreadyDone = true
		res.Detail = "already a primary"
	} else {
		var promoted bool
		secs := seconds(rs.timeouts.promote)
		err := conn.QueryRow(pctx, "SELECT pg_promote(true, $1::int)", secs).Scan(&promoted)
		res.Steps = append(res.Steps, drivers.Evidence{
			Action:   fmt.Sprintf("SELECT pg_promote(wait => true, wait_seconds => %s) on %s:%d", secs, rs.host, rs.port),
			Output:   fmt.Sprintf("promoted: %t", promoted),
			Duration: time.Since(start),
		})
		if err != nil {
			return res, fmt.Errorf("promote %s: pg_promote: %s", rs.name, rs.redact(err.Error()))
		}
		if !promoted {
			return res, fmt.Errorf("promote %s: pg_promote did not finish within %ss%s", rs.name, secs, rs.logTail())
		}
	}
	// Read-write means a transaction id can be assigned; a standby refuses.
	wstart := time.Now()
	for {
		var xid string
		err = conn.QueryRow(pctx, "SELECT pg_current_xact_id()::text").Scan(&xid)
		if err == nil {
			res.Steps = append(res.Steps, drivers.Evidence{
				Action: "SELECT pg_current_xact_id()", Output: "read-write: assigned transaction " + xid, Duration: time.Since(wstart),
			})
			break
		}
		if pctx.Err() != nil {
			return res, fmt.Errorf("promote %s: not read-write within %s: %s", rs.name, rs.timeouts.promote, rs.redact(err.Error()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wal string
	if err := conn.QueryRow(pctx, "SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn())").Scan(&res.Position, &wal); err != nil {
		return res, fmt.Errorf("promote %s: %s", rs.name, rs.redact(err.Error()))
	}
	if len(wal) >= 8 {
		tl, _ := strconv.ParseUint(wal[:8], 16, 32)
		res.Timeline = int(tl)
	}
	res.Role = drivers.RolePrimary
	d.logger.Info("postgres promoted", zap.String("component", rs.name), zap.String("lsn", res.Position), zap.Int("timeline", res.Timeline))
	return res, nil
}

// Fence stops the old primary (fast, then immediate) and leaves
// standby.signal in its data directory, so a restart brings it up read-only
// instead of as a second primary. When it cannot be stopped but still
// answers, it is made read-only (default_transaction_read_only, client
// sessions ended): weaker, since a client can still ask for a read-write
// transaction, and said so in the detail.
func (d *Driver) Fence(ctx context.Context, oldPrimary drivers.Target) (drivers.ReplicationResult, error) {
	r, err := d.resolve(oldPrimary)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	res := drivers.ReplicationResult{Action: "fence"}
	st, ev, serr := r.pgctlStatus(ctx)
	res.Steps = append(res.Steps, ev)
	if serr == nil && !st.running {
		// pg_ctl sees no server in this data directory, but the address may
		// still answer as a primary (a data directory elsewhere, a server
		// this host cannot see): that one is not fenced.
		if role, err := r.roleWithin(ctx); err == nil && role == drivers.RolePrimary {
			serr = fmt.Errorf("pg_ctl finds no server in %s, yet %s:%d answers as a primary", r.dataDir, r.host, r.port)
			ev, err := r.readOnly(ctx)
			res.Steps = append(res.Steps, ev)
			if err != nil {
				return res, fmt.Errorf("fence %s: %v, and making it read-only failed: %w", r.name, serr, err)
			}
			res.Method = "read-only"
			res.Detail = serr.Error() + "; default_transaction_read_only on and client sessions ended"
			return res, nil
		}
		res.Method, res.AlreadyDone = "already stopped", true
		res.Detail = st.detail
		if _, err := os.Stat(filepath.Join(r.dataDir, "PG_VERSION")); err == nil {
			if err := touchOwned(r.dataDir, "standby.signal"); err != nil {
				return res, fmt.Errorf("fence %s: write standby.signal: %w", r.name, err)
			}
			res.Detail += "; standby.signal written: a restart comes up read-only"
		}
		return res, nil
	}
	if serr == nil {
		ev, err := r.stop(ctx, []string{"fast", "immediate"})
		res.Steps = append(res.Steps, ev)
		if err == nil {
			res.Method = "stopped"
			if err := touchOwned(r.dataDir, "standby.signal"); err != nil {
				return res, fmt.Errorf("fence %s: stopped, but writing standby.signal failed: %w", r.name, err)
			}
			res.Detail = "stopped; standby.signal written: a restart comes up read-only"
			return res, nil
		}
		serr = err
	}
	// Could not stop it here: make it refuse writes over a connection.
	ev, err = r.readOnly(ctx)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("fence %s: could not stop it (%v) nor make it read-only: %w", r.name, serr, err)
	}
	res.Method = "read-only"
	res.Detail = "could not stop it (" + r.short(serr.Error()) + "); default_transaction_read_only on and client sessions ended"
	return res, nil
}

func (r *resolved) readOnly(ctx context.Context) (drivers.Evidence, error) {
	start := time.Now()
	ev := drivers.Evidence{Action: fmt.Sprintf("ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf(); pg_terminate_backend(client sessions) on %s:%d", r.host, r.port)}
	err := r.queryRow(ctx, func(c *pgx.Conn, qctx context.Context) error {
		if _, err := c.Exec(qctx, "ALTER SYSTEM SET default_transaction_read_only = on"); err != nil {
			return err
		}
		var ok bool
		if err := c.QueryRow(qctx, "SELECT pg_reload_conf()").Scan(&ok); err != nil {
			return err
		}
		var n int
		err := c.QueryRow(qctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n)
		ev.Output = fmt.Sprintf("ended %d client sessions", n)
		return err
	})
	ev.Duration = time.Since(start)
	return ev, err
}

// Reseed makes a former primary a standby of the new primary: stopped,
// rewound with pg_rewind -R onto the new primary's timeline, started and
// streaming. When pg_rewind cannot (WAL gone, no checksums or wal_log_hints)
// its data directory is moved aside (kept as DATADIR.drover-aside-TIME) and
// a fresh pg_basebackup -R seeds it.
func (d *Driver) Reseed(ctx context.Context, newPrimary, oldPrimary drivers.Target) (drivers.ReplicationResult, error) {
	rn, err := d.resolve(newPrimary)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	ro, err := d.resolve(oldPrimary)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	return d.reseed(ctx, rn, ro, drivers.ReplicationResult{Action: "reseed"})
}

func (d *Driver) reseed(ctx context.Context, rn, ro *resolved, res drivers.ReplicationResult) (drivers.ReplicationResult, error) {
	st, ev, err := ro.pgctlStatus(ctx)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("reseed %s: %w", ro.name, err)
	}
	if st.running {
		if lag, err := d.lag(ctx, rn, ro); err == nil && lag.Streaming && lag.StandbyReachable && lag.PrimaryReachable {
			res.AlreadyDone, res.Role, res.Method = true, drivers.RoleStandby, "already streaming"
			res.Position = lag.ReplayedPosition
			return res, nil
		}
		ev, err := ro.stop(ctx, []string{"fast", "immediate"})
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("reseed %s: stop before rewind: %w", ro.name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ro.dataDir, "PG_VERSION")); err != nil {
		res.Method = "pg_basebackup"
		res.Detail = "no database cluster to rewind"
		ev, err := d.basebackup(ctx, rn, ro)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("reseed %s: %w", ro.name, err)
		}
		return d.startStandby(ctx, rn, ro, res)
	}
	// pg_rewind brings an uncleanly stopped target to a clean state with a
	// single-user server first, which refuses to run with standby.signal
	// (a fence leaves one); -R writes it again.
	for _, f := range []string{"standby.signal", "recovery.signal"} {
		if err := removeIfExists(filepath.Join(ro.dataDir, f)); err != nil {
			return res, fmt.Errorf("reseed %s: %w", ro.name, err)
		}
	}
	// A freshly promoted primary's control file still names the old
	// timeline until its first checkpoint; pg_rewind reads it and would
	// find "no rewind required" on a diverged target.
	cstart := time.Now()
	err = rn.queryRow(ctx, func(c *pgx.Conn, qctx context.Context) error {
		_, err := c.Exec(qctx, "CHECKPOINT")
		return err
	})
	res.Steps = append(res.Steps, drivers.Evidence{Action: fmt.Sprintf("CHECKPOINT on %s:%d", rn.host, rn.port), Duration: time.Since(cstart)})
	if err != nil {
		return res, fmt.Errorf("reseed %s: checkpoint on the new primary %s: %w", ro.name, rn.name, err)
	}
	env, err := rn.passwordEnv(rn.password)
	if err != nil {
		return res, err
	}
	ro.secrets = append(ro.secrets, rn.secrets...)
	source := rn.conninfo(rn.user, rn.database) + " application_name=" + kwQuote(ro.appName)
	rres, ev, err := ro.run(ctx, ro.timeouts.rewind, env, "pg_rewind",
		"--target-pgdata="+ro.dataDir, "--source-server="+source, "-R")
	res.Steps = append(res.Steps, ev)
	if err != nil && ctx.Err() != nil {
		return res, fmt.Errorf("reseed %s: %w", ro.name, err)
	}
	if err == nil && rres.ExitCode == 0 {
		res.Method = "pg_rewind"
		if strings.Contains(rres.Output, "no rewind required") {
			res.Detail = "no rewind required: it had written nothing the new primary lacks"
		}
		return d.startStandby(ctx, rn, ro, res)
	}
	why := ""
	if err != nil {
		why = err.Error()
	} else {
		why = rres.ExitSummary() + ": " + ro.short(rres.Output)
	}
	aside := fmt.Sprintf("%s.drover-aside-%s", ro.dataDir, time.Now().UTC().Format("20060102T150405Z"))
	d.logger.Warn("pg_rewind failed; re-seeding with pg_basebackup", zap.String("component", ro.name), zap.String("why", why), zap.String("aside", aside))
	if err := os.Rename(ro.dataDir, aside); err != nil {
		return res, fmt.Errorf("reseed %s: pg_rewind failed (%s) and moving the data directory aside failed: %w", ro.name, why, err)
	}
	res.Method = "pg_basebackup"
	res.Detail = "pg_rewind failed (" + why + "); old data directory kept at " + aside
	ev, err = d.basebackup(ctx, rn, ro)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("reseed %s: %w", ro.name, err)
	}
	return d.startStandby(ctx, rn, ro, res)
}

// Switchover swaps a primary and its streaming standby without losing a
// committed transaction: the primary is shut down fast (PostgreSQL sends
// its WAL, up to the shutdown checkpoint, to connected standbys before it
// exits), the standby must replay past that checkpoint, then it is
// promoted and the old primary is rewound (nothing to rewind) and restarted
// as its standby. If the standby does not catch up in time the old primary
// is started again as the primary and nothing changed roles.
func (d *Driver) Switchover(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationResult, error) {
	rp, err := d.resolve(primary)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	rs, err := d.resolve(standby)
	if err != nil {
		return drivers.ReplicationResult{}, err
	}
	res := drivers.ReplicationResult{Action: "switchover"}
	lag, err := d.lag(ctx, rp, rs)
	res.Steps = append(res.Steps, lag.Evidence)
	if err != nil {
		return res, fmt.Errorf("switchover %s → %s: %w", rp.name, rs.name, err)
	}
	if !lag.PrimaryReachable || !lag.StandbyReachable || !lag.Streaming {
		return res, fmt.Errorf("switchover %s → %s: needs a reachable primary and a streaming standby (%s)", rp.name, rs.name, lag.Detail)
	}
	ev, err := rp.stop(ctx, []string{"fast"})
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, fmt.Errorf("switchover: stop %s: %w", rp.name, err)
	}
	ckpt, ev, err := rp.checkpointLSN(ctx)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, d.rollbackSwitchover(ctx, rp, &res, fmt.Errorf("switchover: %w", err))
	}
	// The standby has everything once it replayed past the shutdown
	// checkpoint record, which starts at ckpt.
	start := time.Now()
	var replayed uint64
	for {
		var s string
		err := rs.queryRow(ctx, func(c *pgx.Conn, qctx context.Context) error {
			return c.QueryRow(qctx, "SELECT coalesce(pg_last_wal_replay_lsn()::text, '')").Scan(&s)
		})
		if v, ok := parseLSN(s); err == nil && ok {
			replayed = v
			if v > ckpt {
				break
			}
		}
		if time.Since(start) > rs.timeouts.catchUp || ctx.Err() != nil {
			res.LostBytes = int64(ckpt) - int64(replayed)
			return res, d.rollbackSwitchover(ctx, rp, &res, fmt.Errorf(
				"switchover: %s replayed %s, short of %s's shutdown checkpoint %s after %s", rs.name, formatLSN(replayed), rp.name, formatLSN(ckpt), rs.timeouts.catchUp))
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.Steps = append(res.Steps, drivers.Evidence{
		Action:   "wait for pg_last_wal_replay_lsn() > shutdown checkpoint at " + rs.name,
		Output:   fmt.Sprintf("old primary's shutdown checkpoint %s; standby replayed %s", formatLSN(ckpt), formatLSN(replayed)),
		Duration: time.Since(start),
	})
	pres, err := d.promote(ctx, rs)
	res.Steps = append(res.Steps, pres.Steps...)
	if err != nil {
		return res, fmt.Errorf("switchover: %w", err)
	}
	res.Position, res.Timeline = pres.Position, pres.Timeline
	rres, err := d.reseed(ctx, rs, rp, drivers.ReplicationResult{})
	res.Steps = append(res.Steps, rres.Steps...)
	res.Method = "stop fast, replay check, pg_promote, " + rres.Method
	if err != nil {
		return res, fmt.Errorf("switchover: %s promoted; old primary not yet its standby: %w", rs.name, err)
	}
	res.Role = drivers.RoleStandby // the old primary's role now
	res.Detail = fmt.Sprintf("%s is the primary (timeline %d); %s streams from it; shutdown checkpoint %s replayed before promotion",
		rs.name, res.Timeline, rp.name, formatLSN(ckpt))
	return res, nil
}

func (d *Driver) rollbackSwitchover(ctx context.Context, rp *resolved, res *drivers.ReplicationResult, cause error) error {
	ev, err := d.start(ctx, rp)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return fmt.Errorf("%w; restarting %s as the primary also failed: %v", cause, rp.name, err)
	}
	res.Role = drivers.RolePrimary
	return fmt.Errorf("%w; %s restarted as the primary, nothing changed roles", cause, rp.name)
}

// checkpointLSN reads the latest checkpoint location of a stopped server
// from pg_controldata.
func (r *resolved) checkpointLSN(ctx context.Context) (uint64, drivers.Evidence, error) {
	res, ev, err := r.run(ctx, r.timeouts.status, nil, "pg_controldata", "-D", r.dataDir)
	if err != nil {
		return 0, ev, err
	}
	if res.ExitCode != 0 {
		return 0, ev, fmt.Errorf("pg_controldata: %s: %s", res.ExitSummary(), r.short(res.Output))
	}
	var state string
	var lsn uint64
	found := false
	for line := range strings.SplitSeq(res.Output, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Latest checkpoint location":
			lsn, found = parseLSN(v)
		case "Database cluster state":
			state = v
		}
	}
	ev.Output = drivers.Truncate(fmt.Sprintf("cluster state %q, latest checkpoint %s", state, formatLSN(lsn)), EvidenceLimit)
	if !found {
		return 0, ev, errors.New("pg_controldata printed no latest checkpoint location")
	}
	if state != "shut down" {
		return 0, ev, fmt.Errorf("%s was not shut down cleanly (cluster state %q)", r.name, state)
	}
	return lsn, ev, nil
}

func formatLSN(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }
