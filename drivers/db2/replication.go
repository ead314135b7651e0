package db2

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/hostrun"
)

// DB2 HADR as a replication method (drivers.Replicator): the same component
// at two sites, each database of the component an HADR pair. HADR's own
// configuration (HADR_LOCAL_HOST, HADR_REMOTE_HOST, HADR_SYNCMODE, ...) is
// set once by the DBA on both databases; these calls run the commands of a
// failover and a failback:
//
//	Seed        backup on the primary, restore on the standby (through
//	            seedImageDir), start hadr as standby, then as primary
//	Lag         db2pd -hadr at both ends: HADR_LOG_GAP(bytes), and the
//	            primary's log time minus the standby's replay log time
//	Promote     takeover hadr, by force unless the pair is in peer state
//	Fence       db2stop force on the old primary
//	Reseed      start hadr as standby on the old primary (reintegration),
//	            or backup/restore from the new primary when it cannot rejoin
//	Switchover  takeover hadr (not forced) from a standby in peer state
var _ drivers.Replicator = (*Driver)(nil)

// Messages of the HADR and backup commands (DB2 message reference):
//
//	Backup successful. The timestamp for this backup image is : 20261202021325
//	DB20000I  The RESTORE DATABASE command completed successfully.
//	DB20000I  The START HADR ON DATABASE command completed successfully.
//	SQL1767N  Start HADR cannot complete. Reason code = "N".
var (
	backupTimestamp = regexp.MustCompile(`Backup successful\. The timestamp for this backup image is : (\d{14})`)
	sql1767         = regexp.MustCompile(`SQL1767N .*Reason code = "?(\d+)"?`)
)

// ErrNotPeer is returned by Switchover when a pair is not in peer state:
// a takeover then would not be the lossless swap a planned switchover is.
var ErrNotPeer = errors.New("HADR pair not in peer state")

// Seed makes the standby site's databases HADR standbys of the primary's:
// an online backup on the primary into seedImageDir, a restore of it on the
// standby, `start hadr ... as standby` there, then `start hadr ... as
// primary` on the primary unless it already is one. A database that is
// already a connected standby is left alone.
func (d *Driver) Seed(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "seed", Method: "backup-restore"}
	cp, cs, err := parsePair(primary, standby)
	if err != nil {
		return res, err
	}
	if cs.SeedImageDir == "" {
		return res, drivers.Unsupported(errors.New("db2 seed: give seedImageDir, a folder both sites' hosts see, for the backup image"))
	}
	done := true
	for _, db := range cs.dbs {
		h, ev, err := d.hadr(ctx, cs, standby, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 seed of %s: status of the standby: %w", db, err)
		}
		if h.Role == RoleStandby && h.Active {
			continue
		}
		done = false
		if err := d.backupRestore(ctx, cp, cs, primary, standby, db, &res); err != nil {
			return res, err
		}
		if err := d.startHADR(ctx, cs, standby, db, "standby", &res); err != nil {
			return res, err
		}
		ph, ev, err := d.hadr(ctx, cp, primary, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 seed of %s: status of the primary: %w", db, err)
		}
		if ph.Role != RolePrimary {
			if err := d.startHADR(ctx, cp, primary, db, "primary", &res); err != nil {
				return res, err
			}
		}
	}
	res.AlreadyDone, res.Role = done, drivers.RoleStandby
	if done {
		res.Method = "already standby"
	}
	return res, nil
}

func parsePair(a, b drivers.Target) (*config, *config, error) {
	ca, err := parse(a.Component.Settings)
	if err != nil {
		return nil, nil, err
	}
	cb, err := parse(b.Component.Settings)
	if err != nil {
		return nil, nil, err
	}
	return ca, cb, nil
}

// backupRestore copies db from one site to the other through seedImageDir.
func (d *Driver) backupRestore(ctx context.Context, cFrom, cTo *config, from, to drivers.Target, db string, res *drivers.ReplicationResult) error {
	dir := cTo.SeedImageDir
	ev, out, code, err := d.run(ctx, cFrom, from, OpSeed, "db2 backup database "+db+" online to "+dir+" compress include logs")
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return err
	}
	m := backupTimestamp.FindStringSubmatch(out)
	if m == nil {
		return commandError("backup database "+db, ev, out, code)
	}
	ev, out, code, err = d.run(ctx, cTo, to, OpSeed, "db2start >/dev/null\ndb2 restore database "+db+" from "+dir+" taken at "+m[1]+" replace existing without prompting")
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "DB20000I  The RESTORE DATABASE command completed successfully") {
		return commandError("restore database "+db+" taken at "+m[1], ev, out, code)
	}
	return nil
}

