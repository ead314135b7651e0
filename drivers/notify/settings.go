// Package notify sends drover's events to people: generic JSON webhooks,
// Slack-compatible text and Alertmanager's API. Activities call it; each
// event is sent at most once per receiver (a sent-record keyed by event id,
// plus an Idempotency-Key header), retried with backoff, with URLs and
// tokens resolved from secret references at send time and never shown in
// errors.
package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Receiver formats.
const (
	FormatWebhook      = "webhook"
	FormatSlack        = "slack"
	FormatAlertmanager = "alertmanager"
)

// Settings is a plan's notify: section.
type Settings struct {
	Receivers []Receiver `json:"receivers"`
	// UIURL is the Temporal Web UI's base address, for links in messages
	// (e.g. http://temporal.example.com:8233).
	UIURL string `json:"uiURL,omitempty"`
	// Namespace is the Temporal namespace the links point into (default).
	Namespace string `json:"namespace,omitempty"`
	// AlertTTL is how long a firing Alertmanager alert (gate waiting, RPO
	// breached, run failed) lasts unless resolved first (default 24h).
	AlertTTL Duration `json:"alertTTL,omitempty"`
}

// Receiver is one destination.
type Receiver struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	// URL is a secret reference (env:NAME or file:PATH): webhook URLs often
	// are the credential (Slack's are). For Alertmanager it is the base
	// address; /api/v2/alerts is appended.
	URL secret.Ref `json:"url"`
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token secret.Ref `json:"token,omitempty"`
	// Events limits the receiver to these event types; all when empty.
	Events []EventType `json:"events,omitempty"`
	// Timeout bounds one attempt (default 10s).
	Timeout Duration `json:"timeout,omitempty"`
	// Attempts is how many times a failing send is tried (default 4).
	Attempts int `json:"attempts,omitempty"`
}

// Duration decodes "10s"-style strings.
type Duration time.Duration

// UnmarshalJSON parses a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid duration %s: want a string such as \"10s\"", string(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %v", s, err)
	}
	if v <= 0 {
		return fmt.Errorf("invalid duration %q: must be > 0", s)
	}
	*d = Duration(v)
	return nil
}

// DecodeSettings decodes a notify: section strictly (an unknown field is an
// error naming it) and fills defaults. It resolves no secret.
func DecodeSettings(raw map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return s, drivers.BadSettings(fmt.Errorf("notify: %w", err))
	}
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if s.AlertTTL == 0 {
		s.AlertTTL = Duration(24 * time.Hour)
	}
	seen := map[string]bool{}
	for i := range s.Receivers {
		r := &s.Receivers[i]
		at := fmt.Sprintf("notify.receivers[%d]", i)
		if r.Name == "" {
			return s, drivers.BadSettingsf("%s.name: required", at)
		}
		if seen[r.Name] {
			return s, drivers.BadSettingsf("%s.name: %q is used twice", at, r.Name)
		}
		seen[r.Name] = true
		switch r.Format {
		case FormatWebhook, FormatSlack, FormatAlertmanager:
		case "":
			r.Format = FormatWebhook
		default:
			return s, drivers.BadSettingsf("%s.format: %q: want webhook, slack or alertmanager", at, r.Format)
		}
		if err := r.URL.Check(); err != nil {
			return s, drivers.BadSettingsf("%s.url: %v", at, err)
		}
		if r.Token != "" {
			if err := r.Token.Check(); err != nil {
				return s, drivers.BadSettingsf("%s.token: %v", at, err)
			}
		}
		for j, e := range r.Events {
			if !slices.Contains(EventTypes, e) {
				return s, drivers.BadSettingsf("%s.events[%d]: unknown event %q (want one of %v)", at, j, e, EventTypes)
			}
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(10 * time.Second)
		}
		if r.Attempts == 0 {
			r.Attempts = 4
		}
		if r.Attempts < 1 || r.Attempts > 20 {
			return s, drivers.BadSettingsf("%s.attempts: %d: want 1 to 20", at, r.Attempts)
		}
	}
	return s, nil
}

// wants reports whether the receiver takes events of type t.
func (r Receiver) wants(t EventType) bool {
	if len(r.Events) == 0 {
		return r.Format != FormatAlertmanager || t.alert() != ""
	}
	return slices.Contains(r.Events, t)
}

// Checker checks a plan's notify settings without sending anything; the
// registry offers it to plan validation.
type Checker struct{}

// CheckSettings decodes the settings strictly.
func (Checker) CheckSettings(raw map[string]any) error {
	_, err := DecodeSettings(raw)
	return err
}
