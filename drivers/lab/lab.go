// Package labdriver holds the drivers of drover's lab cell (package lab): a
// middleware driver that starts, stops, reports on and quiesces lab servers,
// a probe driver for the six verification levels, and a redirect driver that
// switches the lab's front door between sites. All three are named "lab".
//
// They find the lab through the site's settings in the plan:
//
//	sites:
//	  primary:
//	    name: dc1
//	    settings:
//	      labDir: ${DROVER_LAB_DIR}   # required; environment variables expanded
//	      host: 127.0.1.1             # optional; must match the lab's site host
//	      timeScale: 0.05             # optional; overrides the lab's start-up time scale
//
// Site settings are shared with other drivers at the site, so unknown keys
// there are ignored; the drivers' own settings are strict.
package labdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/lab"
)

// siteSettings are the keys the lab drivers read from a plan site.
type siteSettings struct {
	LabDir    string   `json:"labDir"`
	Host      string   `json:"host"`
	TimeScale *float64 `json:"timeScale"`
}

func readSite(site drivers.Site) (siteSettings, error) {
	var s siteSettings
	raw, err := json.Marshal(site.Settings)
	if err != nil {
		return s, drivers.BadSettingsf("site %s settings: %w", site.Name, err)
	}
	// Lenient on purpose: the site's settings belong to every driver there.
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, drivers.BadSettingsf("site %s settings: %w", site.Name, err)
	}
	if s.LabDir == "" {
		return s, drivers.BadSettingsf("site %s settings: labDir is required by the lab drivers", site.Name)
	}
	dir, err := drivers.ExpandPath(s.LabDir)
	if err != nil {
		return s, drivers.BadSettingsf("site %s settings: labDir: %w", site.Name, err)
	}
	s.LabDir = dir
	if s.TimeScale != nil && *s.TimeScale < 0 {
		return s, drivers.BadSettingsf("site %s settings: timeScale %v is negative", site.Name, *s.TimeScale)
	}
	return s, nil
}

// openLab opens the lab a site names and checks that the site is one of it.
func openLab(site drivers.Site, logger *zap.Logger) (*lab.Lab, error) {
	s, err := readSite(site)
	if err != nil {
		return nil, err
	}
	l, err := lab.Open(s.LabDir, logger)
	if err != nil {
		return nil, err
	}
	spec, ok := l.Topo.Site(site.Name)
	if !ok {
		return nil, drivers.BadSettingsf("site %q is not a site of the lab in %s (sites: %s)", site.Name, l.Dir, strings.Join(l.Topo.SiteNames(), ", "))
	}
	if s.Host != "" && s.Host != spec.Host {
		return nil, drivers.BadSettingsf("site %s settings: host %s, but the lab in %s runs that site on %s", site.Name, s.Host, l.Dir, spec.Host)
	}
	if s.TimeScale != nil {
		l.Topo.TimeScale = *s.TimeScale
	}
	return l, nil
}

// componentSettings are the lab middleware driver's own settings.
type componentSettings struct {
	// Node is the node the server belongs to (documentation; checked
	// against the lab).
	Node string `json:"node"`
	// Port, when given, must be the port the lab runs the server on.
	Port int `json:"port"`
	// QuiesceMax bounds a quiesce: the server resumes by itself after it.
	QuiesceMax drivers.Duration `json:"quiesceMax"`
}

func parseComponent(raw map[string]any) (componentSettings, error) {
	var s componentSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettingsf("lab driver %w", err)
	}
	if s.Port < 0 || s.Port > 65535 {
		return s, drivers.BadSettingsf("lab driver settings: port %d out of range", s.Port)
	}
	if s.QuiesceMax < 0 {
		return s, drivers.BadSettingsf("lab driver settings: quiesceMax must be positive")
	}
	return s, nil
}

// Middleware is the lab middleware driver.
type Middleware struct{ logger *zap.Logger }

var (
	_ drivers.Middleware      = (*Middleware)(nil)
	_ drivers.Quiescer        = (*Middleware)(nil)
	_ drivers.SettingsChecker = (*Middleware)(nil)
)

// NewMiddleware returns the lab middleware driver.
func NewMiddleware(logger *zap.Logger) *Middleware {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Middleware{logger: logger}
}

// CheckSettings checks a component's settings.
func (m *Middleware) CheckSettings(raw map[string]any) error {
	_, err := parseComponent(raw)
	return err
}

