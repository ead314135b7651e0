// Package db2 is the middleware driver for a DB2 LUW instance and one of
// its databases (the seed's BPM and Monitor databases): db2start and
// db2stop [force], write suspend and resume for a consistent copy,
// db2inidb as snapshot after such a copy is restored, and HADR: the state
// from db2pd and `takeover hadr` to make this site's standby the primary.
//
// Every command runs as the instance owner, in a shell that sourced the
// instance's db2profile, so that `db2 connect` and the statement after it
// share one CLP back-end process.
//
// Settings (the component's settings in the plan):
//
//	instanceOwner: the instance owner's user name, e.g. db2inst1 (required)
//	database:      the database's name or alias, or
//	databases:     several databases of the instance (the seed's BPMDB, CMNDB
//	               and MONDB), handled together: status, start, quiesce,
//	               db2inidb and takeover act on each (one of the two is required)
//	profile:       path of the instance's db2profile, default ~OWNER/sqllib/db2profile
//	switchUser:    run commands through `su - OWNER -c`; default: when the
//	               user they run as (the worker's, or the SSH login of a
//	               remote host) is not the owner
//	activate:      start also activates the database (default true), which on
//	               an HADR standby starts it as the standby
//	seedImageDir:  a folder both sites' hosts see (an NFS mount) where Seed,
//	               and Reseed when the old primary cannot rejoin, put the
//	               primary's online backup for the standby to restore; HADR's
//	               own configuration (HADR_LOCAL_HOST, HADR_REMOTE_HOST, ...)
//	               is the DBA's, set once on both databases
//	forceStop:     a graceful stop uses db2stop force as well (default false:
//	               db2stop refuses while applications are connected)
//	timeout:       per-command timeout, default 10m
//	timeouts:      per-operation overrides {start, stop, status, quiesce,
//	               resume, takeover, initialize, seed}
//	killGrace:     SIGTERM→SIGKILL grace when a command is cut short, default 10s
package db2

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/hostrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// Operation names, as used in settings.timeouts.
const (
	OpStart      = "start"
	OpStop       = "stop"
	OpStatus     = "status"
	OpQuiesce    = "quiesce"
	OpResume     = "resume"
	OpTakeover   = "takeover"
	OpInitialize = "initialize"
)

// OpSeed covers the backup, restore and start hadr commands of Seed and
// Reseed.
const OpSeed = "seed"

var operations = []string{OpStart, OpStop, OpStatus, OpQuiesce, OpResume, OpTakeover, OpInitialize, OpSeed}

// Defaults.
const (
	DefaultTimeout   = 10 * time.Minute
	DefaultKillGrace = 10 * time.Second
)

type settings struct {
	InstanceOwner string                      `json:"instanceOwner"`
	Database      string                      `json:"database"`
	Databases     []string                    `json:"databases"`
	Profile       string                      `json:"profile"`
	SwitchUser    *bool                       `json:"switchUser"`
	Activate      *bool                       `json:"activate"`
	ForceStop     bool                        `json:"forceStop"`
	SeedImageDir  string                      `json:"seedImageDir"`
	Timeout       drivers.Duration            `json:"timeout"`
	Timeouts      map[string]drivers.Duration `json:"timeouts"`
	KillGrace     drivers.Duration            `json:"killGrace"`
}

type config struct {
	settings
	// dbs is database or databases, in the plan's order.
	dbs       []string
	activate  bool
	timeouts  map[string]time.Duration
	killGrace time.Duration
}

var (
	// Unix user names as useradd accepts them.
	ownerRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// DB2 database names and aliases: 1-8 letters, digits, @ # $.
	databaseRE = regexp.MustCompile(`^[A-Za-z@#$][A-Za-z0-9@#$_]{0,7}$`)
)

// Driver is the DB2 middleware driver. It holds no state between calls.
type Driver struct {
	logger *zap.Logger
	hosts  *hostrun.Hosts
}

var (
	_ drivers.Middleware      = (*Driver)(nil)
	_ drivers.Quiescer        = (*Driver)(nil)
	_ drivers.PostRestorer    = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the DB2 driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger, hosts: hostrun.NewHosts(logger.Named("ssh"))}
}

