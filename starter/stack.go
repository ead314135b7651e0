package starter

import (
	"context"
	"fmt"

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
		IP: o.IP, Port: o.Port, UIPort: o.UIPort, DBFile: o.DBFile,
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

// startSiteWorkers starts one drover worker process per lab site, each
// placed at its site like a real site's worker: the lab kills it with the
// site in a disaster.
func startSiteWorkers(g *Globals, l *lab.Lab) error {
	for _, site := range l.Topo.SiteNames() {
		argv, err := siteWorkerArgv(g, site)
		if err != nil {
			return err
		}
		if _, err := l.StartWorker(site, argv); err != nil {
			return err
		}
	}
	return nil
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
