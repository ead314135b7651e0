package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

func TestMain(m *testing.M) { labtest.Main(m) }

func TestUpRunsAWorkloadAndDown(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	st, err := l.StatusAll(ctx)
	require.NoError(t, err)
	for _, s := range st.Sites[0].Servers {
		require.Equal(t, lab.StatusRunning, s.State, "%s: %s", s.Server, s.Detail)
	}
	rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 50, Duration: 2 * time.Second})
	require.NoError(t, err)
	t.Log(rep.String(), rep.Errors)
	require.Zero(t, rep.Failed)
	require.Eventually(t, func() bool {
		st, err := l.StatusAll(ctx)
		require.NoError(t, err)
		c := st.Sites[0].Counts
		t.Logf("%+v", c)
		return c != nil && c.Instances["OrderHandling/running"] == 0 && c.Messages["mon.events"] == 0
	}, 30*time.Second, 500*time.Millisecond)
}
