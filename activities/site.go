package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/probe/sqlprobe"
	"github.com/drover-dr/drover/drivers/sitefs"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// ApplyEnvironment rewrites, in the files each rewrite names (globs relative
// to the site's data root), the source site's value with the target site's:
// host names, data source addresses. Running it twice changes nothing more.
func (a *Activities) ApplyEnvironment(ctx context.Context, in contract.EnvironmentInput) ([]contract.RewriteResult, error) {
	var out []contract.RewriteResult
	for _, rw := range in.Rewrites {
		from, ok1 := rw.Value(in.FromRole)
		to, ok2 := rw.Value(in.Site.Role)
		if !ok1 || !ok2 {
			msg := fmt.Sprintf("environment rewrite %s has no value for the %s or %s site", rw.Name, in.FromRole, in.Site.Role)
			return out, temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeBadSettings, nil)
		}
		if rw.SQL != nil {
			res, err := a.rewriteDatabase(ctx, in, rw, from, to)
			out = append(out, res)
			if err != nil {
				return out, err
			}
			continue
		}
		files, changed, err := sitefs.Rewrite(driverSite(in.Site), rw.Files, from, to)
		if err != nil {
			return out, classify("environment rewrite "+rw.Name, err)
		}
		a.Logger.Info("environment rewrite applied", zap.String("rewrite", rw.Name), zap.String("site", in.Site.Site.Name),
			zap.Int("files", files), zap.Int("changed", len(changed)))
		out = append(out, contract.RewriteResult{Name: rw.Name, Files: files, Changed: changed})
	}
	return out, nil
}

// rewriteDatabase changes the values a rewrite names in a database through
// the sql driver; the statement selects its rows by the old value, so a
// retry changes nothing more.
func (a *Activities) rewriteDatabase(ctx context.Context, in contract.EnvironmentInput, rw plan.Rewrite, from, to string) (contract.RewriteResult, error) {
	s := rw.SQL
	applied, err := sqlprobe.Rewrite(ctx, driverSite(in.Site), in.Plan, sqlprobe.Statement{
		DSN: s.DSN, Password: s.Password, Host: s.Host, Port: s.Port, Database: s.Database,
		SQL: s.Statement, Timeout: s.Timeout.D(),
	}, to, from)
	ev := evidence(applied.Evidence)
	res := contract.RewriteResult{Name: rw.Name, Database: applied.Database, Rows: applied.Rows, Evidence: &ev}
	if err != nil {
		return res, classify("environment rewrite "+rw.Name, err)
	}
	a.Logger.Info("environment rewrite applied", zap.String("rewrite", rw.Name), zap.String("site", in.Site.Site.Name),
		zap.String("database", applied.Database), zap.Int64("rows", applied.Rows))
	return res, nil
}

// WipeSite empties a sandbox site's data root, so a drill or validation
// starts from nothing and leaves nothing. Only a sandbox may be wiped.
func (a *Activities) WipeSite(ctx context.Context, in contract.SiteRef) (int, error) {
	if in.Role != plan.SiteSandbox {
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("refusing to wipe the %s site %s: only a sandbox is wiped", in.Role, in.Site.Name), contract.ErrTypeBadSettings, nil)
	}
	n, err := sitefs.Wipe(driverSite(in))
	if err != nil {
		return 0, classify("wipe sandbox "+in.Site.Name, err)
	}
	a.Logger.Info("sandbox wiped", zap.String("site", in.Site.Name), zap.Int("entries", n))
	return n, nil
}

// installationCopy is where a backup keeps the primary's installation
// manifest, so a failover can compare against it when the primary is gone.
func installationCopy(st *catalog.Store, planName string) string {
	return filepath.Join(st.Root, planName, "installation-primary.json")
}

// RecordInstallation keeps a copy of a site's installation manifest in the
// store. Installation data is checked, never copied: this is only the list
// of product versions and fix levels.
func (a *Activities) RecordInstallation(ctx context.Context, in contract.InstallationInput) error {
	if in.Reference.Site.Installation == "" {
		return nil
	}
	data, err := readInstallation(in.Reference)
	if err != nil {
		return err
	}
	st, _, err := openStore(in.Store)
	if err != nil {
		return err
	}
	path := installationCopy(st, in.Store.Plan)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return catalog.WriteFileAtomic(path, data, 0o640)
}

