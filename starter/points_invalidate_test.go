package starter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
)

func TestPointsInvalidate(t *testing.T) {
	store, data, planFile := pointsFixture(t)
	const id = "20260302T100000Z-000001"
	makePoint(t, store, data, id, catalog.ModeFull, "")
	require.NoError(t, store.SetValidity("bpm-golden", id, catalog.Validity{State: catalog.Valid, Run: "v1"}))

	code, out, errs := runDrover("points", "invalidate", id, "--plan", planFile, "--reason", "app bug wrote bad orders before 10:00", "--as", "alice")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "point "+id+" of plan bpm-golden is invalid: app bug wrote bad orders before 10:00 (manual: alice)")
	v, err := store.Validity("bpm-golden", id)
	require.NoError(t, err)
	assert.Equal(t, catalog.Invalid, v.State)
	assert.Equal(t, "manual: alice", v.Run)

	code, _, errs = runDrover("points", "invalidate", "20990101T000000Z-ffffff", "--plan", planFile, "--reason", "x")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "no such recovery point of plan bpm-golden")

	code, _, errs = runDrover("points", "invalidate", id, "--plan", planFile)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--reason: required")

	code, _, errs = runDrover("points", "invalidate", id, "--reason", "x")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--plan: required")

	code, _, errs = runDrover("points", "invalidate", "../escape", "--plan", planFile, "--reason", "x")
	assert.Equal(t, ExitBadInput, code, "an id that is not a point id is bad input: %s", errs)
}
