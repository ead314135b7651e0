package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// EnvironmentInput asks to apply the plan's environment-specific changes to
// a site's restored data (the seed's step 5).
type EnvironmentInput struct {
	Site     SiteRef        `json:"site"`
	FromRole string         `json:"fromRole"`
	Rewrites []plan.Rewrite `json:"rewrites"`
}

// RewriteResult says what one rewrite changed.
type RewriteResult struct {
	Name    string   `json:"name"`
	Files   int      `json:"files"`
	Changed []string `json:"changed,omitempty"`
}

// ApplyEnvironment rewrites, in the files each rewrite names (globs relative
// to the site's data root), the source site's value with the target site's:
// host names, data source addresses. Running it twice changes nothing more.
func (a *Activities) ApplyEnvironment(ctx context.Context, in EnvironmentInput) ([]RewriteResult, error) {
	root, err := storage.DataRoot(driverSite(in.Site))
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	var out []RewriteResult
	for _, rw := range in.Rewrites {
		from, ok1 := rw.Value(in.FromRole)
		to, ok2 := rw.Value(in.Site.Role)
		res := RewriteResult{Name: rw.Name}
		if !ok1 || !ok2 {
			msg := fmt.Sprintf("environment rewrite %s has no value for the %s or %s site", rw.Name, in.FromRole, in.Site.Role)
			return out, temporal.NewNonRetryableApplicationError(msg, ErrTypeBadSettings, nil)
		}
		for _, pattern := range rw.Files {
			if filepath.IsAbs(pattern) || strings.Contains(pattern, "..") {
				return out, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("environment rewrite %s: pattern %q must be relative to the data root", rw.Name, pattern), ErrTypeBadSettings, nil)
			}
			matches, err := filepath.Glob(filepath.Join(root, pattern))
			if err != nil {
				return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("environment rewrite %s: %v", rw.Name, err), ErrTypeBadSettings, err)
			}
			sort.Strings(matches)
			for _, f := range matches {
				changed, err := rewriteFile(f, from, to)
				if err != nil {
					return out, fmt.Errorf("environment rewrite %s: %w", rw.Name, err)
				}
				res.Files++
				if changed {
					rel, _ := filepath.Rel(root, f)
					res.Changed = append(res.Changed, rel)
				}
			}
		}
		a.Logger.Info("environment rewrite applied", zap.String("rewrite", rw.Name), zap.String("site", in.Site.Site.Name),
			zap.Int("files", res.Files), zap.Int("changed", len(res.Changed)))
		out = append(out, res)
	}
	return out, nil
}

func rewriteFile(path, from, to string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if from == to || !bytes.Contains(data, []byte(from)) {
		return false, nil
	}
	out := bytes.ReplaceAll(data, []byte(from), []byte(to))
	return true, catalog.WriteFileAtomic(path, out, st.Mode().Perm())
}

// WipeSite empties a sandbox site's data root, so a drill or validation
// starts from nothing and leaves nothing. Only a sandbox may be wiped.
func (a *Activities) WipeSite(ctx context.Context, in SiteRef) (int, error) {
	if in.Role != "sandbox" {
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("refusing to wipe the %s site %s: only a sandbox is wiped", in.Role, in.Site.Name), ErrTypeBadSettings, nil)
	}
	root, err := storage.DataRoot(driverSite(in))
	if err != nil {
		return 0, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, os.MkdirAll(root, 0o755)
	}
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return 0, fmt.Errorf("wipe sandbox %s: %w", in.Site.Name, err)
		}
	}
	a.Logger.Info("sandbox wiped", zap.String("site", in.Site.Name), zap.Int("entries", len(entries)))
	return len(entries), nil
}

// InstallationInput compares the installation manifests of two sites.
type InstallationInput struct {
	Store     StoreRef `json:"store"`
	Reference SiteRef  `json:"reference"`
	Target    SiteRef  `json:"target"`
}