// resolve opens the lab and checks the component against it.
func (m *Middleware) resolve(t drivers.Target) (*lab.Lab, componentSettings, error) {
	s, err := parseComponent(t.Component.Settings)
	if err != nil {
		return nil, s, err
	}
	l, err := openLab(t.Site, m.logger)
	if err != nil {
		return nil, s, err
	}
	spec, ok := l.Topo.Server(t.Component.Name)
	if !ok {
		return nil, s, drivers.BadSettingsf("component %s is not a server of the lab in %s", t.Component.Name, l.Dir)
	}
	if t.Component.Role != "" && t.Component.Role != string(spec.Role) {
		return nil, s, drivers.BadSettingsf("component %s has role %s in the plan but %s in the lab", t.Component.Name, t.Component.Role, spec.Role)
	}
	if s.Node != "" && s.Node != spec.Node {
		return nil, s, drivers.BadSettingsf("component %s: node %s in the plan but %s in the lab", t.Component.Name, s.Node, spec.Node)
	}
	if s.Port != 0 && s.Port != spec.Port {
		return nil, s, drivers.BadSettingsf("component %s: port %d in the plan but %d in the lab", t.Component.Name, s.Port, spec.Port)
	}
	return l, s, nil
}

// Start spawns the server detached at the target's site and waits until it
// runs. A server that refuses to start (a dependency down, a configuration
// naming the other site) fails with its own message.
func (m *Middleware) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	begin := time.Now()
	l, _, err := m.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	// The lab spawns the server before it waits on ctx: a call whose
	// context has already ended must not leave a server half started.
	if err := ctx.Err(); err != nil {
		return drivers.Evidence{}, fmt.Errorf("start %s at %s: %w", t.Component.Name, t.Site.Name, err)
	}
	addr, _ := l.Address(t.Site.Name, t.Component.Name)
	ev := drivers.Evidence{Action: fmt.Sprintf("lab start %s at %s (%s)", t.Component.Name, t.Site.Name, addr)}
	res, err := l.Start(ctx, t.Site.Name, t.Component.Name)
	ev.Duration = time.Since(begin)
	if err != nil {
		ev.Output = drivers.Truncate(err.Error(), 1000)
		ev.ExitCode = 1
		return ev, err
	}
	ev.AlreadyDone = res.AlreadyRunning
	ev.Output = fmt.Sprintf("running, pid %d, log %s", res.PID, res.Log)
	return ev, nil
}

// Stop stops the server: graceful (SIGTERM; it finishes its work) waits as
// long as ctx allows, immediate is SIGKILL.
func (m *Middleware) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	begin := time.Now()
	l, _, err := m.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	immediate := false
	switch mode {
	case drivers.StopGraceful, "":
	case drivers.StopImmediate:
		immediate = true
	default:
		return drivers.Evidence{}, drivers.BadSettingsf("stop %s: unknown stop mode %q", t.Component.Name, mode)
	}
	if err := ctx.Err(); err != nil {
		return drivers.Evidence{}, fmt.Errorf("stop %s at %s: %w", t.Component.Name, t.Site.Name, err)
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("lab stop %s at %s (%s)", t.Component.Name, t.Site.Name, map[bool]string{false: "SIGTERM", true: "SIGKILL"}[immediate])}
	res, err := l.Stop(ctx, t.Site.Name, t.Component.Name, immediate)
	ev.Duration = time.Since(begin)
	if err != nil {
		ev.Output = err.Error()
		ev.ExitCode = 1
		return ev, err
	}
	ev.AlreadyDone = res.AlreadyStopped
	if res.AlreadyStopped {
		ev.Output = "not running"
	} else {
		ev.Output = fmt.Sprintf("pid %d stopped", res.PID)
	}
	return ev, nil
}

