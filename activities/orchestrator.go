package activities

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/drover-dr/drover/contract"
)

// DefaultPollerFreshness is how recently a worker must have polled a queue
// to count as alive, on a server with the default long poll: an idle
// worker's poll lasts about a minute before it polls again, so a shorter
// window would miss live workers. A worker that died since is caught by the
// step's schedule-to-start timeout instead. Servers with a shorter long
// poll allow a shorter window.
const DefaultPollerFreshness = 90 * time.Second

// WorkerLister says which workers recently polled a task queue for
// activities.
type WorkerLister interface {
	Workers(ctx context.Context, queue string) ([]string, error)
}

// TemporalWorkers lists a queue's workers from Temporal's DescribeTaskQueue:
// those that polled within freshness (DefaultPollerFreshness when 0).
func TemporalWorkers(c client.Client, freshness time.Duration) WorkerLister {
	if freshness <= 0 {
		freshness = DefaultPollerFreshness
	}
	return temporalWorkers{c, freshness}
}

type temporalWorkers struct {
	c         client.Client
	freshness time.Duration
}

func (t temporalWorkers) Workers(ctx context.Context, queue string) ([]string, error) {
	resp, err := t.c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range resp.GetPollers() {
		if seen := p.GetLastAccessTime(); seen != nil && time.Since(seen.AsTime()) <= t.freshness {
			out = append(out, p.GetIdentity())
		}
	}
	return out, nil
}

// SiteWorkers says which workers poll the queue a step placed at the site
// would go to. It runs on the orchestrator: a site whose workers are gone
// cannot answer for itself.
func (a *Activities) SiteWorkers(ctx context.Context, in contract.SiteWorkersInput) (contract.SiteWorkersResult, error) {
	queue := contract.Queue(in.Placement)
	res := contract.SiteWorkersResult{Queue: queue}
	if a.Workers == nil {
		return res, temporal.NewNonRetryableApplicationError("this worker cannot list task queue pollers (it is not the orchestrator)", contract.ErrTypeBadSettings, nil)
	}
	workers, err := a.Workers.Workers(ctx, queue)
	if err != nil {
		return res, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	res.Workers = workers
	return res, nil
}
