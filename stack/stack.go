// Package stack is drover all in one process: an embedded Temporal server
// (with or without its Web UI, state in memory, SQLite or PostgreSQL), a
// client, and drover's worker for the orchestrator and any sites served
// here. `drover dev`, `drover demo` and the benchmarks run on it.
package stack

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

// The profiler label that says which part of the stack a goroutine belongs
// to.
const (
	PartLabel  = "drover.part"
	PartServer = "temporal-server"
	PartWorker = "worker"
)

// Options configure a stack.
type Options struct {
	IP     string
	Port   int
	UIPort int // -1: no Web UI
	DBFile string
	// Postgres, when set, keeps Temporal's state in PostgreSQL.
	Postgres *devserver.Postgres
	// CodecEndpoint is given to the Web UI to decode encrypted payloads.
	CodecEndpoint string
	Namespace     string
	// Sites are served by workers in this process too (a one-machine
	// stack); sites whose workers run as processes of their own (the lab's)
	// are left out.
	Sites []contract.Placement
	// Dial connects a client to the server's frontend address with the
	// caller's data converter, TLS and logger.
	Dial   func(address string) (client.Client, error)
	Logger *zap.Logger
	// Worker tuning and instrumentation (benchmarks); zero values keep
	// drover's defaults.
	Interceptors    []interceptor.WorkerInterceptor
	ActivityPollers int
	// Worker, when set, is called on the worker's options before it is
	// made: the benchmarks try other slot and poller settings through it.
	Worker func(*worker.Options)
}

// Stack is an embedded Temporal server, a client of it and drover's worker.
type Stack struct {
	Server *devserver.Server
	Client client.Client
	Worker *worker.Group
	log    *zap.Logger
}

// Start starts the server, dials it and starts the worker.
func Start(ctx context.Context, o Options) (*Stack, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// The server's goroutines (and those they start) carry the label
	// PartLabel=PartServer, the worker's PartWorker: a CPU profile of this
	// process tells them apart (drover bench fleet does).
	var srv *devserver.Server
	var err error
	pprof.Do(ctx, pprof.Labels(PartLabel, PartServer), func(ctx context.Context) {
		srv, err = devserver.Start(ctx, devserver.Options{
			IP: o.IP, Port: o.Port, UIPort: o.UIPort, DBFile: o.DBFile, Postgres: o.Postgres, CodecEndpoint: o.CodecEndpoint,
			Namespace:        o.Namespace,
			SearchAttributes: contract.SearchAttributes,
			Logger:           log.Named("temporal"),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded Temporal: %w", err)
	}
	s := &Stack{Server: srv, log: log}
	pprof.Do(ctx, pprof.Labels(PartLabel, PartWorker), func(context.Context) { err = s.startWorker(o) })
	if err != nil {
		s.Close()
		return nil, err
	}
	log.Info("drover stack up", zap.String("frontend", srv.FrontendAddress()), zap.String("ui", srv.UIURL()))
	return s, nil
}

func (s *Stack) startWorker(o Options) error {
	c, err := o.Dial(s.Server.FrontendAddress())
	if err != nil {
		return err
	}
	s.Client = c
	wo := worker.Options{Orchestrator: true, Sites: o.Sites, Registry: builtin.Registry(s.log), Logger: s.log,
		PollerFreshness: devserver.PollerFreshness, Interceptors: o.Interceptors, ActivityPollers: o.ActivityPollers}
	if o.Worker != nil {
		o.Worker(&wo)
	}
	w, err := worker.New(c, wo)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	s.Worker = w
	return nil
}

// Close stops the worker, the client and the server, in that order.
func (s *Stack) Close() {
	if s.Worker != nil {
		s.Worker.Stop()
	}
	if s.Client != nil {
		s.Client.Close()
	}
	if s.Server != nil {
		if err := s.Server.Stop(); err != nil {
			s.log.Warn("stop embedded Temporal", zap.Error(err))
		}
	}
}

// StartOptions are the options every drover run starts with: the
// orchestrator's queue and the search attributes that find the plan's runs.
func StartOptions(id, planName, kind string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             contract.OrchestratorQueue,
		TypedSearchAttributes: workflows.StartSearchAttributes(planName, kind),
	}
}

// RunWorkflow starts a workflow with drover's search attributes and waits
// for its result.
func RunWorkflow(ctx context.Context, c client.Client, id, planName, kind string, wf any, in any, out any) error {
	run, err := c.ExecuteWorkflow(ctx, StartOptions(id, planName, kind), wf, in)
	if err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return run.Get(ctx, out)
}

// StartMonitor starts the plan's RPO monitor unless it already runs.
func StartMonitor(ctx context.Context, c client.Client, p *plan.Plan) error {
	opts := StartOptions(contract.MonitorID(p.Name), p.Name, contract.KindMonitor)
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
	_, err := c.ExecuteWorkflow(ctx, opts, workflows.RPOMonitorWorkflow, workflows.MonitorInput{Plan: *p})
	return err
}

// WaitPolling waits until a worker polls queue.
func WaitPolling(ctx context.Context, c client.Client, queue string, within time.Duration) error {
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
