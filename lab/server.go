package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Server states as the health endpoint reports them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
)

// EnvServe marks a process started by the lab launcher; test binaries check
// it in TestMain (see RunIfServer) so they can stand in for drover.
const EnvServe = "DROVER_LAB_SERVE"

// EnvWatchPID, when set in a lab server's environment, is a process the
// server watches: when it is gone, the server exits. Test harnesses set it
// so a crashed test leaves no server behind; real labs never set it,
// because real servers outlive the orchestrator.
const EnvWatchPID = "DROVER_LAB_WATCH_PID"

// RunIfServer turns the current process into a lab server when the
// launcher started it (EnvServe=1 and arguments "lab serve ..."), and never
// returns in that case. Test binaries call it first thing in TestMain.
func RunIfServer() {
	if os.Getenv(EnvServe) != "1" || len(os.Args) < 3 || os.Args[1] != "lab" || os.Args[2] != "serve" {
		return
	}
	os.Exit(ServeMain(os.Args[3:]))
}

// Health is what a server's /health endpoint answers.
type Health struct {
	Server    string         `json:"server"`
	Role      Role           `json:"role"`
	Product   string         `json:"product,omitempty"`
	Node      string         `json:"node,omitempty"`
	Site      string         `json:"site"`
	State     string         `json:"state"`
	PID       int            `json:"pid"`
	StartedAt time.Time      `json:"startedAt"`
	ReadyAt   time.Time      `json:"readyAt,omitzero"`
	Quiesced  bool           `json:"quiesced,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// startError is a start-up refusal; its message is what the server prints.
type startError struct{ msg string }

func (e *startError) Error() string { return e.msg }

func cannotStart(format string, args ...any) error {
	return &startError{msg: fmt.Sprintf(format, args...)}
}

type serveOptions struct {
	labDir    string
	site      string
	server    string
	timeScale float64
}

// ServeMain runs one lab server until it is stopped; it returns the exit
// code. Arguments: --lab-dir DIR --site NAME --server NAME [--time-scale X]
// or --front-door --lab-dir DIR.
func ServeMain(args []string) int {
	fs := flag.NewFlagSet("lab serve", flag.ContinueOnError)
	var o serveOptions
	fs.StringVar(&o.labDir, "lab-dir", "", "lab directory")
	fs.StringVar(&o.site, "site", "", "site the server runs at")
	fs.StringVar(&o.server, "server", "", "server name")
	fs.Float64Var(&o.timeScale, "time-scale", DefaultTimeScale, "scale of start-up times")
	frontDoor := fs.Bool("front-door", false, "run the front door")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := newServerLogger(os.Stderr)
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go watchParent(log, stop)
	if *frontDoor {
		if err := runFrontDoor(ctx, log, o.labDir); err != nil {
			fmt.Fprintf(os.Stderr, "front door: cannot start: %v\n", err)
			return 1
		}
		return 0
	}
	if o.labDir == "" || o.site == "" || o.server == "" {
		fmt.Fprintln(os.Stderr, "lab serve: --lab-dir, --site and --server are required")
		return 2
	}
	err := runServer(ctx, log.With(zap.String("server", o.server), zap.String("site", o.site)), o)
	if err == nil {
		return 0
	}
	var se *startError
	if errors.As(err, &se) {
		fmt.Fprintf(os.Stderr, "%s: cannot start: %s\n", o.server, se.msg)
	} else {
		fmt.Fprintf(os.Stderr, "%s: failed: %v\n", o.server, err)
	}
	return 1
}

func newServerLogger(w io.Writer) *zap.Logger {
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(w), zapcore.InfoLevel)
	return zap.New(core)
}

// watchParent exits the server when the process named by EnvWatchPID ends.
func watchParent(log *zap.Logger, stop func()) {
	pid, err := strconv.Atoi(os.Getenv(EnvWatchPID))
	if err != nil || pid <= 0 {
		return
	}
	for {
		time.Sleep(500 * time.Millisecond)
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			log.Warn("watched process is gone; stopping", zap.Int("pid", pid))
			stop()
			time.Sleep(5 * time.Second)
			os.Exit(3)
		}
	}
}

// labServer is one running server of the cell.
type labServer struct {
	o       serveOptions
	log     *zap.Logger
	l       Layout
	inst    *Installation
	prof    *profile
	session string
	state   atomic.Value
	started time.Time
	ready   time.Time
	hc      *http.Client

	db  *dbClient
	dbs *dbServer
	me  *meEngine
	bpm *bpmApp
	mon *monApp

	// settled is closed when the server leaves the starting state, so a
	// /health?wait= request answers the moment it is running.
	settled     chan struct{}
	settledOnce sync.Once

	// paused is the quiesce state of non-database servers.
	pmu    sync.Mutex
	paused bool
}

func runServer(ctx context.Context, log *zap.Logger, o serveOptions) error {
	s := &labServer{o: o, log: log, l: Layout{Dir: o.labDir}, started: time.Now(), hc: newHTTPClient(5 * time.Second)}
	s.session = newID()
	s.settled = make(chan struct{})
	s.state.Store(StateStarting)
	// However the start ends (running, refused, stopped), waiters are told.
	defer s.settle()
	var err error
	if s.inst, err = ReadInstallation(s.l, o.site); err != nil {
		return cannotStart("%v", err)
	}
	if s.prof, err = readProfile(s.l, o.site, o.server); err != nil {
		return cannotStart("%v", err)
	}
	cfg := s.prof.Server
	for product, want := range cfg.Installed {
		if got := s.inst.Installed[product]; got != want {
			return cannotStart("profile was created with %s %s but site %s has %q installed", product, want, o.site, got)
		}
	}
	log.Info("starting", zap.String("role", string(cfg.Role)), zap.String("product", cfg.Product), zap.Int("pid", os.Getpid()))
	if err := s.checkDependencies(ctx); err != nil {
		return err
	}
	if cfg.Role == RoleDatabase {
		if s.dbs, err = openDBServer(ctx, log, s.l, o.site, o.server); err != nil {
			return cannotStart("%v", err)
		}
		defer s.dbs.close()
	}
	if res := s.prof.Resources; res.DataSource != nil {
		s.db = newDBClient(res.DataSource.Address, res.DataSource.Name, o.site)
	}
	addr := net.JoinHostPort(s.inst.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return cannotStart("listen on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	srv := &http.Server{Handler: s.withHeaders(mux), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	// Start-up takes time, as a real server's does.
	select {
	case <-time.After(StartupTime(cfg.Role, o.timeScale)):
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return err
	}
	if err := s.startRole(ctx); err != nil {
		var se *startError
		if errors.As(err, &se) {
			return err
		}
		return cannotStart("%v", err)
	}
	s.ready = time.Now()
	s.state.Store(StateRunning)
	s.settle()
	log.Info("open for e-business", zap.String("address", addr), zap.Duration("startup", s.ready.Sub(s.started)))

	var roleErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		roleErr = err
	}
	s.state.Store(StateStopping)
	log.Info("stopping")
	s.stopRole()
	log.Info("stopped")
	return roleErr
}

// startRole brings up what the role does once the server is up.
func (s *labServer) startRole(ctx context.Context) error {
	cfg := s.prof.Server
	switch cfg.Role {
	case RoleDatabase:
		go s.loop(ctx, time.Minute, func(ctx context.Context) { s.dbs.pruneDone(ctx, 10*time.Minute) })
	case RoleMessaging:
		me, err := startME(ctx, s)
		if err != nil {
			return err
		}
		s.me = me
	case RoleApp:
		switch cfg.Product {
		case ProductBPM:
			app, err := startBPMApp(ctx, s)
			if err != nil {
				return err
			}
			s.bpm = app
		case ProductMonitor:
			app, err := startMonApp(ctx, s)
			if err != nil {
				return err
			}
			s.mon = app
		}
	}
	return nil
}

func (s *labServer) stopRole() {
	if s.bpm != nil {
		s.bpm.stop()
	}
	if s.mon != nil {
		s.mon.stop()
	}
	if s.me != nil {
		s.me.stop()
	}
}

func (s *labServer) loop(ctx context.Context, every time.Duration, fn func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

func (s *labServer) withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerSite, s.o.site)
		w.Header().Set(headerServer, s.o.server)
		h.ServeHTTP(w, r)
	})
}

func (s *labServer) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		// ?wait=D holds the answer while the server is still starting, up
		// to D: the launcher learns it is running at once, without
		// polling a tier of servers every few milliseconds (which, for 32
		// servers starting together on two CPUs, slowed their start).
		if d, err := time.ParseDuration(r.URL.Query().Get("wait")); err == nil && d > 0 {
			t := time.NewTimer(min(d, 10*time.Second))
			select {
			case <-s.settled:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
		writeJSON(w, http.StatusOK, s.health())
	})
	mux.HandleFunc("POST /admin/quiesce", s.handleQuiesce)
	mux.HandleFunc("POST /admin/resume", s.handleResume)
	mux.HandleFunc("GET /probe/{level}", s.ready2(s.handleProbe))
	mux.HandleFunc("GET /stats", s.ready2(s.handleStats))
	switch s.prof.Server.Role {
	case RoleDatabase:
		s.dbs.routes(mux)
	case RoleMessaging:
		mux.HandleFunc("POST /me/receive", s.ready2(func(w http.ResponseWriter, r *http.Request) { s.me.handleReceive(w, r) }))
	case RoleSupport:
		mux.HandleFunc("GET /dashboard", s.ready2(s.handleDashboard))
	case RoleApp:
		mux.HandleFunc("GET /apps", s.ready2(s.handleApps))
		if s.prof.Server.Product == ProductBPM {
			mux.HandleFunc("POST /order", s.ready2(func(w http.ResponseWriter, r *http.Request) { s.bpm.handleOrder(w, r) }))
			mux.HandleFunc("POST /sca/invoke", s.ready2(func(w http.ResponseWriter, r *http.Request) { s.bpm.handleSCA(w, r) }))
			mux.HandleFunc("POST /apps/validate-start", s.ready2(func(w http.ResponseWriter, r *http.Request) { s.bpm.handleValidateStart(w, r) }))
		}
	}
}

// ready2 refuses requests until the server is running.
func (s *labServer) ready2(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if st := s.state.Load().(string); st != StateRunning {
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%s is %s", s.o.server, st))
			return
		}
		h(w, r)
	}
}

// settle tells /health?wait= requests the start is over.
func (s *labServer) settle() { s.settledOnce.Do(func() { close(s.settled) }) }

func (s *labServer) health() Health {
	cfg := s.prof.Server
	// What startRole sets is read only once the state says running: the
	// state's store orders those writes before this read.
	h := Health{
		Server: cfg.Server, Role: cfg.Role, Product: cfg.Product, Node: cfg.Node, Site: s.o.site,
		State: s.state.Load().(string), PID: os.Getpid(), StartedAt: s.started,
		Detail: map[string]any{},
	}
	running := h.State == StateRunning
	if running {
		h.ReadyAt = s.ready
		h.Quiesced = s.isQuiesced()
	}
	switch cfg.Role {
	case RoleMessaging:
		h.Detail["bus"] = BusOf(cfg.Product)
		h.Detail["engine"] = map[bool]string{true: "started", false: "stopped"}[running && s.me != nil]
	case RoleApp:
		state := map[bool]string{true: "started", false: "stopped"}[running]
		if cfg.Product == ProductBPM {
			h.Detail["containers"] = map[string]string{"BPC": state, "HTM": state}
		} else {
			h.Detail["containers"] = map[string]string{"MonitorModel": state}
		}
	case RoleDatabase:
		if s.dbs != nil {
			h.Detail["commits"] = s.dbs.commits.Load()
		}
	}
	return h
}

func (s *labServer) isQuiesced() bool {
	if s.dbs != nil {
		return s.dbs.isQuiesced()
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.paused
}

func (s *labServer) handleQuiesce(w http.ResponseWriter, r *http.Request) {
	if s.dbs != nil {
		s.dbs.handleQuiesce(w, r)
		return
	}
	max, _ := time.ParseDuration(r.URL.Query().Get("max"))
	if max <= 0 {
		max = 10 * time.Minute
	}
	if st := s.state.Load().(string); st != StateRunning {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%s is %s", s.o.server, st))
		return
	}
	s.pmu.Lock()
	already := s.paused
	s.paused = true
	s.pmu.Unlock()
	what := "nothing to quiesce"
	if s.bpm != nil {
		s.bpm.tm.pause(max)
		what = "transaction manager paused"
	}
	if s.mon != nil {
		s.mon.tm.pause(max)
		what = "transaction manager paused"
	}
	writeJSON(w, http.StatusOK, map[string]any{"quiesced": true, "already": already, "detail": what})
}

func (s *labServer) handleResume(w http.ResponseWriter, r *http.Request) {
	if s.dbs != nil {
		s.dbs.handleResume(w, r)
		return
	}
	if st := s.state.Load().(string); st != StateRunning {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%s is %s", s.o.server, st))
		return
	}
	s.pmu.Lock()
	was := s.paused
	s.paused = false
	s.pmu.Unlock()
	if s.bpm != nil {
		s.bpm.tm.resume()
	}
	if s.mon != nil {
		s.mon.tm.resume()
	}
	writeJSON(w, http.StatusOK, map[string]any{"quiesced": false, "already": !was})
}

// roleLabel is how messages name a server of a role.
func roleLabel(r Role) string {
	switch r {
	case RoleDatabase:
		return "database"
	case RoleDmgr:
		return "deployment manager"
	case RoleNodeAgent:
		return "node agent"
	case RoleMessaging:
		return "messaging engine"
	case RoleSupport:
		return "support server"
	case RoleApp:
		return "app server"
	}
	return string(r)
}

// checkDependencies enforces start-up order the way real servers do: each
// refuses to start while what it needs is not there.
func (s *labServer) checkDependencies(ctx context.Context) error {
	cfg, res := s.prof.Server, s.prof.Resources
	need := func(ref *Ref, r Role) error {
		if ref == nil {
			return cannotStart("configuration names no %s (resources.json)", roleLabel(r))
		}
		return s.checkRunning(ctx, *ref, r)
	}
	switch cfg.Role {
	case RoleDmgr:
		return need(res.DataSource, RoleDatabase)
	case RoleNodeAgent:
		return need(res.Dmgr, RoleDmgr)
	case RoleMessaging:
		if err := need(res.DataSource, RoleDatabase); err != nil {
			return err
		}
		return need(res.NodeAgent, RoleNodeAgent)
	case RoleSupport:
		return need(res.Messaging, RoleMessaging)
	case RoleApp:
		if err := need(res.Messaging, RoleMessaging); err != nil {
			return err
		}
		if len(res.Support) == 0 {
			return cannotStart("configuration names no support server (resources.json)")
		}
		var first error
		for _, sup := range res.Support {
			err := s.checkRunning(ctx, sup, RoleSupport)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		return first
	}
	return nil
}

// checkRunning asks a server for its health; it must be running at this
// server's own site.
func (s *labServer) checkRunning(ctx context.Context, ref Ref, r Role) error {
	c := &client{hc: s.hc, addr: ref.Address, name: roleLabel(r) + " " + ref.Name, site: s.o.site}
	var h Health
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.call(cctx, "/health", nil, &h); err != nil {
		return cannotStart("%v", err)
	}
	if h.State != StateRunning {
		return cannotStart("%s %s at %s is not running (it is %s)", roleLabel(r), ref.Name, ref.Address, h.State)
	}
	return nil
}

// newID returns a random 16-hex-digit identifier.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
