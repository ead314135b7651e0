package lab_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

// dbCommits is the database server's commit counter.
func dbCommits(t *testing.T, l *lab.Lab) int64 {
	t.Helper()
	st, err := l.Status(context.Background(), "dc1", "db")
	require.NoError(t, err)
	require.NotNil(t, st.Health, "%s: %s", st.State, st.Detail)
	n, ok := st.Health.Detail["commits"]
	require.True(t, ok, "db health has no commit count: %v", st.Health.Detail)
	v, err := strconv.ParseInt(fmt.Sprint(n), 10, 64)
	require.NoError(t, err, "commit count %v", n)
	return v
}

// A write quiesce longer than every client timeout in the cell blocks the
// writers and fails none: orders wait at their member, transactions wait
// at the database, nothing is decided heuristically or dead-lettered, and
// after the resume the cell completes every order once. The timeouts are
// shrunk (the front door's member timeout, the servers' database request
// timeout) so short quiesces outlast them: one between the two, one longer
// than both.
func TestQuiesceLongerThanTheTimeoutsUnderLoadFailsNoWriter(t *testing.T) {
	t.Setenv(lab.EnvMemberTimeout, "300ms")
	t.Setenv(lab.EnvDBTimeout, "1200ms")
	l := labtest.Up(t)
	ctx := context.Background()
	done := make(chan lab.LoadReport)
	go func() {
		rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 30, Duration: 6 * time.Second, Concurrency: 64})
		assert.NoError(t, err)
		done <- rep
	}()
	quiesce := func(hold time.Duration) {
		t.Helper()
		_, err := l.Quiesce(ctx, "dc1", "db", time.Minute)
		require.NoError(t, err)
		before := dbCommits(t, l)
		time.Sleep(hold)
		require.Equal(t, before, dbCommits(t, l), "a write committed while the database was quiesced")
		_, err = l.Resume(ctx, "dc1", "db")
		require.NoError(t, err)
	}
	time.Sleep(time.Second)
	quiesce(time.Second)
	time.Sleep(500 * time.Millisecond)
	quiesce(2500 * time.Millisecond)
	rep := <-done
	t.Log(rep.String())
	require.Zero(t, rep.Failed, "a quiesce made writers fail: %v", rep.Errors)
	require.Positive(t, rep.Accepted)
	waitQuiet(t, l, "dc1")

	requireOrdersCompletedOnce(t, l, "dc1", rep.Orders)
	lr, err := lab.CheckLedger(l.Dir, "dc1", time.Now())
	require.NoError(t, err)
	require.True(t, lr.OK(), lr.String())
	t.Log(lr.String())
	// The instance level counts heuristic outcomes, dead letters and
	// transactions left in doubt.
	requireLevels(t, l, "dc1", lab.LevelInstance, lab.LevelConsistency)
}
