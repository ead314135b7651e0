package starter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/plan"
)

func TestBackupIntervalFollowsTheRPOMinusBackupTime(t *testing.T) {
	p := &plan.Plan{RPO: plan.Duration(15 * time.Minute)}

	got, why, err := backupInterval(p, activities.StatsResult{})
	require.NoError(t, err)
	require.Equal(t, 11*time.Minute+15*time.Second, got, "a quarter of the RPO kept back before any backup is measured")
	require.Contains(t, why, "none measured yet")

	got, _, err = backupInterval(p, activities.StatsResult{RecentDurations: []time.Duration{time.Minute, 3 * time.Minute, 2 * time.Minute}})
	require.NoError(t, err)
	require.Equal(t, 9*time.Minute, got, "RPO 15m minus twice the slowest recent backup (3m)")

	p.Storage.Schedule.Interval = plan.Duration(5 * time.Minute)
	got, why, err = backupInterval(p, activities.StatsResult{RecentDurations: []time.Duration{time.Minute}})
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, got)
	require.Contains(t, why, "capped")

	p.Storage.Schedule.Interval = 0
	_, _, err = backupInterval(p, activities.StatsResult{RecentDurations: []time.Duration{8 * time.Minute}})
	require.ErrorContains(t, err, "the RPO of 15m0s cannot be met")
}
