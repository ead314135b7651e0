package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// heartbeatTimeoutOf reports the heartbeat timeout the activity runs with,
// after blocking for wait (so the interceptor has time to heartbeat).
func heartbeatTimeoutOf(ctx context.Context, wait time.Duration) (time.Duration, error) {
	time.Sleep(wait)
	return activity.GetInfo(ctx).HeartbeatTimeout, nil
}

func livenessWorkflow(ctx workflow.Context, heartbeat time.Duration, wait time.Duration) (time.Duration, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Hour, HeartbeatTimeout: heartbeat})
	var got time.Duration
	err := workflow.ExecuteActivity(ctx, heartbeatTimeoutOf, wait).Get(ctx, &got)
	return got, err
}

func runLiveness(t *testing.T, timeout, heartbeat, wait time.Duration) (time.Duration, int64) {
	got, beats, err := tryLiveness(timeout, heartbeat, wait)
	require.NoError(t, err)
	return got, beats
}

func tryLiveness(timeout, heartbeat, wait time.Duration) (time.Duration, int64, error) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	if timeout > 0 {
		env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{Liveness(timeout)}})
	}
	env.RegisterWorkflow(livenessWorkflow)
	env.RegisterActivity(heartbeatTimeoutOf)
	var beats atomic.Int64
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { beats.Add(1) })
	env.ExecuteWorkflow(livenessWorkflow, heartbeat, wait)
	if err := env.GetWorkflowError(); err != nil {
		return 0, beats.Load(), err
	}
	var got time.Duration
	err := env.GetWorkflowResult(&got)
	return got, beats.Load(), err
}

func TestLivenessGivesEveryActivityAHeartbeatTimeout(t *testing.T) {
	got, _ := runLiveness(t, 15*time.Second, 0, 0)
	require.Equal(t, 15*time.Second, got, "an activity with no heartbeat timeout gets the liveness timeout")
	got, _ = runLiveness(t, 15*time.Second, 2*time.Minute, 0)
	require.Equal(t, 15*time.Second, got, "a longer heartbeat timeout is lowered")
	got, _ = runLiveness(t, 15*time.Second, 5*time.Second, 0)
	require.Equal(t, 5*time.Second, got, "a shorter heartbeat timeout is kept")
}

func TestLivenessHeartbeatsWhileTheActivityRuns(t *testing.T) {
	// A 400ms timeout: the interceptor beats every 100ms and the SDK sends
	// one at once and then one per 320ms batch.
	_, beats := runLiveness(t, 400*time.Millisecond, 0, time.Second)
	require.GreaterOrEqual(t, beats, int64(3), "heartbeats sent for an activity that never heartbeats itself")
	// Without the interceptor the same activity sends none and misses
	// its heartbeat timeout, as it would if its worker were dead.
	_, beats, err := tryLiveness(0, 400*time.Millisecond, time.Second)
	require.Zero(t, beats)
	require.ErrorContains(t, err, "heartbeat timeout")
}
