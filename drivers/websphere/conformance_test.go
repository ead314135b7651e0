package websphere

import (
	"testing"

	"github.com/drover-dr/drover/drivers/driverstest"
)

func TestConformance(t *testing.T) {
	const secret = "s3cr3t-was-driverstest"
	t.Setenv("DRIVERSTEST_WAS_PASSWORD", secret)
	p := newProfile(t, "BPM.AppTarget.member1")
	// The cell is secured: status and stop need the password, and the fake
	// prints it, so the driver must redact it.
	p.write(t, "secure", "wasadmin:"+secret)
	good := map[string]any{"kind": "server", "profilePath": p.dir, "server": "BPM.AppTarget.member1",
		"username": "wasadmin", "password": "env:DRIVERSTEST_WAS_PASSWORD"}
	with := func(k string, v any) map[string]any {
		s := map[string]any{}
		for key, val := range good {
			s[key] = val
		}
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
		return s
	}
	slowProfile := newProfile(t, "BPM.AppTarget.member1")
	slowProfile.write(t, "hang-startServer.sh", "")
	slow := target(map[string]any{"kind": "server", "profilePath": slowProfile.dir, "server": "BPM.AppTarget.member1"})
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: New(nil),
		Target: target(good),
		Slow:   &slow,
		Secret: secret,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with("serverName", "x"), Field: "serverName"},
			{Name: "no kind", Settings: with("kind", nil), Field: "kind"},
			{Name: "no profile", Settings: with("profilePath", nil), Field: "profilePath"},
			{Name: "password written as a literal", Settings: with("password", secret), Field: "password"},
			{Name: "negative timeout", Settings: with("timeout", "-1s"), Field: "timeout"},
		},
		EvidenceLimit: 4096,
	})
}