// CheckSettings checks the settings without running anything.
func (d *Driver) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("db2 driver %w", err)
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	switch {
	case s.InstanceOwner == "":
		bad("instanceOwner: required (the instance owner's user, e.g. db2inst1)")
	case !ownerRE.MatchString(s.InstanceOwner):
		bad("instanceOwner: %q is not a user name", s.InstanceOwner)
	}
	var dbs []string
	switch {
	case s.Database == "" && len(s.Databases) == 0:
		bad("database: required (or databases: a list)")
	case s.Database != "" && len(s.Databases) > 0:
		bad("database and databases: give one of them")
	case s.Database != "":
		dbs = []string{s.Database}
	default:
		dbs = s.Databases
	}
	seen := map[string]bool{}
	for i, db := range dbs {
		field := "database"
		if len(s.Databases) > 0 {
			field = fmt.Sprintf("databases[%d]", i)
		}
		switch {
		case !databaseRE.MatchString(db):
			bad("%s: %q is not a DB2 database name (1-8 letters, digits, @#$)", field, db)
		case seen[strings.ToUpper(db)]:
			bad("%s: %s is listed twice", field, db)
		}
		seen[strings.ToUpper(db)] = true
	}
	if s.SeedImageDir != "" && (!filepath.IsAbs(s.SeedImageDir) || strings.ContainsAny(s.SeedImageDir, "'\"$`\\ \n")) {
		bad("seedImageDir: %q is not an absolute path without quotes, spaces or $", s.SeedImageDir)
	}
	if s.Profile != "" && !filepath.IsAbs(s.Profile) {
		bad("profile: %q is not an absolute path", s.Profile)
	}
	timeouts, err := hostrun.Timeouts(s.Timeout, DefaultTimeout, s.Timeouts, operations)
	if err != nil {
		bad("%v", err)
	}
	if s.KillGrace < 0 {
		bad("killGrace: must be positive")
	}
	if len(errs) > 0 {
		return nil, drivers.BadSettingsf("db2 driver settings: %s", strings.Join(errs, "; "))
	}
	c := &config{settings: s, dbs: dbs, timeouts: timeouts, killGrace: s.KillGrace.D(), activate: true}
	if c.killGrace == 0 {
		c.killGrace = DefaultKillGrace
	}
	if s.Activate != nil {
		c.activate = *s.Activate
	}
	return c, nil
}

// switchFor says whether commands on host h go through su: as set, or
// when the user they would run as (the worker's, or the SSH login) is not
// the instance owner.
func (c *config) switchFor(h drivers.Host) bool {
	if c.SwitchUser != nil {
		return *c.SwitchUser
	}
	if h.Remote() {
		login, _ := h.SSH["user"].(string)
		return login != c.InstanceOwner
	}
	u, err := user.Current()
	return err != nil || u.Username != c.InstanceOwner
}

// argv wraps a shell script so it runs as the instance owner with the
// instance's environment.
func (c *config) argv(script string, switchUser bool) []string {
	profile := "~" + c.InstanceOwner + "/sqllib/db2profile"
	if c.Profile != "" {
		profile = tmpl.ShQuote(c.Profile)
	}
	full := ". " + profile + " || exit 127\n" + script
	if switchUser {
		return []string{"su", "-", c.InstanceOwner, "-c", full}
	}
	return []string{"/bin/sh", "-c", full}
}

func (d *Driver) run(ctx context.Context, c *config, t drivers.Target, op, script string) (drivers.Evidence, string, int, error) {
	r, err := d.hosts.For(t.Host)
	if err != nil {
		return drivers.Evidence{}, "", -1, err
	}
	ev, res, err := hostrun.Run(ctx, r, hostrun.Call{Op: "db2 " + op, Argv: c.argv(script, c.switchFor(t.Host)), Timeout: c.timeouts[op], KillGrace: c.killGrace})
	// The action shows the DB2 commands, not the su/profile wrapping.
	ev.Action = strings.ReplaceAll(strings.TrimSpace(script), "\n", "; ")
	if where := r.Where(); where != "" {
		ev.Action = "on " + where + ": " + ev.Action
	}
	d.logger.Debug("db2 command", zap.String("op", op), zap.String("component", t.Component.Name),
		zap.String("site", t.Site.Name), zap.String("command", ev.Action), zap.String("result", res.ExitSummary()),
		zap.Duration("took", res.Duration))
	return ev, res.Output, res.ExitCode, err
}