// InstallationResult says whether the installations match and where not.
type InstallationResult struct {
	Match bool `json:"match"`
	// ReferenceFrom is where the reference manifest was read: the live
	// site, or the copy the last backup kept in the store.
	ReferenceFrom string   `json:"referenceFrom"`
	Differences   []string `json:"differences,omitempty"`
}

// installationCopy is where a backup keeps the primary's installation
// manifest, so a failover can compare against it when the primary is gone.
func installationCopy(st *catalog.Store, planName string) string {
	return filepath.Join(st.Root, planName, "installation-primary.json")
}

// RecordInstallation keeps a copy of a site's installation manifest in the
// store. Installation data is checked, never copied: this is only the list
// of product versions and fix levels.
func (a *Activities) RecordInstallation(ctx context.Context, in InstallationInput) error {
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

// readInstallation reads a site's installation manifest. The reference may
// end in #key.path to compare only part of the document (the product
// versions, not the host name or when it was written).
func readInstallation(s SiteRef) ([]byte, error) {
	ref, sel, _ := strings.Cut(s.Site.Installation, "#")
	path, err := drivers.ExpandPath(ref)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("site %s installation: %v", s.Site.Name, err), ErrTypeBadSettings, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("site %s installation manifest: %w", s.Site.Name, err)
	}
	if sel == "" {
		return data, nil
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s is not JSON: %v", s.Site.Name, err), ErrTypeBadSettings, err)
	}
	for _, k := range strings.Split(sel, ".") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s has no %q", s.Site.Name, sel), ErrTypeBadSettings, nil)
		}
		if doc, ok = m[k]; !ok {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s has no %q", s.Site.Name, sel), ErrTypeBadSettings, nil)
		}
	}
	return json.Marshal(doc)
}

// CompareInstallation checks the target site has the same product versions
// and fix levels as the reference site: read live when it answers, else
// from the copy the last backup kept in the store.
func (a *Activities) CompareInstallation(ctx context.Context, in InstallationInput) (InstallationResult, error) {
	var res InstallationResult
	if in.Target.Site.Installation == "" || in.Reference.Site.Installation == "" {
		res.Match, res.ReferenceFrom = true, "not configured"
		return res, nil
	}
	target, err := readInstallation(in.Target)
	if err != nil {
		return res, err
	}
	ref, err := readInstallation(in.Reference)
	res.ReferenceFrom = in.Reference.Site.Name
	if err != nil {
		st, _, serr := openStore(in.Store)
		if serr != nil {
			return res, serr
		}
		ref, err = os.ReadFile(installationCopy(st, in.Store.Plan))
		if err != nil {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("installation manifest of %s is unreachable and no copy is in the store: %v", in.Reference.Site.Name, err), ErrTypeBadSettings, err)
		}
		res.ReferenceFrom = "store copy of " + in.Reference.Site.Name
	}
	var rv, tv any
	if err := json.Unmarshal(ref, &rv); err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s is not JSON: %v", in.Reference.Site.Name, err), ErrTypeBadSettings, err)
	}
	if err := json.Unmarshal(target, &tv); err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("installation manifest of %s is not JSON: %v", in.Target.Site.Name, err), ErrTypeBadSettings, err)
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

// ChecksInput asks to wait until every check passes.
type ChecksInput struct {
	Plan     string             `json:"plan"`
	Site     SiteRef            `json:"site"`
	Checks   []plan.DriverCheck `json:"checks"`
	Interval time.Duration      `json:"interval,omitempty"`
}

