package driverstest

import (
	"context"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// MiddlewareCase is one middleware driver against one real component.
type MiddlewareCase struct {
	Driver drivers.Middleware
	// Target is a component the driver can start and stop for real. It
	// must be stopped when the suite begins; the suite leaves it stopped.
	Target drivers.Target
	// Slow, when set, is a target whose Start takes far longer than Prompt
	// unless cancelled (a start command that hangs); the suite cancels it
	// mid-flight and expects a prompt error.
	Slow *drivers.Target
	// Bad settings replace Target.Component.Settings.
	Bad []BadSettings
	// Secret, EvidenceLimit, Prompt: see the package documentation.
	Secret        string
	EvidenceLimit int
	Prompt        time.Duration
}

// Middleware runs the conformance suite against a middleware driver.
func Middleware(t *testing.T, c MiddlewareCase) {
	t.Helper()
	cm := common{Bad: c.Bad, Secret: c.Secret, EvidenceLimit: c.EvidenceLimit, Prompt: c.Prompt}
	d := c.Driver
	ctx := context.Background()
	status := func(t *testing.T, call string, want drivers.State) {
		t.Helper()
		st, err := d.Status(ctx, c.Target)
		cm.checkErr(t, call, err)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		cm.checkEvidence(t, call, st.Evidence)
		cm.noSecret(t, call+" detail", st.Detail)
		if st.State != want {
			t.Fatalf("%s: state %s (%s), want %s", call, st.State, st.Detail, want)
		}
	}
	// Whatever happens, leave the component stopped.
	t.Cleanup(func() {
		if st, err := d.Status(ctx, c.Target); err == nil && st.State != drivers.StateStopped {
			_, _ = d.Stop(ctx, c.Target, drivers.StopImmediate)
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		status(t, "status before start", drivers.StateStopped)

		ev, err := d.Stop(ctx, c.Target, drivers.StopGraceful)
		cm.checkErr(t, "stop of a stopped component", err)
		if err != nil {
			t.Fatalf("stop of a stopped component: %v", err)
		}
		cm.checkEvidence(t, "stop of a stopped component", ev)
		if !ev.AlreadyDone {
			t.Errorf("stop of a stopped component is not marked AlreadyDone: %+v", ev)
		}

		ev, err = d.Start(ctx, c.Target)
		cm.checkErr(t, "start", err)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		cm.checkEvidence(t, "start", ev)
		if ev.AlreadyDone {
			t.Errorf("first start of a stopped component is marked AlreadyDone: %+v", ev)
		}
		status(t, "status after start", drivers.StateRunning)

		ev, err = d.Start(ctx, c.Target)
		cm.checkErr(t, "start of a started component", err)
		if err != nil {
			t.Fatalf("start of a started component: %v", err)
		}
		cm.checkEvidence(t, "start of a started component", ev)
		if !ev.AlreadyDone {
			t.Errorf("start of a started component is not marked AlreadyDone: %+v", ev)
		}
		status(t, "status after a second start", drivers.StateRunning)

		// A call whose context is already cancelled must not act.
		_, err = d.Stop(cancelled(), c.Target, drivers.StopGraceful)
		if err == nil {
			t.Errorf("stop with a cancelled context returned no error")
		}
		cm.checkErr(t, "stop with a cancelled context", err)
		status(t, "status after a cancelled stop", drivers.StateRunning)

		ev, err = d.Stop(ctx, c.Target, drivers.StopGraceful)
		cm.checkErr(t, "stop", err)
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
		cm.checkEvidence(t, "stop", ev)
		if ev.AlreadyDone {
			t.Errorf("stop of a running component is marked AlreadyDone: %+v", ev)
		}
		status(t, "status after stop", drivers.StateStopped)

		_, err = d.Start(cancelled(), c.Target)
		if err == nil {
			t.Errorf("start with a cancelled context returned no error")
		}
		cm.checkErr(t, "start with a cancelled context", err)
		status(t, "status after a cancelled start", drivers.StateStopped)

		ev, err = d.Stop(ctx, c.Target, drivers.StopImmediate)
		cm.checkErr(t, "immediate stop of a stopped component", err)
		if err != nil {
			t.Fatalf("immediate stop of a stopped component: %v", err)
		}
		if !ev.AlreadyDone {
			t.Errorf("immediate stop of a stopped component is not marked AlreadyDone: %+v", ev)
		}
	})

	t.Run("BadSettings", func(t *testing.T) {
		for _, bad := range c.Bad {
			tg := c.Target
			tg.Component.Settings = bad.Settings
			_, err := d.Start(ctx, tg)
			cm.checkBad(t, "start", bad, err)
			_, err = d.Stop(ctx, tg, drivers.StopGraceful)
			cm.checkBad(t, "stop", bad, err)
			_, err = d.Status(ctx, tg)
			cm.checkBad(t, "status", bad, err)
		}
		_, err := d.Stop(ctx, c.Target, drivers.StopMode("sideways"))
		cm.checkBad(t, "stop with an unknown mode", BadSettings{Name: "stop mode sideways", Field: "sideways"}, err)
	})
	cm.checkSettings(t, d, c.Target.Component.Settings)

	if c.Slow != nil {
		t.Run("CancelStopsWork", func(t *testing.T) {
			cm.returnsPromptly(t, "slow start", func(ctx context.Context) error {
				_, err := d.Start(ctx, *c.Slow)
				return err
			})
		})
	}
}
