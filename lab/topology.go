package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"
)

// Role is what a lab server does. The names match drover's plan roles.
type Role string

const (
	RoleDatabase  Role = "database"
	RoleDmgr      Role = "dmgr"
	RoleNodeAgent Role = "nodeagent"
	RoleMessaging Role = "messaging"
	RoleSupport   Role = "support"
	RoleApp       Role = "app"
)

// Products the lab knows how to run. BPM runs the OrderHandling workload,
// Monitor consumes its events.
const (
	ProductBPM     = "bpm"
	ProductMonitor = "monitor"
)

// Site roles.
const (
	SitePrimary   = "primary"
	SiteSecondary = "secondary"
	SiteSandbox   = "sandbox"
)

// DefaultTimeScale shrinks the realistic start-up times so a lab comes up in
// seconds; 1.0 means minutes, as a real cell.
const DefaultTimeScale = 0.05

// startupAtScale1 are start-up times in realistic proportion: the database
// and dmgr are slow-ish, node agents fast, clustered servers slowest.
var startupAtScale1 = map[Role]time.Duration{
	RoleDatabase:  20 * time.Second,
	RoleDmgr:      45 * time.Second,
	RoleNodeAgent: 10 * time.Second,
	RoleMessaging: 30 * time.Second,
	RoleSupport:   60 * time.Second,
	RoleApp:       90 * time.Second,
}

// StartupTime is how long a server of this role takes to start at a scale.
func StartupTime(r Role, scale float64) time.Duration {
	if scale < 0 {
		scale = 0
	}
	return time.Duration(float64(startupAtScale1[r]) * scale)
}

// Topology is a lab cell: its sites and its servers. Every site has the same
// servers on the same ports; sites differ by host (loopback address), like
// data centers on different subnets.
type Topology struct {
	Name      string            `json:"name"`
	Cell      string            `json:"cell"`
	TimeScale float64           `json:"timeScale"`
	FrontDoor Endpoint          `json:"frontDoor"`
	Sites     []SiteSpec        `json:"sites"`
	Servers   []ServerSpec      `json:"servers"`
	Installed map[string]string `json:"installed,omitempty"`
}

// Endpoint is a host and port.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Addr is host:port.
func (e Endpoint) Addr() string { return net.JoinHostPort(e.Host, fmt.Sprint(e.Port)) }

// SiteSpec is one data center.
type SiteSpec struct {
	Name string `json:"name"`
	// Role is primary, secondary or sandbox.
	Role string `json:"role"`
	// Host is the loopback address every server of the site binds.
	Host string `json:"host"`
}

// ServerSpec is one server of the cell.
type ServerSpec struct {
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	Product string `json:"product,omitempty"`
	// Node is the node (machine) the server belongs to; every node has a
	// node agent. The database and dmgr have none.
	Node string `json:"node,omitempty"`
	Port int    `json:"port"`
}

// DefaultInstalled is the installation every lab site gets: product versions
// and fix levels. Servers refuse to start on a site whose installation
// differs from the one their profile was created with.
func DefaultInstalled() map[string]string {
	return map[string]string{
		"was":     "8.5.5.12",
		"bpm":     "8.5.7.0 CF2017.06",
		"monitor": "8.5.7.0 IF003",
		"db":      "SQLite 3 (WAL)",
	}
}

// Site returns the site called name.
func (t *Topology) Site(name string) (SiteSpec, bool) {
	for _, s := range t.Sites {
		if s.Name == name {
			return s, true
		}
	}
	return SiteSpec{}, false
}

// SiteByRole returns the site with role primary, secondary or sandbox.
func (t *Topology) SiteByRole(role string) (SiteSpec, bool) {
	for _, s := range t.Sites {
		if s.Role == role {
			return s, true
		}
	}
	return SiteSpec{}, false
}

// Server returns the server called name.
func (t *Topology) Server(name string) (ServerSpec, bool) {
	for _, s := range t.Servers {
		if s.Name == name {
			return s, true
		}
	}
	return ServerSpec{}, false
}

// ByRole lists the servers of a role, optionally of one product, in order.
func (t *Topology) ByRole(r Role, product string) []ServerSpec {
	var out []ServerSpec
	for _, s := range t.Servers {
		if s.Role == r && (product == "" || s.Product == product) {
			out = append(out, s)
		}
	}
	return out
}

// Database is the cell's database server.
func (t *Topology) Database() ServerSpec { return t.ByRole(RoleDatabase, "")[0] }

// Dmgr is the cell's deployment manager.
func (t *Topology) Dmgr() ServerSpec { return t.ByRole(RoleDmgr, "")[0] }

// NodeAgent returns the node agent of a node.
func (t *Topology) NodeAgent(node string) (ServerSpec, bool) {
	for _, s := range t.ByRole(RoleNodeAgent, "") {
		if s.Node == node {
			return s, true
		}
	}
	return ServerSpec{}, false
}

// Messaging is the messaging engine of a product's bus.
func (t *Topology) Messaging(product string) ServerSpec { return t.ByRole(RoleMessaging, product)[0] }

