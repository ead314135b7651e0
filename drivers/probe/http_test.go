package probe

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

func request(settings map[string]any) drivers.CheckRequest {
	return drivers.CheckRequest{
		Plan:     "lab",
		Site:     drivers.Site{Name: "dc2", Role: "secondary", Settings: map[string]any{"host": "127.0.0.1"}},
		Level:    "system",
		Name:     "portal",
		Settings: settings,
	}
}

// labServer answers like the lab's probes and the cell's health pages.
func labServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "BPM portal: status RUNNING (node1)")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "internal error: datasource jdbc/BPMDB unavailable", http.StatusInternalServerError)
	})
	mux.HandleFunc("/lab/pass", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"passed":true,"summary":"ledger consistent: 1200 rows","details":{"rows":1200,"table":"ledger"}}`)
	})
	mux.HandleFunc("/lab/fail", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"passed":false,"summary":"3 orders lost after cut-over"}`)
	})
	mux.HandleFunc("/lab/nosummary", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"passed":false}`)
	})
	mux.HandleFunc("/lab/notbool", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"passed":"yes"}`)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"ok","nodes":2,"site":"dc2"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "method=%s auth=%s site=%s body=%s", r.Method, r.Header.Get("Authorization"), r.Header.Get("X-Site"), b)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "HEAD-"+strings.Repeat("x", 100000)+"-TAIL")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func check(t *testing.T, settings map[string]any) drivers.CheckResult {
	t.Helper()
	res, err := NewHTTP(nil).Check(context.Background(), request(settings))
	require.NoError(t, err)
	return res
}

