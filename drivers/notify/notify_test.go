package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

// receiver is a local HTTP endpoint that records what it got and fails
// the first failFirst requests with 503.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	status    int
	calls     int
	bodies    [][]byte
	headers   []http.Header
	paths     []string
	srv       *httptest.Server
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if r.calls <= r.failFirst {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.status != 0 {
			// Echo what a careless receiver might: the path and the auth.
			http.Error(w, "denied "+req.URL.Path+" "+req.Header.Get("Authorization"), r.status)
			return
		}
		r.bodies = append(r.bodies, b)
		r.headers = append(r.headers, req.Header.Clone())
		r.paths = append(r.paths, req.URL.Path)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func gateEvent() Event {
	return Event{
		ID: "failover-bpm-1/gate/start-secondary/opened", Type: GateOpened, At: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC),
		Plan: "bpm", Kind: "failover", WorkflowID: "failover-bpm-1", RunID: "r1", Gate: "start-secondary",
		Approvers: []string{"alice", "bob"}, Quorum: 1, Checklist: []string{"dc1 is down"},
		ApproveCommand: "drover approve failover-bpm-1 --gate start-secondary --as alice",
	}
}

func settingsFor(t *testing.T, raw map[string]any) Settings {
	t.Helper()
	s, err := DecodeSettings(raw)
	require.NoError(t, err)
	return s
}

