package dns

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
)

// nameserver is a real named serving example.test with an update-policy
// that lets the key change app.example.test only; one per package.
type nameserver struct {
	addr   string
	secret string
}

var (
	nsOnce  sync.Once
	theNS   *nameserver
	nsErr   error
	cleanup []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	os.Exit(code)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

const zoneFile = `$TTL 300
@    IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
@    IN NS  ns.example.test.
ns   IN A   127.0.0.1
app  IN A   192.0.2.1
`

func startNamed(t *testing.T) *nameserver {
	t.Helper()
	bin, err := exec.LookPath("named")
	if err != nil {
		bin = "/usr/sbin/named"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("CI") == "" {
				t.Skip("named not installed (apt-get install bind9); CI runs this test")
			}
			t.Fatal("named not installed, and CI is set")
		}
	}
	nsOnce.Do(func() { theNS, nsErr = launchNamed(bin) })
	if nsErr != nil {
		t.Fatal(nsErr)
	}
	return theNS
}

func launchNamed(bin string) (*nameserver, error) {
	dir, err := os.MkdirTemp("", "drover-named-")
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ns := &nameserver{secret: base64.StdEncoding.EncodeToString(key)}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ns.addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	allow-query { any; };
};
controls { };
key "drover-key" { algorithm hmac-sha256; secret "%[3]s"; };
zone "example.test" {
	type primary;
	file "%[1]s/example.test.zone";
	update-policy { grant drover-key name app.example.test. A AAAA; grant drover-key name web.example.test. CNAME; };
};
`, dir, port, ns.secret)
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zoneFile), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-g", "-c", filepath.Join(dir, "named.conf"))
	log, err := os.Create(filepath.Join(dir, "named.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Ready when it answers for the zone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeSOA)
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		if r, _, err := c.Exchange(m, ns.addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return ns, nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "named.log"))
			return nil, fmt.Errorf("named did not serve example.test: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (ns *nameserver) settings(t *testing.T) map[string]any {
	t.Setenv("DRIVERSTEST_TSIG", ns.secret)
	return map[string]any{
		"server": ns.addr, "zone": "example.test", "name": "app", "type": "A", "ttl": 30,
		"sites": map[string]any{"dc1": []any{"192.0.2.10", "192.0.2.11"}, "dc2": []any{"198.51.100.20"}},
		"tsig":  map[string]any{"name": "drover-key", "algorithm": "hmac-sha256", "secret": "env:DRIVERSTEST_TSIG"},
	}
}

func with(s map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range s {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// lookup asks named directly, outside the driver.
func (ns *nameserver) lookup(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(m, ns.addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[1]+" "+f[len(f)-1])
	}
	return out
}

func TestConformance(t *testing.T) {
	ns := startNamed(t)
	good := ns.settings(t)
	tsig := func(k, v string) map[string]any {
		m := map[string]any{"name": "drover-key", "algorithm": "hmac-sha256", "secret": "env:DRIVERSTEST_TSIG"}
		m[k] = v
		return with(good, "tsig", m)
	}
	driverstest.Redirect(t, driverstest.RedirectCase{
		Driver:  New(nil),
		Request: drivers.RedirectRequest{Plan: "p", Settings: good},
		Sites:   [2]drivers.Site{{Name: "dc1", Role: "primary"}, {Name: "dc2", Role: "secondary"}},
		Reaches: func(t *testing.T, site string) {
			want := map[string][]string{"dc1": {"30 192.0.2.10", "30 192.0.2.11"}, "dc2": {"30 198.51.100.20"}}[site]
			got := ns.lookup(t, "app.example.test.", dns.TypeA)
			if strings.Join(sortStrings(got), ",") != strings.Join(want, ",") {
				t.Fatalf("named answers %v for app.example.test A, want %v (site %s)", got, want, site)
			}
		},
		Secret: ns.secret,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with(good, "zoen", "x"), Field: "zoen"},
			{Name: "no server", Settings: with(good, "server", nil), Field: "server"},
			{Name: "type MX", Settings: with(good, "type", "MX"), Field: "type"},
			{Name: "name outside the zone", Settings: with(good, "name", "app.example.org."), Field: "name"},
			{Name: "an IPv6 value for A", Settings: with(good, "sites", map[string]any{"dc1": []any{"2001:db8::1"}, "dc2": []any{"192.0.2.1"}}), Field: "sites.dc1"},
			{Name: "no tsig", Settings: with(good, "tsig", nil), Field: "tsig"},
			{Name: "unknown algorithm", Settings: tsig("algorithm", "hmac-md4"), Field: "tsig.algorithm"},
			{Name: "secret written as a literal", Settings: tsig("secret", ns.secret), Field: "tsig.secret"},
			{Name: "wrong key", Settings: tsig("secret", "env:DRIVERSTEST_WRONG_TSIG"), Field: "tsig", NeedsTarget: true},
		},
	})
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRefusedByPolicyAndWrongKeyArePermanent(t *testing.T) {
	ns := startNamed(t)
	d := New(nil)
	ctx := context.Background()
	req := func(s map[string]any) drivers.RedirectRequest {
		return drivers.RedirectRequest{Site: drivers.Site{Name: "dc2"}, Settings: s}
	}
	good := ns.settings(t)
	// The key may change app only: the update-policy refuses www.
	_, err := d.PointTo(ctx, req(with(good, "name", "www")))
	if err == nil || !drivers.Permanent(err) || !strings.Contains(err.Error(), "REFUSED") {
		t.Fatalf("update outside the policy: %v", err)
	}
	wrong := make([]byte, 32)
	t.Setenv("DRIVERSTEST_OTHER_TSIG", base64.StdEncoding.EncodeToString(wrong))
	_, err = d.PointTo(ctx, req(with(good, "tsig", map[string]any{"name": "drover-key", "secret": "env:DRIVERSTEST_OTHER_TSIG"})))
	if err == nil || !drivers.Permanent(err) {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(wrong)) {
		t.Fatal("the error carries the key")
	}
	// A server that is not there is worth a retry.
	_, err = d.PointTo(ctx, req(with(good, "server", "127.0.0.1:1")))
	if err == nil || drivers.Permanent(err) {
		t.Fatalf("no server: %v", err)
	}
}

func TestCNAMEAndAAAA(t *testing.T) {
	ns := startNamed(t)
	d := New(nil)
	ctx := context.Background()
	good := ns.settings(t)
	// A CNAME must be alone at its name, so it switches its own name.
	cname := with(with(with(good, "type", "CNAME"), "name", "web.example.test."), "sites",
		map[string]any{"dc1": []any{"web.dc1.example.net"}, "dc2": []any{"web.dc2.example.net."}})
	aaaa := with(with(good, "type", "AAAA"), "sites", map[string]any{"dc1": []any{"2001:db8::10"}, "dc2": []any{"2001:db8::20"}})
	r := func(s map[string]any, site string) drivers.RedirectRequest {
		return drivers.RedirectRequest{Site: drivers.Site{Name: site}, Settings: s}
	}
	for _, site := range []string{"dc2", "dc1"} {
		if _, err := d.PointTo(ctx, r(aaaa, site)); err != nil {
			t.Fatalf("AAAA to %s: %v", site, err)
		}
		if cur, err := d.Current(ctx, r(aaaa, site)); err != nil || cur != site {
			t.Fatalf("AAAA current: %q %v", cur, err)
		}
	}
	if got := ns.lookup(t, "app.example.test.", dns.TypeAAAA); len(got) != 1 || got[0] != "30 2001:db8::10" {
		t.Fatalf("named AAAA: %v", got)
	}
	for _, site := range []string{"dc1", "dc2"} {
		if _, err := d.PointTo(ctx, r(cname, site)); err != nil {
			t.Fatalf("CNAME to %s: %v", site, err)
		}
		if cur, err := d.Current(ctx, r(cname, site)); err != nil || cur != site {
			t.Fatalf("CNAME current: %q %v", cur, err)
		}
	}
	if got := ns.lookup(t, "web.example.test.", dns.TypeCNAME); len(got) != 1 || got[0] != "30 web.dc2.example.net." {
		t.Fatalf("named CNAME: %v", got)
	}
}
