package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
	"github.com/drover-dr/drover/drivers/secret"
)

// Default timeouts.
const (
	DefaultStartTimeout         = 60 * time.Second
	DefaultStopSmartTimeout     = 30 * time.Second
	DefaultStopFastTimeout      = 60 * time.Second
	DefaultStopImmediateTimeout = 30 * time.Second
	DefaultStatusTimeout        = 10 * time.Second
	DefaultConnectTimeout       = 5 * time.Second
	DefaultBackupTimeout        = 5 * time.Minute
	DefaultSeedTimeout          = 30 * time.Minute
	DefaultPromoteTimeout       = 60 * time.Second
	DefaultRewindTimeout        = 30 * time.Minute
	DefaultCatchUpTimeout       = 60 * time.Second
)

type timeoutSettings struct {
	Start         drivers.Duration `json:"start"`
	StopSmart     drivers.Duration `json:"stopSmart"`
	StopFast      drivers.Duration `json:"stopFast"`
	StopImmediate drivers.Duration `json:"stopImmediate"`
	Status        drivers.Duration `json:"status"`
	Connect       drivers.Duration `json:"connect"`
	Backup        drivers.Duration `json:"backup"`
	Seed          drivers.Duration `json:"seed"`
	Promote       drivers.Duration `json:"promote"`
	Rewind        drivers.Duration `json:"rewind"`
	CatchUp       drivers.Duration `json:"catchUp"`
}

type replicationSettings struct {
	User            string     `json:"user"`
	Password        secret.Ref `json:"password"`
	ApplicationName string     `json:"applicationName"`
}

type settings struct {
	DataDir         string               `json:"dataDir"`
	BinDir          string               `json:"binDir"`
	Host            string               `json:"host"`
	Port            any                  `json:"port"`
	ListenAddresses string               `json:"listenAddresses"`
	SocketDir       string               `json:"socketDir"`
	User            string               `json:"user"`
	Password        secret.Ref           `json:"password"`
	Database        string               `json:"database"`
	SSLMode         string               `json:"sslMode"`
	OSUser          string               `json:"osUser"`
	LogFile         string               `json:"logFile"`
	Timeouts        timeoutSettings      `json:"timeouts"`
	Replication     *replicationSettings `json:"replication"`
	Vars            map[string]any       `json:"vars"`
}

type timeouts struct {
	start, stopSmart, stopFast, stopImmediate, status, connect time.Duration
	backup, seed, promote, rewind, catchUp                     time.Duration
}

func (t timeouts) stopFor(mode string) time.Duration {
	switch mode {
	case "smart":
		return t.stopSmart
	case "fast":
		return t.stopFast
	}
	return t.stopImmediate
}

// config is settings checked and parsed, before a target fills templates.
type config struct {
	dataDir, host, listen, socketDir, logFile, port, appName *tmpl.Template
	portNum                                                  int
	binDir, user, database, sslMode, osUser                  string
	password                                                 secret.Ref
	replUser                                                 string
	replPassword                                             secret.Ref
	timeouts                                                 timeouts
	vars                                                     map[string]any
}

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("postgres driver %w", err)
	}
	c, err := s.compile()
	if err != nil {
		return nil, drivers.BadSettingsf("postgres driver settings: %w", err)
	}
	return c, nil
}