// Messages of db2start, db2stop and the CLP, as the DB2 message reference
// documents them (SQL1000-SQL1999 and DB2xxxx messages):
//
//	SQL1063N  DB2START processing was successful.
//	SQL1026N  The database manager is already active.
//	SQL1064N  DB2STOP processing was successful.
//	SQL1032N  No start database manager command was issued.
//	SQL1025N  The database manager was not stopped because databases are still active.
//	DB20000I  The SET WRITE command completed successfully.
//	SQL1490W  Activate database is successful, however, the database has already been activated on one or more nodes.
//	SQL1494W  Activate database is successful, however, there is already a connection to the database.
//	SQL1013N  The database alias name or database name "X" could not be found.
//	SQL1770N  Takeover HADR cannot complete. Reason code = "N".
//	DBT1000I  The tool completed successfully.   (db2inidb)
var (
	msgID = regexp.MustCompile(`\b((?:SQL|DB2|DBT)\d{4,5}[NWICE])\b`)
	// sql1770 keeps the reason code: its meaning is in the message reference.
	sql1770 = regexp.MustCompile(`SQL1770N .*Reason code = "?(\d+)"?`)
)

// Messages returns the message identifiers in DB2 output, in order.
func Messages(out string) []string {
	var ids []string
	for _, m := range msgID.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func has(out string, ids ...string) bool {
	for _, got := range Messages(out) {
		for _, id := range ids {
			if got == id {
				return true
			}
		}
	}
	return false
}

// ErrDatabaseNotFound is SQL1013N: the plan names a database the instance
// does not catalog.
var ErrDatabaseNotFound = errors.New("database not found")

func commandError(what string, ev drivers.Evidence, out string, code int) error {
	if has(out, "SQL1013N") {
		return drivers.BadSettings(fmt.Errorf("%s: %w (SQL1013N): %s", what, ErrDatabaseNotFound, hostrun.Short(ev.Output)))
	}
	ids := strings.Join(Messages(out), ", ")
	if ids == "" {
		ids = "no DB2 message"
	}
	return fmt.Errorf("%s: %s (exit %d): %s", what, ids, code, hostrun.Short(ev.Output))
}

// HADR reads `db2pd -db <database> -hadr` for each database: whether the
// instance and the database are up, and the HADR role, state, connect
// status and log gap.
func (d *Driver) HADR(ctx context.Context, t drivers.Target) ([]HADRStatus, drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return nil, drivers.Evidence{}, err
	}
	return d.hadrAll(ctx, c, t)
}

func (d *Driver) hadr(ctx context.Context, c *config, t drivers.Target, db string) (HADRStatus, drivers.Evidence, error) {
	ev, out, code, err := d.run(ctx, c, t, OpStatus, "db2pd -db "+db+" -hadr")
	if err != nil {
		return HADRStatus{Database: db}, ev, err
	}
	h, err := ParseHADR(out, db)
	if err != nil {
		return h, ev, fmt.Errorf("db2 status of %s: %w (exit %d): %s", db, err, code, hostrun.Short(ev.Output))
	}
	return h, ev, nil
}

func (d *Driver) hadrAll(ctx context.Context, c *config, t drivers.Target) ([]HADRStatus, drivers.Evidence, error) {
	var hs []HADRStatus
	var all drivers.Evidence
	for _, db := range c.dbs {
		h, ev, err := d.hadr(ctx, c, t, db)
		all = hostrun.Combine(all, ev)
		if err != nil {
			return hs, all, err
		}
		hs = append(hs, h)
		if !h.InstanceUp {
			// One answer for the instance is enough.
			break
		}
	}
	return hs, all, nil
}

// Status is running when every database is active (as primary, standby or
// standard), stopped otherwise; the detail says whether the instance is up
// and, with HADR, each database's role, state, connect status and log gap.
func (d *Driver) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Status{}, err
	}
	hs, ev, err := d.hadrAll(ctx, c, t)
	st := drivers.Status{State: drivers.StateUnknown, Evidence: ev}
	if err != nil {
		return st, err
	}
	return statusOf(hs, ev), nil
}

func statusOf(hs []HADRStatus, ev drivers.Evidence) drivers.Status {
	st := drivers.Status{State: drivers.StateRunning, Evidence: ev}
	var details []string
	for _, h := range hs {
		if !h.Active {
			st.State = drivers.StateStopped
		}
		details = append(details, h.Summary())
	}
	if len(hs) == 0 {
		st.State = drivers.StateUnknown
	}
	st.Detail = strings.Join(details, "; ")
	return st
}

func instanceUp(hs []HADRStatus) bool { return len(hs) > 0 && hs[0].InstanceUp }

