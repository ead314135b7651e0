// Package labtest starts lab cells for tests: real processes in a temp dir
// on free ports, always killed at the end of the test.
package labtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/lab"
)

// Main is TestMain for packages that run labs: when the launcher re-executes
// the test binary as a lab server, it becomes that server; otherwise the
// tests run, and every server they start watches this process so a crashed
// test leaves nothing running.
func Main(m *testing.M) {
	lab.RunIfServer()
	os.Setenv(lab.EnvWatchPID, fmt.Sprint(os.Getpid()))
	os.Exit(m.Run())
}

// TimeScale makes start-up fast in tests while keeping its proportions.
const TimeScale = 0.005

// New creates a standard lab in a temp dir on free ports, without starting
// anything. The test's cleanup kills every process of the lab.
func New(t testing.TB) *lab.Lab {
	t.Helper()
	base, err := lab.FreeBasePort(13)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if os.Getenv("DROVER_LAB_KEEP") != "" {
		// Keep the lab dir for a post-mortem.
		if dir, err = os.MkdirTemp("", "drover-lab-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("lab dir kept: %s", dir)
	}
	l, err := lab.Create(dir, lab.StandardTopology(fmt.Sprintf("test-%d", base), base, TimeScale), Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// Up creates a standard lab and starts its primary site.
func Up(t testing.TB) *lab.Lab {
	t.Helper()
	l := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		DumpLogs(t, l)
		t.Fatalf("lab up: %v", err)
	}
	return l
}

// DumpLogs writes the end of every server log of the lab to the test log.
func DumpLogs(t testing.TB, l *lab.Lab) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(l.Dir, "sites", "*", "logs", "*.log"))
	logs = append(logs, l.L.FrontDoorLog())
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		t.Logf("==== %s\n%s", path, data)
	}
}

// Logger is a test logger at info level.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}
