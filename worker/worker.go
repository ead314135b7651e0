// Package worker wires drover's Temporal workers for a role: the
// orchestrator (workflows and the activities that touch no site) or a site
// (every activity that acts at the site, on the site's own queue). One
// process may play several roles (drover dev, a one-machine install); each
// role polls its own queue, so a step still runs only where it was placed.
package worker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/workflows"
)

// Options configure a worker process.
type Options struct {
	// Orchestrator runs drover's workflows and the site-independent
	// activities on the orchestrator's queue.
	Orchestrator bool
	// Sites are the sites (or hosts of a site) this process acts at; each
	// polls its own queue.
	Sites    []contract.Placement
	Registry *drivers.Registry
	Logger   *zap.Logger
	// Interceptors are added to drover's own (benchmarks record with them).
	Interceptors []interceptor.WorkerInterceptor
	// ActivityPollers, when set, is the number of activity pollers per queue.
	ActivityPollers int
	// WorkflowPollers, when set, is the number of workflow task pollers of
	// the orchestrator's queue.
	WorkflowPollers int
	// MaxConcurrentActivities and MaxConcurrentWorkflowTasks, when set, are
	// the execution slots per queue (the SDK's defaults: 1000 each).
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	// NotifyDir keeps the record of notifications sent (default: the
	// user's cache folder).
	NotifyDir string
	// PollerFreshness is how recently a site's worker must have polled to
	// count as alive (activities.DefaultPollerFreshness when 0).
	PollerFreshness time.Duration
}

// Group is the SDK workers of one process, started and stopped together.
type Group struct {
	Workers []sdkworker.Worker
	// Identities are the workers' identities, as the history and the
	// report name them, by queue.
	Identities map[string]string
}

// Start starts every worker; on an error the ones started are stopped.
func (g *Group) Start() error {
	for i, w := range g.Workers {
		if err := w.Start(); err != nil {
			for _, started := range g.Workers[:i] {
				started.Stop()
			}
			return err
		}
	}
	return nil
}

// Stop stops every worker.
func (g *Group) Stop() {
	for _, w := range g.Workers {
		w.Stop()
	}
}

// Run starts the workers and blocks until stop is closed.
func (g *Group) Run(stop <-chan any) error {
	if err := g.Start(); err != nil {
		return err
	}
	<-stop
	g.Stop()
	return nil
}

// New returns the workers of one process. It does not start polling.
func New(c client.Client, opts Options) (*Group, error) {
	if opts.Registry == nil {
		return nil, fmt.Errorf("worker: no driver registry")
	}
	if !opts.Orchestrator && len(opts.Sites) == 0 {
		return nil, errors.New("worker: neither the orchestrator nor a site: give --site, or run without it for the orchestrator")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.NotifyDir == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			opts.NotifyDir = filepath.Join(dir, "drover", "notify")
		}
	}
	g := &Group{Identities: map[string]string{}}
	add := func(queue string, register func(w sdkworker.Worker, acts *activities.Activities), activitiesOnly bool) {
		o := SDKOptions()
		// A site's queue carries activities only: no workflow poller there.
		o.DisableWorkflowWorker = activitiesOnly
		o.Interceptors = append(o.Interceptors, opts.Interceptors...)
		o.Identity = Identity(queue)
		if opts.ActivityPollers > 0 {
			o.MaxConcurrentActivityTaskPollers = opts.ActivityPollers
		}
		if opts.WorkflowPollers > 0 {
			o.MaxConcurrentWorkflowTaskPollers = opts.WorkflowPollers
		}
		if opts.MaxConcurrentActivities > 0 {
			o.MaxConcurrentActivityExecutionSize = opts.MaxConcurrentActivities
		}
		if opts.MaxConcurrentWorkflowTasks > 0 {
			o.MaxConcurrentWorkflowTaskExecutionSize = opts.MaxConcurrentWorkflowTasks
		}
		w := sdkworker.New(c, queue, o)
		acts := activities.New(opts.Registry, opts.Logger.With(zap.String("queue", queue)))
		acts.Worker = o.Identity
		register(w, acts)
		g.Workers = append(g.Workers, w)
		g.Identities[queue] = o.Identity
	}
	if opts.Orchestrator {
		add(contract.OrchestratorQueue, func(w sdkworker.Worker, acts *activities.Activities) {
			acts.Workers = activities.TemporalWorkers(c, opts.PollerFreshness)
			acts.Schedules = activities.TemporalSchedules(c)
			acts.NotifyDir = opts.NotifyDir
			RegisterWorkflows(w)
			registerActivities(w, acts, contract.OrchestratorActivities)
		}, false)
	}
	seen := map[string]bool{}
	for _, s := range opts.Sites {
		queue := contract.Queue(s)
		if seen[queue] {
			continue
		}
		seen[queue] = true
		add(queue, func(w sdkworker.Worker, acts *activities.Activities) {
			registerActivities(w, acts, contract.SiteActivities)
		}, true)
	}
	return g, nil
}

// Identity names a worker of this process on queue: the SDK's default
// (pid@host) and the queue, so a step's worker says where it ran.
func Identity(queue string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s/%s", os.Getpid(), host, queue)
}

// EagerActivitiesPerTask is how many of the activities one workflow task
// schedules the worker asks to run eagerly: handed back in the reply to the
// task's completion instead of going through matching and a poll. It only
// applies to activities on the workflow's own queue (a one-queue install).
const EagerActivitiesPerTask = 128

// SDKOptions are the SDK worker options every drover worker uses: the
// liveness interceptor (a killed worker's activities time out on heartbeats)
// and eager dispatch.
func SDKOptions() sdkworker.Options {
	eager := EagerActivitiesPerTask
	return sdkworker.Options{
		Interceptors: []interceptor.WorkerInterceptor{Liveness(LivenessTimeout)},
		MaxEagerActivityReservationsPerWorkflowTask: &eager,
	}
}

// Registrar is what both a real worker and the test environment offer.
type Registrar interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
}

// RegisterWorkflows registers every workflow by its function name, so the
// names in history stay stable.
func RegisterWorkflows(r Registrar) {
	for _, wf := range All {
		r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{})
	}
}

// RegisterAll registers every workflow and activity on one queue: the test
// environment and benchmarks that run everything in one worker.
func RegisterAll(r Registrar, acts *activities.Activities) {
	RegisterWorkflows(r)
	registerActivities(r, acts, contract.OrchestratorActivities)
	registerActivities(r, acts, contract.SiteActivities)
}

// registerActivities registers the named methods of acts under their
// contract names. A name the struct lacks is a programming error, caught by
// the worker's tests.
func registerActivities(r Registrar, acts *activities.Activities, names []string) {
	v := reflect.ValueOf(acts)
	for _, name := range names {
		m := v.MethodByName(name)
		if !m.IsValid() {
			panic(fmt.Sprintf("activity %s in the contract has no method on activities.Activities", name))
		}
		r.RegisterActivityWithOptions(m.Interface(), activity.RegisterOptions{Name: name})
	}
}

// All lists drover's workflows.
var All = []interface{}{
	workflows.RestartWorkflow,
	workflows.VerifyWorkflow,
	workflows.BringUpWorkflow,
	workflows.ShutdownWorkflow,
	workflows.BackupWorkflow,
	workflows.ValidateWorkflow,
	workflows.DrillWorkflow,
	workflows.FailoverWorkflow,
	workflows.FailbackWorkflow,
	workflows.RPOMonitorWorkflow,
	workflows.ColdBackupWorkflow,
}