func (s settings) compile() (*config, error) {
	sample := tmpl.MiddlewareData{}
	var errs []error
	tpl := func(field, src string) *tmpl.Template {
		if src == "" {
			return nil
		}
		t, err := tmpl.Parse(field, src, sample)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	c := &config{
		dataDir:   tpl("dataDir", s.DataDir),
		host:      tpl("host", s.Host),
		listen:    tpl("listenAddresses", s.ListenAddresses),
		socketDir: tpl("socketDir", s.SocketDir),
		logFile:   tpl("logFile", s.LogFile),
		binDir:    s.BinDir,
		user:      or(s.User, "postgres"),
		password:  s.Password,
		database:  or(s.Database, "postgres"),
		sslMode:   or(s.SSLMode, "prefer"),
		osUser:    s.OSUser,
		vars:      s.Vars,
	}
	if s.DataDir == "" {
		errs = append(errs, errors.New("dataDir: required"))
	}
	switch p := s.Port.(type) {
	case nil:
		c.portNum = 5432
	case float64:
		if p != float64(int(p)) || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("port: %v is not a port number (1..65535)", p))
		}
		c.portNum = int(p)
	case string:
		c.port = tpl("port", p)
	default:
		errs = append(errs, fmt.Errorf("port: want a number or a template string, got %T", p))
	}
	if !slices.Contains(sslModes, c.sslMode) {
		errs = append(errs, fmt.Errorf("sslMode: %q is not one of %s", c.sslMode, strings.Join(sslModes, ", ")))
	}
	for field, ref := range map[string]secret.Ref{"password": s.Password} {
		if ref != "" {
			if err := ref.Check(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	if strings.ContainsAny(c.user+c.database, "\x00") {
		errs = append(errs, errors.New("user/database: contains a NUL byte"))
	}
	c.replUser, c.replPassword = c.user, c.password
	if r := s.Replication; r != nil {
		c.replUser = or(r.User, c.user)
		if r.Password != "" {
			if err := r.Password.Check(); err != nil {
				errs = append(errs, fmt.Errorf("replication.password: %w", err))
			}
			c.replPassword = r.Password
		}
		c.appName = tpl("replication.applicationName", r.ApplicationName)
	}
	to := s.Timeouts
	for _, f := range []struct {
		name string
		v    drivers.Duration
		def  time.Duration
		dst  *time.Duration
	}{
		{"start", to.Start, DefaultStartTimeout, &c.timeouts.start},
		{"stopSmart", to.StopSmart, DefaultStopSmartTimeout, &c.timeouts.stopSmart},
		{"stopFast", to.StopFast, DefaultStopFastTimeout, &c.timeouts.stopFast},
		{"stopImmediate", to.StopImmediate, DefaultStopImmediateTimeout, &c.timeouts.stopImmediate},
		{"status", to.Status, DefaultStatusTimeout, &c.timeouts.status},
		{"connect", to.Connect, DefaultConnectTimeout, &c.timeouts.connect},
		{"backup", to.Backup, DefaultBackupTimeout, &c.timeouts.backup},
		{"seed", to.Seed, DefaultSeedTimeout, &c.timeouts.seed},
		{"promote", to.Promote, DefaultPromoteTimeout, &c.timeouts.promote},
		{"rewind", to.Rewind, DefaultRewindTimeout, &c.timeouts.rewind},
		{"catchUp", to.CatchUp, DefaultCatchUpTimeout, &c.timeouts.catchUp},
	} {
		switch {
		case f.v < 0:
			errs = append(errs, fmt.Errorf("timeouts.%s: must be positive", f.name))
		case f.v == 0:
			*f.dst = f.def
		default:
			*f.dst = f.v.D()
		}
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		sort.Strings(msgs)
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// resolved is the configuration for one target: templates rendered, the
// binary directory found, the OS user looked up. Secrets stay references
// until a connection or a command needs them.
type resolved struct {
	logger                                    *zap.Logger
	name                                      string
	dataDir, binDir, host, listen, socketDir  string
	logFile, user, database, sslMode, appName string
	port                                      int
	password, replPassword                    secret.Ref
	replUser                                  string
	cred                                      *syscall.Credential
	timeouts                                  timeouts
	// secrets holds values resolved so far, redacted from any text.
	secrets []string
}

func (d *Driver) resolve(t drivers.Target) (*resolved, error) {
	c, err := parse(t.Component.Settings)
	if err != nil {
		return nil, err
	}
	data := tmpl.ForTarget(t, c.vars)
	render := func(tp *tmpl.Template) (string, error) {
		if tp == nil {
			return "", nil
		}
		return tp.Render(data)
	}
	r := &resolved{
		logger: d.logger, name: t.Component.Name + "@" + t.Site.Name,
		user: c.user, database: c.database, sslMode: c.sslMode,
		password: c.password, replUser: c.replUser, replPassword: c.replPassword,
		timeouts: c.timeouts, port: c.portNum,
	}
	var errs []error
	for _, f := range []struct {
		t   *tmpl.Template
		dst *string
	}{{c.dataDir, &r.dataDir}, {c.host, &r.host}, {c.listen, &r.listen}, {c.socketDir, &r.socketDir}, {c.logFile, &r.logFile}, {c.appName, &r.appName}} {
		v, err := render(f.t)
		if err != nil {
			errs = append(errs, err)
		}
		*f.dst = v
	}
	if c.port != nil {
		v, err := render(c.port)
		if err == nil {
			r.port, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil || r.port < 1 || r.port > 65535 {
				err = fmt.Errorf("port: %q is not a port number (1..65535)", v)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, drivers.BadSettingsf("postgres %s: %w", r.name, errors.Join(errs...))
	}
	if r.host == "" {
		r.host = or(t.Host.Address, "127.0.0.1")
	}
	if r.listen == "" {
		r.listen = r.host
	}
	if !filepath.IsAbs(r.dataDir) {
		return nil, drivers.BadSettingsf("postgres %s: dataDir: %q is not an absolute path", r.name, r.dataDir)
	}
	r.dataDir = filepath.Clean(r.dataDir)
	if r.logFile == "" {
		r.logFile = filepath.Join(r.dataDir, "pg_ctl.log")
	}
	if r.appName == "" {
		r.appName = "drover_" + t.Site.Name
	}
	r.appName = sanitizeAppName(r.appName)
	if r.binDir, err = findBinDir(c.binDir); err != nil {
		return nil, drivers.BadSettingsf("postgres %s: binDir: %w", r.name, err)
	}
	if r.cred, err = credential(c.osUser); err != nil {
		return nil, drivers.BadSettingsf("postgres %s: osUser: %w", r.name, err)
	}
	return r, nil
}

// sanitizeAppName keeps what PostgreSQL keeps in application_name and what
// stays one word in a connection string.
func sanitizeAppName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// findBinDir returns dir when given, else pg_ctl's directory on PATH, else
// the newest /usr/lib/postgresql/N/bin (Debian keeps pg_ctl off PATH).
func findBinDir(dir string) (string, error) {
	if dir != "" {
		dir, err := drivers.ExpandPath(dir)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
			return "", fmt.Errorf("%s has no pg_ctl: %w", dir, err)
		}
		return dir, nil
	}
	// A pg_ctl on PATH is often a symlink into the versioned directory that
	// holds the rest of the tools (pg_basebackup, pg_rewind, ...).
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	best, bestVer := "", -1.0
	for _, m := range matches {
		ver := filepath.Base(filepath.Dir(filepath.Dir(m)))
		v, err := strconv.ParseFloat(ver, 64)
		if err == nil && v > bestVer {
			best, bestVer = filepath.Dir(m), v
		}
	}
	if best == "" {
		return "", errors.New("pg_ctl is not on PATH and no /usr/lib/postgresql/*/bin/pg_ctl exists; set binDir")
	}
	return best, nil
}

// credential returns the credential to run PostgreSQL's tools as osUser,
// nil when the worker already is that user (or none is asked for and the
// worker is not root).
func credential(osUser string) (*syscall.Credential, error) {
	if osUser == "" {
		if os.Geteuid() == 0 {
			return nil, errors.New("required when the worker runs as root (PostgreSQL refuses to run as root)")
		}
		return nil, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", osUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: uid %q gid %q are not numbers", osUser, u.Uid, u.Gid)
	}
	if int(uid) == os.Geteuid() {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%q: the worker runs as uid %d, not root, so it cannot run commands as uid %d", osUser, os.Geteuid(), uid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tool returns the path of one of PostgreSQL's programs.
func (r *resolved) tool(name string) string { return filepath.Join(r.binDir, name) }

// run runs one of PostgreSQL's programs as the OS user, with env added
// (secrets go there, never in argv), and returns evidence with secrets
// redacted.
func (r *resolved) run(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (cmdrun.Result, drivers.Evidence, error) {
	argv := append([]string{r.tool(name)}, args...)
	res, err := cmdrun.Run(ctx, cmdrun.Spec{
		Argv: argv, Env: append([]string{"LC_ALL=C"}, env...), Dir: "/", Timeout: timeout,
		Credential: r.cred,
	})
	ev := drivers.Evidence{
		Action:   r.redact(tmpl.Display(append([]string{name}, args...))),
		Output:   drivers.Truncate(r.redact(res.Output), EvidenceLimit),
		ExitCode: res.ExitCode,
		Duration: res.Duration,
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", name, err)
	}
	return res, ev, err
}

func (r *resolved) pgctl(ctx context.Context, timeout time.Duration, args ...string) (cmdrun.Result, drivers.Evidence, error) {
	return r.run(ctx, timeout, nil, "pg_ctl", args...)
}

type ctlStatus struct {
	running bool
	pid     int
	detail  string
}

// pgctlStatus runs pg_ctl status: exit 0 running (with the pid), 3 not
// running, 4 no usable data directory.
func (r *resolved) pgctlStatus(ctx context.Context) (ctlStatus, drivers.Evidence, error) {
	res, ev, err := r.pgctl(ctx, r.timeouts.status, "status", "-D", r.dataDir)
	if err != nil {
		return ctlStatus{}, ev, err
	}
	switch res.ExitCode {
	case 0:
		st := ctlStatus{running: true}
		if _, after, ok := strings.Cut(res.Output, "(PID: "); ok {
			st.pid, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(after, ")", 2)[0]))
		}
		return st, ev, nil
	case 3:
		return ctlStatus{detail: "no server running"}, ev, nil
	case 4:
		return ctlStatus{detail: "no database cluster in " + r.dataDir}, ev, nil
	}
	return ctlStatus{}, ev, fmt.Errorf("pg_ctl status: %s: %s", res.ExitSummary(), r.short(res.Output))
}

// connect opens one connection with the component's credentials.
func (r *resolved) connect(ctx context.Context) (*pgx.Conn, error) {
	return r.connectAs(ctx, r.user, r.password, r.database, "")
}

func (r *resolved) connectAs(ctx context.Context, user string, pw secret.Ref, database, replication string) (*pgx.Conn, error) {
	cfg, err := r.connConfig(user, pw, database)
	if err != nil {
		return nil, err
	}
	if replication != "" {
		cfg.RuntimeParams["replication"] = replication
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, errors.New(r.redact(err.Error()))
	}
	return conn, nil
}

func (r *resolved) connConfig(user string, pw secret.Ref, database string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(r.conninfo(user, database))
	if err != nil {
		return nil, drivers.BadSettingsf("postgres %s: connection settings: %s", r.name, r.redact(err.Error()))
	}
	if pw != "" {
		v, err := pw.Resolve()
		if err != nil {
			return nil, drivers.BadSettingsf("postgres %s: %w", r.name, err)
		}
		r.addSecret(v)
		cfg.Password = v
	}
	cfg.ConnectTimeout = r.timeouts.connect
	cfg.RuntimeParams["application_name"] = "drover"
	return cfg, nil
}

// conninfo is a libpq connection string without the password: the
// password travels in PGPASSWORD or the pgx config, never in a string that
// could be logged.
func (r *resolved) conninfo(user, database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s connect_timeout=%s",
		kwQuote(r.host), r.port, kwQuote(user), kwQuote(database), r.sslMode, seconds(r.timeouts.connect))
}

// kwQuote quotes a value of a libpq keyword/value connection string.
func kwQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (r *resolved) addSecret(v string) {
	if v != "" && !slices.Contains(r.secrets, v) {
		r.secrets = append(r.secrets, v)
	}
}

func (r *resolved) redact(s string) string { return tmpl.Redact(s, r.secrets) }

func (r *resolved) short(s string) string {
	return drivers.Truncate(strings.Join(strings.Fields(r.redact(s)), " "), 500)
}

// logTail is the end of the server log, for an error saying why a start
// failed. The log is read as the worker; a log it cannot read adds nothing.
func (r *resolved) logTail() string {
	b, err := os.ReadFile(r.logFile)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return "; server log " + r.logFile + " ends: " + strings.Join(strings.Fields(r.redact(string(b))), " ")
}

func isAuthError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "28P01" || pe.Code == "28000"
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 28P01") || strings.Contains(s, "SQLSTATE 28000")
}