// Validate checks that the topology is a cell the lab can run.
func (t *Topology) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if t.Name == "" {
		add("name is empty")
	}
	if t.TimeScale < 0 {
		add("timeScale %v is negative", t.TimeScale)
	}
	if t.FrontDoor.Host == "" || t.FrontDoor.Port <= 0 || t.FrontDoor.Port > 65535 {
		add("front door %q is not a host and port", t.FrontDoor.Addr())
	}
	siteNames := map[string]bool{}
	hosts := map[string]string{}
	roles := map[string]bool{}
	for i, s := range t.Sites {
		switch {
		case s.Name == "":
			add("sites[%d]: name is empty", i)
		case !validName(s.Name):
			add("site %q: name may hold only letters, digits, '-' and '_'", s.Name)
		case siteNames[s.Name]:
			add("site %q is listed twice", s.Name)
		}
		siteNames[s.Name] = true
		switch s.Role {
		case SitePrimary, SiteSecondary, SiteSandbox:
			if roles[s.Role] {
				add("site %q: a second %s site", s.Name, s.Role)
			}
			roles[s.Role] = true
		default:
			add("site %q: role %q is not primary, secondary or sandbox", s.Name, s.Role)
		}
		if ip := net.ParseIP(s.Host); ip == nil || !ip.IsLoopback() {
			add("site %q: host %q is not a loopback address (the lab runs on 127.0.0.0/8)", s.Name, s.Host)
		} else if other, ok := hosts[s.Host]; ok {
			add("site %q: host %s is already used by site %q (sites must not share addresses)", s.Name, s.Host, other)
		}
		hosts[s.Host] = s.Name
	}
	if !roles[SitePrimary] || !roles[SiteSecondary] {
		add("the lab needs a primary and a secondary site")
	}
	names := map[string]bool{}
	ports := map[int]string{}
	count := map[string]int{}
	nodes := map[string]bool{}
	for i, s := range t.Servers {
		if s.Name == "" || !validName(s.Name) {
			add("servers[%d]: name %q may hold only letters, digits, '-' and '_'", i, s.Name)
		}
		if names[s.Name] {
			add("server %q is listed twice", s.Name)
		}
		names[s.Name] = true
		if s.Port <= 0 || s.Port > 65535 {
			add("server %q: port %d out of range", s.Name, s.Port)
		} else if other, ok := ports[s.Port]; ok {
			add("server %q: port %d is already used by %q", s.Name, s.Port, other)
		}
		ports[s.Port] = s.Name
		switch s.Role {
		case RoleDatabase, RoleDmgr:
			if s.Product != "" {
				add("server %q: a %s belongs to no product", s.Name, s.Role)
			}
		case RoleNodeAgent:
			if s.Node == "" {
				add("server %q: a node agent needs a node", s.Name)
			} else if nodes[s.Node] {
				add("server %q: node %q has a second node agent", s.Name, s.Node)
			}
			nodes[s.Node] = true
		case RoleMessaging, RoleSupport, RoleApp:
			if s.Product != ProductBPM && s.Product != ProductMonitor {
				add("server %q: product %q is not one the lab runs (bpm, monitor)", s.Name, s.Product)
			}
			if s.Node == "" {
				add("server %q: a %s server needs a node", s.Name, s.Role)
			}
		default:
			add("server %q: role %q is not one the lab runs (database, dmgr, nodeagent, messaging, support, app)", s.Name, s.Role)
		}
		count[string(s.Role)+"/"+s.Product]++
	}
	if t.FrontDoor.Port > 0 {
		if other, ok := ports[t.FrontDoor.Port]; ok {
			add("front door port %d is already used by %q", t.FrontDoor.Port, other)
		}
	}
	for _, s := range t.Servers {
		if s.Role != RoleNodeAgent && s.Node != "" && !nodes[s.Node] {
			add("server %q: node %q has no node agent", s.Name, s.Node)
		}
	}
	if count["database/"] != 1 {
		add("the lab needs exactly one database server, not %d", count["database/"])
	}
	if count["dmgr/"] != 1 {
		add("the lab needs exactly one dmgr, not %d", count["dmgr/"])
	}
	for _, p := range []string{ProductBPM, ProductMonitor} {
		if n := count["messaging/"+p]; n != 1 {
			add("product %s needs exactly one messaging engine, not %d", p, n)
		}
		if count["support/"+p] < 1 {
			add("product %s needs a support server", p)
		}
		if count["app/"+p] < 1 {
			add("product %s needs an app server", p)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab topology %q: %s", t.Name, strings.Join(errs, "; "))
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// StartOrder cuts the servers into tiers by the dependencies servers enforce
// at start-up: database; dmgr; node agents; messaging engines; support; app.
// Members of a tier may start in parallel.
func (t *Topology) StartOrder() [][]ServerSpec {
	var tiers [][]ServerSpec
	for _, r := range []Role{RoleDatabase, RoleDmgr, RoleNodeAgent, RoleMessaging, RoleSupport, RoleApp} {
		if tier := t.ByRole(r, ""); len(tier) > 0 {
			tiers = append(tiers, tier)
		}
	}
	return tiers
}

// SaveTopology writes lab.json at the top of the lab dir.
func SaveTopology(dir string, t *Topology) error {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(Layout{Dir: dir}.TopologyFile(), append(data, '\n'), 0o644)
}

// LoadTopology reads lab.json from the top of the lab dir.
func LoadTopology(dir string) (*Topology, error) {
	path := Layout{Dir: dir}.TopologyFile()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab in %s (%s is missing): run drover lab up first", dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab topology: %w", err)
	}
	var t Topology
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("read lab topology %s: %w", path, err)
	}
	return &t, nil
}

// SiteNames lists the sites in a stable order: primary, secondary, sandbox.
func (t *Topology) SiteNames() []string {
	rank := map[string]int{SitePrimary: 0, SiteSecondary: 1, SiteSandbox: 2}
	sites := append([]SiteSpec(nil), t.Sites...)
	sort.SliceStable(sites, func(i, j int) bool { return rank[sites[i].Role] < rank[sites[j].Role] })
	var out []string
	for _, s := range sites {
		out = append(out, s.Name)
	}
	return out
}