func TestSendsEveryFormat(t *testing.T) {
	hook, slack, am := newReceiver(t, 0), newReceiver(t, 0), newReceiver(t, 0)
	t.Setenv("HOOK_URL", hook.srv.URL+"/hook")
	t.Setenv("SLACK_URL", slack.srv.URL+"/services/T000/B000/XXXX")
	t.Setenv("AM_URL", am.srv.URL)
	t.Setenv("HOOK_TOKEN", "s3cr3t-token")
	s := settingsFor(t, map[string]any{
		"uiURL": "http://ui.example:8233",
		"receivers": []any{
			map[string]any{"name": "ops", "format": "webhook", "url": "env:HOOK_URL", "token": "env:HOOK_TOKEN"},
			map[string]any{"name": "chat", "format": "slack", "url": "env:SLACK_URL"},
			map[string]any{"name": "am", "format": "alertmanager", "url": "env:AM_URL"},
		},
	})
	n := &Notifier{Settings: s, Record: DirRecord{Dir: t.TempDir()}, Backoff: time.Millisecond}
	ds, err := n.Send(context.Background(), gateEvent())
	require.NoError(t, err)
	require.Len(t, ds, 3)
	for _, d := range ds {
		assert.Equal(t, "sent", d.Outcome, d.Receiver)
	}

	require.Equal(t, 1, hook.got())
	var generic map[string]any
	require.NoError(t, json.Unmarshal(hook.bodies[0], &generic))
	assert.EqualValues(t, 1, generic["version"])
	assert.Equal(t, "gate.opened", generic["type"])
	assert.Equal(t, "drover approve failover-bpm-1 --gate start-secondary --as alice", generic["approveCommand"])
	assert.Equal(t, "http://ui.example:8233/namespaces/default/workflows/failover-bpm-1/r1", generic["uiUrl"])
	assert.Equal(t, "Bearer s3cr3t-token", hook.headers[0].Get("Authorization"))
	assert.Equal(t, gateEvent().ID, hook.headers[0].Get("Idempotency-Key"))

	var sl map[string]string
	require.NoError(t, json.Unmarshal(slack.bodies[0], &sl))
	assert.Contains(t, sl["text"], "waits at gate *start-secondary*")
	assert.Contains(t, sl["text"], "`drover approve failover-bpm-1 --gate start-secondary --as alice`")
	assert.Contains(t, sl["text"], "<http://ui.example:8233/namespaces/default/workflows/failover-bpm-1/r1|open in the Temporal Web UI>")
	assert.Equal(t, []string{"/services/T000/B000/XXXX"}, slack.paths)

	assert.Equal(t, []string{"/api/v2/alerts"}, am.paths)
	var alerts []struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       *time.Time        `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
	}
	require.NoError(t, json.Unmarshal(am.bodies[0], &alerts))
	require.Len(t, alerts, 1)
	assert.Equal(t, map[string]string{"alertname": "DroverGateWaiting", "plan": "bpm", "gate": "start-secondary",
		"workflow_id": "failover-bpm-1", "severity": "warning", "source": "drover"}, alerts[0].Labels)
	assert.Equal(t, "drover approve failover-bpm-1 --gate start-secondary --as alice", alerts[0].Annotations["approve_command"])
	require.NotNil(t, alerts[0].EndsAt)
	assert.Equal(t, gateEvent().At.Add(24*time.Hour), *alerts[0].EndsAt, "firing for the alert TTL, not Alertmanager's 5m")

	// The gate closes: the alert resolves now.
	closed := gateEvent()
	closed.ID, closed.Type, closed.At = GateEventID("failover-bpm-1", "r1", "start-secondary", 0)+"/closed", GateClosed, closed.At.Add(time.Hour)
	_, err = n.Send(context.Background(), closed)
	require.NoError(t, err)
	require.Equal(t, 2, am.got())
	alerts = nil
	require.NoError(t, json.Unmarshal(am.bodies[1], &alerts))
	assert.Equal(t, "DroverGateWaiting", alerts[0].Labels["alertname"])
	assert.Equal(t, closed.At, *alerts[0].EndsAt)

	// The same event again (an activity retry): nobody gets it twice.
	ds, err = n.Send(context.Background(), gateEvent())
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, "already-sent", d.Outcome)
	}
	assert.Equal(t, 2, hook.got(), "the opening once, the closing once")
	assert.Equal(t, 2, slack.got())
	assert.Equal(t, 2, am.got())
}

func TestAlertmanagerTakesAlertsOnlyAndResolves(t *testing.T) {
	am := newReceiver(t, 0)
	t.Setenv("AM_URL", am.srv.URL+"/")
	n := &Notifier{Settings: settingsFor(t, map[string]any{"receivers": []any{
		map[string]any{"name": "am", "format": "alertmanager", "url": "env:AM_URL"}}})}
	at := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	ds, err := n.Send(context.Background(), Event{ID: "r1/started", Type: RunStarted, Plan: "bpm", Kind: "backup", At: at})
	require.NoError(t, err)
	assert.Equal(t, "skipped", ds[0].Outcome)
	_, err = n.Send(context.Background(), Event{ID: "rpo/1/recovered", Type: RPORecovered, Plan: "bpm", At: at, RPOAge: 5 * time.Minute, RPOTarget: 15 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, 1, am.got())
	var alerts []map[string]any
	require.NoError(t, json.Unmarshal(am.bodies[0], &alerts))
	assert.Equal(t, "DroverRPOBreached", alerts[0]["labels"].(map[string]any)["alertname"])
	assert.Equal(t, "2026-03-02T11:00:00Z", alerts[0]["endsAt"])
}

func TestRetriesAReceiverThatRecovers(t *testing.T) {
	flaky := newReceiver(t, 2)
	t.Setenv("FLAKY_URL", flaky.srv.URL)
	n := &Notifier{Settings: settingsFor(t, map[string]any{"receivers": []any{
		map[string]any{"name": "flaky", "url": "env:FLAKY_URL", "attempts": 3}}}), Record: DirRecord{Dir: t.TempDir()}, Backoff: time.Millisecond}
	ds, err := n.Send(context.Background(), gateEvent())
	require.NoError(t, err)
	assert.Equal(t, "sent", ds[0].Outcome)
	assert.Equal(t, 3, ds[0].Attempts)
	assert.Equal(t, 1, flaky.got())
}

func TestReceiverDownFailsOthersStillSent(t *testing.T) {
	up := newReceiver(t, 0)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/hooks/secret-path-123"
	down.Close() // nothing listens there any more
	t.Setenv("UP_URL", up.srv.URL)
	t.Setenv("DOWN_URL", downURL)
	rec := DirRecord{Dir: t.TempDir()}
	n := &Notifier{Settings: settingsFor(t, map[string]any{"receivers": []any{
		map[string]any{"name": "down", "url": "env:DOWN_URL", "attempts": 2, "timeout": "2s"},
		map[string]any{"name": "up", "url": "env:UP_URL"},
	}}), Record: rec, Backoff: time.Millisecond}
	ds, err := n.Send(context.Background(), gateEvent())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "notify down: attempt 2")
	assert.NotContains(t, err.Error(), "secret-path-123")
	assert.NotContains(t, err.Error(), downURL)
	assert.False(t, drivers.Permanent(err), "a receiver that is down may come back: retryable")
	assert.Equal(t, "failed", ds[0].Outcome)
	assert.Equal(t, 2, ds[0].Attempts)
	assert.Equal(t, "sent", ds[1].Outcome)

	// The activity's retry: "up" already has it, "down" is tried again.
	ds, err = n.Send(context.Background(), gateEvent())
	require.Error(t, err)
	assert.Equal(t, "already-sent", ds[1].Outcome)
	assert.Equal(t, 1, up.got())
}

func TestRejectedIsPermanentAndLeaksNothing(t *testing.T) {
	r := newReceiver(t, 0)
	r.status = http.StatusUnauthorized
	t.Setenv("R_URL", r.srv.URL+"/T0/B0/very-secret-path")
	t.Setenv("R_TOKEN", "tok-abcdef")
	n := &Notifier{Settings: settingsFor(t, map[string]any{"receivers": []any{
		map[string]any{"name": "r", "format": "slack", "url": "env:R_URL", "token": "env:R_TOKEN"}}}), Backoff: time.Millisecond}
	ds, err := n.Send(context.Background(), gateEvent())
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
	assert.Equal(t, 1, ds[0].Attempts, "a 401 is not retried")
	assert.Contains(t, err.Error(), "401")
	assert.NotContains(t, err.Error(), "very-secret-path")
	assert.NotContains(t, err.Error(), "tok-abcdef")
}

func TestDecodeSettingsStrict(t *testing.T) {
	_, err := DecodeSettings(map[string]any{"receivers": []any{map[string]any{"name": "a", "url": "env:X", "urll": "x"}}})
	require.ErrorContains(t, err, `unknown field "urll"`)
	assert.True(t, drivers.Permanent(err))
	_, err = DecodeSettings(map[string]any{"receivers": []any{map[string]any{"name": "a", "url": "https://hooks.example/abc"}}})
	require.ErrorContains(t, err, "notify.receivers[0].url")
	assert.NotContains(t, err.Error(), "hooks.example", "a literal URL is refused without being echoed")
	_, err = DecodeSettings(map[string]any{"receivers": []any{map[string]any{"name": "a", "url": "env:X", "events": []any{"gate.approved"}}}})
	require.ErrorContains(t, err, `notify.receivers[0].events[0]: unknown event "gate.approved"`)
	_, err = DecodeSettings(map[string]any{"receivers": []any{map[string]any{"name": "a", "url": "env:X", "format": "teams"}}})
	require.ErrorContains(t, err, `notify.receivers[0].format: "teams"`)
	s, err := DecodeSettings(map[string]any{"receivers": []any{map[string]any{"name": "a", "url": "file:/run/secrets/hook", "events": []any{"rpo.breached"}}}})
	require.NoError(t, err)
	assert.Equal(t, FormatWebhook, s.Receivers[0].Format)
	assert.Equal(t, 4, s.Receivers[0].Attempts)
	assert.Equal(t, Duration(10*time.Second), s.Receivers[0].Timeout)
	assert.False(t, s.Receivers[0].wants(GateOpened))
}

func TestBodiesAreBounded(t *testing.T) {
	ev := gateEvent()
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = 'x'
	}
	ev.Error = string(big)
	b, err := ev.bounded().body(FormatWebhook, time.Hour)
	require.NoError(t, err)
	assert.Less(t, len(b), MaxBody)
	assert.Contains(t, string(b), "(cut)")
}

func TestEventNeedsAnID(t *testing.T) {
	n := &Notifier{}
	_, err := n.Send(context.Background(), Event{Type: RunStarted})
	require.ErrorContains(t, err, "no id")
}

func TestEventIDsAreStableAndDistinct(t *testing.T) {
	assert.Equal(t, GateEventID("fo-1", "r1", "start-secondary", 0), GateEventID("fo-1", "r1", "start-secondary", 0))
	ids := map[string]bool{
		GateEventID("fo-1", "r1", "g", 0): true, GateEventID("fo-1", "r1", "g", 1): true, GateEventID("fo-1", "r2", "g", 0): true,
		RunEventID("fo-1", "r1", RunStarted): true, RunEventID("fo-1", "r1", RunFailed): true,
		RPOEventID("mon", 3, RPOBreached): true, RPOEventID("mon", 4, RPORecovered): true,
	}
	assert.Len(t, ids, 7)
}
