package builtin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

// The product drivers are offered under the names plans use, and check
// their settings before a workflow starts.
func TestProductDriversRegistered(t *testing.T) {
	r := Registry(nil)
	for name, good := range map[string]map[string]any{
		"websphere": {"kind": "dmgr", "profilePath": "/opt/IBM/WebSphere/AppServer/profiles/Dmgr01"},
		"db2":       {"instanceOwner": "db2inst1", "database": "BPMDB"},
		"mq":        {"queueManager": "QM1"},
	} {
		_, err := r.Middleware(name)
		require.NoError(t, err, name)
		require.NoError(t, r.CheckDriver(string(drivers.KindMiddleware), name, good), name)
		err = r.CheckDriver(string(drivers.KindMiddleware), name, map[string]any{"bogus": 1})
		assert.ErrorIs(t, err, drivers.ErrBadSettings, name)
	}
}