// WaitChecks polls the checks until all pass, heartbeating, and gives up a
// little before the activity's deadline with what still fails.
func (a *Activities) WaitChecks(ctx context.Context, in ChecksInput) ([]CheckOutput, error) {
	interval := in.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	deadline := activity.GetInfo(ctx).Deadline.Add(-2 * time.Second)
	for round := 1; ; round++ {
		out := make([]CheckOutput, 0, len(in.Checks))
		var failing []string
		for _, c := range in.Checks {
			r, err := a.RunCheck(ctx, CheckInput{Plan: in.Plan, Site: in.Site, Check: c})
			if err != nil {
				var app *temporal.ApplicationError
				if errors.As(err, &app) && app.NonRetryable() {
					return out, err
				}
				r = FailedCheck("", c.Name, err.Error())
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
			return out, temporal.NewApplicationError(fmt.Sprintf("still failing after %d rounds: %s", round, strings.Join(failing, "; ")), ErrTypeNotReady)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// RedirectInput points traffic at a site.
type RedirectInput struct {
	Plan     string         `json:"plan"`
	Redirect plan.DriverRef `json:"redirect"`
	Site     SiteRef        `json:"site"`
}

// RedirectResult is where traffic points after the call.
type RedirectResult struct {
	Evidence drivers.Evidence `json:"evidence"`
	Current  string           `json:"current"`
}

// Redirect points traffic at the site and reads back where it points. It is
// idempotent: pointing at the site it already points at changes nothing.
func (a *Activities) Redirect(ctx context.Context, in RedirectInput) (RedirectResult, error) {
	d, err := a.Registry.Redirector(in.Redirect.Driver)
	if err != nil {
		return RedirectResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	req := drivers.RedirectRequest{Plan: in.Plan, Site: driverSite(in.Site), Settings: in.Redirect.Settings}
	ev, err := d.PointTo(ctx, req)
	if err != nil {
		return RedirectResult{Evidence: ev}, classify("redirect traffic to "+in.Site.Site.Name, err)
	}
	cur, err := d.Current(ctx, req)
	if err != nil {
		return RedirectResult{Evidence: ev}, classify("read where traffic points", err)
	}
	if cur != in.Site.Site.Name {
		return RedirectResult{Evidence: ev, Current: cur}, fmt.Errorf("traffic points at %q after redirecting to %q", cur, in.Site.Site.Name)
	}
	return RedirectResult{Evidence: ev, Current: cur}, nil
}

// ReportInput stores a run's report.
type ReportInput struct {
	Store  StoreRef      `json:"store"`
	Report report.Report `json:"report"`
}

// ReportPaths are where a report was written.
type ReportPaths struct {
	JSON     string `json:"json"`
	Markdown string `json:"markdown"`
}

// WriteReport writes the report as JSON and Markdown under the store's
// reports folder, beside the recovery points it speaks of.
func (a *Activities) WriteReport(ctx context.Context, in ReportInput) (ReportPaths, error) {
	st, _, err := openStore(in.Store)
	if err != nil {
		return ReportPaths{}, err
	}
	j, m, err := report.Write(ReportDir(st.Root, in.Store.Plan), in.Report)
	if err != nil {
		return ReportPaths{}, err
	}
	a.Logger.Info("report written", zap.String("json", j), zap.String("markdown", m))
	return ReportPaths{JSON: j, Markdown: m}, nil
}

// ReportDir is where a plan's reports live in its store.
func ReportDir(storeRoot, planName string) string {
	return filepath.Join(storeRoot, planName, "reports")
}

// DrainTraffic stops new work reaching the site. A redirect driver that
// cannot drain is reported in the evidence, not as a failure: the orderly
// stop that follows drains the servers themselves.
func (a *Activities) DrainTraffic(ctx context.Context, in RedirectInput) (drivers.Evidence, error) {
	d, err := a.Registry.Redirector(in.Redirect.Driver)
	if err != nil {
		return drivers.Evidence{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadSettings, err)
	}
	dr, ok := d.(drivers.Drainer)
	if !ok {
		return drivers.Evidence{Action: "drain", Output: fmt.Sprintf("redirect driver %q cannot drain; servers drain as they stop", in.Redirect.Driver)}, nil
	}
	ev, err := dr.Drain(ctx, drivers.RedirectRequest{Plan: in.Plan, Site: driverSite(in.Site), Settings: in.Redirect.Settings})
	return ev, classify("drain "+in.Site.Site.Name, err)
}
