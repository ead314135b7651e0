// Package worker wires a Temporal worker: it registers drover's workflows and
// activities, and hands the SDK the same zap logger everything else uses.
package worker

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/workflows"
)

// Options configure a worker.
type Options struct {
	TaskQueue string
	Registry  *drivers.Registry
	Logger    *zap.Logger
}

// New returns a worker with every drover workflow and activity registered.
// It does not start polling; call Run or Start.
func New(c client.Client, opts Options) (sdkworker.Worker, error) {
	if opts.Registry == nil {
		return nil, fmt.Errorf("worker: no driver registry")
	}
	if opts.TaskQueue == "" {
		opts.TaskQueue = workflows.TaskQueue
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	w := sdkworker.New(c, opts.TaskQueue, SDKOptions())
	Register(w, activities.New(opts.Registry, opts.Logger))
	return w, nil
}

// EagerActivitiesPerTask is how many of the activities one workflow task
// schedules the worker asks to run eagerly: handed back in the reply to the
// task's completion instead of going through matching and a poll. A restart
// tier schedules all its members in one task; with the SDK's default of 3
// the rest of a 32-member tier waited for the pollers, one round trip each,
// and the tier's last member started hundreds of milliseconds after its
// first (drover bench rto). A tier larger than this still works: the rest
// go through matching.
const EagerActivitiesPerTask = 128

// SDKOptions are the SDK worker options every drover worker uses: the
// liveness interceptor (a killed worker's activities time out on heartbeats)
// and eager dispatch of a tier's members.
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
	RegisterActivity(a interface{})
}

// Register registers every workflow by its function name and the activities
// struct's methods by theirs, so the names in history stay stable.
func Register(r Registrar, acts *activities.Activities) {
	for _, wf := range All {
		r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{})
	}
	r.RegisterActivity(acts)
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
}