func readInstallation(s contract.SiteRef) ([]byte, error) {
	data, err := sitefs.Installation(s.Site.Name, s.Site.Installation)
	return data, classify("read installation manifest", err)
}

// ReadInstallation reads a site's installation manifest where it is, so
// the comparison at the other site needs nothing of this one's files.
func (a *Activities) ReadInstallation(ctx context.Context, in contract.SiteRef) (contract.Manifest, error) {
	if in.Site.Installation == "" {
		return contract.Manifest{Site: in.Site.Name}, nil
	}
	data, err := readInstallation(in)
	return contract.Manifest{Site: in.Site.Name, Data: data, Configured: true}, err
}

// ConfigurationFingerprint fingerprints the cell's configuration where it
// is: the site's installation manifest, when the watch asks for it, and
// the watched folders of its data root. It only reads.
func (a *Activities) ConfigurationFingerprint(ctx context.Context, in contract.FingerprintInput) (contract.Configuration, error) {
	installation := ""
	if in.Watch.Installation {
		installation = in.Site.Site.Installation
	}
	fp, err := sitefs.ConfigurationFingerprint(driverSite(in.Site), installation, in.Watch.Paths)
	if err != nil {
		return contract.Configuration{}, classify("configuration fingerprint at "+in.Site.Site.Name, err)
	}
	return contract.Configuration{Fingerprint: fp.Sum, Parts: fp.Parts}, nil
}

// CompareInstallation checks the target site has the same product versions
// and fix levels as the reference site: read live when it answers, else
// from the copy the last backup kept in the store.
func (a *Activities) CompareInstallation(ctx context.Context, in contract.InstallationInput) (contract.InstallationResult, error) {
	var res contract.InstallationResult
	if in.Target.Site.Installation == "" || in.Reference.Site.Installation == "" {
		res.Match, res.ReferenceFrom = true, "not configured"
		return res, nil
	}
	target, err := readInstallation(in.Target)
	if err != nil {
		return res, err
	}
	// The reference was read at its own site when it answered; a run from
	// before that step reads it here.
	ref, err := in.ReferenceManifest, error(nil)
	switch {
	case in.ReferenceFromStore:
		err = fmt.Errorf("site %s did not answer", in.Reference.Site.Name)
	case len(ref) == 0:
		ref, err = readInstallation(in.Reference)
	}
	res.ReferenceFrom = in.Reference.Site.Name
	if err != nil {
		st, _, serr := openStore(in.Store)
		if serr != nil {
			return res, serr
		}
		ref, err = os.ReadFile(installationCopy(st, in.Store.Plan))
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("installation manifest of %s is unreachable and no copy is in the store: %v", in.Reference.Site.Name, err), contract.ErrTypeBadSettings, err)
		}
		res.ReferenceFrom = "store copy of " + in.Reference.Site.Name
	}
	var rv, tv any
	if err := json.Unmarshal(ref, &rv); err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s is not JSON: %v", in.Reference.Site.Name, err), contract.ErrTypeBadSettings, err)
	}
	if err := json.Unmarshal(target, &tv); err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s is not JSON: %v", in.Target.Site.Name, err), contract.ErrTypeBadSettings, err)
	}
	res.Differences = diffJSON("", rv, tv)
	res.Match = len(res.Differences) == 0
	return res, nil
}

