// Package haproxy is the "haproxy" redirect driver: it moves traffic between
// sites by setting the state of a backend's servers over HAProxy's runtime
// API (the stats socket, at admin level).
//
// Settings (the plan's redirect settings):
//
//	socket:   path of the stats socket (a unix socket), or
//	address:  host:port of a stats socket bound to TCP; exactly one of them
//	backend:  the backend whose servers are switched (required)
//	sites:    plan site name: [server names in the backend] (two or more sites)
//	weight:   weight given to the serving site's servers (optional, 0..256)
//	drainFor: when set, the other sites' servers go to drain for this long
//	          (their established sessions finish) before maint
//	timeout:  per runtime command, default 10s
//
// PointTo(site) puts the site's servers in state ready (with the weight) and
// then every other site's servers in maint, so the backend is never left
// without a server. Drain(site) puts the site's servers in drain: they take
// no new sessions. Current reads `show servers state` and names the site
// whose servers are ready; it reports the state drover set (admin state),
// not the servers' health.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
)

// Defaults and limits.
const (
	DefaultTimeout = 10 * time.Second
	// EvidenceLimit bounds the runtime API's answers kept in evidence.
	EvidenceLimit = 2000
	// maxAnswer bounds what is read from the socket for one command.
	maxAnswer = 1 << 20
)

// Server admin-state bits of `show servers state` (HAProxy's SRV_ADMF_*).
const (
	adminForcedMaint   = 0x01
	adminInheritMaint  = 0x02
	adminConfigMaint   = 0x04
	adminForcedDrain   = 0x08
	adminInheritDrain  = 0x10
	adminResolverMaint = 0x20
	adminHostnameMaint = 0x40

	adminMaint = adminForcedMaint | adminInheritMaint | adminConfigMaint | adminResolverMaint | adminHostnameMaint
	adminDrain = adminForcedDrain | adminInheritDrain
)

type settings struct {
	Socket   string              `json:"socket"`
	Address  string              `json:"address"`
	Backend  string              `json:"backend"`
	Sites    map[string][]string `json:"sites"`
	Weight   *int                `json:"weight"`
	DrainFor drivers.Duration    `json:"drainFor"`
	Timeout  drivers.Duration    `json:"timeout"`
}

type config struct {
	network, addr string
	backend       string
	sites         map[string][]string
	weight        *int
	drainFor      time.Duration
	timeout       time.Duration
}

// Driver is the haproxy redirect driver. It holds no state between calls.
type Driver struct {
	logger *zap.Logger
}

var (
	_ drivers.Redirector      = (*Driver)(nil)
	_ drivers.Drainer         = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the haproxy redirect driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger}
}

// CheckSettings checks the settings without connecting.
func (d *Driver) CheckSettings(raw map[string]any) error {
	_, err := parse(raw)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("haproxy redirect %w", err)
	}
	bad := func(format string, args ...any) error {
		return drivers.BadSettingsf("haproxy redirect settings: "+format, args...)
	}
	c := &config{backend: s.Backend, sites: s.Sites, weight: s.Weight, drainFor: s.DrainFor.D(), timeout: s.Timeout.D()}
	switch {
	case s.Socket != "" && s.Address != "":
		return nil, bad("socket and address: give one of them, not both")
	case s.Socket != "":
		c.network, c.addr = "unix", s.Socket
	case s.Address != "":
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return nil, bad("address: %q is not host:port", s.Address)
		}
		c.network, c.addr = "tcp", s.Address
	default:
		return nil, bad("socket or address: required (the stats socket, at level admin)")
	}
	if s.Backend == "" {
		return nil, bad("backend: required")
	}
	if !validName(s.Backend) {
		return nil, bad("backend: %q is not a HAProxy name", s.Backend)
	}
	if len(s.Sites) < 2 {
		return nil, bad("sites: name two or more sites, each with its servers in backend %s", s.Backend)
	}
	owner := map[string]string{}
	for _, site := range sortedKeys(s.Sites) {
		servers := s.Sites[site]
		if len(servers) == 0 {
			return nil, bad("sites.%s: no servers", site)
		}
		for _, srv := range servers {
			if !validName(srv) {
				return nil, bad("sites.%s: %q is not a HAProxy server name", site, srv)
			}
			if other, dup := owner[srv]; dup {
				return nil, bad("sites.%s: server %s is also listed under sites.%s", site, srv, other)
			}
			owner[srv] = site
		}
	}
	if s.Weight != nil && (*s.Weight < 0 || *s.Weight > 256) {
		return nil, bad("weight: %d is outside 0..256", *s.Weight)
	}
	if s.DrainFor < 0 {
		return nil, bad("drainFor: must be positive")
	}
	if s.Timeout < 0 {
		return nil, bad("timeout: must be positive")
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// validName keeps names that cannot smuggle a second runtime command.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// prepare parses the settings and checks the request's site is one of them.
func (d *Driver) prepare(req drivers.RedirectRequest, needSite bool) (*config, error) {
	c, err := parse(req.Settings)
	if err != nil {
		return nil, err
	}
	if needSite {
		if _, ok := c.sites[req.Site.Name]; !ok {
			return nil, drivers.BadSettingsf("haproxy redirect settings: sites: site %q is not listed (known: %s)",
				req.Site.Name, strings.Join(sortedKeys(c.sites), ", "))
		}
	}
	return c, nil
}

// command runs one runtime API command on its own connection and returns
// the answer. The connection is closed when ctx ends.
func (c *config) command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return "", fmt.Errorf("haproxy stats socket %s: %w", c.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy stats socket %s: %s: %w", c.addr, cmd, orCtx(ctx, err))
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		return string(b), fmt.Errorf("haproxy stats socket %s: %s: %w", c.addr, cmd, orCtx(ctx, err))
	}
	return string(b), nil
}

