package activities

import (
	"context"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/notify"
)

// Notify tells the plan's receivers of one event. A receiver that already
// had the event (this activity retried) is not told twice; one that refuses
// the request is not retried.
func (a *Activities) Notify(ctx context.Context, in contract.NotifyInput) (string, error) {
	s, err := notify.DecodeSettings(in.Settings)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("notify settings: %v", err), contract.ErrTypeBadSettings, err)
	}
	n := &notify.Notifier{Settings: s, Logger: a.Logger}
	if a.NotifyDir != "" {
		n.Record = notify.DirRecord{Dir: a.NotifyDir}
	}
	e := in.Event
	ds, err := n.Send(ctx, notify.Event{ID: e.ID, Type: notify.EventType(e.Type), At: e.At, Plan: e.Plan, Kind: e.Kind,
		WorkflowID: e.WorkflowID, RunID: e.RunID, Site: e.Site, Gate: e.Gate, Approvers: e.Approvers, Quorum: e.Quorum,
		Approved: e.Approved, Checklist: e.Checklist, ApproveCommand: e.ApproveCommand, Reminder: e.Reminder,
		RPOAge: e.RPOAge, RPOTarget: e.RPOTarget, Message: e.Message, Error: e.Error})
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Receiver+": "+d.Outcome)
	}
	summary := strings.Join(parts, ", ")
	if err != nil {
		if drivers.Permanent(err) {
			return summary, temporal.NewNonRetryableApplicationError(fmt.Sprintf("notify %s: %v", e.Type, err), contract.ErrTypeBadSettings, err)
		}
		return summary, fmt.Errorf("notify %s: %w", e.Type, err)
	}
	return summary, nil
}
