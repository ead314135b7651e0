package driverstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// ProbeCase is one probe driver against a real target.
type ProbeCase struct {
	Driver drivers.Probe
	// Pass is a check that runs and passes.
	Pass drivers.CheckRequest
	// Fail, when set, is a check that runs and finds a problem: it must
	// return Passed=false with a summary and no error.
	Fail *drivers.CheckRequest
	// Slow, when set, is a check that takes far longer than Prompt unless
	// cancelled (a server that never answers, a command that sleeps).
	Slow *drivers.CheckRequest
	// Bad settings replace Pass.Settings.
	Bad           []BadSettings
	Secret        string
	EvidenceLimit int
	Prompt        time.Duration
}

// Probe runs the conformance suite against a probe driver.
func Probe(t *testing.T, c ProbeCase) {
	t.Helper()
	cm := common{Bad: c.Bad, Secret: c.Secret, EvidenceLimit: c.EvidenceLimit, Prompt: c.Prompt}
	d := c.Driver
	ctx := context.Background()
	check := func(t *testing.T, call string, req drivers.CheckRequest) drivers.CheckResult {
		t.Helper()
		res, err := d.Check(ctx, req)
		cm.checkErr(t, call, err)
		if err != nil {
			t.Fatalf("%s: %v", call, err)
		}
		cm.checkResult(t, call, res)
		return res
	}

	t.Run("Pass", func(t *testing.T) {
		if res := check(t, "passing check", c.Pass); !res.Passed {
			t.Errorf("passing check did not pass: %s", res.Summary)
		}
		// Running it again changes nothing: checks only look.
		if res := check(t, "passing check, again", c.Pass); !res.Passed {
			t.Errorf("passing check did not pass the second time: %s", res.Summary)
		}
	})
	if c.Fail != nil {
		t.Run("Fail", func(t *testing.T) {
			res := check(t, "failing check", *c.Fail)
			if res.Passed {
				t.Errorf("failing check passed: %s", res.Summary)
			}
			if res.Summary == "" {
				t.Errorf("failing check has no summary saying why")
			}
		})
	}
	t.Run("BadSettings", func(t *testing.T) {
		for _, bad := range c.Bad {
			req := c.Pass
			req.Settings = bad.Settings
			res, err := d.Check(ctx, req)
			cm.checkBad(t, "check", bad, err)
			cm.checkResult(t, "check with bad settings", res)
		}
	})
	cm.checkSettings(t, d, c.Pass.Settings)

	t.Run("Cancel", func(t *testing.T) {
		res, err := d.Check(cancelled(), c.Pass)
		if err == nil {
			t.Errorf("check with a cancelled context returned no error (passed=%v: %s)", res.Passed, res.Summary)
		}
		cm.checkErr(t, "check with a cancelled context", err)
		if c.Slow != nil {
			cm.returnsPromptly(t, "slow check", func(ctx context.Context) error {
				_, err := d.Check(ctx, *c.Slow)
				return err
			})
		}
	})
}

func (c common) checkResult(t testing.TB, call string, res drivers.CheckResult) {
	t.Helper()
	c.checkEvidence(t, call, res.Evidence)
	c.noSecret(t, call+" summary", res.Summary)
	for k, v := range res.Details {
		c.noSecret(t, fmt.Sprintf("%s detail %s", call, k), v)
	}
}
