package starter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Bad --metrics-* flags are bad input, refused before any connection to
// Temporal is tried.
func TestWorkerRefusesBadMetricsFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: drover/v1\nname: x\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-address", "127.0.0.1:0", "--metrics-site", "dc1"}, "--metrics-site"},
		{[]string{"--metrics-address", "127.0.0.1:0", "--metrics-plan", bad}, "--metrics-plan"},
		{[]string{"--metrics-address", "127.0.0.1:0", "--metrics-store", "${DROVER_UNSET_FOR_TEST}/x"}, "--metrics-store"},
	} {
		code, _, errs := runDrover(append([]string{"worker", "--address", "127.0.0.1:1"}, c.args...)...)
		assert.Equal(t, ExitBadInput, code, "%v: %s", c.args, errs)
		assert.Contains(t, errs, c.want, c.args)
	}
}
