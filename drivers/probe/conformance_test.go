package probe

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
)

func copySettings(s map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range s {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func conformanceRequest(settings map[string]any) drivers.CheckRequest {
	return drivers.CheckRequest{Plan: "p", Site: drivers.Site{Name: "dc1", Role: "primary"}, Level: "system", Name: "c", Settings: settings}
}

func TestHTTPConformance(t *testing.T) {
	const secret = "s3cr3t-http-driverstest"
	t.Setenv("DRIVERSTEST_HTTP_TOKEN", secret)
	mux := http.NewServeMux()
	// The server echoes the credential it was sent: the probe must not
	// carry it into its evidence.
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok, you sent " + r.Header.Get("Authorization")))
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken for "+r.Header.Get("Authorization"), http.StatusInternalServerError)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	good := map[string]any{"url": srv.URL + "/ok", "headers": map[string]any{"Authorization": "env:DRIVERSTEST_HTTP_TOKEN"}, "bodyContains": "ok"}
	// Secret references only resolve whole values, so the token is the
	// whole header: "Bearer " is part of the variable's value here.
	t.Setenv("DRIVERSTEST_HTTP_TOKEN", "Bearer "+secret)
	broken := conformanceRequest(copySettings(good, "url", srv.URL+"/broken"))
	slow := conformanceRequest(copySettings(copySettings(good, "url", srv.URL+"/hang"), "timeout", "5m"))
	driverstest.Probe(t, driverstest.ProbeCase{
		Driver: NewHTTP(nil),
		Pass:   conformanceRequest(good),
		Fail:   &broken,
		Slow:   &slow,
		Secret: secret,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: copySettings(good, "ur", "x"), Field: "ur"},
			{Name: "no url", Settings: copySettings(good, "url", nil), Field: "url"},
			{Name: "bad regexp", Settings: copySettings(good, "bodyMatches", "(("), Field: "bodyMatches"},
			{Name: "secret written as a literal", Settings: copySettings(good, "headers", map[string]any{"Authorization": "Bearer " + secret}), Field: "Authorization"},
		},
	})
}

func TestTCPConformance(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// A port nothing listens on: bind one, note it, close it.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()

	good := map[string]any{"address": ln.Addr().String()}
	fail := conformanceRequest(map[string]any{"address": closedAddr})
	driverstest.Probe(t, driverstest.ProbeCase{
		Driver: NewTCP(nil),
		Pass:   conformanceRequest(good),
		Fail:   &fail,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: copySettings(good, "adress", "x"), Field: "adress"},
			{Name: "no address", Settings: map[string]any{}, Field: "address"},
			{Name: "bad timeout", Settings: copySettings(good, "timeout", "soon"), Field: "timeout"},
		},
	})
}

func TestExecConformance(t *testing.T) {
	const secret = "s3cr3t-execprobe-driverstest"
	t.Setenv("DRIVERSTEST_EXECPROBE_PASSWORD", secret)
	env := map[string]any{"PGPASSWORD": "env:DRIVERSTEST_EXECPROBE_PASSWORD"}
	good := map[string]any{"command": `echo "using $PGPASSWORD"; test -n "$PGPASSWORD"`, "env": env}
	fail := conformanceRequest(map[string]any{"command": `echo "refused $PGPASSWORD" >&2; exit 1`, "env": env})
	slow := conformanceRequest(map[string]any{"command": "sleep 600", "timeout": "20m"})
	driverstest.Probe(t, driverstest.ProbeCase{
		Driver: NewExec(nil),
		Pass:   conformanceRequest(good),
		Fail:   &fail,
		Slow:   &slow,
		Secret: secret,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: copySettings(good, "cmd", "true"), Field: "cmd"},
			{Name: "no command", Settings: map[string]any{"env": env}, Field: "command"},
			{Name: "secret written as a literal", Settings: copySettings(good, "env", map[string]any{"PGPASSWORD": secret}), Field: "PGPASSWORD"},
		},
	})
}
