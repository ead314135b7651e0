package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
)

// proxy is a real haproxy in front of one tiny HTTP server per site,
// started once for the package's tests.
type proxy struct {
	frontend string // host:port of haproxy's frontend
	socket   string // the stats socket
	tcpStats string // the stats socket bound to TCP
}

var (
	proxyOnce sync.Once
	theProxy  *proxy
	proxyErr  error
	cleanup   []func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startProxy(t *testing.T) *proxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("haproxy not installed (apt-get install haproxy); CI runs this test")
		}
		t.Fatal("haproxy not installed, and CI is set")
	}
	proxyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "drover-haproxy-")
		if err != nil {
			proxyErr = err
			return
		}
		cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
		backend := map[string]string{}
		for _, site := range []string{"dc1", "dc2"} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, site)
			}))
			cleanup = append(cleanup, srv.Close)
			backend[site] = strings.TrimPrefix(srv.URL, "http://")
		}
		p := &proxy{
			frontend: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			socket:   filepath.Join(dir, "admin.sock"),
			tcpStats: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		}
		cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    stats socket ipv4@%s level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend web
    bind %s
    default_backend app
backend app
    server app-dc1 %s
    server app-dc2 %s
`, p.socket, p.tcpStats, p.frontend, backend["dc1"], backend["dc2"])
		conf := filepath.Join(dir, "haproxy.cfg")
		if proxyErr = os.WriteFile(conf, []byte(cfg), 0o644); proxyErr != nil {
			return
		}
		cmd := exec.Command(bin, "-db", "-f", conf)
		log, _ := os.Create(filepath.Join(dir, "haproxy.log"))
		cmd.Stdout, cmd.Stderr = log, log
		if proxyErr = cmd.Start(); proxyErr != nil {
			return
		}
		cleanup = append(cleanup, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		deadline := time.Now().Add(10 * time.Second)
		for {
			if c, err := net.Dial("unix", p.socket); err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
				proxyErr = fmt.Errorf("haproxy did not open its stats socket: %s", b)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		theProxy = p
	})
	if proxyErr != nil {
		t.Fatal(proxyErr)
	}
	return theProxy
}

func (p *proxy) settings(stats map[string]any) map[string]any {
	s := map[string]any{"backend": "app", "sites": map[string]any{"dc1": []any{"app-dc1"}, "dc2": []any{"app-dc2"}}, "weight": 10}
	for k, v := range stats {
		s[k] = v
	}
	return s
}

// reaches asks through haproxy several times; every answer must come from site.
func (p *proxy) reaches(t *testing.T, site string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 6; i++ {
		resp, err := client.Get("http://" + p.frontend + "/")
		if err != nil {
			t.Fatalf("request through haproxy: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != site {
			t.Fatalf("request %d through haproxy reached %q (status %d), want %s", i, b, resp.StatusCode, site)
		}
	}
}

func site(name, role string) drivers.Site { return drivers.Site{Name: name, Role: role} }

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

func TestConformanceOverUnixSocket(t *testing.T) {
	p := startProxy(t)
	good := p.settings(map[string]any{"socket": p.socket})
	driverstest.Redirect(t, driverstest.RedirectCase{
		Driver:  New(nil),
		Request: drivers.RedirectRequest{Plan: "p", Settings: good},
		Sites:   [2]drivers.Site{site("dc1", "primary"), site("dc2", "secondary")},
		Reaches: p.reaches,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with(good, "backnd", "app"), Field: "backnd"},
			{Name: "no backend", Settings: with(good, "backend", nil), Field: "backend"},
			{Name: "socket and address", Settings: with(good, "address", p.tcpStats), Field: "address"},
			{Name: "one site", Settings: with(good, "sites", map[string]any{"dc1": []any{"app-dc1"}}), Field: "sites"},
			{Name: "server in two sites", Settings: with(good, "sites", map[string]any{"dc1": []any{"app-dc1"}, "dc2": []any{"app-dc1"}}), Field: "app-dc1"},
			{Name: "command smuggled in a name", Settings: with(good, "backend", "app;shutdown sessions"), Field: "backend"},
			{Name: "weight too high", Settings: with(good, "weight", 1000), Field: "weight"},
			{Name: "server not in the backend", Settings: with(good, "sites", map[string]any{"dc1": []any{"app-dc1"}, "dc2": []any{"app-dc3"}}), Field: "app-dc3", NeedsTarget: true},
		},
	})
}

func TestPointToOverTCPStatsAndWeights(t *testing.T) {
	p := startProxy(t)
	d := New(nil)
	ctx := context.Background()
	s := p.settings(map[string]any{"address": p.tcpStats, "drainFor": "100ms", "weight": 7})
	req := func(name string) drivers.RedirectRequest {
		return drivers.RedirectRequest{Plan: "p", Site: site(name, ""), Settings: s}
	}
	for _, to := range []string{"dc1", "dc2", "dc1"} {
		ev, err := d.PointTo(ctx, req(to))
		if err != nil {
			t.Fatalf("point to %s: %v", to, err)
		}
		cur, err := d.Current(ctx, req(to))
		if err != nil || cur != to {
			t.Fatalf("current after pointing to %s: %q, %v (%s)", to, cur, err, ev.Output)
		}
		p.reaches(t, to)
	}
	c, _ := parse(s)
	state, out, err := c.servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w := state["app-dc1"].weight; w != 7 {
		t.Errorf("app-dc1 weight %d, want 7: %s", w, out)
	}
	if !state["app-dc2"].maint() {
		t.Errorf("app-dc2 is %s, want maint", state["app-dc2"].state())
	}

	// Both sites ready at once: Current refuses to pick one.
	if _, err := c.command(ctx, "set server app/app-dc2 state ready"); err != nil {
		t.Fatal(err)
	}
	if cur, err := d.Current(ctx, req("dc1")); err == nil || !strings.Contains(err.Error(), "dc1 and dc2 at once") {
		t.Fatalf("split traffic: current %q, %v", cur, err)
	}
	if _, err := d.PointTo(ctx, req("dc1")); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableSocketIsRetryable(t *testing.T) {
	d := New(nil)
	s := map[string]any{"socket": filepath.Join(t.TempDir(), "none.sock"), "backend": "app",
		"sites": map[string]any{"dc1": []any{"a"}, "dc2": []any{"b"}}}
	_, err := d.PointTo(context.Background(), drivers.RedirectRequest{Site: site("dc1", ""), Settings: s})
	if err == nil || drivers.Permanent(err) {
		t.Fatalf("a stats socket that is not there is worth a retry: %v", err)
	}
}

func TestParseServersState(t *testing.T) {
	out := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n" +
		"3 app 1 a 127.0.0.1 2 0 1 1\n3 app 2 b 127.0.0.1 2 1 1 1\n3 app 3 c 127.0.0.1 2 8 5 1\n3 app 4 d 127.0.0.1 0 4 1 1\n"
	got, err := parseServersState(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "ready", "b": "maint", "c": "drain", "d": "maint"}
	for name, st := range want {
		if got[name].state() != st {
			t.Errorf("%s: %s, want %s", name, got[name].state(), st)
		}
	}
	if got["c"].weight != 5 {
		t.Errorf("c weight %d", got["c"].weight)
	}
	for _, bad := range []string{"", "No such backend.\n", "1\n3 app 1 a\n", "1\n# srv_name srv_admin_state srv_uweight\na x 1\n"} {
		if _, err := parseServersState(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
