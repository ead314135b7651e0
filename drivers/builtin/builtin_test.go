package builtin

import (
	"errors"
	"slices"
	"testing"

	"github.com/drover-dr/drover/drivers"
)

func TestRegistryHoldsEveryBuiltinDriverUnderItsKind(t *testing.T) {
	r := Registry(nil)
	want := map[drivers.Kind][]string{
		drivers.KindMiddleware: {"exec", "lab", "postgres"},
		drivers.KindProbe:      {"exec", "http", "lab", "sql", "tcp"},
		drivers.KindRedirect:   {"dns", "haproxy", "lab"},
		drivers.KindStorage:    {"archive", "btrfs", "lvm"},
	}
	for kind, names := range want {
		if got := r.Names(kind); !slices.Equal(got, names) {
			t.Errorf("%s drivers: %v, want %v", kind, got, names)
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
