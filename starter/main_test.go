package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

// One throwaway Temporal server (drover server, in memory, on free loopback
// ports) for the tests that need one, started on first use and stopped
// after the package's tests.
var (
	testServerOnce   sync.Once
	testServerAddr   string
	testServerErr    error
	testServerCancel context.CancelFunc = func() {}
	testServerDone                      = make(chan error, 1)
)

const testNamespace = "drover-test"

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop throwaway PostgreSQL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	testServerCancel()
	if testServerAddr != "" {
		select {
		case <-testServerDone:
		case <-time.After(time.Minute):
		}
	}
	os.Exit(code)
}

// sharedServer returns the frontend address of the package's server.
func sharedServer(t *testing.T) string {
	t.Helper()
	testServerOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		testServerCancel = cancel
		var stdout syncBuffer
		root, _ := NewRootCommand(&stdout, io.Discard)
		root.SetArgs([]string{"server", "--port", "0", "--ui-port", "0", "--namespace", testNamespace, "-o", "json"})
		go func() { testServerDone <- root.ExecuteContext(ctx) }()
		deadline := time.After(2 * time.Minute)
		for {
			select {
			case err := <-testServerDone:
				testServerErr = err
				if err == nil {
					testServerErr = context.Canceled
				}
				return
			case <-deadline:
				testServerErr = context.DeadlineExceeded
				return
			case <-time.After(20 * time.Millisecond):
			}
			if line, _, ok := bytes.Cut([]byte(stdout.String()), []byte("\n")); ok {
				var info map[string]string
				if testServerErr = json.Unmarshal(line, &info); testServerErr == nil {
					testServerAddr = info["frontend"]
				}
				return
			}
		}
	})
	if testServerErr != nil {
		t.Fatalf("drover server: %v", testServerErr)
	}
	return testServerAddr
}
