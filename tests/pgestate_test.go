package tests

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab/pgestate"
	"github.com/drover-dr/drover/starter"
)

// pgEstateAddr is this test's own loopback address, so its clusters and
// HAProxy clash with nobody else's ports.
const pgEstateAddr = "127.0.0.23"

func freeAt(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// TestPostgresEstateFailsOverAndBackWithTheRPOProof runs the README's
// `drover estate postgres` with a short pgbench: real PostgreSQL clusters
// and HAProxy, dc1 killed under load, failover through drover's workflow,
// pgbench committing at dc2, every row dc2 had replayed present, failback.
func TestPostgresEstateFailsOverAndBackWithTheRPOProof(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL estate end-to-end test")
	}
	if m := pgestate.Missing(); m != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the PostgreSQL estate: %s", m)
		}
		t.Skip(m)
	}
	dir := t.TempDir()
	// The clusters run as the postgres OS user when the test runs as root:
	// it must be able to reach the estate's directory.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	var out, errb bytes.Buffer
	code := starter.Main([]string{"estate", "postgres", "--dir", dir,
		"--dc1", freeAt(t, pgEstateAddr), "--dc2", freeAt(t, pgEstateAddr), "--front", freeAt(t, pgEstateAddr),
		"--load", "6s", "--after", "3s", "--clients", "2"}, &out, &errb)
	t.Log(out.String())
	require.Equal(t, starter.ExitOK, code, errb.String())
	text := out.String()
	require.Contains(t, text, "dc2 seeded by pg_basebackup and streaming")
	require.Contains(t, text, "lag at declaration:")
	require.Contains(t, text, "pgbench through HAProxy now commits at dc2")
	require.Regexp(t, `RPO proof: [1-9][0-9]* pgbench_history rows committed at dc1 up to \S+ \(dc2 had replayed \S+ at declaration\): 0 missing at dc2`, text)
	require.Contains(t, text, "failback done")
	md, err := os.ReadFile(strings.TrimSpace(lineAfter(text, "report: ")))
	require.NoError(t, err)
	require.Contains(t, string(md), "lag at declaration:")
}

func lineAfter(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return l[i+len(prefix):]
		}
	}
	return ""
}
