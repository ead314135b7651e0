package builtin

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/plan"
)

func TestRegistryHoldsEveryBuiltinDriverUnderItsKind(t *testing.T) {
	r := Registry(nil)
	want := map[drivers.Kind][]string{
		drivers.KindMiddleware: {"db2", "exec", "lab", "mq", "postgres", "websphere"},
		drivers.KindProbe:      {"exec", "http", "lab", "sql", "tcp"},
		drivers.KindRedirect:   {"dns", "haproxy", "lab"},
		drivers.KindStorage:    {"archive", "btrfs", "lvm"},
	}
	for kind, names := range want {
		got := r.Names(kind)
		for _, name := range names {
			if !slices.Contains(got, name) {
				t.Errorf("%s drivers: %v, want %s among them", kind, got, name)
			}
		}
	}
	// Plan validation reaches each driver's own settings check.
	err := r.CheckDriver("redirect", "haproxy", map[string]any{"backend": "app"})
	if !drivers.Permanent(err) {
		t.Errorf("haproxy settings without a socket: %v", err)
	}
	err = r.CheckDriver("redirect", "dns", map[string]any{"zone": "example.test"})
	if !drivers.Permanent(err) {
		t.Errorf("dns settings without a server: %v", err)
	}
}

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

func TestPostgresReplicatesAndSQLChecksSettings(t *testing.T) {
	r := Registry(nil)
	if _, err := r.Replicator("postgres"); err != nil {
		t.Fatalf("postgres is not a replicator: %v", err)
	}
	if _, err := r.Replicator("exec"); err == nil || !errors.Is(err, drivers.ErrUnsupported) {
		t.Fatalf("exec as a replicator = %v; want unsupported", err)
	}
	if err := r.CheckDriver("middleware", "postgres", map[string]any{"dataDri": "/x"}); !drivers.Permanent(err) {
		t.Fatalf("plan validation of postgres settings = %v; want refused", err)
	}
	if err := r.CheckDriver("probe", "sql", map[string]any{"dsn": "env:X", "query": "SELECT 1", "expect": map[string]any{"min": 1}}); err != nil {
		t.Fatalf("plan validation of sql settings: %v", err)
	}
}

// The PostgreSQL example plan is valid against the real drivers: its
// replicated component's driver replicates.
func TestPostgresExamplePlanIsValidWithTheBuiltinDrivers(t *testing.T) {
	const file = "../../examples/plans/postgres.yaml"
	p, err := plan.LoadAndValidate(file, Registry(nil))
	require.NoError(t, err)
	require.Len(t, p.ReplicatedComponents(), 1)
	require.Equal(t, "dc2", p.Components[0].Replication.Standby)

}
