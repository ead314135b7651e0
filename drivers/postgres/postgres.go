// Package postgres is the PostgreSQL middleware driver: it starts, stops and
// reports on one PostgreSQL server with pg_ctl, checks readiness with a real
// connection (pgx), quiesces it for a hot copy with pg_backup_start and
// pg_backup_stop, and drives streaming replication (drivers.Replicator):
// seed a standby with pg_basebackup -R, measure lag, promote, fence,
// rewind a former primary with pg_rewind, switch over with nothing lost.
//
// Settings (the component's settings in the plan; strings marked "template"
// are Go templates over {{.Plan}}, {{.Site.Name}}, {{index .Site.Settings
// "key"}}, {{.Component.Name}} and {{.Vars.key}}):
//
//	dataDir:   the data directory (template, required)
//	binDir:    where pg_ctl and friends live; default: the directory of pg_ctl
//	           on PATH, else the newest /usr/lib/postgresql/*/bin
//	host:      address the server listens on and drover connects to
//	           (template); default the host's address, else 127.0.0.1
//	port:      number or template, default 5432
//	listenAddresses: the server's listen_addresses, default host
//	socketDir: unix socket directory given to the server (template, optional)
//	user:      role drover connects as, default postgres
//	password:  secret reference (env:NAME or file:PATH), optional
//	database:  default postgres
//	sslMode:   disable | allow | prefer | require | verify-ca | verify-full
//	           (default prefer)
//	osUser:    operating-system user that runs pg_ctl and the server
//	           (required when the worker runs as root: PostgreSQL refuses root)
//	logFile:   pg_ctl's server log (template), default DATADIR/pg_ctl.log
//	timeouts:  {start, stopSmart, stopFast, stopImmediate, status, connect,
//	           backup, seed, promote, rewind, catchUp}
//	replication: {user, password, applicationName}: the role a standby
//	           connects as (default user/password) and the name it shows in
//	           pg_stat_replication (template, default drover_SITE)
//	vars:      free-form values for templates
//
// The driver passes port, listen addresses and socket directory to the
// server when it starts it (pg_ctl -o), so a data directory copied from
// another site by pg_basebackup or pg_rewind still listens where this
// component's settings say.
package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
)

// EvidenceLimit bounds command output kept in evidence (workflow history).
const EvidenceLimit = 2000

// Driver is the postgres middleware driver. Its only state is the sessions
// that hold a backup open between Quiesce and Resume, and the labels of the
// backups they ended.
type Driver struct {
	logger *zap.Logger

	mu      sync.Mutex
	backups map[string]*heldBackup
	labels  map[string]BackupLabel
}

var (
	_ drivers.Middleware      = (*Driver)(nil)
	_ drivers.Quiescer        = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
	_ drivers.Replicator      = (*Driver)(nil)
)

// New returns the postgres driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger, backups: map[string]*heldBackup{}, labels: map[string]BackupLabel{}}
}

// CheckSettings parses the settings without touching a server.
func (d *Driver) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

// Close ends every backup session still held (the server aborts those
// backups).
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, b := range d.backups {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b.conn.Close(ctx)
		cancel()
		delete(d.backups, k)
	}
}

// Start starts the server with pg_ctl and returns once a real connection
// works. Start of a running server only checks the connection.
func (d *Driver) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	r, err := d.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	return d.start(ctx, r)
}

func (d *Driver) start(ctx context.Context, r *resolved) (drivers.Evidence, error) {
	start := time.Now()
	st, ev, err := r.pgctlStatus(ctx)
	if err != nil {
		return ev, fmt.Errorf("start %s: %w", r.name, err)
	}
	if st.running {
		ready, err := r.waitReady(ctx, r.timeouts.start)
		ev = drivers.Evidence{
			Action: ev.Action, Output: ev.Output + ready, Duration: time.Since(start), AlreadyDone: true,
		}
		if err != nil {
			return ev, fmt.Errorf("start %s: already running (pid %d) but not ready: %w", r.name, st.pid, err)
		}
		return ev, nil
	}
	res, ev, err := r.pgctl(ctx, r.timeouts.start+5*time.Second, r.startArgs()...)
	if err != nil {
		return ev, fmt.Errorf("start %s: %w", r.name, err)
	}
	if res.ExitCode != 0 {
		return ev, fmt.Errorf("start %s: pg_ctl start: %s: %s%s", r.name, res.ExitSummary(), r.short(res.Output), r.logTail())
	}
	ready, err := r.waitReady(ctx, r.timeouts.start)
	ev.Output = drivers.Truncate(ev.Output+ready, EvidenceLimit)
	ev.Duration = time.Since(start)
	if err != nil {
		return ev, fmt.Errorf("start %s: started but not ready: %w%s", r.name, err, r.logTail())
	}
	d.logger.Info("postgres started", zap.String("component", r.name), zap.String("dataDir", r.dataDir))
	return ev, nil
}

// Stop stops the server: graceful tries smart, then fast, then immediate
// shutdown, each bounded by its own timeout; immediate goes straight to
// immediate. Stop of a stopped server is a no-op.
func (d *Driver) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	r, err := d.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	var modes []string
	switch mode {
	case drivers.StopGraceful, "":
		modes = []string{"smart", "fast", "immediate"}
	case drivers.StopImmediate:
		modes = []string{"immediate"}
	default:
		return drivers.Evidence{}, drivers.BadSettingsf("stop %s: unknown stop mode %q", r.name, mode)
	}
	return r.stop(ctx, modes)
}