// startHADR runs `db2 start hadr on database X as <role>` after db2start.
func (d *Driver) startHADR(ctx context.Context, c *config, t drivers.Target, db, role string, res *drivers.ReplicationResult) error {
	ev, out, code, err := d.run(ctx, c, t, OpSeed, "db2start >/dev/null\ndb2 start hadr on database "+db+" as "+role)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return err
	}
	if m := sql1767.FindStringSubmatch(out); m != nil {
		return &startHADRError{db: db, role: role, reason: m[1], out: hostrun.Short(ev.Output)}
	}
	if !strings.Contains(out, "DB20000I  The START HADR ON DATABASE command completed successfully") {
		return commandError("start hadr on "+db+" as "+role, ev, out, code)
	}
	return nil
}

type startHADRError struct{ db, role, reason, out string }

func (e *startHADRError) Error() string {
	return fmt.Sprintf("start hadr on %s as %s: SQL1767N reason code %s: %s", e.db, e.role, e.reason, e.out)
}

// Lag measures, for each database, how far the standby is behind: the
// HADR_LOG_GAP(bytes) while the pair is connected, and the primary's log
// time minus the standby's replay log time. With several databases the
// largest figures are reported and the detail lists each. Either end may be
// unreachable; with neither, it fails.
func (d *Driver) Lag(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationLag, error) {
	lag := drivers.ReplicationLag{MeasuredAt: time.Now(), BytesKnown: true, SecondsKnown: true, Streaming: true,
		PrimaryReachable: true, StandbyReachable: true}
	cp, cs, err := parsePair(primary, standby)
	if err != nil {
		return lag, err
	}
	var evs []drivers.Evidence
	var details []string
	for _, db := range cs.dbs {
		sh, sev, serr := d.hadr(ctx, cs, standby, db)
		ph, pev, perr := d.hadr(ctx, cp, primary, db)
		evs = append(evs, sev, pev)
		if serr != nil || !sh.Active {
			lag.StandbyReachable = false
		}
		if perr != nil || !ph.Active {
			lag.PrimaryReachable = false
		}
		if (serr != nil || !sh.Active) && (perr != nil || !ph.Active) {
			lag.Evidence = hostrun.Combine(evs...)
			return lag, fmt.Errorf("db2 lag of %s: neither end answers (standby: %v; primary: %v)", db, errOr(serr, sh), errOr(perr, ph))
		}
		// The primary's pair for this standby is the fresher view of the
		// gap; the standby's carries the replay time.
		var pair HADRPair
		connected := false
		if sh.Active && len(sh.Pairs) > 0 {
			pair = sh.Pair()
			connected = pair.ConnectStatus == ConnectConnected
		}
		if ph.Active && len(ph.Pairs) > 0 {
			pp := ph.Pair()
			if pp.ConnectStatus == ConnectConnected {
				connected = true
			}
			if !sh.Active {
				pair = pp
			} else {
				pair.LogGapBytes = pp.LogGapBytes
				pair.PrimaryLogPos = pp.PrimaryLogPos
			}
		}
		if !connected {
			lag.BytesKnown, lag.Streaming = false, false
		}
		lag.Bytes = max(lag.Bytes, pair.LogGapBytes)
		secs, ok := pair.LogTimeLag()
		if !ok {
			lag.SecondsKnown = false
		}
		lag.Seconds = max(lag.Seconds, float64(secs))
		if len(cs.dbs) == 1 {
			lag.PrimaryPosition, lag.ReceivedPosition, lag.ReplayedPosition = pair.PrimaryLogPos, pair.StandbyLogPos, pair.StandbyReplayLogPos
		}
		details = append(details, fmt.Sprintf("%s: %s %s, gap %d bytes, replay %ds behind", db, pair.State, pair.ConnectStatus, pair.LogGapBytes, secs))
	}
	lag.Detail = strings.Join(details, "; ")
	lag.Evidence = hostrun.Combine(evs...)
	return lag, nil
}

func errOr(err error, h HADRStatus) string {
	if err != nil {
		return err.Error()
	}
	return h.Summary()
}