// Start runs db2start (SQL1026N, already active, is fine) and activates
// each database that is not active.
func (d *Driver) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	hs, before, err := d.hadrAll(ctx, c, t)
	if err != nil {
		return before, fmt.Errorf("status before start: %w", err)
	}
	st := statusOf(hs, before)
	if st.State == drivers.StateRunning || (!c.activate && instanceUp(hs)) {
		before.AlreadyDone = true
		before.Output = drivers.Truncate("already running ("+st.Detail+"); start not run\n"+before.Output, hostrun.EvidenceLimit)
		return before, nil
	}
	all := before
	if !instanceUp(hs) {
		ev, out, code, err := d.run(ctx, c, t, OpStart, "db2start")
		all = hostrun.Combine(all, ev)
		if err != nil {
			return all, err
		}
		if !has(out, "SQL1063N", "SQL1026N") {
			return all, commandError("db2start", ev, out, code)
		}
	}
	if !c.activate {
		return all, nil
	}
	for _, db := range c.dbs {
		if h := find(hs, db); h.Active {
			continue
		}
		ev, out, code, err := d.run(ctx, c, t, OpStart, "db2 activate database "+db)
		all = hostrun.Combine(all, ev)
		if err != nil {
			return all, err
		}
		if !has(out, "DB20000I", "SQL1490W", "SQL1494W") {
			return all, commandError("activate database "+db, ev, out, code)
		}
	}
	return all, nil
}

func find(hs []HADRStatus, db string) HADRStatus {
	for _, h := range hs {
		if strings.EqualFold(h.Database, db) {
			return h
		}
	}
	return HADRStatus{Database: db}
}

// Stop runs db2stop, or db2stop force for an immediate stop (or with
// forceStop). A stopped instance is left alone; SQL1032N (never started)
// counts as stopped.
func (d *Driver) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	if mode != drivers.StopGraceful && mode != drivers.StopImmediate {
		return drivers.Evidence{}, drivers.BadSettingsf("db2 driver: unknown stop mode %q (want %s or %s)", mode, drivers.StopGraceful, drivers.StopImmediate)
	}
	hs, before, err := d.hadrAll(ctx, c, t)
	if err != nil {
		return before, fmt.Errorf("status before stop: %w", err)
	}
	if !instanceUp(hs) {
		before.AlreadyDone = true
		before.Output = drivers.Truncate("already stopped (instance not started); stop not run\n"+before.Output, hostrun.EvidenceLimit)
		return before, nil
	}
	cmd := "db2stop"
	if mode == drivers.StopImmediate || c.ForceStop {
		cmd = "db2stop force"
	}
	ev, out, code, err := d.run(ctx, c, t, OpStop, cmd)
	all := hostrun.Combine(before, ev)
	if err != nil {
		return all, err
	}
	switch {
	case has(out, "SQL1064N"):
		return all, nil
	case has(out, "SQL1032N"):
		all.AlreadyDone = true
		return all, nil
	case has(out, "SQL1025N"):
		return all, fmt.Errorf("db2stop: SQL1025N: databases are still active (applications connected); stop immediate runs db2stop force")
	}
	return all, commandError(cmd, ev, out, code)
}

// Quiesce suspends writes to every database: `db2 set write suspend for
// database`, each in the same shell as its `db2 connect` (the CLP keeps the
// connection in a back-end process per shell). If one fails, those already
// suspended are resumed before the error returns, so a failed quiesce
// leaves nothing frozen. Writes stay suspended after the connection ends,
// until Resume: DB2 suggests resuming from the same connection, but a new
// one may do it, which is how a separate Resume call works.
func (d *Driver) Quiesce(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	var all drivers.Evidence
	for i, db := range c.dbs {
		ev, err := d.setWrite(ctx, c, t, OpQuiesce, "suspend", db)
		all = hostrun.Combine(all, ev)
		if err != nil {
			for _, done := range c.dbs[:i] {
				// A fresh context: the caller's may be what failed us.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeouts[OpResume])
				rev, rerr := d.setWrite(rctx, c, t, OpResume, "resume", done)
				cancel()
				all = hostrun.Combine(all, rev)
				if rerr != nil {
					err = fmt.Errorf("%w; and resuming %s after it failed: %v", err, done, rerr)
				}
			}
			return all, err
		}
	}
	return all, nil
}

