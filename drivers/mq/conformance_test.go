package mq

import (
	"testing"

	"github.com/drover-dr/drover/drivers/driverstest"
)

// The MQ control commands take no secret, so the case has none to leak.
func TestConformance(t *testing.T) {
	in := newInstall(t, "QM1")
	tg := in.target(nil)
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
	slowIn := newInstall(t, "QM1")
	slowIn.write(t, "hang-strmqm", "")
	slow := slowIn.target(nil)
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: New(nil),
		Target: tg,
		Slow:   &slow,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: with("qmgr", "QM1"), Field: "qmgr"},
			{Name: "no queue manager", Settings: with("queueManager", nil), Field: "queueManager"},
			{Name: "switchover without multi-instance", Settings: with("switchover", true), Field: "switchover"},
			{Name: "bad immediate mode", Settings: with("immediateMode", "kill"), Field: "immediateMode"},
		},
	})
}
