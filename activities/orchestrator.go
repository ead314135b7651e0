package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
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

// ScheduleControl pauses, resumes and re-targets a plan's backup schedule.
type ScheduleControl interface {
	// Change applies the change to the schedule id; found is false when
	// there is no such schedule.
	Change(ctx context.Context, id string, ch contract.ScheduleChange) (found bool, err error)
}

// TemporalSchedules changes schedules through Temporal's schedule API.
func TemporalSchedules(c client.Client) ScheduleControl { return temporalSchedules{c} }

type temporalSchedules struct{ c client.Client }

func (t temporalSchedules) Change(ctx context.Context, id string, ch contract.ScheduleChange) (bool, error) {
	h := t.c.ScheduleClient().GetHandle(ctx, id)
	if _, err := h.Describe(ctx); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	if ch.Backup != nil {
		// The schedule's backups are taken at the new site into the new
		// store: the fields of the backup input that say so are replaced,
		// the rest of the input (the plan) is kept as the schedule has it.
		err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			act, ok := in.Description.Schedule.Action.(*client.ScheduleWorkflowAction)
			if !ok || len(act.Args) != 1 {
				return nil, fmt.Errorf("schedule %s does not start one backup run", id)
			}
			var input map[string]any
			if err := decodeArg(act.Args[0], &input); err != nil {
				return nil, fmt.Errorf("schedule %s: backup input: %w", id, err)
			}
			input["site"] = ch.Backup.Site
			input["store"] = ch.Backup.Store
			input["storeAt"] = ch.Backup.StoreAt
			act.Args = []any{input}
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		}})
		if err != nil {
			return true, fmt.Errorf("update schedule %s: %w", id, err)
		}
	}
	if ch.Pause {
		return true, h.Pause(ctx, client.SchedulePauseOptions{Note: ch.Note})
	}
	return true, h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: ch.Note})
}

// decodeArg reads a schedule action argument as the server returns it.
func decodeArg(arg any, out any) error {
	p, ok := arg.(*commonpb.Payload)
	if !ok {
		data, err := json.Marshal(arg)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, out)
	}
	return converter.GetDefaultDataConverter().FromPayload(p, out)
}

// SetBackupSchedule pauses the plan's backup schedule while a failover or
// failback moves the cell, and afterwards resumes it taking backups where
// the cell now runs (seed 001's reprotect).
func (a *Activities) SetBackupSchedule(ctx context.Context, ch contract.ScheduleChange) (contract.ScheduleResult, error) {
	if a.Schedules == nil {
		return contract.ScheduleResult{}, temporal.NewNonRetryableApplicationError("this worker cannot change schedules (it is not the orchestrator)", contract.ErrTypeBadSettings, nil)
	}
	id := contract.BackupScheduleID(ch.Plan)
	found, err := a.Schedules.Change(ctx, id, ch)
	if err != nil {
		return contract.ScheduleResult{Found: found}, err
	}
	res := contract.ScheduleResult{Found: found, Paused: found && ch.Pause}
	coldNote, err := a.followCold(ctx, ch)
	if err != nil {
		return res, err
	}
	switch {
	case !found:
		res.Detail = "no backup schedule " + id + " (plan not applied)"
	case ch.Pause:
		res.Detail = "backups paused: " + ch.Note
	case ch.Backup != nil:
		res.Detail = fmt.Sprintf("backups resumed, taken at %s from now on: %s", ch.Backup.Site.Site.Name, ch.Note)
	default:
		res.Detail = "backups resumed: " + ch.Note
	}
	res.Detail += coldNote
	a.Logger.Info("backup schedule changed", zap.String("schedule", id), zap.String("detail", res.Detail))
	return res, nil
}

// followCold keeps the plan's cold backup schedule, which stops the cell
// at the primary, from running while a failover or failback moves it: it
// is paused with the backup schedule, and resumed with it only when the
// backups are taken at the primary again.
func (a *Activities) followCold(ctx context.Context, ch contract.ScheduleChange) (string, error) {
	id := contract.ColdScheduleID(ch.Plan)
	cold := contract.ScheduleChange{Plan: ch.Plan, Pause: ch.Pause, Note: ch.Note}
	if !ch.Pause && ch.Backup != nil && ch.Backup.Site.Role != plan.SitePrimary {
		cold.Pause, cold.Note = true, "the cell runs at "+ch.Backup.Site.Site.Name+", not at the primary: "+ch.Note
	}
	found, err := a.Schedules.Change(ctx, id, cold)
	switch {
	case err != nil:
		return "", fmt.Errorf("cold backup schedule %s: %w", id, err)
	case !found:
		return "", nil
	case cold.Pause:
		return "; cold backups paused", nil
	}
	return "; cold backups resumed", nil
}