// Status reports running (pg_ctl sees the postmaster and a connection
// works), starting (the postmaster is up but refuses connections yet) or
// stopped.
func (d *Driver) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	r, err := d.resolve(t)
	if err != nil {
		return drivers.Status{}, err
	}
	start := time.Now()
	st, ev, err := r.pgctlStatus(ctx)
	if err != nil {
		return drivers.Status{State: drivers.StateUnknown, Evidence: ev}, fmt.Errorf("status %s: %w", r.name, err)
	}
	if !st.running {
		ev.Duration = time.Since(start)
		return drivers.Status{State: drivers.StateStopped, Detail: st.detail, Evidence: ev}, nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeouts.status)
	defer cancel()
	role, err := r.role(cctx)
	ev.Duration = time.Since(start)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return drivers.Status{State: drivers.StateUnknown, Evidence: ev}, fmt.Errorf("status %s: %w", r.name, cerr)
		}
		if isAuthError(err) {
			return drivers.Status{State: drivers.StateUnknown, PID: st.pid, Evidence: ev},
				drivers.BadSettingsf("status %s: %s", r.name, r.redact(err.Error()))
		}
		return drivers.Status{
			State: drivers.StateStarting, PID: st.pid, Evidence: ev,
			Detail: "postmaster running, connection refused: " + r.short(err.Error()),
		}, nil
	}
	return drivers.Status{State: drivers.StateRunning, PID: st.pid, Detail: role, Evidence: ev}, nil
}

func (r *resolved) stop(ctx context.Context, modes []string) (drivers.Evidence, error) {
	start := time.Now()
	st, ev, err := r.pgctlStatus(ctx)
	if err != nil {
		return ev, fmt.Errorf("stop %s: %w", r.name, err)
	}
	if !st.running {
		ev.AlreadyDone = true
		ev.Duration = time.Since(start)
		return ev, nil
	}
	var actions, outputs []string
	var last string
	for _, m := range modes {
		timeout := r.timeouts.stopFor(m)
		res, sev, err := r.pgctl(ctx, timeout+5*time.Second,
			"stop", "-D", r.dataDir, "-m", m, "-w", "-t", seconds(timeout))
		actions = append(actions, sev.Action)
		outputs = append(outputs, fmt.Sprintf("[%s] %s", m, strings.TrimSpace(sev.Output)))
		if err != nil && ctx.Err() != nil {
			return r.joined(actions, outputs, start, res.ExitCode), fmt.Errorf("stop %s: %w", r.name, err)
		}
		if err == nil && res.ExitCode == 0 {
			ev := r.joined(actions, outputs, start, 0)
			return ev, nil
		}
		last = fmt.Sprintf("%s shutdown: %s: %s", m, res.ExitSummary(), r.short(res.Output))
		if err != nil {
			last = fmt.Sprintf("%s shutdown: %v", m, err)
		}
		r.logger.Warn("postgres shutdown mode did not finish; escalating",
			zap.String("component", r.name), zap.String("mode", m), zap.String("result", last))
	}
	return r.joined(actions, outputs, start, -1), fmt.Errorf("stop %s: %s", r.name, last)
}

func (r *resolved) joined(actions, outputs []string, start time.Time, code int) drivers.Evidence {
	return drivers.Evidence{
		Action:   strings.Join(actions, " ; "),
		Output:   drivers.Truncate(r.redact(strings.Join(outputs, "\n")), EvidenceLimit),
		ExitCode: code,
		Duration: time.Since(start),
	}
}

func (r *resolved) startArgs() []string {
	opts := []string{"-p " + fmt.Sprint(r.port), "-c listen_addresses=" + shellQuote(r.listen)}
	if r.socketDir != "" {
		opts = append(opts, "-k "+shellQuote(r.socketDir))
	}
	return []string{"start", "-D", r.dataDir, "-l", r.logFile, "-w", "-t", seconds(r.timeouts.start),
		"-o", strings.Join(opts, " ")}
}

// waitReady connects until a connection works or timeout passes; it
// returns a line for the evidence.
func (r *resolved) waitReady(ctx context.Context, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		cctx, cancel := context.WithTimeout(ctx, r.timeouts.connect)
		role, err := r.role(cctx)
		cancel()
		if err == nil {
			return fmt.Sprintf("\nready: connected to %s:%d as %s (%s)", r.host, r.port, r.user, role), nil
		}
		lastErr = err
		if isAuthError(err) {
			return "", drivers.BadSettingsf("%s", r.redact(err.Error()))
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no connection within %s: %s", timeout, r.short(lastErr.Error()))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// role connects and says whether the server is a primary or a standby.
func (r *resolved) role(ctx context.Context) (string, error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return "", err
	}
	if inRecovery {
		return drivers.RoleStandby, nil
	}
	return drivers.RolePrimary, nil
}

func seconds(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}

// shellQuote quotes v for the shell pg_ctl runs the server through.
func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
