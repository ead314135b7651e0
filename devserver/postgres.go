package devserver

import (
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/primitives/timestamp"
	postgresschema "go.temporal.io/server/schema/postgresql/v12"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	schematool "go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers/secret"
)

// The PostgreSQL shape of the server. docker-compose.yml sets up the same
// (compose_test.go compares them), so the tested shape and the deployed one
// cannot drift apart.
const (
	// PostgresPlugin is Temporal's SQL persistence plugin for PostgreSQL 12+.
	PostgresPlugin = postgresplugin.PluginName
	// PostgresSchema and PostgresVisibilitySchema name the server module's
	// embedded schemas (schema/postgresql/v12/...), the same directories the
	// admin-tools image holds under /etc/temporal/schema.
	PostgresSchema           = "postgresql/v12/temporal"
	PostgresVisibilitySchema = "postgresql/v12/visibility"
	// PostgresSchemaVersion and PostgresVisibilitySchemaVersion are the
	// versions this server build needs (and sets up).
	PostgresSchemaVersion           = postgresschema.Version
	PostgresVisibilitySchemaVersion = postgresschema.VisibilityVersion
	// DefaultPostgresDatabase is the default store's database; the
	// visibility store's is its name with VisibilitySuffix, as in Temporal's
	// own set-up scripts (temporal, temporal_visibility).
	DefaultPostgresDatabase = "temporal"
	VisibilitySuffix        = "_visibility"
	DefaultPostgresPort     = 5432
	// PostgresHistoryShards is fixed when a cluster's database is first used
	// and cannot change afterwards. SQLite runs one shard (one connection
	// anyway); on PostgreSQL four let history work proceed in parallel.
	PostgresHistoryShards = 4
)

// Connections per store per service (frontend, history, matching, worker
// each keep their own pools): 4*(10+5) = 60 stays under PostgreSQL's default
// max_connections of 100.
const (
	postgresMaxConns           = 10
	postgresVisibilityMaxConns = 5
)

// Postgres names the PostgreSQL server that keeps the Temporal server's state:
// either URL, or Host/Port/User/Database. The password is never part of
// them: it is a secret reference.
type Postgres struct {
	// URL is postgres://USER@HOST:PORT/DATABASE, with optional query
	// parameters passed to the driver (e.g. sslmode=require). A password
	// in the URL is refused: use Password.
	URL string
	// Host, Port (default 5432), User and Database (default "temporal") are
	// the alternative to URL.
	Host     string
	Port     int
	User     string
	Database string
	// VisibilityDatabase holds the visibility store. Default: Database with
	// the suffix "_visibility".
	VisibilityDatabase string
	// Password is a secret reference (env:NAME or file:PATH), resolved at
	// Start. Empty: no password (trust or peer authentication).
	Password secret.Ref
	// ConnectAttributes are extra driver parameters (sslmode, ...).
	ConnectAttributes map[string]string
}

// Check validates p (its form only: the password reference is resolved at
// Start).
func (p Postgres) Check() error {
	_, err := p.resolved()
	return err
}

// Describe is the connection without its password, for logs and messages.
func (p Postgres) Describe() string {
	r, err := p.resolved()
	if err != nil {
		return "postgres (invalid)"
	}
	u := url.URL{Scheme: "postgres", User: url.User(r.User), Host: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Path: "/" + r.Database}
	return u.String()
}

