package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The front door is the cell's entry point for clients, outside every site
// (a global load balancer or DNS name): it sends new orders to the BPM app
// servers of the site it points at. Redirecting traffic to the secondary
// after a failover is one switch of its route.

type routeFile struct {
	Site      string    `json:"site"`
	ChangedAt time.Time `json:"changedAt"`
}

func (l *Lab) writeRoute(site string) error {
	data, _ := json.MarshalIndent(routeFile{Site: site, ChangedAt: time.Now().UTC()}, "", "  ")
	return writeFileAtomic(l.L.FrontDoorFile(), append(data, '\n'), 0o644)
}

func readRoute(l Layout) (string, error) {
	data, err := os.ReadFile(l.FrontDoorFile())
	if err != nil {
		return "", fmt.Errorf("front door route: %w", err)
	}
	var r routeFile
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("front door route %s: %w", l.FrontDoorFile(), err)
	}
	return r.Site, nil
}

// EnvMemberTimeout is how long the front door waits for a member's answer
// to an order before it checks the member's health (a Go duration, default
// 5s). Tests shrink it to outlast it quickly.
const EnvMemberTimeout = "DROVER_LAB_MEMBER_TIMEOUT"

type frontDoor struct {
	log  *zap.Logger
	lab  *Lab
	mu   sync.RWMutex
	site string
	next atomic.Uint64
	hc   *http.Client
	sent atomic.Int64
	fail atomic.Int64

	memberTimeout time.Duration
}

func runFrontDoor(ctx context.Context, log *zap.Logger, dir string) error {
	if dir == "" {
		return errors.New("--lab-dir is required")
	}
	l, err := Open(dir, log)
	if err != nil {
		return err
	}
	site, err := readRoute(l.L)
	if err != nil {
		return err
	}
	// Orders wait as long as their member is alive (see forward); the
	// client's own timeout bounds them.
	fd := &frontDoor{log: log, lab: l, site: site, hc: newHTTPClient(0),
		memberTimeout: envDuration(EnvMemberTimeout, 5*time.Second)}
	ln, err := net.Listen("tcp", l.Topo.FrontDoor.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", l.Topo.FrontDoor.Addr(), err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"state": StateRunning, "site": fd.route(), "pid": os.Getpid(),
			"sent": fd.sent.Load(), "failed": fd.fail.Load()})
	})
	mux.HandleFunc("GET /admin/route", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, routeFile{Site: fd.route()})
	})
	mux.HandleFunc("POST /admin/route", fd.handleRoute)
	mux.HandleFunc("POST /order", fd.handleOrder)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("front door open", zap.String("address", l.Topo.FrontDoor.Addr()), zap.String("site", site))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func (fd *frontDoor) route() string {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	return fd.site
}

func (fd *frontDoor) handleRoute(w http.ResponseWriter, r *http.Request) {
	var req routeFile
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	// An empty site drains the front door: no site takes new orders.
	if _, ok := fd.lab.Topo.Site(req.Site); !ok && req.Site != "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("no site %q in the lab", req.Site))
		return
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if err := fd.lab.writeRoute(req.Site); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	old := fd.site
	fd.site = req.Site
	fd.log.Info("route changed", zap.String("from", old), zap.String("to", req.Site))
	writeJSON(w, http.StatusOK, map[string]string{"site": req.Site, "previous": old})
}

// handleOrder forwards an order to a BPM app server of the routed site,
// round robin, trying the next member when one does not answer.
func (fd *frontDoor) handleOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	site := fd.route()
	if site == "" {
		fd.fail.Add(1)
		writeError(w, http.StatusServiceUnavailable, errors.New("front door drained: no site takes new orders"))
		return
	}
	spec, _ := fd.lab.Topo.Site(site)
	apps := fd.lab.Topo.ByRole(RoleApp, ProductBPM)
	start := int(fd.next.Add(1))
	var last error
	for i := range apps {
		app := apps[(start+i)%len(apps)]
		c := &client{hc: fd.hc, addr: net.JoinHostPort(spec.Host, strconv.Itoa(app.Port)), name: "app server " + app.Name, site: site}
		var resp OrderResponse
		err := fd.forward(r.Context(), c, req, &resp)
		if err == nil {
			fd.sent.Add(1)
			writeJSON(w, http.StatusOK, resp)
			return
		}
		last = err
		var he *httpError
		if errors.As(err, &he) && he.Status != http.StatusServiceUnavailable {
			break
		}
	}
	fd.fail.Add(1)
	writeError(w, http.StatusBadGateway, fmt.Errorf("site %s: no BPM app server took the order: %v", site, last))
}

