package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// Event types people are told of (the plan's notify receivers).
const (
	eventGateOpened   = "gate.opened"
	eventGateReminder = "gate.reminder"
	eventGateClosed   = "gate.closed"
	eventRunStarted   = "run.started"
	eventRunCompleted = "run.completed"
	eventRunFailed    = "run.failed"
	eventRPOBreached  = "rpo.breached"
	eventRPORecovered = "rpo.recovered"
)

// tell sends one event to the plan's receivers through the orchestrator.
// It never fails the run: people not told is a warning in the log, the run
// goes on. wait says whether the run waits for the sending (the end of a
// run must not outlive its last word).
func (r *run) tell(ctx workflow.Context, ev contract.NotifyEvent, wait bool) {
	if !r.safe || len(r.notifyTo) == 0 {
		return
	}
	info := workflow.GetInfo(ctx)
	ev.At = workflow.Now(ctx)
	ev.Plan, ev.Kind = r.status.Plan, r.status.Kind
	ev.WorkflowID, ev.RunID = info.WorkflowExecution.ID, info.WorkflowExecution.RunID
	ev.ID = strings.Join([]string{ev.WorkflowID, ev.RunID, ev.Type, ev.ID}, "/")
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           contract.OrchestratorQueue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{contract.ErrTypeBadSettings}},
	})
	f := workflow.ExecuteActivity(actx, contract.Notify, contract.NotifyInput{Settings: r.notifyTo, Event: ev})
	get := func(ctx workflow.Context) {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("people were not told", "event", ev.Type, "error", err)
		}
	}
	if wait {
		get(ctx)
		return
	}
	workflow.Go(ctx, get)
}

// gateEvent describes a gate for people: who may decide, how, and what to
// check first.
func (g *gateKeeper) gateEvent(ctx workflow.Context, typ string, i int) contract.NotifyEvent {
	rec := g.r.status.Gates[i]
	var approved []string
	for _, a := range rec.Approvals {
		approved = append(approved, a.Approver+": "+a.Decision)
	}
	return contract.NotifyEvent{Type: typ, ID: fmt.Sprintf("%s/%d/%d", rec.Name, i, rec.Reminders), Gate: rec.Name,
		Approvers: rec.Approvers, Quorum: rec.Quorum, Approved: approved, Checklist: rec.Checklist, Reminder: rec.Reminders,
		ApproveCommand: fmt.Sprintf("drover approve %s --gate %s --as NAME --decision %s", workflow.GetInfo(ctx).WorkflowExecution.ID, rec.Name, rec.Options[0]),
		Message:        rec.Detail}
}

// notifyWith says whom this run tells.
func (r *run) notifyWith(p *plan.Plan) { r.notifyTo = p.Notify }
