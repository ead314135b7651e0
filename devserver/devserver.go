// Package devserver runs a Temporal server inside the drover process: SQLite
// persistence (in memory or in a file) or PostgreSQL through Temporal's own
// SQL plugin, static membership on loopback, and the Temporal Web UI. It is
// what `drover server`, `drover dev` and the end-to-end tests stand on, so
// nobody needs Docker or the Temporal CLI to see drover work.
//
// It imports nothing else of drover but drivers/secret (the PostgreSQL
// password is a secret reference): callers hand in the search attributes
// their workflows use.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults for the zero Options.
const (
	DefaultIP        = "127.0.0.1"
	DefaultNamespace = "default"
	DefaultRetention = 72 * time.Hour
)

// Options configure Start. The zero value is a usable in-memory server on
// free loopback ports with the UI.
type Options struct {
	// IP the frontend and the UI listen on. Default 127.0.0.1. The internal
	// services (history, matching, worker) always stay on 127.0.0.1.
	IP string
	// Port of the frontend gRPC API; 0 picks a free port.
	Port int
	// HTTPPort of the frontend's HTTP API (JSON over HTTP); 0 picks a free
	// port.
	HTTPPort int
	// UIPort of the Web UI; 0 picks a free port, negative runs no UI.
	UIPort int
	// DBFile is the SQLite file that holds the server's state. Empty keeps the
	// state in memory (gone when the process ends). A new file gets the schema;
	// an existing one is reused as it is.
	DBFile string
	// Namespace registered on start. Default "default".
	Namespace string
	// Retention of closed workflows in a namespace this start creates.
	// Default 72h. An existing namespace keeps its own.
	Retention time.Duration
	// SearchAttributes are custom search attributes registered in Namespace
	// before Start returns (name → type). A name already registered with
	// another type is an error.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's logs. Nil discards them.
	Logger *zap.Logger
	// LogLevel is the lowest level of server logs passed to Logger: debug,
	// info, warn or error. Default warn: the server is chatty at info.
	LogLevel string
	// DynamicConfig overrides or adds server dynamic config values by key
	// (e.g. "history.defaultActivityRetryPolicy"); applied after the dev
	// defaults of this package.
	DynamicConfig map[string]any
	// TLS, when non-nil, serves the frontend over TLS (and mTLS when
	// TLS.ClientCAFile is set).
	TLS *TLS
	// Postgres, when non-nil, keeps the server's state in PostgreSQL (both
	// the default and the visibility store) instead of SQLite. Start creates
	// missing databases and sets up or updates their schemas. Not with
	// DBFile.
	Postgres *Postgres
	// CodecEndpoint is the remote codec (drover codec-server) the Web UI
	// decodes payloads through, for encrypted histories; "" for none.
	CodecEndpoint string
}

// Server is a running embedded Temporal server (and UI).
type Server struct {
	frontend  string // host:port a client dials
	httpAPI   string
	dialHost  string
	uiURL     string
	namespace string
	logger    *zap.Logger
	logLevel  zap.AtomicLevel // of the server's logs

	temporal temporal.Server
	ui       *uiserver.Server

	stopOnce sync.Once
	stopErr  error
}

// FrontendAddress is the host:port of the frontend gRPC API.
func (s *Server) FrontendAddress() string { return s.frontend }

// HTTPAddress is the host:port of the frontend's HTTP API (the gRPC API as
// JSON over HTTP, e.g. GET /api/v1/namespaces).
func (s *Server) HTTPAddress() string { return s.httpAPI }

// UIURL is the Web UI's base URL (http://IP:PORT), or "" when the UI is off.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace registered on start.
func (s *Server) Namespace() string { return s.namespace }

