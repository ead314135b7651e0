package driverstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// The suite must fail on drivers that break its rules. Each broken driver
// runs in a child test process (a failing suite fails its test), and the
// parent checks the child failed for the right reason.

const helperEnv = "DRIVERSTEST_BROKEN"

const leaked = "s3cr3t-leaked"

// server is a middleware driver over an in-memory server, with switches
// that break one rule each.
type server struct {
	mu      sync.Mutex
	running bool
	// breakages
	noAlreadyDone bool
	leakSecret    bool
	ignoreCancel  bool
	hangOnCancel  bool
	looseSettings bool
}

func (s *server) check(settings map[string]any) error {
	for k := range settings {
		if k != "port" && !s.looseSettings {
			return drivers.BadSettingsf("settings: unknown field %q", k)
		}
	}
	return nil
}

func (s *server) CheckSettings(settings map[string]any) error { return s.check(settings) }

func (s *server) Start(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	if err := s.check(t.Component.Settings); err != nil {
		return drivers.Evidence{}, err
	}
	if t.Component.Name == "slow" {
		if s.hangOnCancel {
			time.Sleep(4 * time.Second)
			return drivers.Evidence{}, errors.New("too late")
		}
		<-ctx.Done()
		return drivers.Evidence{}, ctx.Err()
	}
	if err := ctx.Err(); err != nil && !s.ignoreCancel {
		return drivers.Evidence{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := drivers.Evidence{Action: "start"}
	if s.leakSecret {
		ev.Output = "password=" + leaked
	}
	if s.running {
		ev.AlreadyDone = !s.noAlreadyDone
		return ev, nil
	}
	s.running = true
	return ev, nil
}

func (s *server) Stop(ctx context.Context, t drivers.Target, mode drivers.StopMode) (drivers.Evidence, error) {
	if err := s.check(t.Component.Settings); err != nil {
		return drivers.Evidence{}, err
	}
	if mode != drivers.StopGraceful && mode != drivers.StopImmediate {
		return drivers.Evidence{}, drivers.BadSettingsf("unknown stop mode %q", mode)
	}
	if err := ctx.Err(); err != nil && !s.ignoreCancel {
		return drivers.Evidence{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := drivers.Evidence{Action: "stop"}
	if !s.running {
		ev.AlreadyDone = !s.noAlreadyDone
		return ev, nil
	}
	s.running = false
	return ev, nil
}

func (s *server) Status(ctx context.Context, t drivers.Target) (drivers.Status, error) {
	if err := s.check(t.Component.Settings); err != nil {
		return drivers.Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return drivers.Status{State: drivers.StateRunning}, nil
	}
	return drivers.Status{State: drivers.StateStopped}, nil
}

func middlewareCase(s *server) MiddlewareCase {
	tg := drivers.Target{Site: drivers.Site{Name: "dc1"}, Component: drivers.Component{Name: "srv", Settings: map[string]any{"port": 1}}}
	slow := tg
	slow.Component.Name = "slow"
	return MiddlewareCase{
		Driver: s, Target: tg, Slow: &slow, Secret: leaked, Prompt: 2 * time.Second,
		Bad: []BadSettings{{Name: "unknown field", Settings: map[string]any{"prot": 1}, Field: "prot"}},
	}
}

var broken = map[string]*server{
	"correct":       {},
	"noAlreadyDone": {noAlreadyDone: true},
	"leakSecret":    {leakSecret: true},
	"ignoreCancel":  {ignoreCancel: true},
	"hangOnCancel":  {hangOnCancel: true},
	"looseSettings": {looseSettings: true},
}

func TestBrokenMiddlewareHelper(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenMiddleware")
	}
	Middleware(t, middlewareCase(broken[name]))
}

func TestSuiteCatchesBrokenMiddleware(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	want := map[string]string{
		"correct":       "",
		"noAlreadyDone": "is not marked AlreadyDone",
		"leakSecret":    "carries the secret value",
		"ignoreCancel":  "with a cancelled context returned no error",
		"hangOnCancel":  "still running",
		"looseSettings": `accepted bad settings "unknown field"`,
	}
	for name, msg := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenMiddlewareHelper$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if msg == "" {
				if err != nil {
					t.Fatalf("the suite fails a correct driver: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passes a driver that breaks a rule (%s):\n%s", name, out)
			}
			if !strings.Contains(string(out), msg) {
				t.Fatalf("the suite failed %s but not with %q:\n%s", name, msg, out)
			}
		})
	}
}

// redirector points at one of two sites in memory.
type redirector struct {
	mu         sync.Mutex
	current    string
	anySite    bool // breakage: accepts a site the settings do not know
	wrongFirst bool // breakage: PointTo's first call goes nowhere
}

func (r *redirector) PointTo(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return drivers.Evidence{}, err
	}
	if _, ok := req.Settings["sites"].(map[string]bool)[req.Site.Name]; !ok && !r.anySite {
		return drivers.Evidence{}, drivers.BadSettingsf("sites: site %q is not listed", req.Site.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wrongFirst {
		r.wrongFirst = false
		return drivers.Evidence{}, nil
	}
	ev := drivers.Evidence{AlreadyDone: r.current == req.Site.Name, Output: fmt.Sprintf("was %s", r.current)}
	r.current = req.Site.Name
	return ev, nil
}

func (r *redirector) Current(ctx context.Context, req drivers.RedirectRequest) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current, nil
}

func TestBrokenRedirectHelper(t *testing.T) {
	name := os.Getenv(helperEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBrokenRedirect")
	}
	r := map[string]*redirector{"correct": {}, "anySite": {anySite: true}, "wrongFirst": {wrongFirst: true}}[name]
	Redirect(t, RedirectCase{
		Driver:  r,
		Request: drivers.RedirectRequest{Settings: map[string]any{"sites": map[string]bool{"dc1": true, "dc2": true}}},
		Sites:   [2]drivers.Site{{Name: "dc1"}, {Name: "dc2"}},
	})
}

func TestSuiteCatchesBrokenRedirect(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	for name, msg := range map[string]string{
		"correct":    "",
		"anySite":    `accepted bad settings "unknown site"`,
		"wrongFirst": `current site "", want "dc1"`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenRedirectHelper$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+name)
			out, err := cmd.CombinedOutput()
			switch {
			case msg == "" && err != nil:
				t.Fatalf("the suite fails a correct driver: %v\n%s", err, out)
			case msg != "" && err == nil:
				t.Fatalf("the suite passes a broken driver (%s):\n%s", name, out)
			case msg != "" && !strings.Contains(string(out), msg):
				t.Fatalf("the suite failed %s but not with %q:\n%s", name, msg, out)
			}
		})
	}
}
