package metrics

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/contract"
)

// TemporalVisibility reads runs and gates from a Temporal namespace through
// the visibility API, using drover's search attributes (DroverPlan,
// DroverKind): the figures survive a worker restart because the server
// keeps them.
type TemporalVisibility struct {
	Client    client.Client
	Namespace string
	// Kinds are the run kinds counted; DefaultKinds when nil.
	Kinds []string
	// Freshness is how recently a worker must have polled to count: the
	// server lists a stopped worker's poller for minutes after it is gone.
	// DefaultFreshness when 0.
	Freshness time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// DefaultFreshness suits a server with the default long poll (a minute): an
// idle worker polls again within it.
const DefaultFreshness = 90 * time.Second

// NewTemporalVisibility reads through c in namespace.
func NewTemporalVisibility(c client.Client, namespace string) *TemporalVisibility {
	return &TemporalVisibility{Client: c, Namespace: namespace}
}

// DefaultKinds are the kinds of run drover starts.
var DefaultKinds = []string{
	contract.KindBringUp, contract.KindRestart, contract.KindVerify, contract.KindShutdown, contract.KindBackup,
	contract.KindValidate, contract.KindFailover, contract.KindFailback, contract.KindDrill, contract.KindMonitor,
}

// outcomeOf maps an execution status to the outcome label; running and
// continued-as-new runs are not closed runs and have none.
func outcomeOf(status string) string {
	switch status {
	case "Completed":
		return OutcomeCompleted
	case "Failed":
		return OutcomeFailed
	case "Canceled":
		return OutcomeCancelled
	case "Terminated":
		return OutcomeTerminated
	case "TimedOut":
		return OutcomeTimedOut
	}
	return ""
}

// quote makes a visibility-query string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// RunCounts counts per kind, grouped by execution status (one count query
// per kind).
func (v *TemporalVisibility) RunCounts(ctx context.Context, plan string) ([]RunCount, error) {
	kinds := v.Kinds
	if kinds == nil {
		kinds = DefaultKinds
	}
	var out []RunCount
	dc := converter.GetDefaultDataConverter()
	for _, kind := range kinds {
		q := fmt.Sprintf("%s = %s AND %s = %s GROUP BY ExecutionStatus",
			contract.SAPlan.GetName(), quote(plan), contract.SAKind.GetName(), quote(kind))
		resp, err := v.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: v.Namespace, Query: q})
		if err != nil {
			return nil, fmt.Errorf("count %s runs of %s: %w", kind, plan, err)
		}
		for _, g := range resp.GetGroups() {
			if len(g.GetGroupValues()) != 1 {
				continue
			}
			var status string
			if err := dc.FromPayload(g.GetGroupValues()[0], &status); err != nil {
				return nil, fmt.Errorf("count %s runs of %s: execution status: %w", kind, plan, err)
			}
			if o := outcomeOf(status); o != "" {
				out = append(out, RunCount{Kind: kind, Outcome: o, Count: g.GetCount()})
			}
		}
	}
	return out, nil
}

// gateStatus is the part of the status query's answer the collector reads.
type gateStatus struct {
	Gates []struct {
		Name   string    `json:"name"`
		Opened time.Time `json:"opened"`
		Closed time.Time `json:"closed"`
	} `json:"gates"`
}

// OpenGates lists the plan's running workflows and asks each for its
// status: a gate with an opening time and no closing time is waiting.
func (v *TemporalVisibility) OpenGates(ctx context.Context, plan string) ([]OpenGate, error) {
	q := fmt.Sprintf("%s = %s AND ExecutionStatus = 'Running'", contract.SAPlan.GetName(), quote(plan))
	var out []OpenGate
	var token []byte
	for {
		resp, err := v.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: v.Namespace, Query: q, NextPageToken: token, PageSize: 100})
		if err != nil {
			return nil, fmt.Errorf("list running workflows of %s: %w", plan, err)
		}
		for _, e := range resp.GetExecutions() {
			id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			val, err := v.Client.QueryWorkflow(ctx, id, run, contract.QueryStatus)
			if err != nil {
				return nil, fmt.Errorf("query status of %s: %w", id, err)
			}
			var st gateStatus
			if err := val.Get(&st); err != nil {
				return nil, fmt.Errorf("decode status of %s: %w", id, err)
			}
			for _, g := range st.Gates {
				if !g.Opened.IsZero() && g.Closed.IsZero() {
					out = append(out, OpenGate{Gate: g.Name, Since: g.Opened, WorkflowID: id})
				}
			}
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// Pollers counts the distinct workers that polled a queue for activities or
// workflow tasks within Freshness.
func (v *TemporalVisibility) Pollers(ctx context.Context, taskQueue string) (int, error) {
	freshness := cmp.Or(v.Freshness, DefaultFreshness)
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	seen := map[string]bool{}
	for _, kind := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_ACTIVITY, enumspb.TASK_QUEUE_TYPE_WORKFLOW} {
		resp, err := v.Client.DescribeTaskQueue(ctx, taskQueue, kind)
		if err != nil {
			return 0, fmt.Errorf("describe task queue %s: %w", taskQueue, err)
		}
		for _, p := range resp.GetPollers() {
			if last := p.GetLastAccessTime(); last != nil && now().Sub(last.AsTime()) <= freshness {
				seen[p.GetIdentity()] = true
			}
		}
	}
	return len(seen), nil
}