// Status reports the server from its pid file, its process and its health
// endpoint.
func (m *Middleware) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	begin := time.Now()
	l, _, err := m.resolve(t)
	if err != nil {
		return drivers.Status{State: drivers.StateUnknown}, err
	}
	st, err := l.Status(ctx, t.Site.Name, t.Component.Name)
	if err != nil {
		return drivers.Status{State: drivers.StateUnknown}, err
	}
	out := drivers.Status{PID: st.PID, Detail: st.Detail, Evidence: drivers.Evidence{
		Action: fmt.Sprintf("lab status %s at %s (%s)", t.Component.Name, t.Site.Name, st.Address), Duration: time.Since(begin),
	}}
	switch st.State {
	case lab.StatusRunning:
		out.State = drivers.StateRunning
	case lab.StatusStarting:
		out.State = drivers.StateStarting
	case lab.StatusStopped:
		out.State = drivers.StateStopped
	case lab.StatusFrozen:
		out.State = drivers.StateFailed
	default:
		out.State = drivers.StateUnknown
		if out.Detail == "" {
			out.Detail = st.State
		}
	}
	out.Evidence.Output = string(out.State)
	if out.Detail != "" {
		out.Evidence.Output += ": " + out.Detail
	}
	return out, nil
}

// Quiesce pauses writes on the server: the database server holds new write
// transactions and completes in-flight ones; an app server's transaction
// manager finishes its batch. Other servers have nothing to pause. The
// server resumes by itself after quiesceMax (default 10m).
func (m *Middleware) Quiesce(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	begin := time.Now()
	l, s, err := m.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	max := s.QuiesceMax.D()
	if max == 0 {
		max = 10 * time.Minute
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("lab quiesce %s at %s (at most %s)", t.Component.Name, t.Site.Name, max)}
	out, err := l.Quiesce(ctx, t.Site.Name, t.Component.Name, max)
	ev.Duration = time.Since(begin)
	if err != nil {
		return ev, err
	}
	ev.AlreadyDone, _ = out["already"].(bool)
	ev.Output = summarize(out)
	return ev, nil
}

// Resume lifts a quiesce.
func (m *Middleware) Resume(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	begin := time.Now()
	l, _, err := m.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("lab resume %s at %s", t.Component.Name, t.Site.Name)}
	out, err := l.Resume(ctx, t.Site.Name, t.Component.Name)
	ev.Duration = time.Since(begin)
	if err != nil {
		return ev, err
	}
	ev.AlreadyDone, _ = out["already"].(bool)
	ev.Output = summarize(out)
	return ev, nil
}

func summarize(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return drivers.Truncate(string(data), 1000)
}

// probeSettings are the lab probe's settings.
type probeSettings struct {
	// Check is the verification level: system, application, instance,
	// consistency, sca or monitoring.
	Check string `json:"check"`
	// Server runs the check (default: the deployment manager, which holds
	// the cell configuration).
	Server string `json:"server"`
	// StuckAfter is how long a running instance may show no pending work
	// before the instance level calls it stuck (default 1m).
	StuckAfter drivers.Duration `json:"stuckAfter"`
	// Timeout bounds the check (default 30s).
	Timeout drivers.Duration `json:"timeout"`
}

func parseProbe(raw map[string]any) (probeSettings, error) {
	var s probeSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettingsf("lab probe %w", err)
	}
	found := false
	for _, l := range lab.Levels {
		found = found || l == s.Check
	}
	if !found {
		return s, drivers.BadSettingsf("lab probe settings: check %q is not one of %s", s.Check, strings.Join(lab.Levels, ", "))
	}
	if s.StuckAfter < 0 || s.Timeout < 0 {
		return s, drivers.BadSettingsf("lab probe settings: durations must be positive")
	}
	return s, nil
}

// Probe is the lab probe driver: one of the six verification levels, run by
// a lab server from its copy of the cell configuration.
type Probe struct{ logger *zap.Logger }

var (
	_ drivers.Probe           = (*Probe)(nil)
	_ drivers.SettingsChecker = (*Probe)(nil)
)

// NewProbe returns the lab probe driver.
func NewProbe(logger *zap.Logger) *Probe {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Probe{logger: logger}
}

// CheckSettings checks a probe's settings.
func (p *Probe) CheckSettings(raw map[string]any) error {
	_, err := parseProbe(raw)
	return err
}

