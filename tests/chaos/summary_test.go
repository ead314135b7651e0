package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/drover-dr/drover/lab"
)

// summary is the tally the suite prints at the end.
type summary struct {
	mu sync.Mutex
	// Faults counts faults injected, by kind.
	Faults map[string]int
	// FaultLog is every fault with where it hit, in order.
	FaultLog      []string
	RunsStarted   int
	RunsCompleted int
	// RunsFailedClearly are runs that were meant to fail (a corrupt point,
	// a full store) and failed with the message the test expected.
	RunsFailedClearly int
	// Activities and Reexecuted come from the histories: activity
	// executions, and those that needed more than one attempt.
	Activities         int
	Reexecuted         int
	ActivityTimeouts   int
	WorkflowTaskRetrys int
	// LedgerChecks, StepsLost and StepsDuplicated come from lab ledger
	// checks after every switchover.
	LedgerChecks    int
	StepsLost       int
	StepsDuplicated int
	// PointsChecked and PointsDuplicated compare the catalog with the
	// backup runs.
	PointsChecked    int
	PointsDuplicated int
	// ExtraStarts and ExtraStops are server launches and graceful stops
	// beyond what the runbooks asked for.
	ExpectedStarts, ExtraStarts int
	ExpectedStops, ExtraStops   int
	// Scenarios are the subtests' one-line outcomes.
	Scenarios []string
}

func newSummary() *summary { return &summary{Faults: map[string]int{}} }

func (s *summary) add(fn func(*summary)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *summary) fault(kind, where string) {
	s.add(func(s *summary) {
		s.Faults[kind]++
		s.FaultLog = append(s.FaultLog, fmt.Sprintf("%s %s: %s", time.Now().Format("15:04:05.000"), kind, where))
	})
}

func (s *summary) scenario(format string, args ...any) {
	s.add(func(s *summary) { s.Scenarios = append(s.Scenarios, fmt.Sprintf(format, args...)) })
}

