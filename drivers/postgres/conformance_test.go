package postgres

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drover-dr/drover/drivers/driverstest"
)

func withSetting(s map[string]any, k string, v any) map[string]any {
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

func TestConformance(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "conformance")
	// The slow start is a real one: a cluster in archive recovery whose
	// restore_command takes its time, so the server stays "starting up"
	// and pg_ctl start -w waits until the call is cancelled.
	slowDir, slowPort := newCluster(t, "conformance-slow")
	f, err := os.OpenFile(filepath.Join(slowDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("restore_command = 'sleep 20'\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := touchOwned(slowDir, "recovery.signal"); err != nil {
		t.Fatal(err)
	}
	tg := target("dc1", dir, port, nil)
	slow := target("dc1", slowDir, slowPort, nil)
	good := tg.Component.Settings
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: newDriver(t),
		Target: tg,
		Slow:   &slow,
		Secret: env.Password,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: withSetting(good, "dataDri", "/x"), Field: "dataDri"},
			{Name: "no dataDir", Settings: withSetting(good, "dataDir", nil), Field: "dataDir"},
			{Name: "bad sslMode", Settings: withSetting(good, "sslMode", "sometimes"), Field: "sslMode"},
			{Name: "literal password", Settings: withSetting(good, "password", env.Password), Field: "password"},
			{Name: "bad port", Settings: withSetting(good, "port", 0), Field: "port"},
		},
		EvidenceLimit: EvidenceLimit,
	})
}
