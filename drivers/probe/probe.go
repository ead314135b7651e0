// Package probe holds the generic verification probes: http (a request and
// what its answer must look like), tcp (a port that accepts connections) and
// exec (a command whose exit status decides; it runs on the check's host,
// over SSH when that host has no drover worker, see Exec).
//
// A probe that ran and found a problem returns Passed=false with a Summary
// saying why (status 500, body mismatch, connection refused) and a nil error.
// An error means the check could not run: bad settings (marked
// drivers.ErrBadSettings) or a cancelled context.
//
// String settings that name a place (url, address, command) are Go
// templates over {{.Plan}}, {{.Site.Name}}, {{.Site.Role}},
// {{index .Site.Settings "key"}}, {{.Check.Name}}, {{.Check.Level}} and the
// probe's own {{.Vars.key}}; a missing key is an error.
package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drover-dr/drover/drivers"
)

// Limits on what a probe keeps in evidence (workflow history).
const (
	BodyEvidenceLimit   = 1000
	OutputEvidenceLimit = 2000
	summaryLimit        = 300
)

var (
	_ drivers.Probe           = (*HTTP)(nil)
	_ drivers.SettingsChecker = (*HTTP)(nil)
	_ drivers.Probe           = (*TCP)(nil)
	_ drivers.SettingsChecker = (*TCP)(nil)
	_ drivers.Probe           = (*Exec)(nil)
	_ drivers.SettingsChecker = (*Exec)(nil)
)

// badSettings marks a decode or parse error of probe `name`.
func badSettings(name string, err error) error {
	return drivers.BadSettingsf("%s probe: %w", name, err)
}

// callerDone reports whether the caller's context ended (as opposed to the
// probe's own timeout), in which case the check did not run to a verdict.
func callerDone(parent context.Context) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("check cancelled: %w", err)
	}
	return nil
}

// timeoutOr returns d, or def when d is not set.
func timeoutOr(d drivers.Duration, def time.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, errors.New("timeout: must be positive")
	}
	if d == 0 {
		return def, nil
	}
	return d.D(), nil
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return drivers.Truncate(s, summaryLimit)
}