// orCtx prefers the context's error, so a cancelled call says so.
func orCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// server is one line of `show servers state`.
type server struct {
	name   string
	admin  int
	weight int
}

func (s server) maint() bool { return s.admin&adminMaint != 0 }
func (s server) drain() bool { return !s.maint() && s.admin&adminDrain != 0 }
func (s server) ready() bool { return s.admin&(adminMaint|adminDrain) == 0 }

func (s server) state() string {
	switch {
	case s.maint():
		return "maint"
	case s.drain():
		return "drain"
	}
	return "ready"
}

// servers reads the backend's servers by name.
func (c *config) servers(ctx context.Context) (map[string]server, string, error) {
	out, err := c.command(ctx, "show servers state "+c.backend)
	if err != nil {
		return nil, out, err
	}
	got, err := parseServersState(out)
	if err != nil {
		return nil, out, fmt.Errorf("haproxy backend %s: %w", c.backend, err)
	}
	// Every server the settings name must exist, or a switch would leave
	// traffic somewhere nobody meant.
	for _, site := range sortedKeys(c.sites) {
		for _, name := range c.sites[site] {
			if _, ok := got[name]; !ok {
				return nil, out, drivers.BadSettingsf("haproxy redirect settings: sites.%s: backend %s has no server %q", site, c.backend, name)
			}
		}
	}
	return got, out, nil
}

// parseServersState reads the answer of `show servers state BACKEND`: a
// version line, a "# " header naming the columns, one line per server.
func parseServersState(out string) (map[string]server, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "1" {
		return nil, fmt.Errorf("unexpected answer to show servers state: %s", drivers.Truncate(strings.TrimSpace(out), 200))
	}
	var cols []string
	servers := map[string]server{}
	for _, line := range lines[1:] {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#"):
			cols = strings.Fields(strings.TrimPrefix(line, "#"))
			continue
		}
		if cols == nil {
			return nil, fmt.Errorf("show servers state: no header before %q", line)
		}
		f := strings.Fields(line)
		field := func(name string) (string, error) {
			i := slices.Index(cols, name)
			if i < 0 || i >= len(f) {
				return "", fmt.Errorf("show servers state: no %s column in %q", name, line)
			}
			return f[i], nil
		}
		name, err := field("srv_name")
		if err != nil {
			return nil, err
		}
		var s server
		s.name = name
		for col, dst := range map[string]*int{"srv_admin_state": &s.admin, "srv_uweight": &s.weight} {
			v, err := field(col)
			if err != nil {
				return nil, err
			}
			if *dst, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("show servers state: server %s: %s %q is not a number", name, col, v)
			}
		}
		servers[name] = s
	}
	if cols == nil {
		return nil, errors.New("show servers state: no header line")
	}
	return servers, nil
}

// apply runs the commands in order, stopping at the first failure. The
// runtime API answers a successful `set server` with an empty line.
func (c *config) apply(ctx context.Context, steps []string, ev *drivers.Evidence) error {
	var out strings.Builder
	for _, cmd := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		ans, err := c.command(ctx, cmd)
		ans = strings.TrimSpace(ans)
		fmt.Fprintf(&out, "> %s\n", cmd)
		if ans != "" {
			fmt.Fprintf(&out, "%s\n", ans)
		}
		ev.Output = drivers.Truncate(out.String(), EvidenceLimit)
		if err != nil {
			return err
		}
		if ans != "" {
			return fmt.Errorf("haproxy refused %q: %s", cmd, drivers.Truncate(ans, 300))
		}
	}
	return nil
}

func (c *config) set(server, what string) string {
	return fmt.Sprintf("set server %s/%s %s", c.backend, server, what)
}