// forward sends an order to one member and waits for its answer. A member
// that is slow but still answers its health check keeps the order, as a
// load balancer keeps a request on a healthy member: its database may hold
// writes for a backup's quiesce, and the order commits when the quiesce
// ends. Only a member that stops answering (hung, gone) loses the order to
// the next one; the order id makes that resend safe.
func (fd *frontDoor) forward(ctx context.Context, c *client, req orderRequest, resp *OrderResponse) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.call(ctx, "/order", req, resp) }()
	tick := time.NewTicker(fd.memberTimeout)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
			var h Health
			herr := c.call(hctx, "/health", nil, &h)
			hcancel()
			if herr != nil {
				cancel()
				<-done
				return fmt.Errorf("no answer to order %s within %s, and its health check failed: %w", req.Order, fd.memberTimeout, herr)
			}
		}
	}
}

// StartFrontDoor starts the front door if it is not running.
func (l *Lab) StartFrontDoor(ctx context.Context) error {
	if p, err := readPidFile(l.L.FrontDoorPid()); err == nil && p.life() == procAlive {
		return nil
	}
	p, offset, err := launch(l.L.FrontDoorPid(), l.L.FrontDoorLog(), "front door", "", []string{"--front-door", "--lab-dir", l.Dir})
	if err != nil {
		return err
	}
	ch, _ := exitedCmds.Load(p.PID)
	exited, _ := ch.(chan struct{})
	c := &client{hc: l.hc, addr: l.Topo.FrontDoor.Addr(), name: "front door"}
	for {
		select {
		case <-exited:
			_ = os.Remove(l.L.FrontDoorPid())
			return fmt.Errorf("start the front door: %s", startFailure(l.L.FrontDoorLog(), offset))
		default:
		}
		var h map[string]any
		if err := c.call(ctx, "/health", nil, &h); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start the front door: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (l *Lab) frontDoorStatus(ctx context.Context) FrontDoor {
	fd := FrontDoor{Address: l.Topo.FrontDoor.Addr(), State: StatusStopped}
	fd.Site, _ = readRoute(l.L)
	c := &client{hc: l.hc, addr: fd.Address, name: "front door"}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var h struct {
		State string `json:"state"`
		Site  string `json:"site"`
	}
	if err := c.call(cctx, "/health", nil, &h); err == nil {
		fd.State = h.State
		fd.Site = h.Site
	} else if p, perr := readPidFile(l.L.FrontDoorPid()); perr == nil && p.life() != procGone {
		fd.State = StatusUnresponsive
	}
	return fd
}

// Route points the front door at a site. When the front door is not
// running the route is stored for its next start.
func (l *Lab) Route(ctx context.Context, site string) (previous string, err error) {
	if _, ok := l.Topo.Site(site); !ok {
		return "", fmt.Errorf("no site %q in the lab", site)
	}
	previous, _ = readRoute(l.L)
	c := &client{hc: l.hc, addr: l.Topo.FrontDoor.Addr(), name: "front door"}
	var resp map[string]string
	if err := c.call(ctx, "/admin/route", routeFile{Site: site}, &resp); err != nil {
		if !errors.Is(err, ErrUnreachable) {
			return previous, err
		}
		return previous, l.writeRoute(site)
	}
	return previous, nil
}

// Drain stops new orders at the front door (they are refused, not sent to
// any site) while the work already in the cell goes on.
func (l *Lab) Drain(ctx context.Context) (previous string, err error) {
	previous, _ = readRoute(l.L)
	c := &client{hc: l.hc, addr: l.Topo.FrontDoor.Addr(), name: "front door"}
	var resp map[string]string
	if err := c.call(ctx, "/admin/route", routeFile{Site: ""}, &resp); err != nil {
		if !errors.Is(err, ErrUnreachable) {
			return previous, err
		}
		return previous, l.writeRoute("")
	}
	return previous, nil
}

// CurrentRoute is the site the front door points at ("" when drained).
func (l *Lab) CurrentRoute(ctx context.Context) (string, error) {
	c := &client{hc: l.hc, addr: l.Topo.FrontDoor.Addr(), name: "front door"}
	var r routeFile
	if err := c.call(ctx, "/admin/route", nil, &r); err == nil {
		return r.Site, nil
	}
	return readRoute(l.L)
}