func TestHTTPPass(t *testing.T) {
	srv := labServer(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	res := check(t, map[string]any{
		// The host comes from the site's settings.
		"url":          fmt.Sprintf(`http://{{index .Site.Settings "host"}}:%d/ok`, port),
		"bodyContains": "RUNNING",
		"bodyMatches":  `status (RUNNING|STARTED)`,
	})
	assert.True(t, res.Passed, res.Summary)
	assert.Contains(t, res.Summary, "200 OK")
	assert.Equal(t, "200", res.Details["status"])
	assert.Equal(t, fmt.Sprintf("GET http://127.0.0.1:%d/ok", port), res.Evidence.Action)
	assert.Contains(t, res.Evidence.Output, "status RUNNING")
	assert.Positive(t, res.Evidence.Duration)
}

func TestHTTPFailures(t *testing.T) {
	srv := labServer(t)
	for name, tc := range map[string]struct {
		settings map[string]any
		summary  string
	}{
		"wrong status":   {map[string]any{"url": srv.URL + "/fail"}, "status 500 (want 200)"},
		"status list":    {map[string]any{"url": srv.URL + "/ok", "expectStatus": []any{201.0, 204.0}}, "status 200 (want 201 or 204)"},
		"body contains":  {map[string]any{"url": srv.URL + "/ok", "bodyContains": "STOPPED"}, `body does not contain "STOPPED"`},
		"body matches":   {map[string]any{"url": srv.URL + "/ok", "bodyMatches": `node[0-9]{2}`}, "body does not match /node[0-9]{2}/"},
		"json differs":   {map[string]any{"url": srv.URL + "/json", "expectJSON": map[string]any{"nodes": 3.0}}, `JSON field "nodes" is 2 (want 3)`},
		"json missing":   {map[string]any{"url": srv.URL + "/json", "expectJSON": map[string]any{"leader": "a"}}, `JSON field "leader" missing`},
		"not json":       {map[string]any{"url": srv.URL + "/ok", "expectJSON": map[string]any{"a": 1.0}}, "body is not a JSON object"},
		"pass field":     {map[string]any{"url": srv.URL + "/lab/fail", "passField": "passed"}, "3 orders lost after cut-over"},
		"no summary":     {map[string]any{"url": srv.URL + "/lab/nosummary", "passField": "passed"}, `JSON field "passed" is false`},
		"not a boolean":  {map[string]any{"url": srv.URL + "/lab/notbool", "passField": "passed"}, `JSON field "passed" is "yes", not a boolean`},
		"status+pass":    {map[string]any{"url": srv.URL + "/lab/fail", "passField": "passed", "expectStatus": 200.0}, "status 503 (want 200)"},
		"slow":           {map[string]any{"url": srv.URL + "/slow", "timeout": "200ms"}, "no answer within 200ms"},
		"wrong method":   {map[string]any{"url": srv.URL + "/ok", "method": "delete", "expectStatus": 405.0}, "status 200 (want 405)"},
		"missing passfd": {map[string]any{"url": srv.URL + "/json", "passField": "passed"}, `JSON field "passed" missing`},
	} {
		t.Run(name, func(t *testing.T) {
			res := check(t, tc.settings)
			assert.False(t, res.Passed)
			assert.Contains(t, res.Summary, tc.summary)
			assert.True(t, strings.HasPrefix(res.Summary, res.Evidence.Action+": "), res.Summary)
		})
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	res := check(t, map[string]any{"url": "http://" + addr + "/"})
	assert.False(t, res.Passed)
	assert.Contains(t, res.Summary, "connection refused")
	assert.NotContains(t, res.Summary, `Get "`) // the URL is said once
}

func TestHTTPPassFieldAndJSON(t *testing.T) {
	srv := labServer(t)
	res := check(t, map[string]any{"url": srv.URL + "/lab/pass", "passField": "passed"})
	assert.True(t, res.Passed)
	assert.Equal(t, "ledger consistent: 1200 rows", res.Summary)
	assert.Equal(t, "1200", res.Details["rows"])
	assert.Equal(t, "ledger", res.Details["table"])

	// A failing lab probe answering 503 is judged by its body, not its status.
	res = check(t, map[string]any{"url": srv.URL + "/lab/fail", "passField": "passed"})
	assert.False(t, res.Passed)
	assert.Equal(t, "503", res.Details["status"])

	res = check(t, map[string]any{"url": srv.URL + "/json", "expectJSON": map[string]any{"status": "ok", "nodes": 2.0, "site": "dc2"}})
	assert.True(t, res.Passed, res.Summary)
}

func TestHTTPHeadersSecretsAndBody(t *testing.T) {
	srv := labServer(t)
	const token = "Bearer sekrit-token-123"
	t.Setenv("DROVER_PROBE_TEST_AUTH", token)
	res := check(t, map[string]any{
		"url":     srv.URL + "/echo",
		"method":  "POST",
		"body":    `{"check":"{{.Check.Name}}"}`,
		"headers": map[string]any{"Authorization": "env:DROVER_PROBE_TEST_AUTH", "X-Site": "{{.Site.Name}}"},
	})
	assert.True(t, res.Passed, res.Summary)
	// The server saw the secret (it echoes it), the evidence does not.
	assert.Contains(t, res.Evidence.Output, "auth=[redacted]")
	assert.NotContains(t, res.Evidence.Output, "sekrit")
	assert.Contains(t, res.Evidence.Output, `method=POST`)
	assert.Contains(t, res.Evidence.Output, `site=dc2`)
	assert.Contains(t, res.Evidence.Output, `body={"check":"portal"}`)

	err := NewHTTP(nil).CheckSettings(map[string]any{"url": srv.URL, "headers": map[string]any{"Authorization": "Bearer literal"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "headers.Authorization looks like a secret")
	assert.NotContains(t, err.Error(), "literal")
}

func TestHTTPBodyKeptShort(t *testing.T) {
	srv := labServer(t)
	res := check(t, map[string]any{"url": srv.URL + "/big", "bodyContains": "-TAIL"})
	assert.True(t, res.Passed, res.Summary)
	assert.LessOrEqual(t, len(res.Evidence.Output), BodyEvidenceLimit+32)
	assert.True(t, strings.HasPrefix(res.Evidence.Output, "HEAD-"))
	assert.True(t, strings.HasSuffix(res.Evidence.Output, "-TAIL"))
}

func TestHTTPTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "secure ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted attempt logs a handshake error
	srv.StartTLS()
	t.Cleanup(srv.Close)

	// Not trusted by default: a failed check, not an error.
	res := check(t, map[string]any{"url": srv.URL})
	assert.False(t, res.Passed)
	assert.Contains(t, res.Summary, "certificate")

	res = check(t, map[string]any{"url": srv.URL, "insecureSkipVerify": true})
	assert.True(t, res.Passed, res.Summary)

	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	res = check(t, map[string]any{"url": srv.URL, "caFile": ca})
	assert.True(t, res.Passed, res.Summary)

	_, err := NewHTTP(nil).Check(context.Background(), request(map[string]any{"url": srv.URL, "caFile": filepath.Join(t.TempDir(), "none.pem")}))
	assert.True(t, drivers.Permanent(err), "%v", err)
}

func TestHTTPBadSettings(t *testing.T) {
	p := NewHTTP(nil)
	for want, s := range map[string]map[string]any{
		`unknown field "urll"`:                      {"urll": "http://x"},
		"url: required":                             {},
		"bodyMatches: error parsing regexp":         {"url": "http://x", "bodyMatches": "(["},
		"expectStatus: 99 is not an HTTP status":    {"url": "http://x", "expectStatus": 99.0},
		"expectStatus: want a status code":          {"url": "http://x", "expectStatus": "200"},
		`no field "Nmae"`:                           {"url": "http://{{.Site.Nmae}}"},
		"caFile and insecureSkipVerify":             {"url": "https://x", "caFile": "/a", "insecureSkipVerify": true},
		"summaryField: only used with passField":    {"url": "http://x", "summaryField": "msg"},
		`method: "GE T" is not an HTTP method`:      {"url": "http://x", "method": "GE T"},
		`no field "Component" in the template data`: {"url": "http://{{.Component.Name}}"},
	} {
		err := p.CheckSettings(s)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		assert.ErrorIs(t, err, drivers.ErrBadSettings)
	}
	// Found only when rendered: a key the site lacks, a URL without scheme.
	for want, s := range map[string]map[string]any{
		`no entry for key "hots"`:              {"url": `http://{{index .Site.Settings "hots"}}/`},
		"want http:// or https:// with a host": {"url": "{{.Site.Name}}:80/x"},
	} {
		_, err := p.Check(context.Background(), request(s))
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		assert.True(t, drivers.Permanent(err))
	}
}

func TestHTTPCallerCancelIsError(t *testing.T) {
	srv := labServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := NewHTTP(nil).Check(ctx, request(map[string]any{"url": srv.URL + "/slow"}))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func FuzzJSONJudge(f *testing.F) {
	f.Add([]byte(`{"passed":true,"summary":"ok","details":{"a":1}}`), "passed", `{"a":1}`)
	f.Add([]byte(`{"passed":false}`), "passed", `{}`)
	f.Add([]byte(`[1,2]`), "", `{"x":null}`)
	f.Add([]byte(`null`), "passed", `{}`)
	f.Fuzz(func(t *testing.T, body []byte, passField, expectJSON string) {
		var expect map[string]any
		if err := jsonUnmarshal([]byte(expectJSON), &expect); err != nil {
			expect = nil
		}
		j := jsonCheck{expect: expect, passField: passField, summaryField: "summary"}
		details := map[string]string{}
		passed, summary, fromBody := j.judge(body, details)
		if !passed && summary == "" {
			t.Fatalf("failed without a reason for %q", body)
		}
		if fromBody && passField == "" {
			t.Fatalf("summary taken from the body without a passField")
		}
		if passed && passField != "" {
			var doc map[string]any
			if err := jsonUnmarshal(body, &doc); err != nil || doc[passField] != true {
				t.Fatalf("passed although %q is not true in %q", passField, body)
			}
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