// PointTo sends the backend's traffic to the site's servers only.
func (d *Driver) PointTo(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	begin := time.Now()
	c, err := d.prepare(req, true)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("haproxy %s: backend %s → site %s (%s)", c.addr, c.backend, req.Site.Name, strings.Join(c.sites[req.Site.Name], ", "))}
	if err := ctx.Err(); err != nil {
		return ev, fmt.Errorf("point backend %s to %s: %w", c.backend, req.Site.Name, err)
	}
	state, _, err := c.servers(ctx)
	if err != nil {
		return ev, fmt.Errorf("point backend %s to %s: %w", c.backend, req.Site.Name, err)
	}
	var up, drain, down []string
	for _, name := range c.sites[req.Site.Name] {
		s := state[name]
		if !s.ready() {
			up = append(up, c.set(name, "state ready"))
		}
		if c.weight != nil && s.weight != *c.weight {
			up = append(up, c.set(name, "weight "+strconv.Itoa(*c.weight)))
		}
	}
	for _, site := range sortedKeys(c.sites) {
		if site == req.Site.Name {
			continue
		}
		for _, name := range c.sites[site] {
			s := state[name]
			if s.maint() {
				continue
			}
			if c.drainFor > 0 && !s.drain() {
				drain = append(drain, c.set(name, "state drain"))
			}
			down = append(down, c.set(name, "state maint"))
		}
	}
	if len(up)+len(drain)+len(down) == 0 {
		ev.AlreadyDone = true
		ev.Output = fmt.Sprintf("site %s's servers already ready and the others in maint; nothing sent", req.Site.Name)
		ev.Duration = time.Since(begin)
		return ev, nil
	}
	// The new site takes traffic before the old one stops taking it.
	err = c.apply(ctx, append(up, drain...), &ev)
	if err == nil && len(drain) > 0 {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(c.drainFor):
		}
	}
	if err == nil {
		prev := ev.Output
		err = c.apply(ctx, down, &ev)
		ev.Output = drivers.Truncate(prev+ev.Output, EvidenceLimit)
	}
	ev.Duration = time.Since(begin)
	d.logger.Info("haproxy redirect", zap.String("backend", c.backend), zap.String("site", req.Site.Name),
		zap.Int("commands", len(up)+len(drain)+len(down)), zap.Duration("took", ev.Duration), zap.Error(err))
	if err != nil {
		return ev, fmt.Errorf("point backend %s to %s: %w", c.backend, req.Site.Name, err)
	}
	return ev, nil
}

// Drain puts the site's servers in drain: they finish what they have and
// take no new sessions.
func (d *Driver) Drain(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	begin := time.Now()
	c, err := d.prepare(req, true)
	if err != nil {
		return drivers.Evidence{}, err
	}
	ev := drivers.Evidence{Action: fmt.Sprintf("haproxy %s: backend %s drain site %s", c.addr, c.backend, req.Site.Name)}
	if err := ctx.Err(); err != nil {
		return ev, fmt.Errorf("drain %s in backend %s: %w", req.Site.Name, c.backend, err)
	}
	state, _, err := c.servers(ctx)
	if err != nil {
		return ev, fmt.Errorf("drain %s in backend %s: %w", req.Site.Name, c.backend, err)
	}
	var steps []string
	for _, name := range c.sites[req.Site.Name] {
		// A server in maint takes nothing already; drain would reopen it
		// to persistent sessions.
		if s := state[name]; s.ready() {
			steps = append(steps, c.set(name, "state drain"))
		}
	}
	if len(steps) == 0 {
		ev.AlreadyDone = true
		ev.Output = fmt.Sprintf("no server of site %s is ready; nothing sent", req.Site.Name)
		ev.Duration = time.Since(begin)
		return ev, nil
	}
	err = c.apply(ctx, steps, &ev)
	ev.Duration = time.Since(begin)
	if err != nil {
		return ev, fmt.Errorf("drain %s in backend %s: %w", req.Site.Name, c.backend, err)
	}
	return ev, nil
}

// Current names the site whose servers are ready. None ready (drained, or
// all in maint) is "". Servers of two sites ready at once is an error: the
// traffic is split, so no single site serves.
func (d *Driver) Current(ctx context.Context, req drivers.RedirectRequest) (string, error) {
	c, err := d.prepare(req, false)
	if err != nil {
		return "", err
	}
	state, _, err := c.servers(ctx)
	if err != nil {
		return "", fmt.Errorf("current site of backend %s: %w", c.backend, err)
	}
	var serving []string
	var detail []string
	for _, site := range sortedKeys(c.sites) {
		ready := false
		for _, name := range c.sites[site] {
			s := state[name]
			detail = append(detail, fmt.Sprintf("%s/%s %s", site, name, s.state()))
			ready = ready || s.ready()
		}
		if ready {
			serving = append(serving, site)
		}
	}
	switch len(serving) {
	case 0:
		return "", nil
	case 1:
		return serving[0], nil
	}
	return "", fmt.Errorf("backend %s sends traffic to sites %s at once (%s)", c.backend, strings.Join(serving, " and "), strings.Join(detail, ", "))
}
