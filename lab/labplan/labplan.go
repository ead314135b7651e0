// Package labplan turns a plan whose components use the lab driver into the
// lab's topology, so the lab commands, the demo and the benchmarks build the
// same lab from the same plan.
package labplan

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/plan"
)

// siteSettings are the keys of a plan site the lab reads.
type siteSettings struct {
	Host      string   `json:"host"`
	LabDir    string   `json:"labDir"`
	BasePort  int      `json:"basePort"`
	TimeScale *float64 `json:"timeScale"`
}

func decodeLoose(in map[string]any, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// Topology turns a plan into the lab's topology: every component must
// use the lab driver; sites give their host and base port; a component
// listens on basePort + its index unless it sets its own port; the front
// door on basePort + the number of components (or the redirect's frontDoor
// setting). basePort > 0 and timeScale >= 0 override the plan.
func Topology(p *plan.Plan, basePort int, timeScale float64) (*lab.Topology, string, error) {
	t := &lab.Topology{Name: p.Name, Cell: p.Name + "Cell", TimeScale: lab.DefaultTimeScale}
	var labDir string
	planBase := 0
	roles := []struct {
		role string
		site *plan.Site
	}{{lab.SitePrimary, p.Sites.Primary}, {lab.SiteSecondary, p.Sites.Secondary}, {lab.SiteSandbox, p.Sites.Sandbox}}
	for _, r := range roles {
		if r.site == nil {
			continue
		}
		var s siteSettings
		if err := decodeLoose(r.site.Settings, &s); err != nil {
			return nil, "", fmt.Errorf("site %s settings: %w", r.site.Name, err)
		}
		if s.Host == "" {
			return nil, "", fmt.Errorf("site %s: setting host is required by the lab (a loopback address such as 127.0.1.1)", r.site.Name)
		}
		if s.BasePort <= 0 && basePort <= 0 {
			return nil, "", fmt.Errorf("site %s: setting basePort is required by the lab (or give --base-port)", r.site.Name)
		}
		if planBase != 0 && s.BasePort != planBase {
			return nil, "", fmt.Errorf("site %s: basePort %d differs from the primary's %d (every site runs the same ports)", r.site.Name, s.BasePort, planBase)
		}
		planBase = s.BasePort
		if r.role == lab.SitePrimary {
			labDir = s.LabDir
			if s.TimeScale != nil {
				t.TimeScale = *s.TimeScale
			}
		}
		t.Sites = append(t.Sites, lab.SiteSpec{Name: r.site.Name, Role: r.role, Host: s.Host})
	}
	if basePort <= 0 {
		basePort = planBase
	}
	if timeScale >= 0 {
		t.TimeScale = timeScale
	}
	for i, c := range p.Components {
		if c.Driver != "lab" {
			return nil, "", fmt.Errorf("component %s uses driver %q: the lab runs only components with driver lab", c.Name, c.Driver)
		}
		var s struct {
			Node string `json:"node"`
			Port int    `json:"port"`
		}
		if err := decodeLoose(c.Settings, &s); err != nil {
			return nil, "", fmt.Errorf("component %s settings: %w", c.Name, err)
		}
		port := s.Port
		if port == 0 {
			port = basePort + i
		}
		t.Servers = append(t.Servers, lab.ServerSpec{Name: c.Name, Role: lab.Role(c.Role), Product: c.Product, Node: s.Node, Port: port})
	}
	t.FrontDoor = lab.Endpoint{Host: lab.HostFrontDoor, Port: basePort + len(p.Components)}
	if p.Redirect != nil && p.Redirect.Driver == "lab" {
		var s struct {
			FrontDoor string `json:"frontDoor"`
		}
		if err := decodeLoose(p.Redirect.Settings, &s); err == nil && s.FrontDoor != "" {
			host, port, ok := strings.Cut(s.FrontDoor, ":")
			n, err := strconv.Atoi(port)
			if !ok || err != nil {
				return nil, "", fmt.Errorf("redirect settings: frontDoor %q is not host:port", s.FrontDoor)
			}
			t.FrontDoor = lab.Endpoint{Host: host, Port: n}
		}
	}
	if err := t.Validate(); err != nil {
		return nil, "", err
	}
	return t, labDir, nil
}
