package bench

import (
	"fmt"
	"os"
	"testing"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/devserver/pgtest"
)

// pg is the package's throwaway PostgreSQL, for the fleet benchmark's test.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop throwaway PostgreSQL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// testEnv is what the CLI hands a benchmark, with the test's logger at
// warnings and a plain client.
func testEnv(t *testing.T) Env {
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	return Env{Logger: log, Namespace: "drover-bench-test", Dial: func(address string) (client.Client, error) {
		return client.Dial(client.Options{HostPort: address, Namespace: "drover-bench-test"})
	}}
}
