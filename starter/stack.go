package starter

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

// stackOptions configure the all-in-one stack of `drover dev` and `drover demo`.
type stackOptions struct {
	IP     string
	Port   int
	UIPort int
	DBFile string
	// Postgres, when set, keeps Temporal's state in PostgreSQL.
	Postgres *devserver.Postgres
}

// stack is an embedded Temporal server with its UI, a client, and a worker
// polling drover's task queue, all in this process.
type stack struct {
	server *devserver.Server
	client client.Client
	worker sdkworker.Worker
	log    *zap.Logger
}

func startStack(ctx context.Context, g *Globals, o stackOptions) (*stack, error) {
	log := g.Logger()
	srv, err := devserver.Start(ctx, devserver.Options{
		IP: o.IP, Port: o.Port, UIPort: o.UIPort, DBFile: o.DBFile, Postgres: o.Postgres,
		Namespace:        g.Namespace,
		SearchAttributes: workflows.SearchAttributes,
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
	w, err := worker.New(c, worker.Options{Registry: builtin.Registry(log), Logger: log})
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
