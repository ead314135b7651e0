package builtin

import (
	"errors"
	"testing"

	"github.com/drover-dr/drover/drivers"
)

func TestPostgresAndSQLAreRegistered(t *testing.T) {
	r := Registry(nil)
	if _, err := r.Middleware("postgres"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Probe("sql"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Replicator("postgres"); err != nil {
		t.Fatalf("postgres is not a replicator: %v", err)
	}
	if _, err := r.Replicator("exec"); err == nil || !errors.Is(err, drivers.ErrUnsupported) {
		t.Fatalf("exec as a replicator = %v; want unsupported", err)
	}
	if err := r.CheckDriver("middleware", "postgres", map[string]any{"dataDri": "/x"}); err == nil || !drivers.Permanent(err) {
		t.Fatalf("plan validation of postgres settings = %v; want refused", err)
	}
	if err := r.CheckDriver("probe", "sql", map[string]any{"dsn": "env:X", "query": "SELECT 1", "expect": map[string]any{"min": 1}}); err != nil {
		t.Fatalf("plan validation of sql settings: %v", err)
	}
}
