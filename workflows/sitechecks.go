package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
)

// versionSiteChecks adds the seed's site prerequisites (000 §3) to a
// failover's preflight.
const versionSiteChecks = "failover-site-checks"

// siteChecks checks at the secondary what a restore there needs (seed 000
// §3): host names answering with the same addresses as at the primary
// (read there when it answers), the shared file systems mounted, the
// installation paths, the database instance and users. Each check is named
// in the report with its evidence; any failure opens the site-checks gate
// (a plan without it cannot go on).
func (f *failover) siteChecks(ctx workflow.Context) error {
	sc := f.p.SiteChecks
	if sc == nil || workflow.GetVersion(ctx, versionSiteChecks, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	primary, secondary := siteRef(f.p, "primary"), siteRef(f.p, "secondary")
	step := f.r.begin(ctx, "site checks at "+secondary.Site.Name)
	f.r.placeStep(step, siteAt(secondary))
	var atPrimary contract.SiteCheckResult
	primaryAnswered := false
	if len(sc.Hosts) > 0 {
		err := f.r.look(shortOptions(ctx, time.Minute, 2), siteAt(primary), contract.CheckSite,
			contract.SiteCheckInput{Plan: f.p.Name, Site: primary, Checks: *sc, HostsOnly: true}).Get(ctx, &atPrimary)
		primaryAnswered = err == nil
	}
	var res contract.SiteCheckResult
	if err := f.r.act(shortOptions(ctx, 5*time.Minute, 3), siteAt(secondary), contract.CheckSite,
		contract.SiteCheckInput{Plan: f.p.Name, Site: secondary, Checks: *sc}).Get(ctx, &res); err != nil {
		f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
		return fmt.Errorf("site checks at %s: %w", secondary.Site.Name, err)
	}
	checks := res.Checks
	if primaryAnswered {
		checks = append(checks, sameAddresses(atPrimary.Hosts, res.Hosts, primary.Site.Name, secondary.Site.Name)...)
	}
	f.rep.SiteChecks = checks
	var failed []string
	for _, c := range checks {
		if !c.Result.Passed {
			failed = append(failed, c.Name+": "+c.Result.Summary)
		}
	}
	if len(failed) == 0 {
		note := ""
		if len(sc.Hosts) > 0 && !primaryAnswered {
			note = fmt.Sprintf(" (%s did not answer: host addresses checked at %s only)", primary.Site.Name, secondary.Site.Name)
		}
		f.r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("%d checks passed%s", len(checks), note))
		return nil
	}
	detail := fmt.Sprintf("a restore at %s may not work: %s", secondary.Site.Name, strings.Join(failed, "; "))
	f.r.end(ctx, step, OutcomeFailed, 1, detail)
	return f.gate(ctx, contract.GateSiteChecks, detail, true)
}

// sameAddresses checks each host name resolved to the same addresses at
// both sites (000 §3.1.1: then nothing in the configuration or the
// database needs rewriting).
func sameAddresses(atPrimary, atSecondary []contract.HostAddresses, primary, secondary string) []contract.CheckOutput {
	var out []contract.CheckOutput
	for _, p := range atPrimary {
		var s *contract.HostAddresses
		for i := range atSecondary {
			if atSecondary[i].Name == p.Name {
				s = &atSecondary[i]
			}
		}
		if s == nil {
			continue // its own check already failed at the secondary
		}
		c := contract.CheckOutput{Level: contract.LevelSite, Name: "same addresses " + p.Name}
		c.Result.Evidence.Action = "compare " + p.Name + " at " + primary + " and " + secondary
		if slices.Equal(p.Addresses, s.Addresses) {
			c.Result.Passed, c.Result.Summary = true, fmt.Sprintf("%s at both sites", strings.Join(p.Addresses, ", "))
		} else {
			c.Result.Summary = fmt.Sprintf("%s at %s, %s at %s", strings.Join(p.Addresses, ", "), primary, strings.Join(s.Addresses, ", "), secondary)
		}
		out = append(out, c)
	}
	return out
}
