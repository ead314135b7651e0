package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
)

// Record remembers which events went to which receiver, so an activity
// retried after a partial send does not send twice.
type Record interface {
	Sent(receiver, eventID string) (bool, error)
	MarkSent(receiver, eventID string) error
}

// DirRecord keeps one empty file per (receiver, event) in a directory (on
// the orchestrator's disk or in the store), named by a hash of the pair.
type DirRecord struct{ Dir string }

func (d DirRecord) path(receiver, eventID string) string {
	h := sha256.Sum256([]byte(receiver + "\x00" + eventID))
	return filepath.Join(d.Dir, hex.EncodeToString(h[:16]))
}

// Sent reports whether the pair was marked.
func (d DirRecord) Sent(receiver, eventID string) (bool, error) {
	_, err := os.Stat(d.path(receiver, eventID))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("notify: sent-record: %w", err)
}

// MarkSent marks the pair.
func (d DirRecord) MarkSent(receiver, eventID string) error {
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return fmt.Errorf("notify: sent-record: %w", err)
	}
	if err := os.WriteFile(d.path(receiver, eventID), nil, 0o640); err != nil {
		return fmt.Errorf("notify: sent-record: %w", err)
	}
	return nil
}

// Notifier sends events to a plan's receivers.
type Notifier struct {
	Settings Settings
	Record   Record
	Client   *http.Client
	Logger   *zap.Logger
	// Backoff is the first retry's wait, doubled each time up to 30s
	// (default 500ms).
	Backoff time.Duration
}

// Delivery is what happened at one receiver.
type Delivery struct {
	Receiver string `json:"receiver"`
	// Outcome is sent, already-sent or skipped (not subscribed).
	Outcome  string        `json:"outcome"`
	Attempts int           `json:"attempts,omitempty"`
	Status   int           `json:"status,omitempty"`
	Took     time.Duration `json:"took,omitempty"`
}

// Send delivers ev to every receiver that wants it and has not had it yet.
// Receivers that fail do not stop the others; the error names each
// failing receiver (never its URL or token). A rejected request (4xx but
// 408/429) is permanent: drivers.Permanent reports it.
func (n *Notifier) Send(ctx context.Context, ev Event) ([]Delivery, error) {
	if err := ev.Check(); err != nil {
		return nil, drivers.BadSettings(err)
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	if ev.UIURL == "" {
		ev.UIURL = RunURL(n.Settings.UIURL, n.Settings.Namespace, ev.WorkflowID, ev.RunID)
	}
	ev = ev.bounded()
	log := n.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var out []Delivery
	var errs []error
	for _, r := range n.Settings.Receivers {
		if !r.wants(ev.Type) {
			out = append(out, Delivery{Receiver: r.Name, Outcome: "skipped"})
			continue
		}
		if n.Record != nil {
			sent, err := n.Record.Sent(r.Name, ev.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if sent {
				out = append(out, Delivery{Receiver: r.Name, Outcome: "already-sent"})
				continue
			}
		}
		d, err := n.sendOne(ctx, r, ev)
		out = append(out, d)
		if err != nil {
			log.Warn("notification failed", zap.String("receiver", r.Name), zap.String("event", ev.ID), zap.Int("attempts", d.Attempts), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		log.Info("notification sent", zap.String("receiver", r.Name), zap.String("event", ev.ID), zap.String("type", string(ev.Type)))
		if n.Record != nil {
			if err := n.Record.MarkSent(r.Name, ev.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

func (n *Notifier) sendOne(ctx context.Context, r Receiver, ev Event) (Delivery, error) {
	d := Delivery{Receiver: r.Name}
	start := time.Now()
	defer func() { d.Took = time.Since(start) }()
	body, err := ev.body(r.Format, time.Duration(n.Settings.AlertTTL))
	if err != nil {
		return d, drivers.BadSettings(err)
	}
	target, err := r.URL.Resolve()
	if err != nil {
		return d, drivers.BadSettings(fmt.Errorf("notify %s: url: %w", r.Name, err))
	}
	if r.Format == FormatAlertmanager {
		target = strings.TrimRight(target, "/") + "/api/v2/alerts"
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return d, drivers.BadSettingsf("notify %s: url from %s is not an http(s) URL", r.Name, r.URL)
	}
	var token string
	if r.Token != "" {
		if token, err = r.Token.Resolve(); err != nil {
			return d, drivers.BadSettings(fmt.Errorf("notify %s: token: %w", r.Name, err))
		}
	}
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	wait := n.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	var last error
	for d.Attempts < r.Attempts {
		d.Attempts++
		status, err := post(ctx, client, time.Duration(r.Timeout), target, token, ev.ID, body)
		d.Status = status
		if err == nil {
			d.Outcome = "sent"
			return d, nil
		}
		last = fmt.Errorf("notify %s: attempt %d: %w", r.Name, d.Attempts, err)
		if status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
			return d, drivers.Unsupported(last)
		}
		if d.Attempts == r.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return d, errors.Join(last, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	d.Outcome = "failed"
	return d, last
}

// post makes one attempt. Errors carry the status and a bounded piece of
// the answer, never the URL (a webhook URL is often the secret).
func post(ctx context.Context, c *http.Client, timeout time.Duration, target, token, eventID string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("cannot build request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drover-notify/1")
	// Receivers that honour it drop a duplicate of an event a crash made us
	// send twice; the sent-record covers the rest.
	req.Header.Set("Idempotency-Key", eventID)
	req.Header.Set("X-Drover-Event-Id", eventID)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error repeats the URL
		}
		return 0, errors.New(redact(err.Error(), target, token))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("receiver answered %s: %s", resp.Status, redact(strings.TrimSpace(string(snippet)), target, token))
}

// redact removes the URL, its path and the token from text a receiver or
// the network stack produced.
func redact(s, target, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	s = strings.ReplaceAll(s, target, "[url]")
	if u, err := url.Parse(target); err == nil {
		if u.Path != "" && u.Path != "/" {
			s = strings.ReplaceAll(s, u.Path, "[path]")
		}
		if u.RawQuery != "" {
			s = strings.ReplaceAll(s, u.RawQuery, "[query]")
		}
	}
	return s
}
