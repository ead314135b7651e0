package metrics

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// The Temporal reads are checked against the SDK's client mock: which
// visibility queries they send and how they read the answers.

func statusPayload(t *testing.T, s string) *commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(s)
	require.NoError(t, err)
	return p
}

func TestTemporalRunCounts(t *testing.T) {
	c := mocks.NewClient(t)
	v := &TemporalVisibility{Client: c, Namespace: "ns", Kinds: []string{"backup", "failover"}}
	group := func(status string, n int64) *workflowservice.CountWorkflowExecutionsResponse_AggregationGroup {
		return &workflowservice.CountWorkflowExecutionsResponse_AggregationGroup{GroupValues: []*commonpb.Payload{statusPayload(t, status)}, Count: n}
	}
	c.On("CountWorkflow", mock.Anything, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "ns",
		Query: "DroverPlan = 'b\\'pm' AND DroverKind = 'backup' GROUP BY ExecutionStatus"}).
		Return(&workflowservice.CountWorkflowExecutionsResponse{Groups: []*workflowservice.CountWorkflowExecutionsResponse_AggregationGroup{
			group("Completed", 7), group("Failed", 2), group("Running", 1), group("TimedOut", 1),
		}}, nil)
	c.On("CountWorkflow", mock.Anything, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "ns",
		Query: "DroverPlan = 'b\\'pm' AND DroverKind = 'failover' GROUP BY ExecutionStatus"}).
		Return(&workflowservice.CountWorkflowExecutionsResponse{Groups: []*workflowservice.CountWorkflowExecutionsResponse_AggregationGroup{
			group("Canceled", 1), group("Terminated", 3),
		}}, nil)
	got, err := v.RunCounts(context.Background(), "b'pm")
	require.NoError(t, err)
	assert.Equal(t, []RunCount{
		{Kind: "backup", Outcome: OutcomeCompleted, Count: 7}, {Kind: "backup", Outcome: OutcomeFailed, Count: 2},
		{Kind: "backup", Outcome: OutcomeTimedOut, Count: 1},
		{Kind: "failover", Outcome: OutcomeCancelled, Count: 1}, {Kind: "failover", Outcome: OutcomeTerminated, Count: 3},
	}, got, "running runs are not closed runs")
}

func TestTemporalOpenGates(t *testing.T) {
	c := mocks.NewClient(t)
	v := NewTemporalVisibility(c, "ns")
	exec := func(id string) *workflowpb.WorkflowExecutionInfo {
		return &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: id + "-run"}}
	}
	c.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.Query == "DroverPlan = 'bpm' AND ExecutionStatus = 'Running'" && len(r.NextPageToken) == 0
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{exec("fo-1")}, NextPageToken: []byte("p2")}, nil)
	c.On("ListWorkflow", mock.Anything, mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return string(r.NextPageToken) == "p2"
	})).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{exec("bk-1")}}, nil)
	opened := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	answer := func(status string) *mocks.Value {
		val := mocks.NewEncodedValue(t)
		val.On("Get", mock.Anything).Run(func(args mock.Arguments) {
			require.NoError(t, json.Unmarshal([]byte(status), args.Get(0)))
		}).Return(nil)
		return val
	}
	c.On("QueryWorkflow", mock.Anything, "fo-1", "fo-1-run", "status").Return(answer(`{"kind":"failover","gates":[
		{"name":"accept-data-loss","opened":"2026-03-02T09:00:00Z","closed":"2026-03-02T09:05:00Z"},
		{"name":"start-secondary","opened":"`+opened.Format(time.RFC3339)+`"}]}`), nil)
	c.On("QueryWorkflow", mock.Anything, "bk-1", "bk-1-run", "status").Return(answer(`{"kind":"backup"}`), nil)
	got, err := v.OpenGates(context.Background(), "bpm")
	require.NoError(t, err)
	assert.Equal(t, []OpenGate{{Gate: "start-secondary", Since: opened, WorkflowID: "fo-1"}}, got)
}

func TestTemporalPollers(t *testing.T) {
	c := mocks.NewClient(t)
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	v := NewTemporalVisibility(c, "ns")
	v.Now = func() time.Time { return now }
	v.Freshness = 30 * time.Second
	// ago is how long before now each worker last polled.
	pollers := func(ago map[string]time.Duration) *workflowservice.DescribeTaskQueueResponse {
		r := &workflowservice.DescribeTaskQueueResponse{}
		for id, d := range ago {
			r.Pollers = append(r.Pollers, &taskqueuepb.PollerInfo{Identity: id, LastAccessTime: timestamppb.New(now.Add(-d))})
		}
		return r
	}
	// w3 stopped two minutes ago: the server still lists it, it is not counted.
	c.On("DescribeTaskQueue", mock.Anything, "drover-dc1", enumspb.TASK_QUEUE_TYPE_ACTIVITY).Return(pollers(map[string]time.Duration{
		"w1@dc1": time.Second, "w2@dc1": 20 * time.Second, "w3@dc1": 2 * time.Minute}), nil)
	c.On("DescribeTaskQueue", mock.Anything, "drover-dc1", enumspb.TASK_QUEUE_TYPE_WORKFLOW).Return(pollers(map[string]time.Duration{"w1@dc1": 0}), nil)
	n, err := v.Pollers(context.Background(), "drover-dc1")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "distinct workers that polled lately")
}
