package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
)

// syncBuffer is written by the command's goroutine and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerCommandServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	root, _ := NewRootCommand(&stdout, io.Discard)
	root.SetArgs([]string{"server", "--port", "0", "--ui-port", "0", "--namespace", "drover-test", "-o", "json"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var info map[string]string
	deadline := time.After(time.Minute)
	for info == nil {
		select {
		case err := <-done:
			t.Fatalf("drover server returned before it was stopped: %v", err)
		case <-deadline:
			t.Fatalf("drover server printed no address within a minute; stdout: %q", stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
		if line, _, ok := bytes.Cut([]byte(stdout.String()), []byte("\n")); ok {
			require.NoError(t, json.Unmarshal(line, &info), "stdout: %s", line)
		}
	}
	assert.Equal(t, "drover-test", info["namespace"])
	assert.Equal(t, "memory", info["db"])
	assert.Regexp(t, `^http://127\.0\.0\.1:\d+$`, info["ui"])

	c, err := client.Dial(client.Options{HostPort: info["frontend"], Namespace: "drover-test"})
	require.NoError(t, err)
	sas, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "drover-test"})
	c.Close()
	require.NoError(t, err)
	for name, typ := range contract.SearchAttributes {
		assert.Equal(t, typ, sas.GetCustomAttributes()[name], "search attribute %s", name)
	}

	stopBegan := time.Now()
	cancel() // what SIGINT does through Main's signal context
	defer func() { t.Logf("drover server returned %s after its context was cancelled", time.Since(stopBegan)) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("drover server did not stop after its context was cancelled")
	}
}

func TestServerCommandRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--port", "70000"},
		{"server", "--ui-port", "-2"},
		{"server", "--ip", "localhost:1"},
		{"server", "--port", "7300", "--ui-port", "7300"},
		{"server", "--db-file", "/nonexistent-dir/drover.db"},
		{"server", "extra-arg"},
	} {
		var stderr bytes.Buffer
		code := Main(args, io.Discard, &stderr)
		assert.Equal(t, ExitBadInput, code, "%v: %s", args, stderr.String())
	}
}
