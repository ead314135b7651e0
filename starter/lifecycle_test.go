package starter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

func TestBackupIntervalFollowsTheRPOMinusBackupTime(t *testing.T) {
	p := &plan.Plan{RPO: plan.Duration(15 * time.Minute)}

	got, why, err := backupInterval(p, contract.StatsResult{})
	require.NoError(t, err)
	require.Equal(t, 11*time.Minute+15*time.Second, got, "a quarter of the RPO kept back before any backup is measured")
	require.Contains(t, why, "none measured yet")

	got, _, err = backupInterval(p, contract.StatsResult{RecentDurations: []time.Duration{time.Minute, 3 * time.Minute, 2 * time.Minute}})
	require.NoError(t, err)
	require.Equal(t, 9*time.Minute, got, "RPO 15m minus twice the slowest recent backup (3m)")

	p.Storage.Schedule.Interval = plan.Duration(5 * time.Minute)
	got, why, err = backupInterval(p, contract.StatsResult{RecentDurations: []time.Duration{time.Minute}})
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, got)
	require.Contains(t, why, "capped")

	p.Storage.Schedule.Interval = 0
	_, _, err = backupInterval(p, contract.StatsResult{RecentDurations: []time.Duration{8 * time.Minute}})
	require.ErrorContains(t, err, "the RPO of 15m0s cannot be met")
}

// plan apply, disable and status share how they load a plan and open its
// store: what is wrong in the file is bad input naming it, a store that is
// not there a failed run.
func TestPlanStoreCommandsLoadThePlanAndItsStore(t *testing.T) {
	useFakePlanChecker(t)
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens: status shows the store only
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	good := planWithStore(t, t.TempDir())
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	badStore := filepath.Join(t.TempDir(), "bad-store.yaml")
	require.NoError(t, os.WriteFile(badStore, []byte(strings.Replace(string(b), "    retention:", "    bogus: 1\n    retention:", 1)), 0o644))
	notMounted := planWithStore(t, filepath.Join(t.TempDir(), "not-mounted"))

	for _, verb := range []string{"apply", "disable", "status"} {
		code, out, errs := runDrover("plan", verb, missing)
		assert.Equal(t, ExitBadInput, code, verb)
		assert.Contains(t, errs, missing, verb)
		assert.Empty(t, out, verb)

		code, _, errs = runDrover("plan", verb, badStore)
		assert.Equal(t, ExitBadInput, code, verb)
		assert.Contains(t, errs, badStore+": storage.store: settings: unknown field \"bogus\"", verb)

		code, _, errs = runDrover("plan", verb, notMounted)
		assert.Equal(t, ExitRunFailed, code, verb)
		assert.Contains(t, errs, "plan bpm-golden: recovery point store:", verb)

		code, _, _ = runDrover("plan", verb)
		assert.Equal(t, ExitBadInput, code, "%s without a FILE", verb)
	}

	code, out, errs := runDrover("plan", "status", good)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "plan bpm-golden: defined (roles enabled: -)\nprimary site: dc1 (the plan's primary; no failover recorded)\n", out)
	assert.Contains(t, errs, "Temporal not reachable: showing the store only")
}

// Seed 000 §3: plan apply checks the plan's site prerequisites, each named
// in the problems it prints, and does not validate a plan whose
// prerequisites fail.
func TestPlanApplyChecksTheSitePrerequisites(t *testing.T) {
	useFakePlanChecker(t)
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	store := t.TempDir()
	f := planWithStore(t, store)
	notMounted := t.TempDir()
	f2, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f2.WriteString("\nsiteChecks:\n  mounts: [{path: " + notMounted + ", type: nfs}]\n  paths: [" + notMounted + "/db2inst1]\n")
	require.NoError(t, err)
	require.NoError(t, f2.Close())
	code, _, errs := runDrover("plan", "apply", f)
	assert.Equal(t, ExitRunFailed, code, errs)
	assert.Contains(t, errs, "siteChecks: mount "+notMounted+" at dc2: "+notMounted+" is not a mount point")
	assert.Contains(t, errs, "siteChecks: path "+notMounted+"/db2inst1 at dc2:")
	assert.Contains(t, errs, "not validated")
}
