package lab

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Default site hosts: sites are different loopback addresses with the same
// ports, like data centers on different subnets.
const (
	HostPrimary   = "127.0.1.1"
	HostSecondary = "127.0.2.1"
	HostSandbox   = "127.0.3.1"
	HostFrontDoor = "127.0.0.1"
)

// FreeBasePort finds n consecutive ports free on every site host and the
// front door host, starting at a random base, so parallel labs do not meet.
func FreeBasePort(n int) (int, error) {
	hosts := []string{HostPrimary, HostSecondary, HostSandbox, HostFrontDoor}
	for attempt := 0; attempt < 50; attempt++ {
		base := 20000 + rand.IntN(40000)
		ok := true
		var open []net.Listener
		for p := base; p < base+n && ok; p++ {
			for _, h := range hosts {
				ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
				if err != nil {
					ok = false
					break
				}
				open = append(open, ln)
			}
		}
		for _, ln := range open {
			ln.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports found", n)
}

// StandardTopology is the lab cell of examples/plans/lab.yaml: a database,
// a dmgr, two nodes with their node agents, and for BPM and Monitor a
// messaging engine, a support server and two app servers. Servers listen on
// basePort+0.., the front door on basePort+len(servers).
func StandardTopology(name string, basePort int, timeScale float64) *Topology {
	servers := []ServerSpec{
		{Name: "db", Role: RoleDatabase},
		{Name: "dmgr", Role: RoleDmgr},
		{Name: "nodeagent1", Role: RoleNodeAgent, Node: "node1"},
		{Name: "nodeagent2", Role: RoleNodeAgent, Node: "node2"},
		{Name: "bpm-me1", Role: RoleMessaging, Product: ProductBPM, Node: "node1"},
		{Name: "bpm-support1", Role: RoleSupport, Product: ProductBPM, Node: "node1"},
		{Name: "bpm-app1", Role: RoleApp, Product: ProductBPM, Node: "node1"},
		{Name: "bpm-app2", Role: RoleApp, Product: ProductBPM, Node: "node2"},
		{Name: "mon-me1", Role: RoleMessaging, Product: ProductMonitor, Node: "node2"},
		{Name: "mon-support1", Role: RoleSupport, Product: ProductMonitor, Node: "node2"},
		{Name: "mon-app1", Role: RoleApp, Product: ProductMonitor, Node: "node1"},
		{Name: "mon-app2", Role: RoleApp, Product: ProductMonitor, Node: "node2"},
	}
	for i := range servers {
		servers[i].Port = basePort + i
	}
	return &Topology{
		Name:      name,
		Cell:      "LabCell",
		TimeScale: timeScale,
		FrontDoor: Endpoint{Host: HostFrontDoor, Port: basePort + len(servers)},
		Sites: []SiteSpec{
			{Name: "dc1", Role: SitePrimary, Host: HostPrimary},
			{Name: "dc2", Role: SiteSecondary, Host: HostSecondary},
			{Name: "sandbox", Role: SiteSandbox, Host: HostSandbox},
		},
		Servers: servers,
	}
}
