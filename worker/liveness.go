package worker

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// LivenessTimeout is the heartbeat timeout every activity runs with. The
// Temporal server learns that a worker died (SIGKILL, OOM, a lost host)
// only when an activity misses a heartbeat; without one it waits for the
// activity's start-to-close timeout — ten minutes for a stop, six hours for
// a capture — before another worker may retry it. With this, a dead
// worker's activities are retried within seconds. (The chaos suite in
// tests/chaos kills workers mid-activity and measures it.)
const LivenessTimeout = 15 * time.Second

// Liveness is the worker interceptor that gives every activity a heartbeat
// timeout of at most timeout, and heartbeats for every activity from the
// worker while it runs. A hung driver command is still bounded by its
// start-to-close timeout; only a dead worker misses heartbeats.
func Liveness(timeout time.Duration) interceptor.WorkerInterceptor {
	return &liveness{timeout: timeout}
}

type liveness struct {
	interceptor.WorkerInterceptorBase
	timeout time.Duration
}

func (l *liveness) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &livenessWorkflowIn{timeout: l.timeout}
	i.Next = next
	return i
}

func (l *liveness) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &livenessActivityIn{}
	i.Next = next
	return i
}

type livenessWorkflowIn struct {
	interceptor.WorkflowInboundInterceptorBase
	timeout time.Duration
}

func (w *livenessWorkflowIn) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &livenessWorkflowOut{timeout: w.timeout}
	o.Next = outbound
	return w.Next.Init(o)
}

type livenessWorkflowOut struct {
	interceptor.WorkflowOutboundInterceptorBase
	timeout time.Duration
}

// ExecuteActivity lowers the heartbeat timeout of an activity that has
// none or a longer one. It is a pure function of the options, so replay is
// unaffected; the server never compares activity options on replay.
func (o *livenessWorkflowOut) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	opts := workflow.GetActivityOptions(ctx)
	limit := opts.StartToCloseTimeout
	if limit <= 0 {
		limit = opts.ScheduleToCloseTimeout
	}
	if o.timeout > 0 && (opts.HeartbeatTimeout <= 0 || opts.HeartbeatTimeout > o.timeout) && (limit <= 0 || limit > o.timeout) {
		opts.HeartbeatTimeout = o.timeout
		ctx = workflow.WithActivityOptions(ctx, opts)
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

type livenessActivityIn struct {
	interceptor.ActivityInboundInterceptorBase
	out *livenessActivityOut
}

func (a *livenessActivityIn) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	a.out = &livenessActivityOut{}
	a.out.Next = outbound
	return a.Next.Init(a.out)
}

// ExecuteActivity heartbeats on the activity's behalf a few times per
// heartbeat timeout until it returns, repeating the activity's own last
// details (its progress) so they are not lost. The SDK batches heartbeats,
// so this adds no calls to the server beyond one per 0.8 timeout.
func (a *livenessActivityIn) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 {
		return a.Next.ExecuteActivity(ctx, in)
	}
	every := min(timeout/4, 3*time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a.out.Next.RecordHeartbeat(ctx, a.out.lastDetails()...)
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	return a.Next.ExecuteActivity(ctx, in)
}

type livenessActivityOut struct {
	interceptor.ActivityOutboundInterceptorBase
	mu      sync.Mutex
	details []any
}

// RecordHeartbeat remembers the activity's own details and passes them on.
func (o *livenessActivityOut) RecordHeartbeat(ctx context.Context, details ...any) {
	o.mu.Lock()
	o.details = details
	o.mu.Unlock()
	o.Next.RecordHeartbeat(ctx, details...)
}

func (o *livenessActivityOut) lastDetails() []any {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.details
}