// resolved validates p and fills in defaults, taking the URL apart when one
// is given.
func (p Postgres) resolved() (Postgres, error) {
	if p.URL != "" {
		if p.Host != "" || p.Port != 0 || p.User != "" || p.Database != "" {
			return p, errors.New("postgres: give either URL or Host/Port/User/Database, not both")
		}
		u, err := url.Parse(p.URL)
		if err != nil {
			// url's error quotes the input; it holds no password (refused
			// below) but say only what is wrong.
			return p, fmt.Errorf("postgres: URL is not a URL: %v", errors.Unwrap(err))
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return p, fmt.Errorf("postgres: URL scheme %q, want postgres://", u.Scheme)
		}
		if _, has := u.User.Password(); has {
			return p, errors.New("postgres: URL holds a password; pass it as a secret reference (env:NAME or file:PATH) instead")
		}
		p.Host = u.Hostname()
		if ps := u.Port(); ps != "" {
			port, err := strconv.Atoi(ps)
			if err != nil {
				return p, fmt.Errorf("postgres: URL port %q is not a number", ps)
			}
			p.Port = port
		}
		p.User = u.User.Username()
		p.Database = strings.TrimPrefix(u.Path, "/")
		if q := u.Query(); len(q) > 0 {
			attrs := map[string]string{}
			maps.Copy(attrs, p.ConnectAttributes)
			for k, v := range q {
				if len(v) != 1 {
					return p, fmt.Errorf("postgres: URL parameter %s is given %d times", k, len(v))
				}
				attrs[k] = v[0]
			}
			p.ConnectAttributes = attrs
		}
		p.URL = ""
	}
	if p.Host == "" {
		return p, errors.New("postgres: no host")
	}
	if p.Port == 0 {
		p.Port = DefaultPostgresPort
	}
	if p.Port < 1 || p.Port > 65535 {
		return p, fmt.Errorf("postgres: port %d is out of range 1-65535", p.Port)
	}
	if p.User == "" {
		return p, errors.New("postgres: no user")
	}
	if p.Database == "" {
		p.Database = DefaultPostgresDatabase
	}
	if p.VisibilityDatabase == "" {
		p.VisibilityDatabase = p.Database + VisibilitySuffix
	}
	if p.VisibilityDatabase == p.Database {
		return p, fmt.Errorf("postgres: the visibility database must differ from the default store's (%s)", p.Database)
	}
	for _, db := range []string{p.Database, p.VisibilityDatabase} {
		if strings.ContainsAny(db, "\"/?# \x00") {
			return p, fmt.Errorf("postgres: database name %q holds a character that is not allowed", db)
		}
	}
	if p.Password != "" {
		if err := p.Password.Check(); err != nil {
			return p, fmt.Errorf("postgres: password: %w", err)
		}
	}
	return p, nil
}

// sqlConfig is the server's SQL config for one of p's databases.
func (p Postgres) sqlConfig(database, password string, maxConns int) *config.SQL {
	return &config.SQL{
		PluginName:        PostgresPlugin,
		DatabaseName:      database,
		ConnectAddr:       net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		ConnectProtocol:   "tcp",
		User:              p.User,
		Password:          password,
		ConnectAttributes: maps.Clone(p.ConnectAttributes),
		MaxConns:          maxConns,
		MaxIdleConns:      maxConns,
		MaxConnLifetime:   time.Hour,
	}
}

// stores are the server's two persistence stores.
type stores struct {
	defaultStore, visibility *config.SQL
	historyShards            int32
	description              string
}

// preparePostgres creates the two databases when missing, sets up or updates
// their schemas with the server module's own schema tool (the same steps as
// temporal-sql-tool's create, setup-schema -v 0.0 and update-schema), and
// creates the namespace when missing. Running it again on a database already
// at this version changes nothing; a database with a newer schema is an error.
func preparePostgres(o Options, logger *zap.Logger) (stores, error) {
	p, err := o.Postgres.resolved()
	if err != nil {
		return stores{}, fmt.Errorf("devserver options: %w", err)
	}
	var password string
	if p.Password != "" {
		if password, err = p.Password.Resolve(); err != nil {
			return stores{}, fmt.Errorf("devserver options: postgres password: %w", err)
		}
	}
	redact := func(err error) error { return redactError(err, password) }
	desc := p.Describe()

	main := p.sqlConfig(p.Database, password, postgresMaxConns)
	vis := p.sqlConfig(p.VisibilityDatabase, password, postgresVisibilityMaxConns)
	for _, s := range []struct {
		cfg             *config.SQL
		schema, version string
	}{
		{main, PostgresSchema, PostgresSchemaVersion},
		{vis, PostgresVisibilitySchema, PostgresVisibilitySchemaVersion},
	} {
		if err := createDatabaseIfMissing(s.cfg, password); err != nil {
			return stores{}, fmt.Errorf("postgres %s: database %s: %w", desc, s.cfg.DatabaseName, redact(err))
		}
		if err := setupSchema(s.cfg, s.schema, s.version, logger); err != nil {
			return stores{}, fmt.Errorf("postgres %s: database %s: %w", desc, s.cfg.DatabaseName, redact(err))
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return stores{}, fmt.Errorf("namespace %s: %w", o.Namespace, err)
	}
	ns.Detail.Config.Retention = timestamp.DurationPtr(o.Retention)
	// The server module's helper lives in its sqlite package but writes
	// through whichever SQL plugin the config names.
	if err := sqliteschema.CreateNamespaces(main, ns); err != nil {
		return stores{}, fmt.Errorf("create namespace %s in %s: %w", o.Namespace, desc, redact(err))
	}
	return stores{defaultStore: main, visibility: vis, historyShards: PostgresHistoryShards, description: desc}, nil
}

// createDatabaseIfMissing creates cfg's database through the maintenance
// database "postgres" when it does not exist. A user who may not connect to
// "postgres" is assumed to have been given the database by an administrator:
// the schema step then reports if it is missing.
func createDatabaseIfMissing(cfg *config.SQL, password string) error {
	maint := *cfg
	maint.DatabaseName = "postgres"
	dsn, err := postgresDSN(&maint, password)
	if err != nil {
		return err
	}
	db, err := sql.Open("postgres", dsn) // lib/pq, registered by the server's plugin
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, cfg.DatabaseName).Scan(&exists); err != nil {
		if isAuthOrConnError(err) {
			return err
		}
		return nil
	}
	if exists {
		return nil
	}
	// Identifiers cannot be parameters; resolved() refused quotes in names.
	if _, err := db.Exec(`CREATE DATABASE "` + cfg.DatabaseName + `"`); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create: %w", err)
	}
	return nil
}

