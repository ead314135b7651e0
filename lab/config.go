package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Installation is a site's installation manifest: product versions and fix
// levels, and the machine's address. Installation data is reinstalled at a
// site, never copied between sites, so it lives outside the data root.
type Installation struct {
	Site      string            `json:"site"`
	Host      string            `json:"host"`
	Installed map[string]string `json:"installed"`
	CreatedAt time.Time         `json:"createdAt"`
}

// ServerConfig is a server's profile (config/server.json).
type ServerConfig struct {
	Cell    string `json:"cell"`
	Node    string `json:"node,omitempty"`
	Server  string `json:"server"`
	Role    Role   `json:"role"`
	Product string `json:"product,omitempty"`
	// Host and Port are the server's endpoint as the cell knows it.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Installed is the installation the profile was created with.
	Installed map[string]string `json:"installed"`
	CreatedAt time.Time         `json:"createdAt"`
}

// Address is host:port of the server's endpoint.
func (c ServerConfig) Address() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// Ref names another server and where it is.
type Ref struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Resources are a server's resource references (config/resources.json): data
// sources, the dmgr, its node agent, its bus and its support cluster. They
// hold host names, so a restore at another site must rewrite them (the
// seed's step 5).
type Resources struct {
	// DataSource is the database server (jdbc/BPMDB, jdbc/MONDB, the ME store).
	DataSource *Ref `json:"dataSource,omitempty"`
	Dmgr       *Ref `json:"dmgr,omitempty"`
	NodeAgent  *Ref `json:"nodeAgent,omitempty"`
	// Messaging is the messaging engine of the server's product bus.
	Messaging *Ref `json:"messaging,omitempty"`
	// MonitorBus is the Monitor bus's engine, where BPM app servers emit
	// events.
	MonitorBus *Ref `json:"monitorBus,omitempty"`
	// Support are the support cluster members of the server's product.
	Support []Ref `json:"support,omitempty"`
}

// CellConfig is the cell's configuration as every server holds a copy of it
// (config/cell.json): every server with its address and applications.
type CellConfig struct {
	Cell    string       `json:"cell"`
	Servers []CellMember `json:"servers"`
}

// CellMember is one server of the cell configuration.
type CellMember struct {
	Name         string   `json:"name"`
	Role         Role     `json:"role"`
	Product      string   `json:"product,omitempty"`
	Node         string   `json:"node,omitempty"`
	Address      string   `json:"address"`
	Applications []string `json:"applications,omitempty"`
}

// Find returns the member called name.
func (c *CellConfig) Find(name string) (CellMember, bool) {
	for _, m := range c.Servers {
		if m.Name == name {
			return m, true
		}
	}
	return CellMember{}, false
}

// Applications deployed on a product's app cluster.
func Applications(product string) []string {
	switch product {
	case ProductBPM:
		return []string{"OrderHandlingApp", "CustomerServicesApp", "BPCExplorer", "HumanTaskManager"}
	case ProductMonitor:
		return []string{"OrderMonitorModel", "MonitorDashboards"}
	}
	return nil
}

// Process templates installed in BPMDB.
const (
	TemplateOrderHandling = "OrderHandling"
	TemplateCheckCustomer = "CheckCustomerAccountStatus"
	TemplateUpdateOrder   = "UpdateOrderDatabase"
	TemplateCancelOrder   = "CancelOrderandSendNotification"
)

// Templates lists the process templates of the workload with their kind.
var Templates = []struct{ Name, Kind string }{
	{TemplateOrderHandling, "long-running"},
	{TemplateCheckCustomer, "long-running"},
	{TemplateUpdateOrder, "microflow"},
	{TemplateCancelOrder, "one-way"},
}

// Config file names inside a server's config dir.
const (
	ServerFile    = "server.json"
	ResourcesFile = "resources.json"
	CellFile      = "cell.json"
)

