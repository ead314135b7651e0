package starter

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/worker"
)

// stackOptions configure the all-in-one stack of `drover dev` and `drover demo`.
type stackOptions struct {
	IP     string
	Port   int
	UIPort int
	DBFile string
	// Sites are served by workers in this process too (a one-machine
	// stack); sites whose workers run as processes of their own (the lab's)
	// are left out.
	Sites []contract.Placement
	// Postgres, when set, keeps Temporal's state in PostgreSQL.
	Postgres *devserver.Postgres
	// CodecEndpoint is given to the Web UI to decode encrypted payloads.
	CodecEndpoint string
}

// stack is an embedded Temporal server with its UI, a client, and the
// orchestrator (and any in-process site workers), all in this process.
type stack struct {
	server *devserver.Server
	client client.Client
	worker *worker.Group
	log    *zap.Logger
}

func startStack(ctx context.Context, g *Globals, o stackOptions) (*stack, error) {
	log := g.Logger()
	srv, err := devserver.Start(ctx, devserver.Options{
		IP: o.IP, Port: o.Port, UIPort: o.UIPort, DBFile: o.DBFile, Postgres: o.Postgres, CodecEndpoint: o.CodecEndpoint,
		Namespace:        g.Namespace,
		SearchAttributes: contract.SearchAttributes,
		Logger:           log.Named("temporal"),
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded Temporal: %w", err)
	}
	s := &stack{server: srv, log: log}
	g.Address = srv.FrontendAddress()
	c, err := g.Dial()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.client = c
	w, err := worker.New(c, worker.Options{Orchestrator: true, Sites: o.Sites, Registry: builtin.Registry(log), Logger: log,
		PollerFreshness: devserver.PollerFreshness})
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := w.Start(); err != nil {
		s.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	s.worker = w
	log.Info("drover stack up", zap.String("frontend", srv.FrontendAddress()), zap.String("ui", srv.UIURL()))
	return s, nil
}

// Close stops the worker, the client and the server, in that order.
func (s *stack) Close() {
	if s.worker != nil {
		s.worker.Stop()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.server != nil {
		if err := s.server.Stop(); err != nil {
			s.log.Warn("stop embedded Temporal", zap.Error(err))
		}
	}
}

// startSiteWorkers starts one drover worker process per lab site, each
// placed at its site like a real site's worker (the lab kills it with the
// site in a disaster), and waits until each polls its queue, so a run
// started next finds them.
func startSiteWorkers(ctx context.Context, g *Globals, c client.Client, l *lab.Lab) error {
	for _, site := range l.Topo.SiteNames() {
		argv, err := siteWorkerArgv(g, site)
		if err != nil {
			return err
		}
		if _, err := l.StartWorker(site, argv); err != nil {
			return err
		}
	}
	for _, site := range l.Topo.SiteNames() {
		if err := waitPolling(ctx, c, contract.SiteQueue(site), 30*time.Second); err != nil {
			return fmt.Errorf("the worker of site %s (log %s): %w", site, l.L.WorkerLog(site), err)
		}
	}
	return nil
}

// waitPolling waits until a worker polls queue.
func waitPolling(ctx context.Context, c client.Client, queue string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err == nil && len(resp.GetPollers()) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no worker polls %s after %s", queue, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