// diffJSON lists the paths where two JSON values differ, sorted.
func diffJSON(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		var names []string
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		var out []string
		for _, k := range names {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, diffJSON(p, am[k], bm[k])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	if path == "" {
		path = "(whole manifest)"
	}
	return []string{fmt.Sprintf("%s: %v here, %v there", path, jsonText(a), jsonText(b))}
}

func jsonText(v any) string {
	if v == nil {
		return "missing"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// WaitChecks polls the checks until all pass, heartbeating, and gives up a
// little before the activity's deadline with what still fails.
func (a *Activities) WaitChecks(ctx context.Context, in contract.ChecksInput) ([]contract.CheckOutput, error) {
	interval := in.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	deadline := activity.GetInfo(ctx).Deadline.Add(-2 * time.Second)
	for round := 1; ; round++ {
		out := make([]contract.CheckOutput, 0, len(in.Checks))
		var failing []string
		for _, c := range in.Checks {
			r, err := a.RunCheck(ctx, contract.CheckInput{Plan: in.Plan, Site: in.Site, Check: c})
			if err != nil {
				var app *temporal.ApplicationError
				if errors.As(err, &app) && app.NonRetryable() {
					return out, err
				}
				r = contract.FailedCheck("", c.Name, err.Error())
			}
			out = append(out, r)
			if !r.Result.Passed {
				failing = append(failing, fmt.Sprintf("%s: %s", c.Name, r.Result.Summary))
			}
		}
		if len(failing) == 0 {
			return out, nil
		}
		activity.RecordHeartbeat(ctx, round)
		if time.Now().Add(interval).After(deadline) || ctx.Err() != nil {
			return out, temporal.NewApplicationError(fmt.Sprintf("still failing after %d rounds: %s", round, strings.Join(failing, "; ")), contract.ErrTypeNotReady)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// Redirect points traffic at the site and reads back where it points. It is
// idempotent: pointing at the site it already points at changes nothing.
func (a *Activities) Redirect(ctx context.Context, in contract.RedirectInput) (contract.RedirectResult, error) {
	d, err := a.Registry.Redirector(in.Redirect.Driver)
	if err != nil {
		return contract.RedirectResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	req := drivers.RedirectRequest{Plan: in.Plan, Site: driverSite(in.Site), Settings: in.Redirect.Settings}
	ev, err := d.PointTo(ctx, req)
	if err != nil {
		return contract.RedirectResult{Evidence: evidence(ev)}, classify("redirect traffic to "+in.Site.Site.Name, err)
	}
	cur, err := d.Current(ctx, req)
	if err != nil {
		return contract.RedirectResult{Evidence: evidence(ev)}, classify("read where traffic points", err)
	}
	if cur != in.Site.Site.Name {
		return contract.RedirectResult{Evidence: evidence(ev), Current: cur}, fmt.Errorf("traffic points at %q after redirecting to %q", cur, in.Site.Site.Name)
	}
	return contract.RedirectResult{Evidence: evidence(ev), Current: cur, Ran: a.ran(in.Site, plan.Host{})}, nil
}

// WriteReport writes the report as JSON and Markdown under the store's
// reports folder, beside the recovery points it speaks of.
func (a *Activities) WriteReport(ctx context.Context, in contract.ReportInput) (contract.ReportPaths, error) {
	st, _, err := openStore(in.Store)
	if err != nil {
		return contract.ReportPaths{}, err
	}
	j, m, err := report.Write(ReportDir(st.Root, in.Store.Plan), in.Report)
	if err != nil {
		return contract.ReportPaths{}, err
	}
	a.Logger.Info("report written", zap.String("json", j), zap.String("markdown", m))
	return contract.ReportPaths{JSON: j, Markdown: m}, nil
}

// ReportDir is where a plan's reports live in its store.
func ReportDir(storeRoot, planName string) string {
	return filepath.Join(storeRoot, planName, "reports")
}

// DrainTraffic stops new work reaching the site. A redirect driver that
// cannot drain is reported in the evidence, not as a failure: the orderly
// stop that follows drains the servers themselves.
func (a *Activities) DrainTraffic(ctx context.Context, in contract.RedirectInput) (contract.Evidence, error) {
	d, err := a.Registry.Redirector(in.Redirect.Driver)
	if err != nil {
		return contract.Evidence{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeBadSettings, err)
	}
	dr, ok := d.(drivers.Drainer)
	if !ok {
		return contract.Evidence{Action: "drain", Output: fmt.Sprintf("redirect driver %q cannot drain; servers drain as they stop", in.Redirect.Driver)}, nil
	}
	ev, err := dr.Drain(ctx, drivers.RedirectRequest{Plan: in.Plan, Site: driverSite(in.Site), Settings: in.Redirect.Settings})
	return evidence(ev), classify("drain "+in.Site.Site.Name, err)
}