// isAuthOrConnError tells a failure that would hit the real database too
// (server unreachable, bad password) from a refusal of the maintenance
// database alone.
func isAuthOrConnError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "password authentication failed") ||
		strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "no such host") ||
		strings.Contains(msg, "i/o timeout")
}

func postgresDSN(cfg *config.SQL, password string) (string, error) {
	u := url.URL{Scheme: "postgres", Host: cfg.ConnectAddr, Path: "/" + cfg.DatabaseName}
	if password != "" {
		u.User = url.UserPassword(cfg.User, password)
	} else {
		u.User = url.User(cfg.User)
	}
	q := url.Values{}
	for k, v := range cfg.ConnectAttributes {
		q.Set(k, v)
	}
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable") // as the server's plugin does without TLS settings
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// setupSchema brings cfg's database to version want of the embedded schema
// named schemaName.
func setupSchema(cfg *config.SQL, schemaName, want string, zl *zap.Logger) (err error) {
	logger := log.NewZapLogger(zl.Named("schema").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	// The schema tool logs Fatal on a version it cannot parse; our logger
	// panics on Fatal rather than exit.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("schema tool: %v", r)
		}
	}()
	conn, err := sqltool.NewConnection(cfg, logger)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	// setup-schema -v 0.0: the version tables, and version 0.0 on an empty
	// database; a no-op on one that has a schema.
	setup := schematool.NewSetupSchemaTask(conn, &schematool.SetupConfig{InitialVersion: "0.0"}, logger)
	if err := setup.Run(); err != nil {
		return fmt.Errorf("set up schema version tables: %w", err)
	}
	have, err := conn.ReadSchemaVersion()
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	newer, err := versionNewer(have, want)
	if err != nil {
		return err
	}
	if newer {
		return fmt.Errorf("schema %s is at version %s, newer than %s which this drover's Temporal server (go.temporal.io/server) knows; use a drover built with a newer server or another database", schemaName, have, want)
	}
	// update-schema from the embedded versioned directories: applies only
	// the versions above the current one.
	update := schematool.NewUpdateSchemaTask(conn, &schematool.UpdateConfig{DBName: cfg.DatabaseName, SchemaName: schemaName, TargetVersion: want}, logger)
	if err := update.Run(); err != nil {
		return fmt.Errorf("update schema %s from version %s to %s: %w", schemaName, have, want, err)
	}
	return nil
}

// versionNewer reports whether schema version have ("1.19") is above want.
func versionNewer(have, want string) (bool, error) {
	h, err := parseVersion(have)
	if err != nil {
		return false, fmt.Errorf("schema version %q in the database: %w", have, err)
	}
	w, err := parseVersion(want)
	if err != nil {
		return false, err
	}
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i], nil
		}
	}
	return false, nil
}

func parseVersion(v string) ([3]int, error) {
	var out [3]int
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) > 3 || parts[0] == "" {
		return out, fmt.Errorf("%q is not a version", v)
	}
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return out, fmt.Errorf("%q is not a version", v)
		}
		out[i] = n
	}
	return out, nil
}

// redactError replaces the password (as given, or escaped as in a DSN) in
// err's text, should a driver ever quote it.
func redactError(err error, password string) error {
	if err == nil || password == "" {
		return err
	}
	msg := err.Error()
	redacted := msg
	for _, form := range []string{password, url.QueryEscape(password), url.PathEscape(password)} {
		redacted = strings.ReplaceAll(redacted, form, "[redacted]")
	}
	if redacted == msg {
		return err
	}
	return errors.New(redacted)
}