// Check runs the level. A level that finds problems, or a server that does
// not answer, is a failed check with its reasons; only bad settings and a
// cancelled context are errors.
func (p *Probe) Check(ctx context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	begin := time.Now()
	s, err := parseProbe(req.Settings)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	l, err := openLab(req.Site, p.logger)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	server := s.Server
	if server == "" {
		server = l.Topo.Dmgr().Name
	}
	if _, ok := l.Topo.Server(server); !ok {
		return drivers.CheckResult{}, drivers.BadSettingsf("lab probe settings: server %q is not a server of the lab", server)
	}
	timeout := s.Timeout.D()
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	addr, _ := l.Address(req.Site.Name, server)
	out := drivers.CheckResult{Evidence: drivers.Evidence{Action: fmt.Sprintf("GET http://%s/probe/%s", addr, s.Check)}}
	cctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	res, err := l.Probe(cctx, req.Site.Name, s.Check, lab.ProbeOptions{Server: server, StuckAfter: s.StuckAfter.D(), Timeout: timeout})
	out.Evidence.Duration = time.Since(begin)
	if err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("check cancelled: %w", ctx.Err())
		}
		out.Summary = drivers.Truncate(fmt.Sprintf("%s level could not run at %s: %v", s.Check, req.Site.Name, err), 300)
		out.Evidence.Output = err.Error()
		return out, nil
	}
	out.Passed = res.Passed
	out.Summary = drivers.Truncate(res.Summary, 300)
	out.Details = map[string]string{"server": res.Server, "site": res.Site}
	for k, v := range res.Counts {
		out.Details[k] = fmt.Sprint(v)
	}
	if len(res.Problems) > 0 {
		out.Details["problems"] = drivers.Truncate(strings.Join(res.Problems, "\n"), 1000)
	}
	out.Evidence.Output = summarize(res)
	return out, nil
}

// redirectSettings are the lab redirect driver's settings.
type redirectSettings struct {
	// LabDir, when given, names the lab; by default the target site's
	// labDir setting does.
	LabDir string `json:"labDir"`
}

// Redirect is the lab redirect driver: it points the lab's front door at a
// site.
type Redirect struct{ logger *zap.Logger }

var (
	_ drivers.Redirector      = (*Redirect)(nil)
	_ drivers.Drainer         = (*Redirect)(nil)
	_ drivers.SettingsChecker = (*Redirect)(nil)
)

// NewRedirect returns the lab redirect driver.
func NewRedirect(logger *zap.Logger) *Redirect {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Redirect{logger: logger}
}

// CheckSettings checks the redirect's settings.
func (r *Redirect) CheckSettings(raw map[string]any) error {
	var s redirectSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return drivers.BadSettingsf("lab redirect %w", err)
	}
	return nil
}

func (r *Redirect) open(req drivers.RedirectRequest) (*lab.Lab, error) {
	var s redirectSettings
	if err := drivers.DecodeSettings(req.Settings, &s); err != nil {
		return nil, drivers.BadSettingsf("lab redirect %w", err)
	}
	site := req.Site
	if s.LabDir != "" {
		site.Settings = map[string]any{"labDir": s.LabDir}
		for k, v := range req.Site.Settings {
			if k != "labDir" {
				site.Settings[k] = v
			}
		}
	}
	return openLab(site, r.logger)
}

// PointTo sends new orders to the site's BPM app servers.
func (r *Redirect) PointTo(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	begin := time.Now()
	l, err := r.open(req)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("front door %s → site %s", l.Topo.FrontDoor.Addr(), req.Site.Name)}
	prev, err := l.Route(ctx, req.Site.Name)
	ev.Duration = time.Since(begin)
	if err != nil {
		return ev, err
	}
	ev.AlreadyDone = prev == req.Site.Name
	ev.Output = fmt.Sprintf("was %s, now %s", prev, req.Site.Name)
	return ev, nil
}

// Drain refuses new orders at the front door; the work in the cell goes on.
func (r *Redirect) Drain(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	begin := time.Now()
	l, err := r.open(req)
	if err != nil {
		return drivers.Evidence{}, err
	}
	prev, err := l.Drain(ctx)
	ev := drivers.Evidence{Action: fmt.Sprintf("front door %s drained", l.Topo.FrontDoor.Addr()), Duration: time.Since(begin),
		Output: fmt.Sprintf("was %s, now no site", prev), AlreadyDone: prev == ""}
	return ev, err
}

// Current is the site the front door points at.
func (r *Redirect) Current(ctx context.Context, req drivers.RedirectRequest) (string, error) {
	l, err := r.open(req)
	if err != nil {
		return "", err
	}
	site, err := l.CurrentRoute(ctx)
	if err != nil {
		return "", errors.Join(errors.New("front door route"), err)
	}
	return site, nil
}
