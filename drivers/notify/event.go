package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// EventType names what happened.
type EventType string

const (
	GateOpened   EventType = "gate.opened"
	GateReminder EventType = "gate.reminder"
	// GateClosed resolves the gate's Alertmanager alert; webhooks that
	// subscribe to it hear who decided.
	GateClosed    EventType = "gate.closed"
	RunStarted    EventType = "run.started"
	RunCompleted  EventType = "run.completed"
	RunFailed     EventType = "run.failed"
	RPOBreached   EventType = "rpo.breached"
	RPORecovered  EventType = "rpo.recovered"
	maxFieldChars           = 4000
	// MaxBody bounds what one request carries.
	MaxBody = 64 << 10
)

// EventTypes lists every event type.
var EventTypes = []EventType{GateOpened, GateReminder, GateClosed, RunStarted, RunCompleted, RunFailed, RPOBreached, RPORecovered}

// alert is the Alertmanager alert name an event fires or resolves, "" for
// events that are no alert (a run starting or completing).
func (t EventType) alert() string {
	switch t {
	case GateOpened, GateReminder, GateClosed:
		return "DroverGateWaiting"
	case RunFailed:
		return "DroverRunFailed"
	case RPOBreached, RPORecovered:
		return "DroverRPOBreached"
	}
	return ""
}

// resolves reports whether the event ends its alert.
func (t EventType) resolves() bool { return t == RPORecovered || t == GateClosed }

