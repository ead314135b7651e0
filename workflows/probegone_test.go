package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
)

// lookThreeTimes looks at a lost site three times, the last one after
// wait, and returns the looks' errors.
func lookThreeTimes(ctx workflow.Context, wait time.Duration) ([]string, error) {
	r, err := newRun(ctx, "test", "p")
	if err != nil {
		return nil, err
	}
	r.placed = true
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	where := contract.Placement{Site: "dc1"}
	var out []string
	for i := 0; i < 3; i++ {
		if i == 2 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
		err := r.look(ctx, where, contract.ReplicaFence, contract.ReplicaInput{Plan: "p"}).Get(ctx, nil)
		out = append(out, rootMessage(err))
	}
	return out, nil
}

// A site whose worker died is still listed as a poller for a while: each
// look would wait out probeStartTimeout. Once one look was not picked up,
// the run's next looks within probeGoneFor fail at once; after it, the site
// is asked again (it may be back).
func TestLostSiteIsNotWaitedForAtEveryLook(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wait        time.Duration
		wantStarted int
	}{
		{"within", time.Second, 1},
		{"after", probeGoneFor + time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflow(lookThreeTimes)
			env.RegisterActivityWithOptions(func(context.Context, contract.SiteWorkersInput) (contract.SiteWorkersResult, error) {
				return contract.SiteWorkersResult{Queue: "dc1", Workers: []string{"stale@dc1"}}, nil
			}, activity.RegisterOptions{Name: contract.SiteWorkers})
			started := 0
			env.RegisterActivityWithOptions(func(context.Context, contract.ReplicaInput) (contract.ReplicaResult, error) {
				started++
				return contract.ReplicaResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
			}, activity.RegisterOptions{Name: contract.ReplicaFence})
			env.ExecuteWorkflow(lookThreeTimes, tc.wait)
			require.NoError(t, env.GetWorkflowError())
			var errs []string
			require.NoError(t, env.GetWorkflowResult(&errs))
			require.Len(t, errs, 3)
			for _, e := range errs {
				require.Contains(t, e, "no worker at dc1 picked up a step")
			}
			require.Equal(t, tc.wantStarted, started, "looks that waited for dc1's worker")
		})
	}
}