// Resume resumes writes to every database: `db2 set write resume for
// database`. It tries each database even when one fails.
func (d *Driver) Resume(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	var all drivers.Evidence
	var errs []error
	for _, db := range c.dbs {
		ev, err := d.setWrite(ctx, c, t, OpResume, "resume", db)
		all = hostrun.Combine(all, ev)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return all, errors.Join(errs...)
}

func (d *Driver) setWrite(ctx context.Context, c *config, t drivers.Target, op, verb, db string) (drivers.Evidence, error) {
	script := "db2 connect to " + db + " || exit $?\n" +
		"db2 set write " + verb + " for database\nrc=$?\n" +
		"db2 connect reset >/dev/null\ndb2 terminate >/dev/null\nexit $rc"
	ev, out, code, err := d.run(ctx, c, t, op, script)
	if err != nil {
		return ev, err
	}
	// The SET WRITE line is the one that matters; connect and reset print
	// their own.
	if strings.Contains(out, "DB20000I  The SET WRITE command completed successfully") {
		return ev, nil
	}
	return ev, commandError("set write "+verb+" for database "+db, ev, out, code)
}

// AfterRestore runs `db2inidb <database> as snapshot` for each database of
// a copy restored from a point taken under write suspend: it performs crash
// recovery and clears the suspended state so the database can be
// activated. The instance must be started and the databases not active, so
// it starts the instance first (SQL1026N is fine).
func (d *Driver) AfterRestore(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	all, out, code, err := d.run(ctx, c, t, OpInitialize, "db2start")
	if err != nil {
		return all, err
	}
	if !has(out, "SQL1063N", "SQL1026N") {
		return all, commandError("db2start", all, out, code)
	}
	for _, db := range c.dbs {
		ev, out, code, err := d.run(ctx, c, t, OpInitialize, "db2inidb "+db+" as snapshot")
		all = hostrun.Combine(all, ev)
		if err != nil {
			return all, err
		}
		if !has(out, "DBT1000I") {
			return all, commandError("db2inidb "+db+" as snapshot", ev, out, code)
		}
	}
	return all, nil
}

// Takeover makes this site's databases the HADR primaries:
// `db2 takeover hadr on database X`, or `... by force` when the primary is
// gone (unplanned failover). A database that is already the primary is left
// alone. Each result is checked with db2pd: the role must read PRIMARY.
func (d *Driver) Takeover(ctx context.Context, t drivers.Target, byForce bool) ([]HADRStatus, drivers.Evidence, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return nil, drivers.Evidence{}, err
	}
	var out []HADRStatus
	var all drivers.Evidence
	done := true
	for _, db := range c.dbs {
		h, ev, err := d.takeover(ctx, c, t, db, byForce)
		all = hostrun.Combine(all, ev)
		done = done && ev.AlreadyDone
		out = append(out, h)
		if err != nil {
			return out, all, err
		}
	}
	all.AlreadyDone = done
	return out, all, nil
}

func (d *Driver) takeover(ctx context.Context, c *config, t drivers.Target, db string, byForce bool) (HADRStatus, drivers.Evidence, error) {
	h, before, err := d.hadr(ctx, c, t, db)
	if err != nil {
		return h, before, fmt.Errorf("status before takeover of %s: %w", db, err)
	}
	if h.Role == RolePrimary {
		before.AlreadyDone = true
		before.Output = drivers.Truncate(db+" is already the HADR primary; takeover not run\n"+before.Output, hostrun.EvidenceLimit)
		return h, before, nil
	}
	if h.Role != RoleStandby {
		return h, before, fmt.Errorf("takeover of %s: the database is not an HADR standby here (%s)", db, h.Summary())
	}
	cmd := "db2 takeover hadr on database " + db
	if byForce {
		cmd += " by force"
	}
	ev, out, code, err := d.run(ctx, c, t, OpTakeover, cmd)
	all := hostrun.Combine(before, ev)
	if err != nil {
		return h, all, err
	}
	if m := sql1770.FindStringSubmatch(out); m != nil {
		return h, all, fmt.Errorf("takeover hadr on %s: SQL1770N reason code %s (see the SQL1770N reason codes; without by force the primary must be reachable in peer state): %s", db, m[1], hostrun.Short(ev.Output))
	}
	if !has(out, "DB20000I") {
		return h, all, commandError(cmd, ev, out, code)
	}
	after, ev3, err := d.hadr(ctx, c, t, db)
	all = hostrun.Combine(all, ev3)
	if err != nil {
		return after, all, err
	}
	if after.Role != RolePrimary {
		return after, all, fmt.Errorf("takeover hadr on %s reported success but db2pd says role %s", db, after.Role)
	}
	return after, all, nil
}