// Start starts the server and returns once the frontend answers, the
// namespace and its search attributes are in place and the UI serves.
// ctx bounds the start-up only: the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	logger := o.Logger
	srvLogger, srvLevel, err := serverLogger(logger, o.LogLevel)
	if err != nil {
		return nil, err
	}

	// Phase times go to the debug log: start-up speed is a feature here.
	began := time.Now()
	var phases []zap.Field
	phase := func(name string) {
		phases = append(phases, zap.Duration("took."+name, time.Since(began)))
		began = time.Now()
	}

	ports, err := pickPorts(o)
	if err != nil {
		return nil, err
	}
	var db stores
	if o.Postgres != nil {
		db, err = preparePostgres(o, srvLogger)
	} else {
		db, err = prepareDB(o)
	}
	if err != nil {
		return nil, err
	}

	phase("db")
	serverOpts, err := buildServerOptions(o, ports, db, srvLogger)
	if err != nil {
		return nil, err
	}
	ts, err := startTemporal(serverOpts)
	if err != nil {
		return nil, fmt.Errorf("start temporal server on %s: %w", ports.frontendAddr(), err)
	}

	s := &Server{
		frontend:  ports.frontendAddr(),
		httpAPI:   ports.httpAddr(),
		dialHost:  ports.dialHost,
		namespace: o.Namespace,
		logger:    logger,
		logLevel:  srvLevel,
		temporal:  ts,
	}
	phase("server")
	if err := s.registerSearchAttributes(ctx, o, ports.dialHost); err != nil {
		_ = s.Stop()
		return nil, err
	}
	phase("searchAttributes")
	if o.UIPort >= 0 {
		if err := s.startUI(ctx, o, ports); err != nil {
			_ = s.Stop()
			return nil, err
		}
		phase("ui")
	}
	logger.Debug("embedded temporal server started", append([]zap.Field{
		zap.String("frontend", s.frontend), zap.String("ui", s.uiURL),
		zap.String("namespace", s.namespace), zap.String("db", db.description)}, phases...)...)
	return s, nil
}

// startTemporal builds and starts the server. A Fatal log of the server
// panics instead of exiting (see serverLogger); one raised while building or
// starting comes back here as an error.
func startTemporal(opts []temporal.ServerOption) (ts temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			ts, err = nil, fmt.Errorf("%v", r)
		}
	}()
	ts, err = temporal.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := ts.Start(); err != nil {
		// Start may have brought some services up before failing.
		_ = ts.Stop()
		return nil, err
	}
	return ts, nil
}

// Stop stops the UI and the server. It is safe to call more than once; later
// calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		began := time.Now()
		var errs []error
		// While it shuts down, the server's own workers and clients warn
		// about every connection the shutdown closes; none of that is news.
		if s.logLevel.Level() < zapcore.ErrorLevel {
			s.logLevel.SetLevel(zapcore.ErrorLevel)
		}
		if s.ui != nil {
			s.ui.Stop()
		}
		if s.temporal != nil {
			if err := s.temporal.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop temporal server on %s: %w", s.frontend, err))
			}
		}
		s.stopErr = errors.Join(errs...)
		s.logger.Debug("embedded temporal server stopped", zap.String("frontend", s.frontend),
			zap.Duration("took", time.Since(began)), zap.Error(s.stopErr))
	})
	return s.stopErr
}

func (o Options) withDefaults() (Options, error) {
	if o.IP == "" {
		o.IP = DefaultIP
	}
	if net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("devserver options: IP %q is not an IP address", o.IP)
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("devserver options: Port %d is out of range 0-65535", o.Port)
	}
	if o.UIPort > 65535 {
		return o, fmt.Errorf("devserver options: UIPort %d is out of range", o.UIPort)
	}
	if o.HTTPPort < 0 || o.HTTPPort > 65535 {
		return o, fmt.Errorf("devserver options: HTTPPort %d is out of range 0-65535", o.HTTPPort)
	}
	if o.Port != 0 && (o.Port == o.UIPort || o.Port == o.HTTPPort) || o.HTTPPort != 0 && o.HTTPPort == o.UIPort {
		return o, fmt.Errorf("devserver options: Port %d, HTTPPort %d and UIPort %d must differ", o.Port, o.HTTPPort, o.UIPort)
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Retention < 0 {
		return o, fmt.Errorf("devserver options: Retention %s is negative", o.Retention)
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	for name, t := range o.SearchAttributes {
		if name == "" {
			return o, errors.New("devserver options: SearchAttributes has an empty name")
		}
		if t == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return o, fmt.Errorf("devserver options: search attribute %s has no type", name)
		}
	}
	if o.TLS != nil {
		if err := o.TLS.validate(); err != nil {
			return o, err
		}
	}
	if o.Postgres != nil {
		if o.DBFile != "" {
			return o, errors.New("devserver options: DBFile (SQLite) and Postgres are exclusive")
		}
		if _, err := o.Postgres.resolved(); err != nil {
			return o, fmt.Errorf("devserver options: %w", err)
		}
	}
	return o, nil
}

