// Package driverstest is the conformance suite every middleware, probe and
// redirect driver runs from its own tests. A driver's test builds a Case
// against a real (or contract) target and calls Middleware, Probe or
// Redirect; the suite then checks what every driver owes its callers:
//
//   - start of a started component, stop of a stopped one and a redirect to
//     the site already served are no-ops marked AlreadyDone, and status or
//     Current tells the truth after each call;
//   - bad settings fail with an error marked permanent (drivers.Permanent)
//     that names the offending field, from every entry point and from
//     CheckSettings when the driver has it;
//   - a cancelled context stops the work: a call made with a cancelled
//     context fails and changes nothing, and a slow call returns promptly
//     once its context is cancelled;
//   - evidence is bounded, and the case's secret value appears in no
//     evidence, status, summary, detail or error.
//
// The case supplies its secret as a value its settings reach by reference
// (env:NAME with t.Setenv, or file:PATH), and arranges for the target to see
// it (a command that prints it, a server that requires it), so the check
// can fail.
package driverstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// DefaultEvidenceLimit bounds Evidence.Output when a case sets no limit.
const DefaultEvidenceLimit = 4096

// DefaultPrompt is how long a call may take to return once its context is
// cancelled, when a case sets no bound. It is a generous ceiling for a
// "stops promptly" check, far below the slow call's own duration.
const DefaultPrompt = 10 * time.Second

// BadSettings is settings a driver must refuse.
type BadSettings struct {
	// Name describes the variant in the subtest name.
	Name     string
	Settings map[string]any
	// Field is the name the error must contain (the offending field).
	Field string
	// NeedsTarget says only a call can tell these settings are bad (a port
	// that is not the server's): CheckSettings, which sees no target, is
	// not asked about them.
	NeedsTarget bool
}

// Common fields of every case.
type common struct {
	// Bad lists settings the driver must refuse, naming Field.
	Bad []BadSettings
	// Secret is a value the case's settings reach by reference; it must
	// never appear in evidence or errors. Empty skips the secret check.
	Secret string
	// EvidenceLimit bounds Evidence.Output (DefaultEvidenceLimit when 0).
	EvidenceLimit int
	// Prompt bounds how long a cancelled call may take to return
	// (DefaultPrompt when 0).
	Prompt time.Duration
}

func (c common) limit() int {
	if c.EvidenceLimit > 0 {
		return c.EvidenceLimit
	}
	return DefaultEvidenceLimit
}

func (c common) prompt() time.Duration {
	if c.Prompt > 0 {
		return c.Prompt
	}
	return DefaultPrompt
}

// checkEvidence fails t when ev is too long or carries the secret.
func (c common) checkEvidence(t testing.TB, call string, ev drivers.Evidence) {
	t.Helper()
	if n := len(ev.Output); n > c.limit() {
		t.Errorf("%s: evidence output is %d bytes, over the limit of %d", call, n, c.limit())
	}
	c.noSecret(t, call+" evidence action", ev.Action)
	c.noSecret(t, call+" evidence output", ev.Output)
}

func (c common) noSecret(t testing.TB, where, text string) {
	t.Helper()
	if c.Secret != "" && strings.Contains(text, c.Secret) {
		t.Errorf("%s carries the secret value", where)
	}
}

func (c common) checkErr(t testing.TB, call string, err error) {
	t.Helper()
	if err != nil {
		c.noSecret(t, call+" error", err.Error())
	}
}

// checkBad fails t unless err is a permanent error naming field.
func (c common) checkBad(t testing.TB, call string, bad BadSettings, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s accepted bad settings %q", call, bad.Name)
		return
	}
	if !drivers.Permanent(err) {
		t.Errorf("%s: error for bad settings %q is not marked permanent (drivers.BadSettings): %v", call, bad.Name, err)
	}
	if bad.Field != "" && !strings.Contains(err.Error(), bad.Field) {
		t.Errorf("%s: error for bad settings %q does not name the field %q: %v", call, bad.Name, bad.Field, err)
	}
	c.checkErr(t, call, err)
}

// checkSettings runs the driver's CheckSettings, when it has one, on every
// bad variant and on the good settings.
func (c common) checkSettings(t *testing.T, d any, good map[string]any) {
	checker, ok := d.(drivers.SettingsChecker)
	if !ok {
		return
	}
	t.Run("CheckSettings", func(t *testing.T) {
		if err := checker.CheckSettings(good); err != nil {
			t.Errorf("CheckSettings refused the case's good settings: %v", err)
		}
		for _, bad := range c.Bad {
			if !bad.NeedsTarget {
				c.checkBad(t, "CheckSettings", bad, checker.CheckSettings(bad.Settings))
			}
		}
	})
}

// cancelled returns a context that is already cancelled.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// returnsPromptly runs call with a context cancelled shortly after it
// starts and fails t unless call returns an error within the case's bound.
func (c common) returnsPromptly(t *testing.T, name string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	// Let the call get going (a command started, a connection open)
	// before cancelling, so the check covers work in flight.
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%s: returned no error after its context was cancelled", name)
		}
		c.checkErr(t, name, err)
	case <-time.After(c.prompt()):
		t.Errorf("%s: still running %s after its context was cancelled", name, c.prompt())
		<-done
	}
}
