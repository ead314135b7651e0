package driverstest

import (
	"context"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// RedirectCase is one redirect driver against a real traffic switch.
type RedirectCase struct {
	Driver drivers.Redirector
	// Request carries the plan name and the driver's settings; the suite
	// sets its Site to each of Sites in turn.
	Request drivers.RedirectRequest
	// Sites are two sites the settings know. The suite points traffic at
	// the first, then the second, and leaves it at the second.
	Sites [2]drivers.Site
	// Reaches, when set, checks from outside the driver that traffic now
	// reaches site (a request through the proxy, a lookup of the name).
	Reaches func(t *testing.T, site string)
	// Bad settings replace Request.Settings.
	Bad           []BadSettings
	Secret        string
	EvidenceLimit int
	Prompt        time.Duration
}

// Redirect runs the conformance suite against a redirect driver. When the
// driver is a drivers.Drainer, Drain is run too.
func Redirect(t *testing.T, c RedirectCase) {
	t.Helper()
	cm := common{Bad: c.Bad, Secret: c.Secret, EvidenceLimit: c.EvidenceLimit, Prompt: c.Prompt}
	d := c.Driver
	ctx := context.Background()
	at := func(site drivers.Site) drivers.RedirectRequest {
		req := c.Request
		req.Site = site
		return req
	}
	current := func(t *testing.T, call, want string) {
		t.Helper()
		got, err := d.Current(ctx, at(c.Sites[0]))
		cm.checkErr(t, call, err)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		if got != want {
			t.Fatalf("%s: current site %q, want %q", call, got, want)
		}
		if c.Reaches != nil {
			c.Reaches(t, want)
		}
	}
	pointTo := func(t *testing.T, call string, site drivers.Site, already bool) {
		t.Helper()
		ev, err := d.PointTo(ctx, at(site))
		cm.checkErr(t, call, err)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		cm.checkEvidence(t, call, ev)
		if ev.AlreadyDone != already {
			t.Errorf("%s: AlreadyDone=%v, want %v (%s)", call, ev.AlreadyDone, already, ev.Output)
		}
	}
	first, second := c.Sites[0], c.Sites[1]

	t.Run("PointTo", func(t *testing.T) {
		// Wherever traffic went before, pointing at the first site gets it there.
		ev, err := d.PointTo(ctx, at(first))
		cm.checkErr(t, "point to "+first.Name, err)
		if err != nil {
			t.Fatalf("point to %s: %v", first.Name, err)
		}
		cm.checkEvidence(t, "point to "+first.Name, ev)
		current(t, "current after pointing to "+first.Name, first.Name)

		pointTo(t, "point again to "+first.Name, first, true)
		current(t, "current after pointing again", first.Name)

		_, err = d.PointTo(cancelled(), at(second))
		if err == nil {
			t.Errorf("point to %s with a cancelled context returned no error", second.Name)
		}
		cm.checkErr(t, "point with a cancelled context", err)
		current(t, "current after a cancelled point", first.Name)

		pointTo(t, "point to "+second.Name, second, false)
		current(t, "current after pointing to "+second.Name, second.Name)
	})

	if dr, ok := d.(drivers.Drainer); ok {
		t.Run("Drain", func(t *testing.T) {
			// A planned failover drains the site that serves.
			ev, err := dr.Drain(ctx, at(second))
			cm.checkErr(t, "drain "+second.Name, err)
			if err != nil {
				t.Fatalf("drain %s: %v", second.Name, err)
			}
			cm.checkEvidence(t, "drain "+second.Name, ev)
			_, err = dr.Drain(cancelled(), at(second))
			if err == nil {
				t.Errorf("drain with a cancelled context returned no error")
			}
			cm.checkErr(t, "drain with a cancelled context", err)
			// PointTo puts traffic back on one site after a drain.
			ev, err = d.PointTo(ctx, at(second))
			cm.checkErr(t, "point to "+second.Name+" after a drain", err)
			if err != nil {
				t.Fatalf("point to %s after a drain: %v", second.Name, err)
			}
			cm.checkEvidence(t, "point after a drain", ev)
			current(t, "current after drain and point", second.Name)
		})
	}

	t.Run("BadSettings", func(t *testing.T) {
		for _, bad := range c.Bad {
			req := at(first)
			req.Settings = bad.Settings
			_, err := d.PointTo(ctx, req)
			cm.checkBad(t, "point to", bad, err)
			_, err = d.Current(ctx, req)
			cm.checkBad(t, "current", bad, err)
			if dr, ok := d.(drivers.Drainer); ok {
				_, err = dr.Drain(ctx, req)
				cm.checkBad(t, "drain", bad, err)
			}
		}
		// A site the settings do not know is bad settings, not a retry.
		stranger := drivers.Site{Name: "driverstest-nowhere", Role: "secondary"}
		_, err := d.PointTo(ctx, at(stranger))
		cm.checkBad(t, "point to an unknown site", BadSettings{Name: "unknown site", Field: stranger.Name}, err)
		current(t, "current after refusing an unknown site", second.Name)
	})
	cm.checkSettings(t, d, c.Request.Settings)
}