// Promote makes the standby site's databases HADR primaries: takeover hadr,
// by force unless the pair is in peer state and connected (then the
// primary is alive and a plain takeover swaps the roles without loss).
func (d *Driver) Promote(ctx context.Context, standby drivers.Target) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "promote", Method: "takeover hadr"}
	c, err := parse(standby.Component.Settings)
	if err != nil {
		return res, err
	}
	done := true
	for _, db := range c.dbs {
		h, ev, err := d.hadr(ctx, c, standby, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 promote of %s: %w", db, err)
		}
		p := h.Pair()
		force := !(p.State == StatePeer && p.ConnectStatus == ConnectConnected)
		if force && h.Role == RoleStandby {
			res.Method = "takeover hadr by force"
		}
		after, ev, err := d.takeover(ctx, c, standby, db, force)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, err
		}
		done = done && ev.AlreadyDone
		res.Detail = strings.TrimPrefix(res.Detail+"; "+after.Summary(), "; ")
	}
	res.AlreadyDone, res.Role = done, drivers.RolePrimary
	return res, nil
}

// Fence stops the old primary taking writes: db2stop force.
func (d *Driver) Fence(ctx context.Context, oldPrimary drivers.Target) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "fence", Method: "db2stop force"}
	ev, err := d.Stop(ctx, oldPrimary, drivers.StopImmediate)
	res.Steps = append(res.Steps, ev)
	if err != nil {
		return res, err
	}
	if ev.AlreadyDone {
		res.Method, res.AlreadyDone = "already stopped", true
	}
	return res, nil
}

// Reseed makes the old primary's databases standbys of the new primary:
// `start hadr ... as standby` reintegrates a database whose log has not
// diverged; when DB2 refuses (SQL1767N) and seedImageDir is set, a backup
// of the new primary is restored over it first.
func (d *Driver) Reseed(ctx context.Context, newPrimary, oldPrimary drivers.Target) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "reseed", Method: "reintegrate"}
	cn, co, err := parsePair(newPrimary, oldPrimary)
	if err != nil {
		return res, err
	}
	done := true
	for _, db := range co.dbs {
		h, ev, err := d.hadr(ctx, co, oldPrimary, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 reseed of %s: %w", db, err)
		}
		if h.Active && h.Role == RoleStandby {
			continue
		}
		done = false
		err = d.startHADR(ctx, co, oldPrimary, db, "standby", &res)
		var refused *startHADRError
		if errors.As(err, &refused) && co.SeedImageDir != "" {
			res.Method = "backup-restore"
			if err := d.backupRestore(ctx, cn, co, newPrimary, oldPrimary, db, &res); err != nil {
				return res, err
			}
			err = d.startHADR(ctx, co, oldPrimary, db, "standby", &res)
		}
		if err != nil {
			return res, err
		}
	}
	res.AlreadyDone, res.Role = done, drivers.RoleStandby
	if done {
		res.Method = "already standby"
	}
	return res, nil
}

// Switchover swaps the roles of a primary and its caught-up standby:
// `takeover hadr` (not forced) on the standby, for each database in peer
// state; the old primary becomes the standby. A pair not in peer state is
// refused (ErrNotPeer) before anything changes.
func (d *Driver) Switchover(ctx context.Context, primary, standby drivers.Target) (drivers.ReplicationResult, error) {
	res := drivers.ReplicationResult{Action: "switchover", Method: "takeover hadr"}
	cp, cs, err := parsePair(primary, standby)
	if err != nil {
		return res, err
	}
	// Check every pair first, so a refusal changes nothing.
	for _, db := range cs.dbs {
		h, ev, err := d.hadr(ctx, cs, standby, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 switchover of %s: %w", db, err)
		}
		if h.Role == RolePrimary {
			continue
		}
		p := h.Pair()
		if h.Role != RoleStandby || p.State != StatePeer || p.ConnectStatus != ConnectConnected {
			return res, fmt.Errorf("db2 switchover of %s: %w (%s); wait for the standby to catch up", db, ErrNotPeer, h.Summary())
		}
	}
	done := true
	for _, db := range cs.dbs {
		_, ev, err := d.takeover(ctx, cs, standby, db, false)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, err
		}
		done = done && ev.AlreadyDone
		ph, ev, err := d.hadr(ctx, cp, primary, db)
		res.Steps = append(res.Steps, ev)
		if err != nil {
			return res, fmt.Errorf("db2 switchover of %s: status of the old primary: %w", db, err)
		}
		if ph.Role != RoleStandby {
			return res, fmt.Errorf("db2 switchover of %s: the old primary reads role %s, not STANDBY", db, ph.Role)
		}
	}
	res.AlreadyDone, res.Role = done, drivers.RolePrimary
	return res, nil
}
