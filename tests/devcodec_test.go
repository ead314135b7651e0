package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/starter"
)

// TestDevPointsTheWebUIAtItsCodecServer: `drover dev` with an encryption
// key serves a codec server and gives its address to the Web UI (the UI's
// settings name it), and that server answers the UI's page whether the UI
// is opened as 127.0.0.1 or as localhost.
func TestDevPointsTheWebUIAtItsCodecServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "payload.key")
	var out bytes.Buffer
	require.Equal(t, starter.ExitOK, starter.Main([]string{"keys", "new-encryption-key", "--out", keyFile}, &out, &out), out.String())
	port, err := freePort()
	require.NoError(t, err)
	uiPort, err := freePort()
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev := exec.CommandContext(ctx, droverBin, "dev", "--encryption-key-file", keyFile,
		"--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort), "--log-level", "warn")
	stdout, err := dev.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	dev.Stderr = &stderr
	require.NoError(t, dev.Start())
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		_ = dev.Wait()
		if t.Failed() {
			t.Logf("drover dev stderr (tail):\n%s", tail(stderr.String(), 4000))
		}
	})
	lines := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			lines[k] = strings.Fields(v)[0]
		}
		if strings.Contains(sc.Text(), "Press Ctrl-C") {
			break
		}
	}
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(devNull{}) }()
	uiURL, endpoint := lines["Web UI"], lines["Codec server"]
	require.Equal(t, fmt.Sprintf("http://127.0.0.1:%d", uiPort), uiURL, "drover dev printed %v", lines)
	require.NotEmpty(t, endpoint, "drover dev names its codec server: %v", lines)
	u, err := url.Parse(endpoint)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", u.Hostname(), "the codec server decrypts for whoever reaches it: loopback only")

	// The UI tells the browser where to decode.
	resp, err := http.Get(uiURL + "/api/v1/settings")
	require.NoError(t, err)
	var settings struct {
		Codec struct{ Endpoint string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&settings))
	resp.Body.Close()
	assert.Equal(t, endpoint, settings.Codec.Endpoint, "the Web UI's codec endpoint")

	// The browser calls the codec server from the UI's origin, under
	// either name of the loopback address; another port is refused.
	for origin, want := range map[string]int{
		fmt.Sprintf("http://127.0.0.1:%d", uiPort):   http.StatusOK,
		fmt.Sprintf("http://localhost:%d", uiPort):   http.StatusOK,
		fmt.Sprintf("http://localhost:%d", uiPort+1): http.StatusForbidden,
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/decode", strings.NewReader(`{"payloads":[]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, origin)
		if want == http.StatusOK {
			assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"), origin)
		}
	}
}
