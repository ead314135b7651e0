package db2

import (
	"testing"

	"github.com/drover-dr/drover/drivers/driverstest"
)

// The DB2 driver takes no secret (commands run as the instance owner), so
// the case has none to leak.
func TestConformance(t *testing.T) {
	in := newInstance(t, "BPMDB", "CMNDB")
	tg := in.target(t, map[string]any{"databases": []any{"BPMDB", "CMNDB"}})
	delete(tg.Component.Settings, "database")
	good := tg.Component.Settings
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
	slowIn := newInstance(t, "BPMDB")
	slowIn.write(t, "hang-db2start", "")
	slow := slowIn.target(t, nil)
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: New(nil),
		Target: tg,
		Slow:   &slow,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with("instance", "db2inst1"), Field: "instance"},
			{Name: "no owner", Settings: with("instanceOwner", nil), Field: "instanceOwner"},
			{Name: "no database", Settings: with("databases", nil), Field: "database"},
			{Name: "bad database", Settings: with("databases", []any{"BPM DB"}), Field: "databases[0]"},
			{Name: "unknown timeout", Settings: with("timeouts", map[string]any{"restore": "1m"}), Field: "timeouts.restore"},
		},
	})
}
