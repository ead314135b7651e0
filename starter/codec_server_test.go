package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/drover-dr/drover/codec"
)

// lockedBuffer is written by the command's goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeEncryptionKey(t *testing.T) (string, codec.Key) {
	t.Helper()
	k, err := codec.GenerateKey()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "payload.key")
	require.NoError(t, os.WriteFile(file, k.Text(), 0o600))
	return file, k
}

func TestCodecServerCommand(t *testing.T) {
	keyFile, key := writeEncryptionKey(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout lockedBuffer
	root, _ := NewRootCommand(&stdout, io.Discard)
	root.SetArgs([]string{"-o", "json", "codec-server", "--encryption-key-file", keyFile, "--port", "0",
		"--ui-origin", "http://127.0.0.1:8233", "--token-file", tokenFile})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var info struct {
		Endpoint string `json:"endpoint"`
	}
	deadline := time.After(30 * time.Second)
	for info.Endpoint == "" {
		select {
		case err := <-done:
			t.Fatalf("codec-server returned before it was stopped: %v", err)
		case <-deadline:
			t.Fatalf("codec-server printed no endpoint; stdout: %q", stdout.String())
		case <-time.After(10 * time.Millisecond):
		}
		if line, _, ok := bytes.Cut([]byte(stdout.String()), []byte("\n")); ok {
			require.NoError(t, json.Unmarshal(line, &info))
		}
	}

	c, err := codec.NewCodec(key)
	require.NoError(t, err)
	enc, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"the payload"`)}})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: enc})
	require.NoError(t, err)

	do := func(token string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, info.Endpoint+"/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://127.0.0.1:8233")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, _ := do("")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, got := do("tok-123")
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	assert.Equal(t, "http://127.0.0.1:8233", resp.Header.Get("Access-Control-Allow-Origin"))
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal([]byte(got), &out))
	assert.Equal(t, `"the payload"`, string(out.Payloads[0].Data))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("codec-server did not stop on cancel")
	}
}

func TestCodecServerBadInput(t *testing.T) {
	keyFile, _ := writeEncryptionKey(t)
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	short := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(short, []byte("abcd\n"), 0o600))
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"codec-server"}, "--encryption-key-file: required"},
		{[]string{"codec-server", "--encryption-key-file", short}, "--encryption-key-file: encryption key file " + short},
		{[]string{"codec-server", "--encryption-key-file", keyFile, "--ui-origin", "http://127.0.0.1:8233/ui"}, "--ui-origin"},
		{[]string{"codec-server", "--encryption-key-file", keyFile, "--ui-origin", "127.0.0.1:8233"}, "--ui-origin"},
		{[]string{"codec-server", "--encryption-key-file", keyFile, "--listen", "localhost"}, "--listen"},
		{[]string{"codec-server", "--encryption-key-file", keyFile, "--port", "70000"}, "--port"},
		{[]string{"codec-server", "--encryption-key-file", keyFile, "--token-file", empty}, "--token-file: " + empty + " is empty"},
	} {
		code, _, stderr := runMain(c.args...)
		assert.Equal(t, ExitBadInput, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.msg, "%v", c.args)
	}
}
