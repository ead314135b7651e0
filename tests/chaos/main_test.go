// Package chaos is drover's fault-injection suite. It runs drover as in
// production, each part its own process: the Temporal server (`drover
// server` on a database file), the worker (`drover worker`), the lab cell's
// servers, and this test as the client. Then it breaks them: the worker is
// killed (SIGKILL) in the middle of backups, a drill, a failover and a
// failback; the Temporal server is restarted under a failover; a lab server
// freezes and a driver command hangs; the Temporal database is lost with the
// primary; recovery points are corrupted, truncated and deleted, the store
// fills up and vanishes mid-transfer. After each, it checks what a DR tool
// owes its users: every run completes or fails clearly, every start and stop
// takes effect once, no recovery point is duplicated, no committed work is
// lost, and no cell is built from bad data.
//
// Every random choice comes from one seed, printed at the start and taken
// from DROVER_CHAOS_SEED when set, so a failing run can be repeated. The
// amount of chaos is set by environment variables (see config); the
// defaults fit a CI budget of a few minutes on two cores. -short skips it.
//
//	DROVER_CHAOS_SEED            the seed (default: from the clock)
//	DROVER_CHAOS_KILLS           worker SIGKILLs over the suite (default 12)
//	DROVER_CHAOS_BACKUPS         backup runs under kills (default 4)
//	DROVER_CHAOS_RATE            workload orders/s (default 8)
//	DROVER_CHAOS_TIME_SCALE      lab start-up time scale (default 0.02)
//	DROVER_CHAOS_RUN_TIMEOUT     bound on one run (default 4m)
//	DROVER_CHAOS_SUMMARY         file the summary is also written to
//	DROVER_CHAOS_SKIP            scenarios to skip, comma-separated
//	DROVER_CHAOS_KILL_IN_LAUNCH  also kill between a lab launch and its pid file (known lab bug)
//	DROVER_CHAOS_KILL_IN_QUIESCE also kill while a backup holds the db's writes (known lab bug)
//
// At the end it prints a summary (also on stdout, and to
// DROVER_CHAOS_SUMMARY): faults injected, runs completed, steps
// re-executed, data lost and duplicates.
package chaos

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// droverBin is the drover binary built once for the package, so the suite
// runs what a user runs.
var droverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// The suite skips itself; do not spend a build on it.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "drover-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	droverBin = filepath.Join(dir, "drover")
	build := exec.Command("go", "build", "-o", droverBin, "./cmd/drover")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build drover:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
