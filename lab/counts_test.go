package lab_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab/labtest"
)

// TestCountsSeeOnlyRealStartsAndStops: a start of a running server and a
// stop of a stopped one leave the counts alone; real ones add one each.
func TestCountsSeeOnlyRealStartsAndStops(t *testing.T) {
	l := labtest.Up(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := l.Counts()
	require.NoError(t, err)
	for _, s := range l.Topo.Servers {
		c := before["dc1"][s.Name]
		require.Equal(t, 1, c.Launches, s.Name)
		require.Equal(t, 1, c.Ready, s.Name)
		require.Zero(t, c.GracefulStops, s.Name)
		require.Zero(t, before["dc2"][s.Name].Launches, s.Name)
	}
	require.Len(t, l.Running("dc1"), len(l.Topo.Servers))

	app := "bpm-app1"
	res, err := l.Start(ctx, "dc1", app)
	require.NoError(t, err)
	require.True(t, res.AlreadyRunning)
	_, err = l.Stop(ctx, "dc1", app, false)
	require.NoError(t, err)
	stop, err := l.Stop(ctx, "dc1", app, false)
	require.NoError(t, err)
	require.True(t, stop.AlreadyStopped)
	require.NotContains(t, l.Running("dc1"), app)

	after, err := l.Counts()
	require.NoError(t, err)
	require.Equal(t, 1, after["dc1"][app].Launches, "a start of a running server launches nothing")
	require.Equal(t, 1, after["dc1"][app].GracefulStops, "a stop of a stopped server signals nothing")

	_, err = l.Start(ctx, "dc1", app)
	require.NoError(t, err)
	after, err = l.Counts()
	require.NoError(t, err)
	require.Equal(t, 2, after["dc1"][app].Launches)
	require.Equal(t, 2, after["dc1"][app].Ready)
}