func (s *summary) totalFaults() int {
	n := 0
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// String is the summary as printed.
func (s *summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	kinds := make([]string, 0, len(s.Faults))
	for k := range s.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var fk []string
	for _, k := range kinds {
		fk = append(fk, fmt.Sprintf("%s %d", k, s.Faults[k]))
	}
	fmt.Fprintf(&b, "faults injected:     %d (%s)\n", s.totalFaults(), strings.Join(fk, ", "))
	fmt.Fprintf(&b, "runs completed:      %d of %d started; %d more failed as they had to (bad data, no room), with a clear message\n",
		s.RunsCompleted, s.RunsStarted, s.RunsFailedClearly)
	fmt.Fprintf(&b, "steps re-executed:   %d of %d activity executions took more than one attempt (%d activity timeouts, %d workflow task retries)\n",
		s.Reexecuted, s.Activities, s.ActivityTimeouts, s.WorkflowTaskRetrys)
	fmt.Fprintf(&b, "data lost:           %d steps (%d ledger checks)\n", s.StepsLost, s.LedgerChecks)
	fmt.Fprintf(&b, "duplicates:          %d steps, %d recovery points (%d checked), %d server starts beyond %d expected, %d stops beyond %d expected\n",
		s.StepsDuplicated, s.PointsDuplicated, s.PointsChecked, s.ExtraStarts, s.ExpectedStarts, s.ExtraStops, s.ExpectedStops)
	for _, sc := range s.Scenarios {
		fmt.Fprintf(&b, "  %s\n", sc)
	}
	return b.String()
}

// execution is one workflow execution as visibility lists it.
type execution struct {
	id, runID, typ string
	closed         bool
	start          time.Time
}

func (h *harness) listExecutions(ctx context.Context, query string) ([]execution, error) {
	var out []execution
	var token []byte
	for {
		resp, err := h.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: query, NextPageToken: token, PageSize: 1000,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, execution{
				id: e.GetExecution().GetWorkflowId(), runID: e.GetExecution().GetRunId(), typ: e.GetType().GetName(),
				closed: e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, start: e.GetStartTime().AsTime(),
			})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// history returns one execution's events.
func (h *harness) history(ctx context.Context, id, runID string) ([]*historypb.HistoryEvent, error) {
	it := h.c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// countHistories adds every closed execution not counted yet to the
// summary: activity executions, those that took more than one attempt,
// activity timeouts, and workflow tasks that had to be redone (a worker
// that died holding one). Call it before the Temporal database is lost.
func (h *harness) countHistories(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	execs, err := h.listExecutions(ctx, "")
	require.NoError(t, err)
	for _, e := range execs {
		key := e.id + "/" + e.runID
		if !e.closed || h.counted[key] {
			continue
		}
		events, err := h.history(ctx, e.id, e.runID)
		require.NoError(t, err, "history of %s", e.id)
		h.counted[key] = true
		var acts, again, timeouts, wft int
		for _, ev := range events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				acts++
				if ev.GetActivityTaskStartedEventAttributes().GetAttempt() > 1 {
					again++
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
				timeouts++
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				wft++
			}
		}
		h.sum.add(func(s *summary) {
			s.Activities += acts
			s.Reexecuted += again
			s.ActivityTimeouts += timeouts
			s.WorkflowTaskRetrys += wft
		})
	}
}

// counts reads the lab's start and stop counts.
func (h *harness) counts(t *testing.T) map[string]map[string]lab.ServerCounts {
	c, err := h.lab.Counts()
	require.NoError(t, err)
	return c
}

// expectCounts compares what a run did to every server with what its
// runbook asked for: starts and graceful stops per site, each exactly once,
// and no start refused.
func (h *harness) expectCounts(t *testing.T, run string, before, after map[string]map[string]lab.ServerCounts, starts, stops map[string]int) {
	var problems []string
	for _, site := range h.lab.Topo.SiteNames() {
		for _, s := range h.lab.Topo.Servers {
			b, a := before[site][s.Name], after[site][s.Name]
			launched, stopped, refused := a.Launches-b.Launches, a.GracefulStops-b.GracefulStops, a.Refused-b.Refused
			h.sum.add(func(sum *summary) {
				sum.ExpectedStarts += starts[site]
				sum.ExpectedStops += stops[site]
				sum.ExtraStarts += max(launched-starts[site], 0)
				sum.ExtraStops += max(stopped-stops[site], 0)
			})
			if launched != starts[site] {
				problems = append(problems, fmt.Sprintf("%s at %s: %d launches, want %d", s.Name, site, launched, starts[site]))
			}
			if stopped != stops[site] {
				problems = append(problems, fmt.Sprintf("%s at %s: %d graceful stops, want %d", s.Name, site, stopped, stops[site]))
			}
			if refused > 0 {
				problems = append(problems, fmt.Sprintf("%s at %s: %d starts refused", s.Name, site, refused))
			}
		}
	}
	require.Empty(t, problems, "%s: each start and stop must take effect exactly once", run)
}

// checkLedger checks a site's data against the ledger and adds the result to
// the summary; any step lost or duplicated fails the test.
func (h *harness) checkLedger(t *testing.T, what, site string, instant time.Time, lost ...lab.LostWindow) lab.LedgerReport {
	rep, err := lab.CheckLedgerExcept(h.labDir, site, instant, lost...)
	require.NoError(t, err)
	h.sum.add(func(s *summary) {
		s.LedgerChecks++
		s.StepsLost += rep.MissingCount
		s.StepsDuplicated += rep.DuplicateCount
	})
	t.Logf("ledger after %s: %s", what, rep.String())
	require.Zero(t, rep.MissingCount, "%s: steps committed before %s missing at %s: %v", what, instant.Format(time.RFC3339Nano), site, rep.Missing)
	require.Zero(t, rep.DuplicateCount, "%s: work duplicated at %s: %v", what, site, rep.Duplicates)
	require.Positive(t, rep.Expected, "%s: the ledger check expected no step at all: the workload did not run", what)
	return rep
}