// serverLogger routes the server's logs through logger, no lower than level.
// The level can be raised later (Stop does). A Fatal log panics rather than
// exit: a library must not end the process that embeds it.
func serverLogger(logger *zap.Logger, level string) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, lvl, fmt.Errorf("devserver options: LogLevel %q: %w", level, err)
	}
	return logger.Named("server").WithOptions(zap.IncreaseLevel(lvl), zap.WithFatalHook(zapcore.WriteThenPanic)), lvl, nil
}

func dbDescription(file string) string {
	if file == "" {
		return "memory"
	}
	return file
}

// ports are the listening ports chosen for one start.
type ports struct {
	ip                       string // the frontend and UI bind address
	dialHost                 string // the address a local client dials
	frontend                 int
	http                     int // the frontend's HTTP API
	history, matching, works int
	ui                       int // -1: no UI
}

func (p ports) frontendAddr() string {
	return net.JoinHostPort(p.dialHost, strconv.Itoa(p.frontend))
}

func (p ports) httpAddr() string {
	return net.JoinHostPort(p.dialHost, strconv.Itoa(p.http))
}

// pickPorts fills in the ports left 0. A picked port is free when picked and
// can in rare cases be taken before the server binds it; the bind then fails
// with an error naming the port.
func pickPorts(o Options) (ports, error) {
	p := ports{ip: o.IP, dialHost: o.IP, frontend: o.Port, http: o.HTTPPort, ui: o.UIPort}
	if ip := net.ParseIP(o.IP); ip.IsUnspecified() {
		// Listening on every interface; a local client still dials loopback.
		p.dialHost = "127.0.0.1"
		if ip.To4() == nil {
			p.dialHost = "::1"
		}
	}
	var err error
	taken := map[int]bool{}
	pick := func(ip string, port *int) {
		if err != nil || *port != 0 {
			return
		}
		for range 10 { // a port the OS hands out twice in a row is skipped
			var got int
			if got, err = freePort(ip); err != nil {
				return
			}
			if !taken[got] {
				*port = got
				taken[got] = true
				return
			}
		}
		err = fmt.Errorf("pick a free port on %s: the OS kept returning taken ports", ip)
	}
	for _, fixed := range []int{p.frontend, p.http, p.ui} {
		if fixed > 0 {
			taken[fixed] = true
		}
	}
	pick(o.IP, &p.frontend)
	pick(o.IP, &p.http)
	pick("127.0.0.1", &p.history)
	pick("127.0.0.1", &p.matching)
	pick("127.0.0.1", &p.works)
	if p.ui == 0 {
		pick(o.IP, &p.ui)
	}
	if err != nil {
		return p, err
	}
	// The server logs Fatal (and so exits the process) when it cannot bind a
	// port; a port given by the caller and already taken must be an error.
	for _, fixed := range []struct {
		name string
		port int
	}{{"Port", o.Port}, {"HTTPPort", o.HTTPPort}, {"UIPort", o.UIPort}} {
		if fixed.port <= 0 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(o.IP, strconv.Itoa(fixed.port)))
		if err != nil {
			return p, fmt.Errorf("%s %d on %s: %w", fixed.name, fixed.port, o.IP, err)
		}
		_ = l.Close()
	}
	return p, nil
}

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
