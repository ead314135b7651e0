package labdriver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/driverstest"
	labdriver "github.com/drover-dr/drover/drivers/lab"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

func TestMain(m *testing.M) { labtest.Main(m) }

func site(l *lab.Lab, name string) drivers.Site {
	s, _ := l.Topo.Site(name)
	return drivers.Site{Name: name, Role: s.Role, Settings: map[string]any{"labDir": l.Dir, "host": s.Host, "other": "ignored"}}
}

func target(l *lab.Lab, siteName, server string) drivers.Target {
	spec, _ := l.Topo.Server(server)
	return drivers.Target{Plan: "lab", Site: site(l, siteName), Component: drivers.Component{
		Name: server, Role: string(spec.Role), Product: spec.Product, Settings: map[string]any{"port": spec.Port},
	}}
}

func TestMiddlewareStartsStopsAndReports(t *testing.T) {
	l := labtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := l.Configure(ctx, "dc1")
	require.NoError(t, err)
	m := labdriver.NewMiddleware(labtest.Logger(t))

	// Out of order: the server's own refusal comes back.
	_, err = m.Start(ctx, target(l, "dc1", "dmgr"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "dmgr: cannot start: database db at ")
	require.False(t, errors.Is(err, drivers.ErrBadSettings), "a dependency down is worth a retry")

	ev, err := m.Start(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)
	require.False(t, ev.AlreadyDone)
	st, err := m.Status(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)
	require.Equal(t, drivers.StateRunning, st.State)
	require.Positive(t, st.PID)
	ev, err = m.Start(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)
	require.True(t, ev.AlreadyDone)

	ev, err = m.Quiesce(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)
	require.Contains(t, ev.Output, `"quiesced":true`)
	_, err = m.Resume(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)

	_, err = m.Stop(ctx, target(l, "dc1", "db"), drivers.StopGraceful)
	require.NoError(t, err)
	st, err = m.Status(ctx, target(l, "dc1", "db"))
	require.NoError(t, err)
	require.Equal(t, drivers.StateStopped, st.State)
	ev, err = m.Stop(ctx, target(l, "dc1", "db"), drivers.StopImmediate)
	require.NoError(t, err)
	require.True(t, ev.AlreadyDone)

	// Nothing restored at the secondary: the server says so.
	_, err = m.Start(ctx, target(l, "dc2", "db"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "data root")
}

func TestMiddlewareSettings(t *testing.T) {
	l := labtest.New(t)
	m := labdriver.NewMiddleware(nil)
	ctx := context.Background()
	require.NoError(t, m.CheckSettings(map[string]any{"node": "node1", "port": 17000, "quiesceMax": "1m"}))
	err := m.CheckSettings(map[string]any{"prot": 1})
	require.ErrorIs(t, err, drivers.ErrBadSettings)
	require.Contains(t, err.Error(), `unknown field "prot"`)

	tg := target(l, "dc1", "bpm-app1")
	tg.Component.Settings["port"] = 1
	_, err = m.Start(ctx, tg)
	require.ErrorIs(t, err, drivers.ErrBadSettings)
	require.Contains(t, err.Error(), "port 1 in the plan")

	tg = target(l, "dc1", "bpm-app1")
	tg.Site.Settings["labDir"] = "${DROVER_NO_SUCH_VARIABLE}/lab"
	_, err = m.Start(ctx, tg)
	require.ErrorIs(t, err, drivers.ErrBadSettings)
	require.Contains(t, err.Error(), "DROVER_NO_SUCH_VARIABLE is not set")

	tg = target(l, "dc1", "bpm-app1")
	tg.Site.Settings["host"] = "127.0.9.1"
	_, err = m.Status(ctx, tg)
	require.ErrorIs(t, err, drivers.ErrBadSettings)

	tg = target(l, "dc1", "no-such-server")
	_, err = m.Status(ctx, tg)
	require.ErrorIs(t, err, drivers.ErrBadSettings)
}

func TestProbeAndRedirect(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	p := labdriver.NewProbe(labtest.Logger(t))
	check := func(level string) drivers.CheckResult {
		t.Helper()
		res, err := p.Check(ctx, drivers.CheckRequest{Plan: "lab", Site: site(l, "dc1"), Level: level, Name: level,
			Settings: map[string]any{"check": level, "timeout": "20s"}})
		require.NoError(t, err)
		return res
	}
	for _, level := range lab.Levels {
		res := check(level)
		require.True(t, res.Passed, "%s: %s %s", level, res.Summary, res.Details["problems"])
		require.NotEmpty(t, res.Evidence.Action)
	}
	res := check(lab.LevelSystem)
	require.Equal(t, "12", res.Details["running"])

	_, err := l.Stop(ctx, "dc1", "mon-me1", true)
	require.NoError(t, err)
	res = check(lab.LevelSystem)
	require.False(t, res.Passed)
	require.Contains(t, res.Details["problems"], "mon-me1")

	// The secondary runs nothing: its checks fail, they do not error.
	res, err = p.Check(ctx, drivers.CheckRequest{Site: site(l, "dc2"), Settings: map[string]any{"check": "system"}})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, res.Summary, "not reachable")

	err = p.CheckSettings(map[string]any{"check": "everything"})
	require.ErrorIs(t, err, drivers.ErrBadSettings)
	require.Contains(t, err.Error(), "system, application, instance, consistency, sca, monitoring")

	r := labdriver.NewRedirect(labtest.Logger(t))
	cur, err := r.Current(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	require.NoError(t, err)
	require.Equal(t, "dc1", cur)
	ev, err := r.PointTo(ctx, drivers.RedirectRequest{Site: site(l, "dc2")})
	require.NoError(t, err)
	require.True(t, strings.Contains(ev.Output, "was dc1, now dc2"), ev.Output)
	cur, err = r.Current(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	require.NoError(t, err)
	require.Equal(t, "dc2", cur)
	ev, err = r.PointTo(ctx, drivers.RedirectRequest{Site: site(l, "dc2")})
	require.NoError(t, err)
	require.True(t, ev.AlreadyDone)

	// Draining refuses new orders at the front door; pointing at a site
	// again takes them.
	r.PointTo(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	ev, err = r.Drain(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	require.NoError(t, err)
	require.Contains(t, ev.Output, "was dc1, now no site")
	cur, err = r.Current(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	require.NoError(t, err)
	require.Equal(t, "", cur)
	rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 20, Duration: 500 * time.Millisecond})
	require.NoError(t, err)
	require.Zero(t, rep.Accepted, "a drained front door takes no order")
	require.Positive(t, rep.Failed)
	_, err = r.PointTo(ctx, drivers.RedirectRequest{Site: site(l, "dc1")})
	require.NoError(t, err)
	rep, err = l.RunLoad(ctx, lab.LoadOptions{Rate: 20, Duration: 500 * time.Millisecond})
	require.NoError(t, err)
	require.Positive(t, rep.Accepted)

	// The conformance suite ends with the front door at dc1, as it was.
	driverstest.Redirect(t, driverstest.RedirectCase{
		Driver:  r,
		Request: drivers.RedirectRequest{Plan: "lab", Settings: map[string]any{}},
		Sites:   [2]drivers.Site{site(l, "dc2"), site(l, "dc1")},
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: map[string]any{"labDirectory": l.Dir}, Field: "labDirectory"},
			{Name: "labDir not a string", Settings: map[string]any{"labDir": 5}, Field: "labDir"},
		},
	})
}

func TestMiddlewareConformance(t *testing.T) {
	l := labtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := l.Configure(ctx, "dc1")
	require.NoError(t, err)
	tg := target(l, "dc1", "db")
	withPort := func(port any) map[string]any { return map[string]any{"port": port} }
	driverstest.Middleware(t, driverstest.MiddlewareCase{
		Driver: labdriver.NewMiddleware(labtest.Logger(t)),
		Target: tg,
		Bad: []driverstest.BadSettings{
			{Name: "unknown field", Settings: map[string]any{"prot": 1}, Field: "prot"},
			{Name: "port of another server", Settings: withPort(1), Field: "port", NeedsTarget: true},
			{Name: "port not a number", Settings: withPort("db"), Field: "port"},
			{Name: "bad quiesceMax", Settings: map[string]any{"port": tg.Component.Settings["port"], "quiesceMax": "later"}, Field: "quiesceMax"},
		},
	})
}
