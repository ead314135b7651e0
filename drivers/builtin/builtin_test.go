package builtin

import (
	"slices"
	"testing"

	"github.com/drover-dr/drover/drivers"
)

func TestRegistryHoldsEveryBuiltinDriverUnderItsKind(t *testing.T) {
	r := Registry(nil)
	want := map[drivers.Kind][]string{
		drivers.KindMiddleware: {"exec", "lab"},
		drivers.KindProbe:      {"exec", "http", "lab", "tcp"},
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
