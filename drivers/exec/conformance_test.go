package exec

import (
	"testing"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
)

func TestConformance(t *testing.T) {
	const secret = "s3cr3t-exec-driverstest"
	t.Setenv("DRIVERSTEST_EXEC_PASSWORD", secret)
	f := newFixture(t)
	good := f.settings()
	// Every command sees the secret and prints it: the driver must redact it.
	good["env"] = map[string]any{"DB_PASSWORD": "env:DRIVERSTEST_EXEC_PASSWORD"}
	for _, op := range []string{"start", "stop", "status"} {
		switch cmd := good[op].(type) {
		case string:
			good[op] = `echo "pw=$DB_PASSWORD"; ` + cmd
		case []any:
			script := cmd[2].(string)
			cmd[2] = `echo "pw=$DB_PASSWORD"; ` + script
		}
	}
	good["status"] = []any{"/bin/sh", "-c", `echo "pw=$DB_PASSWORD"; exec /bin/sh "$1" "$2"`, "sh", "{{.Vars.alive}}", "{{.Vars.pidfile}}"}
	with := func(k string, v any) map[string]any {
		s := map[string]any{}
		for key, val := range good {
			s[key] = val
		}
		s[k] = v
		return s
	}
	without := func(k string) map[string]any {
		s := with(k, nil)
		delete(s, k)
		return s
	}
	target := drivers.Target{Plan: "p", Site: drivers.Site{Name: "dc1", Role: "primary"},
		Component: drivers.Component{Name: "srv", Role: "app", Settings: good}}
	slow := target
	slow.Component.Settings = with("start", "sleep 600")
	slow.Component.Settings["status"] = "exit 3"
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: New(nil),
		Target: target,
		Slow:   &slow,
		Secret: secret,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with("stat", "true"), Field: "stat"},
			{Name: "no start", Settings: without("start"), Field: "start"},
			{Name: "bad template", Settings: with("stop", "kill {{.Nope"), Field: "stop"},
			{Name: "negative timeout", Settings: with("timeout", "-1s"), Field: "timeout"},
			{Name: "secret written as a literal", Settings: with("env", map[string]any{"DB_PASSWORD": secret}), Field: "DB_PASSWORD"},
		},
		EvidenceLimit: EvidenceLimit,
	})
}
