package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/sitecheck"
)

// resolveTimeout bounds one host name lookup.
const resolveTimeout = 10 * time.Second

// CheckSite checks, at the site, what a restore there needs (seed 000 §3):
// each host name resolves (to the plan's addresses when it lists them),
// each shared file system is mounted with the right type and writable,
// each installation path exists, and each probe of the database instance
// and users passes. Every check is named and carries its evidence; a check
// that fails is a result, not an error.
func (a *Activities) CheckSite(ctx context.Context, in contract.SiteCheckInput) (contract.SiteCheckResult, error) {
	var res contract.SiteCheckResult
	add := func(name string, passed bool, action, summary string) {
		res.Checks = append(res.Checks, contract.CheckOutput{Level: contract.LevelSite, Name: name, Worker: a.Worker,
			Result: contract.CheckResult{Passed: passed, Summary: summary, Evidence: contract.Evidence{Action: action, Output: summary}}})
	}
	for _, h := range in.Checks.Hosts {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addrs, err := sitecheck.Resolve(rctx, h.Name)
		cancel()
		name := "host " + h.Name
		action := "resolve " + h.Name + " at " + in.Site.Site.Name
		if err != nil {
			add(name, false, action, err.Error())
			continue
		}
		res.Hosts = append(res.Hosts, contract.HostAddresses{Name: h.Name, Addresses: addrs})
		var missing []string
		for _, want := range h.Addresses {
			if !slices.Contains(addrs, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			add(name, false, action, fmt.Sprintf("resolves to %s, not to %s", strings.Join(addrs, ", "), strings.Join(missing, ", ")))
			continue
		}
		add(name, true, action, "resolves to "+strings.Join(addrs, ", "))
	}
	if in.HostsOnly {
		return res, nil
	}
	for _, m := range in.Checks.Mounts {
		name := "mount " + m.Path
		action := fmt.Sprintf("find %s in %s at %s", m.Path, sitecheck.MountsFile, in.Site.Site.Name)
		got, ok, err := sitecheck.FindMount(m.Path)
		switch {
		case err != nil:
			add(name, false, action, err.Error())
		case !ok:
			add(name, false, action, m.Path+" is not a mount point: the shared file system is not mounted")
		case !sitecheck.TypeMatches(got.Type, m.Type):
			add(name, false, action, fmt.Sprintf("%s is a %s mount of %s, want %s", m.Path, got.Type, got.Source, m.Type))
		default:
			summary := fmt.Sprintf("%s mount of %s", got.Type, got.Source)
			if m.Writable {
				if err := sitecheck.Writable(m.Path); err != nil {
					add(name, false, action, summary+", not writable: "+err.Error())
					continue
				}
				summary += ", writable"
			}
			add(name, true, action, summary)
		}
	}
	for _, p := range in.Checks.Paths {
		action := "stat " + p + " at " + in.Site.Site.Name
		st, err := os.Stat(p)
		if err != nil {
			add("path "+p, false, action, err.Error())
			continue
		}
		add("path "+p, true, action, fmt.Sprintf("present (%s)", st.Mode()))
	}
	for _, c := range in.Checks.Probes {
		out, err := a.RunCheck(ctx, contract.CheckInput{Plan: in.Plan, Site: in.Site, Level: contract.LevelSite, Check: c})
		if err != nil {
			var app *temporal.ApplicationError
			if errors.As(err, &app) && app.NonRetryable() {
				return res, err
			}
			out = contract.FailedCheck(contract.LevelSite, c.Name, err.Error())
		}
		out.Level = contract.LevelSite
		res.Checks = append(res.Checks, out)
	}
	return res, nil
}