// Event is one thing to tell. ID must be stable across activity retries
// (e.g. workflow ID + gate + reminder number): it is the dedup key.
type Event struct {
	ID         string    `json:"id"`
	Type       EventType `json:"type"`
	At         time.Time `json:"at"`
	Plan       string    `json:"plan"`
	Kind       string    `json:"kind,omitempty"`
	WorkflowID string    `json:"workflowId,omitempty"`
	RunID      string    `json:"runId,omitempty"`
	Site       string    `json:"site,omitempty"`
	// Gate events.
	Gate      string   `json:"gate,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	Quorum    int      `json:"quorum,omitempty"`
	Approved  []string `json:"approved,omitempty"`
	Checklist []string `json:"checklist,omitempty"`
	// ApproveCommand is the exact CLI command that approves the gate.
	ApproveCommand string `json:"approveCommand,omitempty"`
	Reminder       int    `json:"reminder,omitempty"`
	// RPO events.
	RPOAge    time.Duration `json:"rpoAgeNanos,omitempty"`
	RPOTarget time.Duration `json:"rpoTargetNanos,omitempty"`
	// Message is a sentence for people; Error a failed run's error.
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
	// UIURL is the run's page in the Web UI (filled from Settings when
	// empty).
	UIURL string `json:"uiUrl,omitempty"`
}

// Check rejects an event that cannot be deduplicated or routed.
func (e Event) Check() error {
	if e.ID == "" {
		return fmt.Errorf("notify: event has no id (the dedup key)")
	}
	for _, t := range EventTypes {
		if t == e.Type {
			return nil
		}
	}
	return fmt.Errorf("notify: event %s: unknown type %q", e.ID, e.Type)
}

// RunURL is the Web UI page of a workflow run.
func RunURL(base, namespace, workflowID, runID string) string {
	if base == "" || workflowID == "" {
		return ""
	}
	u := strings.TrimRight(base, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows/" + url.PathEscape(workflowID)
	if runID != "" {
		u += "/" + url.PathEscape(runID)
	}
	return u
}

// bounded cuts long text so a body stays small.
func bounded(s string) string {
	if len(s) <= maxFieldChars {
		return s
	}
	return s[:maxFieldChars] + "… (cut)"
}

func (e Event) bounded() Event {
	e.Message, e.Error = bounded(e.Message), bounded(e.Error)
	if len(e.Checklist) > 50 {
		e.Checklist = e.Checklist[:50]
	}
	for i := range e.Checklist {
		e.Checklist[i] = bounded(e.Checklist[i])
	}
	return e
}

// Text is the event as a few lines for chat.
func (e Event) Text() string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	switch e.Type {
	case GateOpened:
		w(":raising_hand: drover %s of *%s* waits at gate *%s*", e.Kind, e.Plan, e.Gate)
	case GateReminder:
		w(":alarm_clock: reminder %d: drover %s of *%s* still waits at gate *%s*", e.Reminder, e.Kind, e.Plan, e.Gate)
	case GateClosed:
		w(":ballot_box_with_check: gate *%s* of drover %s of *%s* closed", e.Gate, e.Kind, e.Plan)
	case RunStarted:
		w(":arrow_forward: drover %s of *%s* started", e.Kind, e.Plan)
	case RunCompleted:
		w(":white_check_mark: drover %s of *%s* completed", e.Kind, e.Plan)
	case RunFailed:
		w(":x: drover %s of *%s* failed", e.Kind, e.Plan)
	case RPOBreached:
		w(":rotating_light: RPO of *%s* breached: newest usable point is %s old (target %s)", e.Plan, e.RPOAge.Round(time.Second), e.RPOTarget)
	case RPORecovered:
		w(":large_green_circle: RPO of *%s* met again: newest usable point is %s old (target %s)", e.Plan, e.RPOAge.Round(time.Second), e.RPOTarget)
	}
	if e.Site != "" {
		w(" (site %s)", e.Site)
	}
	w("\n")
	if e.Gate != "" && len(e.Approvers) > 0 {
		w("approvers: %s; quorum %d", strings.Join(e.Approvers, ", "), max(e.Quorum, 1))
		if len(e.Approved) > 0 {
			w(" (%d so far: %s)", len(e.Approved), strings.Join(e.Approved, ", "))
		}
		w("\n")
	}
	for _, c := range e.Checklist {
		w("• %s\n", c)
	}
	if e.ApproveCommand != "" {
		w("approve: `%s`\n", e.ApproveCommand)
	}
	if e.Message != "" {
		w("%s\n", e.Message)
	}
	if e.Error != "" {
		w("error: %s\n", e.Error)
	}
	if e.UIURL != "" {
		w("<%s|open in the Temporal Web UI>\n", e.UIURL)
	}
	return bounded(b.String())
}

// body renders the request body for a receiver format. A firing
// Alertmanager alert lasts alertTTL unless resolved earlier (Alertmanager
// resolves an alert nobody re-sends after its resolve_timeout, 5m by
// default, long before a gate is approved).
func (e Event) body(format string, alertTTL time.Duration) ([]byte, error) {
	var v any
	switch format {
	case FormatSlack:
		v = map[string]any{"text": e.Text()}
	case FormatAlertmanager:
		labels := map[string]string{"alertname": e.Type.alert(), "plan": e.Plan, "severity": "critical", "source": "drover"}
		if e.Gate != "" {
			labels["gate"] = e.Gate
			labels["workflow_id"] = e.WorkflowID
			labels["severity"] = "warning"
		}
		if e.Type == RunFailed {
			labels["kind"] = e.Kind
			labels["workflow_id"] = e.WorkflowID
		}
		ann := map[string]string{"summary": strings.SplitN(e.Text(), "\n", 2)[0], "description": e.Text()}
		if e.ApproveCommand != "" {
			ann["approve_command"] = e.ApproveCommand
		}
		if e.UIURL != "" {
			ann["ui_url"] = e.UIURL
		}
		a := map[string]any{"labels": labels, "annotations": ann, "startsAt": e.At.UTC().Format(time.RFC3339)}
		if e.Type.resolves() {
			// Resolving: the alert ended now.
			a["endsAt"] = e.At.UTC().Format(time.RFC3339)
		} else {
			a["endsAt"] = e.At.Add(alertTTL).UTC().Format(time.RFC3339)
		}
		if e.UIURL != "" {
			a["generatorURL"] = e.UIURL
		}
		v = []any{a}
	default:
		v = struct {
			Version int `json:"version"`
			Event
			Text string `json:"text"`
		}{1, e, e.Text()}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBody {
		return nil, fmt.Errorf("notify: event %s: body of %d bytes exceeds %d", e.ID, len(data), MaxBody)
	}
	return data, nil
}

// GateEventID is the dedup key of a gate's opening (reminder 0) or its
// n-th reminder in one run: the same on every activity retry.
func GateEventID(workflowID, runID, gate string, reminder int) string {
	if reminder == 0 {
		return fmt.Sprintf("%s/%s/gate/%s/opened", workflowID, runID, gate)
	}
	return fmt.Sprintf("%s/%s/gate/%s/reminder/%d", workflowID, runID, gate, reminder)
}

// RunEventID is the dedup key of a run's start, completion or failure.
func RunEventID(workflowID, runID string, t EventType) string {
	return fmt.Sprintf("%s/%s/%s", workflowID, runID, t)
}

// RPOEventID is the dedup key of an RPO transition: the monitor's run and
// the check (its sequence number) that saw it.
func RPOEventID(workflowID string, check int64, t EventType) string {
	return fmt.Sprintf("%s/rpo/%d/%s", workflowID, check, t)
}