// writeInstallation writes a site's installation manifest.
func writeInstallation(l Layout, site SiteSpec, installed map[string]string) error {
	inst := Installation{Site: site.Name, Host: site.Host, Installed: installed, CreatedAt: time.Now().UTC()}
	data, err := json.MarshalIndent(inst, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(l.InstallationFile(site.Name), append(data, '\n'), 0o644)
}

// ReadInstallation reads a site's installation manifest.
func ReadInstallation(l Layout, site string) (*Installation, error) {
	path := l.InstallationFile(site)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nothing is installed at site %s (%s is missing)", site, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read installation of site %s: %w", site, err)
	}
	var inst Installation
	if err := json.Unmarshal(data, &inst); err != nil {
		return nil, fmt.Errorf("read installation %s: %w", path, err)
	}
	return &inst, nil
}

// writeProfiles creates every server's profile at a site: the cell
// configuration, as profile creation and cluster configuration would.
func writeProfiles(l Layout, t *Topology, site SiteSpec) error {
	addr := func(s ServerSpec) string { return net.JoinHostPort(site.Host, strconv.Itoa(s.Port)) }
	ref := func(s ServerSpec) *Ref { return &Ref{Name: s.Name, Address: addr(s)} }
	cell := CellConfig{Cell: t.Cell}
	for _, s := range t.Servers {
		m := CellMember{Name: s.Name, Role: s.Role, Product: s.Product, Node: s.Node, Address: addr(s)}
		if s.Role == RoleApp {
			m.Applications = Applications(s.Product)
		}
		cell.Servers = append(cell.Servers, m)
	}
	now := time.Now().UTC()
	for _, s := range t.Servers {
		cfg := ServerConfig{
			Cell: t.Cell, Node: s.Node, Server: s.Name, Role: s.Role, Product: s.Product,
			Host: site.Host, Port: s.Port, Installed: t.Installed, CreatedAt: now,
		}
		var res Resources
		db := ref(t.Database())
		switch s.Role {
		case RoleDmgr:
			res.DataSource = db
		case RoleNodeAgent:
			res.Dmgr = ref(t.Dmgr())
		case RoleMessaging, RoleSupport, RoleApp:
			res.DataSource = db
			res.Dmgr = ref(t.Dmgr())
			if na, ok := t.NodeAgent(s.Node); ok {
				res.NodeAgent = ref(na)
			}
			res.Messaging = ref(t.Messaging(s.Product))
			if s.Product == ProductBPM && s.Role == RoleApp {
				res.MonitorBus = ref(t.Messaging(ProductMonitor))
			}
			for _, sup := range t.ByRole(RoleSupport, s.Product) {
				res.Support = append(res.Support, *ref(sup))
			}
		}
		dir := l.ConfigDir(site.Name, s.Name)
		for name, v := range map[string]any{ServerFile: cfg, ResourcesFile: res, CellFile: cell} {
			data, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return err
			}
			if err := writeFileAtomic(filepath.Join(dir, name), append(data, '\n'), 0o644); err != nil {
				return fmt.Errorf("create profile of %s at %s: %w", s.Name, site.Name, err)
			}
		}
		if err := os.MkdirAll(l.RuntimeDir(site.Name, s.Name), 0o755); err != nil {
			return fmt.Errorf("create profile of %s at %s: %w", s.Name, site.Name, err)
		}
	}
	return nil
}

// profile is a server's configuration as read at start-up.
type profile struct {
	Server    ServerConfig
	Resources Resources
	Cell      CellConfig
}

// readProfile reads a server's configuration from its site's data root.
func readProfile(l Layout, site, server string) (*profile, error) {
	root := l.DataRoot(site)
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("data root %s is unreachable: %w", root, err)
	}
	dir := l.ConfigDir(site, server)
	var p profile
	for name, v := range map[string]any{ServerFile: &p.Server, ResourcesFile: &p.Resources, CellFile: &p.Cell} {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("profile of %s not found at site %s (%s is missing: configuration not restored?)", server, site, path)
		}
		if err != nil {
			return nil, fmt.Errorf("read profile %s: %w", path, err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return nil, fmt.Errorf("read profile %s: %w", path, err)
		}
	}
	if p.Server.Server != server {
		return nil, fmt.Errorf("profile at %s belongs to server %q, not %q", dir, p.Server.Server, server)
	}
	return &p, nil
}
