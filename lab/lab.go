package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Lab is the client side of a lab dir: it starts, stops, inspects and
// breaks the servers, and asks them for probes. The CLI and drover's lab
// drivers use it; the servers themselves never do.
type Lab struct {
	Dir  string
	Topo *Topology
	L    Layout
	log  *zap.Logger
	hc   *http.Client
}

// Open returns the lab in dir (its lab.json must exist).
func Open(dir string, log *zap.Logger) (*Lab, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	t, err := LoadTopology(abs)
	if err != nil {
		return nil, err
	}
	return newLab(abs, t, log), nil
}

func newLab(dir string, t *Topology, log *zap.Logger) *Lab {
	if log == nil {
		log = zap.NewNop()
	}
	return &Lab{Dir: dir, Topo: t, L: Layout{Dir: dir}, log: log, hc: newHTTPClient(60 * time.Second)}
}

// Create makes a lab in dir: lab.json, every site's directories and
// installation manifest, the front door's route (the primary). A lab
// already in dir is kept if its topology is the same; a different one is
// refused.
func Create(dir string, t *Topology, log *zap.Logger) (*Lab, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if t.Cell == "" {
		t.Cell = t.Name + "Cell"
	}
	if t.Installed == nil {
		t.Installed = DefaultInstalled()
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if old, err := LoadTopology(abs); err == nil {
		cmp := *t
		cmp.TimeScale = old.TimeScale
		if !reflect.DeepEqual(old, &cmp) {
			return nil, fmt.Errorf("%s already holds a different lab (%q): run drover lab down --purge, or use another dir", abs, old.Name)
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	if err := SaveTopology(abs, t); err != nil {
		return nil, err
	}
	l := newLab(abs, t, log)
	for _, s := range t.Sites {
		for _, d := range []string{l.L.RunDir(s.Name), filepath.Dir(l.L.LogFile(s.Name, "x"))} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		if _, err := ReadInstallation(l.L, s.Name); err != nil {
			if err := writeInstallation(l.L, s, t.Installed); err != nil {
				return nil, err
			}
		}
	}
	if _, err := os.Stat(l.L.FrontDoorFile()); err != nil {
		p, _ := t.SiteByRole(SitePrimary)
		if err := l.writeRoute(p.Name); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Configure creates the cell at a site: every server's profile and the
// databases, as installing and configuring the cell there would. A site that
// already holds data is left alone.
func (l *Lab) Configure(ctx context.Context, site string) (bool, error) {
	s, ok := l.Topo.Site(site)
	if !ok {
		return false, fmt.Errorf("no site %q in the lab", site)
	}
	if entries, err := os.ReadDir(l.L.DataRoot(site)); err == nil && len(entries) > 0 {
		return false, nil
	}
	if _, err := os.Stat(l.L.LostDataRoot(site)); err == nil {
		return false, fmt.Errorf("site %s is in disaster (its data root is unreachable): restore-site first", site)
	}
	if err := writeProfiles(l.L, l.Topo, s); err != nil {
		return false, err
	}
	if err := createDatabases(ctx, l.L, site, l.Topo); err != nil {
		return false, err
	}
	return true, nil
}

// Up configures the primary site if needed, starts the front door and every
// server of the primary in order.
func (l *Lab) Up(ctx context.Context) error {
	p, _ := l.Topo.SiteByRole(SitePrimary)
	created, err := l.Configure(ctx, p.Name)
	if err != nil {
		return err
	}
	if created {
		l.log.Info("configured the cell", zap.String("site", p.Name), zap.String("dataRoot", l.L.DataRoot(p.Name)))
	}
	if err := l.StartFrontDoor(ctx); err != nil {
		return err
	}
	return l.StartSite(ctx, p.Name)
}

// StartSite starts every server of a site in start-up order, each tier in
// parallel.
func (l *Lab) StartSite(ctx context.Context, site string) error {
	for _, tier := range l.Topo.StartOrder() {
		if err := l.startTier(ctx, site, tier); err != nil {
			return err
		}
	}
	return nil
}

// StopSite stops every server of a site in reverse start-up order.
func (l *Lab) StopSite(ctx context.Context, site string, immediate bool) error {
	tiers := l.Topo.StartOrder()
	for i := len(tiers) - 1; i >= 0; i-- {
		errs := make([]error, len(tiers[i]))
		var wg sync.WaitGroup
		for j, s := range tiers[i] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = l.Stop(ctx, site, s.Name, immediate)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) startTier(ctx context.Context, site string, tier []ServerSpec) error {
	errs := make([]error, len(tier))
	var wg sync.WaitGroup
	for i, s := range tier {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = l.Start(ctx, site, s.Name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StartResult says what a start did.
type StartResult struct {
	PID            int           `json:"pid"`
	AlreadyRunning bool          `json:"alreadyRunning"`
	Took           time.Duration `json:"took"`
	Log            string        `json:"log"`
}

// Address is where a server listens at a site.
func (l *Lab) Address(site, server string) (string, error) {
	s, ok := l.Topo.Site(site)
	if !ok {
		return "", fmt.Errorf("no site %q in the lab", site)
	}
	srv, ok := l.Topo.Server(server)
	if !ok {
		return "", fmt.Errorf("no server %q in the lab", server)
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(srv.Port)), nil
}

func (l *Lab) serverClient(site, server string) (*client, error) {
	addr, err := l.Address(site, server)
	if err != nil {
		return nil, err
	}
	return &client{hc: l.hc, addr: addr, name: server, site: site}, nil
}

func (l *Lab) health(ctx context.Context, site, server string) (*Health, error) {
	return l.healthWait(ctx, site, server, 0)
}

// healthWait asks a server's health; a server still starting holds its
// answer up to wait for the start to end.
func (l *Lab) healthWait(ctx context.Context, site, server string, wait time.Duration) (*Health, error) {
	c, err := l.serverClient(site, server)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second+wait)
	defer cancel()
	path := "/health"
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	var h Health
	if err := c.call(cctx, path, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Start starts a server at a site and waits until it runs. A server that
// refuses to start returns its own message; a running one is left alone,
// also when no pid file names it (a start cut short after its launch): it
// is adopted, never launched a second time.
func (l *Lab) Start(ctx context.Context, site, server string) (StartResult, error) {
	begin := time.Now()
	res := StartResult{Log: l.L.LogFile(site, server)}
	if _, ok := l.Topo.Server(server); !ok {
		return res, fmt.Errorf("no server %q in the lab", server)
	}
	if _, ok := l.Topo.Site(site); !ok {
		return res, fmt.Errorf("no site %q in the lab", site)
	}
	unlock, err := lockServer(ctx, l.L.LockFile(site, server))
	if err != nil {
		return res, fmt.Errorf("start %s at %s: %w", server, site, err)
	}
	p, err := l.findServer(ctx, site, server)
	if err != nil {
		unlock()
		return res, fmt.Errorf("start %s at %s: %w", server, site, err)
	}
	if p != nil {
		unlock()
		if p.life() == procFrozen {
			return res, fmt.Errorf("start %s at %s: process %d is frozen (SIGSTOP); kill it first", server, site, p.PID)
		}
		res.PID = p.PID
		res.AlreadyRunning = true
		err := l.waitRunning(ctx, site, server, p, lastLaunchOffset(res.Log))
		res.Took = time.Since(begin)
		return res, err
	}
	args := []string{"--lab-dir", l.Dir, "--site", site, "--server", server,
		"--time-scale", strconv.FormatFloat(l.Topo.TimeScale, 'g', -1, 64)}
	p, offset, err := launch(l.L.PidFile(site, server), res.Log, server, site, args)
	unlock()
	if err != nil {
		return res, err
	}
	res.PID = p.PID
	err = l.waitRunning(ctx, site, server, p, offset)
	res.Took = time.Since(begin)
	return res, err
}

// findServer returns the live (or frozen) process of a server at a site,
// or nil when there is none: the one its pid file names; else one that
// answers on the server's address as this server of this site; else one
// started for it that does not answer yet (found by its command line).
// The last two are what a starter killed between a launch and its pid file
// leaves: the process is adopted, its pid file written from its pid and
// start time. Call it holding the server's lock.
func (l *Lab) findServer(ctx context.Context, site, server string) (*pidInfo, error) {
	pidPath := l.L.PidFile(site, server)
	if p, err := readPidFile(pidPath); err == nil && p.life() != procGone {
		return p, nil
	}
	pid, how := 0, ""
	if h, err := l.health(ctx, site, server); err == nil && h.Server == server && h.Site == site && h.PID > 0 {
		pid, how = h.PID, "it answers on its address"
	} else {
		var first uint64
		for _, sp := range serverProcs(l.Dir, site, server) {
			// The first launched is the one that gets the address.
			if _, ticks, err := procState(sp.PID); err == nil && (pid == 0 || ticks < first) {
				pid, first, how = sp.PID, ticks, "it was started for this server and does not answer yet"
			}
		}
	}
	if pid == 0 {
		return nil, nil
	}
	_, ticks, err := procState(pid)
	if err != nil {
		// Gone since it answered: nothing runs.
		return nil, nil
	}
	p := &pidInfo{PID: pid, StartTicks: ticks, Server: server, Site: site, StartedAt: time.Now().UTC()}
	if err := writePidFile(pidPath, p); err != nil {
		return nil, fmt.Errorf("adopt process %d: %w", pid, err)
	}
	l.log.Warn("adopted a server no pid file named", zap.String("server", server), zap.String("site", site),
		zap.Int("pid", pid), zap.String("why", how))
	return p, nil
}

// waitRunning waits until the server answers as running from process p,
// or p ends (then its own message is the error). An answer from another
// process is not p's readiness: p cannot listen while another holds the
// address, so the start fails and says who answers.
func (l *Lab) waitRunning(ctx context.Context, site, server string, p *pidInfo, logOffset int64) error {
	var exited chan struct{}
	if ch, ok := exitedCmds.Load(p.PID); ok {
		exited = ch.(chan struct{})
	}
	for {
		gone := false
		if exited != nil {
			select {
			case <-exited:
				gone = true
			default:
			}
		}
		if gone || p.life() == procGone {
			l.removePidFileOf(site, server, p)
			msg := startFailure(l.L.LogFile(site, server), logOffset)
			if msg == "" {
				msg = "the process ended without a message"
			}
			return fmt.Errorf("start %s at %s: %s", server, site, msg)
		}
		// Held up to half a second while the server starts, so a process
		// that dies meanwhile is still noticed promptly.
		if h, err := l.healthWait(ctx, site, server, 500*time.Millisecond); err == nil {
			if h.PID != p.PID || h.Server != server {
				return fmt.Errorf("start %s at %s: process %d answers as %s on its address, not process %d that runs for it; stop that one first",
					server, site, h.PID, h.Server, p.PID)
			}
			if h.State == StateRunning {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start %s at %s: still starting: %w", server, site, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// removePidFileOf removes a server's pid file if it still names p: another
// start may have written a newer one meanwhile.
func (l *Lab) removePidFileOf(site, server string, p *pidInfo) {
	path := l.L.PidFile(site, server)
	if cur, err := readPidFile(path); err == nil && cur.PID == p.PID && cur.StartTicks == p.StartTicks {
		_ = os.Remove(path)
	}
}

// StopResult says what a stop did.
type StopResult struct {
	PID            int           `json:"pid,omitempty"`
	AlreadyStopped bool          `json:"alreadyStopped"`
	Took           time.Duration `json:"took"`
}

// Stop stops a server: graceful (SIGTERM, the server finishes what it is
// doing) or immediate (SIGKILL). A graceful stop of a hung server times out
// with ctx; the caller may then stop it immediately.
func (l *Lab) Stop(ctx context.Context, site, server string, immediate bool) (StopResult, error) {
	begin := time.Now()
	var res StopResult
	if _, ok := l.Topo.Server(server); !ok {
		return res, fmt.Errorf("no server %q in the lab", server)
	}
	if _, ok := l.Topo.Site(site); !ok {
		return res, fmt.Errorf("no site %q in the lab", site)
	}
	pidPath := l.L.PidFile(site, server)
	unlock, err := lockServer(ctx, l.L.LockFile(site, server))
	if err != nil {
		return res, fmt.Errorf("stop %s at %s: %w", server, site, err)
	}
	// A server no pid file names (a start cut short) is stopped too.
	p, err := l.findServer(ctx, site, server)
	if err != nil {
		unlock()
		return res, fmt.Errorf("stop %s at %s: %w", server, site, err)
	}
	if p == nil {
		_ = os.Remove(pidPath)
		unlock()
		res.AlreadyStopped = true
		return res, nil
	}
	res.PID = p.PID
	sig := syscall.SIGTERM
	if immediate {
		sig = syscall.SIGKILL
	}
	err = signalGroup(p, sig)
	unlock()
	if err != nil {
		return res, fmt.Errorf("stop %s at %s: %w", server, site, err)
	}
	for p.life() != procGone {
		select {
		case <-ctx.Done():
			state := "still running"
			if p.life() == procFrozen {
				state = "frozen"
			}
			return res, fmt.Errorf("stop %s at %s: process %d did not stop (%s): %w", server, site, p.PID, state, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	l.removePidFileOf(site, server, p)
	res.Took = time.Since(begin)
	return res, nil
}

// Server states as Status reports them.
const (
	StatusRunning      = "running"
	StatusStarting     = "starting"
	StatusStopping     = "stopping"
	StatusStopped      = "stopped"
	StatusFrozen       = "frozen"
	StatusUnresponsive = "unresponsive"
)

// ServerStatus is one server's state at one site.
type ServerStatus struct {
	Site    string         `json:"site"`
	Server  string         `json:"server"`
	Role    Role           `json:"role"`
	Product string         `json:"product,omitempty"`
	Address string         `json:"address"`
	State   string         `json:"state"`
	PID     int            `json:"pid,omitempty"`
	Detail  string         `json:"detail,omitempty"`
	Health  *Health        `json:"health,omitempty"`
	Stats   map[string]any `json:"stats,omitempty"`
}

// Status reports a server from its pid file, its process and its health
// endpoint.
func (l *Lab) Status(ctx context.Context, site, server string) (ServerStatus, error) {
	spec, ok := l.Topo.Server(server)
	if !ok {
		return ServerStatus{}, fmt.Errorf("no server %q in the lab", server)
	}
	addr, err := l.Address(site, server)
	if err != nil {
		return ServerStatus{}, err
	}
	st := ServerStatus{Site: site, Server: server, Role: spec.Role, Product: spec.Product, Address: addr, State: StatusStopped}
	p, err := readPidFile(l.L.PidFile(site, server))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			st.Detail = err.Error()
		}
		return st, nil
	}
	st.PID = p.PID
	switch p.life() {
	case procGone:
		st.Detail = fmt.Sprintf("process %d is gone (crashed or killed)", p.PID)
		return st, nil
	case procFrozen:
		st.State = StatusFrozen
		st.Detail = fmt.Sprintf("process %d is stopped by a signal (hung)", p.PID)
		return st, nil
	}
	h, err := l.health(ctx, site, server)
	if err != nil {
		st.State = StatusUnresponsive
		st.Detail = err.Error()
		return st, nil
	}
	st.Health = h
	st.State = h.State
	return st, nil
}

// Signal sends a signal to a server: kill (SIGKILL), freeze (SIGSTOP), thaw
// (SIGCONT).
func (l *Lab) Signal(site, server string, sig syscall.Signal) (int, error) {
	if _, ok := l.Topo.Server(server); !ok {
		return 0, fmt.Errorf("no server %q in the lab", server)
	}
	p, err := readPidFile(l.L.PidFile(site, server))
	if err != nil || p.life() == procGone {
		return 0, fmt.Errorf("%s is not running at site %s", server, site)
	}
	if err := signalGroup(p, sig); err != nil {
		return p.PID, fmt.Errorf("signal %s at %s: %w", server, site, err)
	}
	if sig == syscall.SIGKILL {
		waitGone(p, 5*time.Second)
	}
	return p.PID, nil
}

// RunningSite returns the site where a server runs ("" if nowhere).
func (l *Lab) RunningSite(server string) string {
	for _, site := range l.Topo.SiteNames() {
		if p, err := readPidFile(l.L.PidFile(site, server)); err == nil && p.life() != procGone {
			return site
		}
	}
	return ""
}

// Disaster destroys a site: every server killed, its data root made
// unreachable. The ledger and the front door, outside the site, survive.
func (l *Lab) Disaster(site string) (time.Time, error) {
	if _, ok := l.Topo.Site(site); !ok {
		return time.Time{}, fmt.Errorf("no site %q in the lab", site)
	}
	l.killSite(site)
	at := time.Now()
	root, lost := l.L.DataRoot(site), l.L.LostDataRoot(site)
	if _, err := os.Stat(root); err == nil {
		if _, err := os.Stat(lost); err == nil {
			if err := os.RemoveAll(lost); err != nil {
				return at, err
			}
		}
		if err := os.Rename(root, lost); err != nil {
			return at, fmt.Errorf("make the data root of %s unreachable: %w", site, err)
		}
	}
	l.log.Warn("disaster: site destroyed", zap.String("site", site), zap.Time("at", at))
	return at, nil
}

// RestoreSite brings a destroyed site back with the data it had.
func (l *Lab) RestoreSite(site string) error {
	if _, ok := l.Topo.Site(site); !ok {
		return fmt.Errorf("no site %q in the lab", site)
	}
	root, lost := l.L.DataRoot(site), l.L.LostDataRoot(site)
	if _, err := os.Stat(lost); err != nil {
		return fmt.Errorf("site %s is not in disaster (no %s)", site, lost)
	}
	if entries, err := os.ReadDir(root); err == nil && len(entries) > 0 {
		return fmt.Errorf("site %s has a new data root at %s; move it away before restoring the old one", site, root)
	}
	_ = os.Remove(root)
	return os.Rename(lost, root)
}

func (l *Lab) killSite(site string) {
	l.StopWorker(site, true)
	for _, s := range l.Topo.Servers {
		p, err := readPidFile(l.L.PidFile(site, s.Name))
		if err != nil {
			continue
		}
		if p.life() != procGone {
			_ = signalGroup(p, syscall.SIGKILL)
			waitGone(p, 5*time.Second)
		}
		_ = os.Remove(l.L.PidFile(site, s.Name))
	}
	// And those no pid file names (a start cut short).
	for _, sp := range serverProcs(l.Dir, site, "") {
		p := &pidInfo{PID: sp.PID}
		if _, ticks, err := procState(sp.PID); err == nil {
			p.StartTicks = ticks
			_ = syscall.Kill(sp.PID, syscall.SIGCONT)
			_ = signalGroup(p, syscall.SIGKILL)
			waitGone(p, 5*time.Second)
		}
	}
}

// Down kills every server of every site and the front door, and any lab
// server of this dir whose pid file was lost.
func (l *Lab) Down() error {
	for _, site := range l.Topo.SiteNames() {
		l.killSite(site)
	}
	if p, err := readPidFile(l.L.FrontDoorPid()); err == nil {
		if p.life() != procGone {
			_ = signalGroup(p, syscall.SIGKILL)
			waitGone(p, 5*time.Second)
		}
		_ = os.Remove(l.L.FrontDoorPid())
	}
	var left []int
	for _, pid := range strayServers(l.Dir) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		left = append(left, pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range left {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			if st, _, err := procState(pid); err != nil || st == 'Z' {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := len(strayServers(l.Dir)); n > 0 {
		return fmt.Errorf("down: %d lab processes of %s are still alive", n, l.Dir)
	}
	return nil
}

// Quiesce pauses writes on a server: the database server holds new write
// transactions and completes in-flight ones; an app server's transaction
// manager finishes its batch and takes no new one. It lifts itself after
// max.
func (l *Lab) Quiesce(ctx context.Context, site, server string, max time.Duration) (map[string]any, error) {
	c, err := l.serverClient(site, server)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = c.call(ctx, "/admin/quiesce?max="+url.QueryEscape(max.String()), struct{}{}, &out)
	return out, err
}

// Resume lifts a quiesce.
func (l *Lab) Resume(ctx context.Context, site, server string) (map[string]any, error) {
	c, err := l.serverClient(site, server)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = c.call(ctx, "/admin/resume", struct{}{}, &out)
	return out, err
}

// ProbeOptions tune a probe.
type ProbeOptions struct {
	// Server runs the probe; by default the deployment manager.
	Server     string
	StuckAfter time.Duration
	Timeout    time.Duration
}

// Probe runs one verification level at a site.
func (l *Lab) Probe(ctx context.Context, site, level string, o ProbeOptions) (ProbeResult, error) {
	server := o.Server
	if server == "" {
		server = l.Topo.Dmgr().Name
	}
	c, err := l.serverClient(site, server)
	if err != nil {
		return ProbeResult{}, err
	}
	q := url.Values{}
	if o.StuckAfter > 0 {
		q.Set("stuckAfter", o.StuckAfter.String())
	}
	if o.Timeout > 0 {
		q.Set("timeout", o.Timeout.String())
	}
	var res ProbeResult
	err = c.call(ctx, "/probe/"+url.PathEscape(level)+"?"+q.Encode(), nil, &res)
	return res, err
}

// SiteStatus is one site in a lab status.
type SiteStatus struct {
	Name     string         `json:"name"`
	Role     string         `json:"role"`
	Host     string         `json:"host"`
	DataRoot string         `json:"dataRoot"`
	Data     string         `json:"data"`
	Servers  []ServerStatus `json:"servers"`
	Counts   *CellCounts    `json:"counts,omitempty"`
}

// LabStatus is every server of every site with the cell's counts.
type LabStatus struct {
	Dir       string       `json:"dir"`
	Name      string       `json:"name"`
	FrontDoor FrontDoor    `json:"frontDoor"`
	Sites     []SiteStatus `json:"sites"`
}

// FrontDoor is the front door's state.
type FrontDoor struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Site    string `json:"site"`
}

// StatusAll reports every server of every site.
func (l *Lab) StatusAll(ctx context.Context) (LabStatus, error) {
	out := LabStatus{Dir: l.Dir, Name: l.Topo.Name}
	out.FrontDoor = l.frontDoorStatus(ctx)
	for _, name := range l.Topo.SiteNames() {
		site, _ := l.Topo.Site(name)
		ss := SiteStatus{Name: name, Role: site.Role, Host: site.Host, DataRoot: l.L.DataRoot(name)}
		switch {
		case exists(l.L.LostDataRoot(name)):
			ss.Data = "unreachable (disaster)"
		case !exists(l.L.DataRoot(name)):
			ss.Data = "none"
		default:
			ss.Data = "present"
		}
		statuses := make([]ServerStatus, len(l.Topo.Servers))
		var wg sync.WaitGroup
		for i, s := range l.Topo.Servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := l.Status(ctx, name, s.Name)
				if err != nil {
					st = ServerStatus{Site: name, Server: s.Name, Role: s.Role, State: StatusUnresponsive, Detail: err.Error()}
				}
				if st.State == StatusRunning {
					if c, err := l.serverClient(name, s.Name); err == nil {
						cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						var stats map[string]any
						if c.call(cctx, "/stats", nil, &stats) == nil {
							if counts, ok := stats["counts"]; ok && s.Role == RoleDatabase {
								data, _ := json.Marshal(counts)
								var cc CellCounts
								if json.Unmarshal(data, &cc) == nil {
									ss.Counts = &cc
								}
								delete(stats, "counts")
							}
							delete(stats, "server")
							delete(stats, "state")
							st.Stats = stats
						}
						cancel()
					}
				}
				statuses[i] = st
			}()
		}
		wg.Wait()
		ss.Servers = statuses
		out.Sites = append(out.Sites, ss)
	}
	return out, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
