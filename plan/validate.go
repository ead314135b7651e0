package plan

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// DriverChecker says whether a driver of a kind is known under a name and,
// where the driver can tell, whether it accepts the settings. Kinds are
// "middleware", "storage", "probe" and "redirect". drivers.Registry
// implements it; plan does not import drivers, so a test can pass a fake.
type DriverChecker interface {
	CheckDriver(kind, name string, settings map[string]any) error
}

// LoadAndValidate reads, parses and validates a plan file: the one call the
// CLI and the workflow starters make. The error is a Problems listing every
// problem found (parse and validation together, in file order), or a read
// error naming the file. checker may be nil to skip driver checks.
func LoadAndValidate(path string, checker DriverChecker) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	p, probs := parse(path, data)
	if p != nil {
		probs = append(probs, validate(p, checker)...)
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return p, probs
	}
	return p, derive(p)
}

// derive fills what a valid plan's runs read instead of computing it in
// workflow code: the restart order.
func derive(p *Plan) error {
	tiers, err := Tiers(p)
	if err != nil {
		return err
	}
	p.Order = tiers
	return nil
}

// Validate checks a plan and returns every problem as a Problems, or nil.
// Driver names and settings are checked through checker; nil skips them.
// A plan decoded from JSON (a workflow input) validates the same way, only
// without line numbers.
func Validate(p *Plan, checker DriverChecker) error {
	if p == nil {
		return Problems{{Message: "no plan"}}
	}
	probs := validate(p, checker)
	if len(probs) == 0 {
		return derive(p)
	}
	sortProblems(probs)
	return probs
}

// nameRE is what names that end up in workflow IDs and file names may hold.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

const nameRule = "letters, digits, '.', '_' and '-', starting with a letter or digit"

type validator struct {
	p       *Plan
	file    string
	checker DriverChecker
	probs   Problems
	checks  map[string]string // verification check name -> path first seen
}

func validate(p *Plan, checker DriverChecker) Problems {
	v := &validator{p: p, file: p.Source, checker: checker, checks: map[string]string{}}
	v.header()
	v.sites()
	v.hosts()
	v.dataRoots()
	v.components()
	v.storage()
	v.verification()
	v.gates()
	if p.Redirect != nil {
		v.driver(KindRedirect, p.Redirect.Driver, p.Redirect.Settings, "redirect")
		v.secrets(p.Redirect.Settings, "redirect.settings")
	}
	v.environment()
	v.userSteps()
	v.siteChecks()
	v.priorities()
	if len(p.Notify) > 0 {
		// The notifications' own settings check, through the registry.
		v.driver(KindNotify, "webhooks", p.Notify, "notify")
	}
	return v.probs
}

// parentPath strips the last ".name" or "[i]" of a field path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// line finds where path was written, or else its nearest written parent.
func (v *validator) line(path string) int {
	if v.p.src == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l := v.p.src.lines[p]; l > 0 {
			return l
		}
	}
	return 0
}

// suppressed reports whether the parser already reported path or a parent.
func (v *validator) suppressed(path string) bool {
	if v.p.src == nil {
		return false
	}
	for p := path; p != ""; p = parentPath(p) {
		if v.p.src.bad[p] {
			return true
		}
	}
	return false
}

func (v *validator) add(path, format string, args ...any) {
	if v.suppressed(path) {
		return
	}
	v.probs.add(v.file, v.line(path), path, format, args...)
}

func (v *validator) written(path string) bool {
	if v.p.src == nil {
		return false
	}
	_, ok := v.p.src.lines[path]
	return ok
}

func (v *validator) name(path, name, what string) {
	switch {
	case name == "":
		v.add(path, "required: the name of %s", what)
	case !nameRE.MatchString(name):
		v.add(path, "invalid name %q: use %s", name, nameRule)
	}
}

func (v *validator) positive(path string, d Duration, what string) {
	switch {
	case d == 0 && !v.written(path):
		v.add(path, "required: %s, a Go duration > 0 such as 15m", what)
	case d <= 0:
		v.add(path, "must be > 0, got %s", d)
	}
}

func (v *validator) notNegative(path string, d Duration, zero string) {
	if d < 0 {
		v.add(path, "must not be negative, got %s (0 %s)", d, zero)
	}
}

func (v *validator) header() {
	p := v.p
	switch p.APIVersion {
	case APIVersion:
	case "":
		v.add("apiVersion", "required: write apiVersion: %s", APIVersion)
	default:
		v.add("apiVersion", "unsupported version %q: this drover reads %s", p.APIVersion, APIVersion)
	}
	v.name("name", p.Name, "the plan")
	v.positive("rpo", p.RPO, "how much recent data may be lost")
	v.positive("rto", p.RTO, "how long recovery may take")

	if len(p.Products) == 0 {
		v.add("products", "required: at least one product, in the order products start (e.g. [bpm, monitor])")
	}
	first := map[string]int{}
	for i, prod := range p.Products {
		path := fmt.Sprintf("products[%d]", i)
		if j, dup := first[prod]; dup && prod != "" {
			v.add(path, "product %q is listed twice (first as products[%d])", prod, j)
			continue
		}
		first[prod] = i
		v.name(path, prod, "a product")
	}
}

func (v *validator) sites() {
	s := v.p.Sites
	check := func(role string, site *Site, what string) {
		path := "sites." + role
		if site == nil {
			if what != "" {
				v.add(path, "required: %s", what)
			}
			return
		}
		if site.Name == "" {
			v.add(path+".name", "required: the name of the %s site", role)
		}
		v.secrets(site.Settings, path+".settings")
	}
	check(SitePrimary, s.Primary, "the site the cell normally runs at, with a name")
	check(SiteSecondary, s.Secondary, "the site the cell recovers to, with a name")
	check(SiteSandbox, s.Sandbox, "")

	names := map[string]string{}
	for _, r := range []struct {
		role string
		site *Site
	}{{SitePrimary, s.Primary}, {SiteSecondary, s.Secondary}, {SiteSandbox, s.Sandbox}} {
		if r.site == nil || r.site.Name == "" {
			continue
		}
		if other, dup := names[r.site.Name]; dup {
			v.add("sites."+r.role+".name", "%q is also the name of the %s site; each site needs its own name", r.site.Name, other)
			continue
		}
		names[r.site.Name] = r.role
	}
}

func roleList() string {
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func knownRole(r Role) bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

func (v *validator) hasProduct(prod string) bool {
	for _, p := range v.p.Products {
		if p == prod {
			return true
		}
	}
	return false
}

func (v *validator) components() {
	p := v.p
	if len(p.Components) == 0 {
		v.add("components", "required: at least one component")
		return
	}
	byName := map[string]int{}
	for i := range p.Components {
		c := &p.Components[i]
		if c.Name == "" {
			continue
		}
		if _, dup := byName[c.Name]; !dup {
			byName[c.Name] = i
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names) // so a "did you mean" guess is the same every run
	products := strings.Join(p.Products, ", ")

	for i := range p.Components {
		c := &p.Components[i]
		path := fmt.Sprintf("components[%d]", i)
		v.name(path+".name", c.Name, "the component")
		if j := byName[c.Name]; c.Name != "" && j != i {
			v.add(path+".name", "duplicate component name %q%s", c.Name, firstAt(p.Components[j].Pos))
		}

		switch {
		case c.Role == "":
			v.add(path+".role", "required: one of %s", roleList())
		case !knownRole(c.Role):
			hint := ""
			if g := closest(string(c.Role), strings.Split(roleList(), ", ")); g != "" {
				hint = fmt.Sprintf("; did you mean %q?", g)
			}
			v.add(path+".role", "unknown role %q (want one of %s)%s", c.Role, roleList(), hint)
		}
		switch {
		case c.Product == "" && c.Role.NeedsProduct():
			v.add(path+".product", "required for role %s: one of the plan's products (%s)", c.Role, products)
		case c.Product != "" && !v.hasProduct(c.Product):
			v.add(path+".product", "unknown product %q (the plan's products: %s)", c.Product, products)
		}

		v.driver(KindMiddleware, c.Driver, c.Settings, path)
		v.secrets(c.Settings, path+".settings")
		v.notNegative(path+".startTimeout", c.StartTimeout, "means the driver's default")

		seen := map[string]bool{}
		for j, a := range c.After {
			ap := fmt.Sprintf("%s.after[%d]", path, j)
			_, known := byName[a]
			switch {
			case a == "":
				v.add(ap, "empty component name")
			case a == c.Name:
				v.add(ap, "a component cannot start after itself")
			case !known:
				hint := ""
				if g := closest(a, names); g != "" {
					hint = fmt.Sprintf("; did you mean %q?", g)
				}
				v.add(ap, "unknown component %q%s", a, hint)
			case seen[a]:
				v.add(ap, "%q is listed twice", a)
			}
			seen[a] = true
		}

		v.replication(c, path)
		v.failurePolicy(c, path+".onFailure")

		if r := c.Readiness; r != nil {
			rp := path + ".readiness"
			v.driver(KindProbe, r.Driver, r.Settings, rp)
			v.secrets(r.Settings, rp+".settings")
			v.notNegative(rp+".timeout", r.Timeout, "means the driver's default")
		}
	}

	// Roles only chain downwards, so a cycle needs an after: edge. Report
	// each one at the after: entry that closes it.
	g := buildGraph(p, true)
	for _, cyc := range g.cycles() {
		v.add(cyc.path, "dependency cycle: %s (a → b: a starts after b)", strings.Join(cyc.names, " → "))
	}
}

// failurePolicy checks a component's onFailure: a known policy, data to
// re-create it from, a database to take over.
func (v *validator) failurePolicy(c *Component, path string) {
	switch c.OnFailure {
	case "", PolicyRestart, PolicyGate:
	case PolicyRecreate:
		for _, g := range v.p.Storage.Groups {
			if slices.Contains(g.Components, c.Name) {
				return
			}
		}
		v.add(path, "recreate restores %s's data from the point, but no storage group lists it in its components", c.Name)
	case PolicyTakeover:
		switch {
		case c.Role != RoleDatabase:
			v.add(path, "takeover promotes a database's standby; %s has role %s (use restart, recreate or gate)", c.Name, c.Role)
		case c.Replication == nil:
			v.add(path, "takeover promotes %s's standby, but the component has no replication (set replication.standby)", c.Name)
		}
	default:
		names := make([]string, len(FailurePolicies))
		for i, fp := range FailurePolicies {
			names[i] = string(fp)
		}
		v.add(path, "unknown failure policy %q (want one of %s)", c.OnFailure, strings.Join(names, ", "))
	}
}

func (v *validator) storage() {
	v.schedule()
	st := v.p.Storage
	v.secrets(st.Store, "storage.store")
	first := map[string]int{}
	comps := map[string]bool{}
	replicated := map[string]bool{}
	for _, c := range v.p.Components {
		comps[c.Name] = true
		replicated[c.Name] = c.Replicated()
	}
	for i := range st.Groups {
		g := &st.Groups[i]
		path := fmt.Sprintf("storage.groups[%d]", i)
		if g.Name == "" {
			v.add(path+".name", "required: the name of the consistency group")
		} else if j, dup := first[g.Name]; dup {
			v.add(path+".name", "duplicate consistency group %q%s", g.Name, firstAt(st.Groups[j].Pos))
		} else {
			first[g.Name] = i
		}
		v.driver(KindStorage, g.Driver, g.Settings, path)
		v.secrets(g.Settings, path+".settings")

		if len(g.Classes) == 0 {
			v.add(path+".classes", "required: the data classes the group holds (configuration, runtime)")
		}
		seen := map[DataClass]bool{}
		for j, cl := range g.Classes {
			cp := fmt.Sprintf("%s.classes[%d]", path, j)
			switch cl {
			case DataConfiguration, DataRuntime:
				if seen[cl] {
					v.add(cp, "%q is listed twice", cl)
				}
				seen[cl] = true
			case "installation":
				v.add(cp, "installation data is checked, not copied: reinstall it at the secondary site (the seed's restore steps 1-2) and list only configuration and runtime")
			case "memory":
				v.add(cp, "memory data cannot be captured; in-flight work is recovered from runtime data (transaction logs, databases)")
			default:
				v.add(cp, "unknown data class %q (want configuration or runtime)", cl)
			}
		}
		inGroup := map[string]bool{}
		for j, name := range g.Components {
			cp := fmt.Sprintf("%s.components[%d]", path, j)
			switch {
			case !comps[name]:
				v.add(cp, "unknown component %q", name)
			case replicated[name]:
				v.add(cp, "component %q is protected by its replication (components[].replication): a failover promotes its standby, so no group restores it", name)
			case inGroup[name]:
				v.add(cp, "%q is listed twice", name)
			}
			inGroup[name] = true
		}
	}
}

// replication checks a replicated component: its standby is at the
// secondary site, and its driver replicates (where drivers are known).
func (v *validator) replication(c *Component, path string) {
	r := c.Replication
	if r == nil {
		return
	}
	rp := path + ".replication"
	secondary := siteNameOf(v.p.Sites.Secondary)
	switch {
	case r.Standby == "":
		v.add(rp+".standby", "required: the site that holds the standby (the secondary site, %s)", secondary)
	case v.p.Sites.Secondary != nil && r.Standby != secondary:
		v.add(rp+".standby", "standby site %q is not the secondary site %q: the standby follows the primary at the site a failover moves to", r.Standby, secondary)
	}
	if c.Driver == "" || v.checker == nil || v.suppressed(path+".settings") {
		return
	}
	if err := v.checkDriver(KindMiddleware, c.Driver, c.Settings); err != nil {
		return // reported at the driver or its settings
	}
	if err := v.checker.CheckDriver(string(KindReplicator), c.Driver, c.Settings); err != nil {
		v.add(path+".driver", "%s: a replicated component needs a driver that replicates", err)
	}
}

// siteChecks checks the prerequisites of a restore at the secondary.
func (v *validator) siteChecks() {
	sc := v.p.SiteChecks
	if sc == nil {
		return
	}
	if len(sc.Hosts)+len(sc.Mounts)+len(sc.Paths)+len(sc.Probes) == 0 {
		v.add("siteChecks", "checks nothing: list hosts, mounts, paths or probes")
	}
	seen := map[string]bool{}
	for i, h := range sc.Hosts {
		hp := fmt.Sprintf("siteChecks.hosts[%d]", i)
		switch {
		case h.Name == "":
			v.add(hp+".name", "required: the host name that must answer at both sites")
		case seen[h.Name]:
			v.add(hp+".name", "host %q is listed twice", h.Name)
		}
		seen[h.Name] = true
		for j, a := range h.Addresses {
			if net.ParseIP(a) == nil {
				v.add(fmt.Sprintf("%s.addresses[%d]", hp, j), "%q is not an IP address", a)
			}
		}
	}
	for i, m := range sc.Mounts {
		mp := fmt.Sprintf("siteChecks.mounts[%d]", i)
		if !filepath.IsAbs(m.Path) {
			v.add(mp+".path", "want an absolute path, got %q", m.Path)
		}
	}
	for i, p := range sc.Paths {
		if !filepath.IsAbs(p) {
			v.add(fmt.Sprintf("siteChecks.paths[%d]", i), "want an absolute path, got %q", p)
		}
	}
	for i := range sc.Probes {
		v.check(&sc.Probes[i], fmt.Sprintf("siteChecks.probes[%d]", i))
	}
}

// dataRootGlob checks a glob pattern relative to a site's data root.
func (v *validator) dataRootGlob(fp, f, why string) {
	switch {
	case f == "":
		v.add(fp, "empty file pattern")
	case filepath.IsAbs(f):
		v.add(fp, "%q is absolute: patterns are relative to the site's dataRoot (%s)", f, why)
	case slices.Contains(strings.Split(filepath.ToSlash(f), "/"), ".."):
		v.add(fp, "%q leaves the site's dataRoot", f)
	default:
		if _, err := filepath.Match(f, ""); err != nil {
			v.add(fp, "%q is not a glob pattern: %v", f, err)
		}
	}
}

// schedule checks the backup policy: the validation choice, the
// configuration watch and the cold backups.
func (v *validator) schedule() {
	sc := v.p.Storage.Schedule
	const path = "storage.schedule"
	switch sc.Validate {
	case "", "every", "daily", "none":
	default:
		v.add(path+".validate", "want every, daily or none, got %q", sc.Validate)
	}
	if w := sc.OnChange; w != nil {
		wp := path + ".onChange"
		if !w.Installation && len(w.Paths) == 0 {
			v.add(wp, "watches nothing: set installation: true or list the configuration folders under paths")
		}
		if w.Installation && (v.p.Sites.Primary == nil || v.p.Sites.Primary.Installation == "") {
			v.add(wp+".installation", "the primary site names no installation manifest (sites.primary.installation)")
		}
		for i, f := range w.Paths {
			v.dataRootGlob(fmt.Sprintf("%s.paths[%d]", wp, i), f, "fingerprinted at the primary")
		}
		v.notNegative(wp+".every", w.Every, "means the RPO monitor's interval")
	}
	if c := sc.Cold; c != nil {
		v.positive(path+".cold.every", c.Every, "how often the cell is stopped for a cold backup")
		if c.Approve {
			if _, ok := findGateNamed(v.p, "cold-backup"); !ok {
				v.add(path+".cold.approve", "the plan defines no gate cold-backup to approve the cell's stop")
			}
		}
	}
}

func findGateNamed(p *Plan, name string) (Gate, bool) {
	for _, g := range p.Gates {
		if g.Name == name {
			return g, true
		}
	}
	return Gate{}, false
}

func (v *validator) check(c *DriverCheck, path string) {
	switch {
	case c.Name == "":
		v.add(path+".name", "required: the name of the check")
	case v.checks[c.Name] != "":
		first := v.checks[c.Name]
		if l := v.line(first); l > 0 {
			first = fmt.Sprintf("%s, line %d", first, l)
		}
		v.add(path+".name", "duplicate check name %q (first at %s)", c.Name, first)
	default:
		v.checks[c.Name] = path
	}
	v.driver(KindProbe, c.Driver, c.Settings, path)
	v.secrets(c.Settings, path+".settings")
	v.notNegative(path+".timeout", c.Timeout, "means the driver's default")
}

func (v *validator) verification() {
	for _, l := range Levels {
		checks := v.p.Verification.Checks(l)
		for i := range checks {
			v.check(&checks[i], fmt.Sprintf("verification.%s[%d]", l, i))
		}
	}
	for i := range v.p.External {
		v.check(&v.p.External[i], fmt.Sprintf("external[%d]", i))
	}
}

func (v *validator) gates() {
	p := v.p
	approvers := map[string]int{}
	for i, a := range p.Approvers {
		path := fmt.Sprintf("approvers[%d].name", i)
		switch j, dup := approvers[a.Name]; {
		case a.Name == "":
			v.add(path, "required: the approver's name")
		case dup:
			v.add(path, "duplicate approver %q%s", a.Name, firstAt(p.Approvers[j].Pos))
		default:
			approvers[a.Name] = i
		}
	}
	gates := map[string]int{}
	for i := range p.Gates {
		g := &p.Gates[i]
		path := fmt.Sprintf("gates[%d]", i)
		switch j, dup := gates[g.Name]; {
		case g.Name == "":
			v.add(path+".name", "required: the name of the gate")
		case dup:
			v.add(path+".name", "duplicate gate %q%s", g.Name, firstAt(p.Gates[j].Pos))
		default:
			gates[g.Name] = i
		}
		switch {
		case g.NoApproval && !slices.Contains(RequiredGates, g.Name):
			v.add(path+".approvers", "none is only for the gates a plan may waive in so many words (%s); gate %q needs approvers",
				strings.Join(RequiredGates, ", "), g.Name)
		case g.NoApproval:
		case len(g.Approvers) == 0:
			v.add(path+".approvers", "required: at least one of the plan's approvers (or none, on %s only)", strings.Join(RequiredGates, ", "))
		}
		distinct := map[string]bool{}
		for j, a := range g.Approvers {
			ap := fmt.Sprintf("%s.approvers[%d]", path, j)
			_, known := approvers[a]
			switch {
			case !known:
				v.add(ap, "unknown approver %q (not in approvers:)", a)
			case distinct[a]:
				v.add(ap, "%q is listed twice", a)
			}
			distinct[a] = true
		}
		quorum := g.Quorum
		if quorum == 0 && !v.written(path+".quorum") {
			quorum = 1
		}
		if g.NoApproval {
			// Nobody decides: no quorum to check.
		} else if n := len(distinct); n > 0 && (quorum < 1 || quorum > n) {
			v.add(path+".quorum", "must be between 1 and %d (the gate's approvers), got %d", n, g.Quorum)
		} else if n == 0 && quorum < 1 {
			v.add(path+".quorum", "must be at least 1, got %d", g.Quorum)
		}
		// A quorum of two is two people only when each approval is signed:
		// an unsigned approver field is whatever the sender typed.
		if quorum >= 2 && quorum <= len(distinct) {
			for j, a := range g.Approvers {
				if k, known := approvers[a]; known && p.Approvers[k].PublicKey == "" {
					v.add(fmt.Sprintf("%s.approvers[%d]", path, j),
						"gate %q has quorum %d, which needs signed approvals, but approver %q has no publicKey (make one: drover keys new --name %s)",
						g.Name, quorum, a, a)
				}
			}
		}
		v.notNegative(path+".timeout", g.Timeout, "waits for ever")
		switch g.OnTimeout {
		case "", EscalateAbort, EscalateRemind:
		default:
			v.add(path+".onTimeout", "want abort or remind, got %q", g.OnTimeout)
		}
		for j, item := range g.Checklist {
			if strings.TrimSpace(item) == "" {
				v.add(fmt.Sprintf("%s.checklist[%d]", path, j), "empty checklist item")
			}
		}
	}
	for _, name := range RequiredGates {
		if _, ok := gates[name]; !ok {
			v.add("gates", "required: gate %q (the seed's runbook asks a person before %s); write approvers: none on it to run without one",
				name, requiredGateWhy[name])
		}
	}
}

// RequiredGates are the gates every plan must define: a person decides
// before the secondary starts in an unplanned failover and before a
// failback starts, unless the plan says approvers: none on them.
var RequiredGates = []string{"start-secondary", "failback"}

var requiredGateWhy = map[string]string{
	"start-secondary": "the secondary starts in an unplanned failover",
	"failback":        "a failback starts",
}

func (v *validator) environment() {
	first := map[string]int{}
	for i := range v.p.Environment {
		r := &v.p.Environment[i]
		path := fmt.Sprintf("environment[%d]", i)
		switch j, dup := first[r.Name]; {
		case r.Name == "":
			v.add(path+".name", "required: the name of the rewrite")
		case dup:
			v.add(path+".name", "duplicate rewrite %q%s", r.Name, firstAt(v.p.Environment[j].Pos))
		default:
			first[r.Name] = i
		}
		switch {
		case len(r.Files) == 0 && r.SQL == nil:
			v.add(path+".files", "required: the files (glob patterns) to rewrite, or sql: the database statement")
		case len(r.Files) > 0 && r.SQL != nil:
			v.add(path+".sql", "a rewrite changes files or a database, not both: write two rewrites")
		case r.SQL != nil:
			v.sqlRewrite(r.SQL, path+".sql")
		}
		for j, f := range r.Files {
			v.dataRootGlob(fmt.Sprintf("%s.files[%d]", path, j), f, "the rewrite runs on the restored data there")
		}
		if v.p.Sites.Sandbox != nil && r.Sandbox == "" {
			v.add(path+".sandbox", "required: the value at the sandbox site %s, where drills and validations restore", v.p.Sites.Sandbox.Name)
		}
		if r.Primary == "" {
			v.add(path+".primary", "required: the text as written at the primary site")
		}
		if r.Secondary == "" {
			v.add(path+".secondary", "required: the text to write at the secondary site")
		}
		if r.Primary != "" && r.Primary == r.Secondary {
			v.add(path+".secondary", "same as primary (%q): nothing to rewrite", r.Primary)
		}
	}
}

// placeholderRE finds $1, $2 ... in a statement.
var placeholderRE = regexp.MustCompile(`\$([0-9]+)`)

func (v *validator) sqlRewrite(s *SQLRewrite, path string) {
	for _, ref := range []struct{ field, val string }{{"dsn", s.DSN}, {"password", s.Password}} {
		switch {
		case ref.val == "" && ref.field == "dsn":
			v.add(path+".dsn", "required: a secret reference (env:NAME or file:PATH) to the database's connection string")
		case ref.val != "" && !strings.HasPrefix(ref.val, "env:") && !strings.HasPrefix(ref.val, "file:"):
			v.add(path+"."+ref.field, "write a secret reference env:NAME or file:PATH (plans travel in workflow history)")
		}
	}
	if strings.TrimSpace(s.Statement) == "" {
		v.add(path+".statement", "required: the SQL statement, $1 the site's value and $2 the value it replaces")
	} else {
		used := map[string]bool{}
		for _, m := range placeholderRE.FindAllStringSubmatch(s.Statement, -1) {
			if n := m[1]; n != "1" && n != "2" && !used[n] {
				v.add(path+".statement", "uses $%s: only $1 (the site's value) and $2 (the value it replaces) are given", n)
			}
			used[m[1]] = true
		}
		if !used["1"] || !used["2"] {
			v.add(path+".statement", "must use $1 (the site's value) and select the rows by $2 (the value it replaces), so a second run changes nothing")
		}
	}
	v.notNegative(path+".timeout", s.Timeout, "means 30s")
}

// driver checks that a driver is named and, through the checker, that it
// exists and accepts its settings.
func (v *validator) driver(kind DriverKind, name string, settings Settings, path string) {
	if name == "" {
		v.add(path+".driver", "required: the name of a %s driver", kind)
		return
	}
	if v.checker == nil || v.suppressed(path+".settings") {
		return
	}
	if err := v.checkDriver(kind, name, settings); err != nil {
		msg := err.Error()
		// An unknown name is the driver field's fault (drivers.Registry says
		// "unknown <kind> driver"); anything else is about the settings.
		if strings.Contains(msg, "unknown "+string(kind)+" driver") || strings.HasPrefix(msg, "unknown driver kind") {
			v.add(path+".driver", "%s", msg)
			return
		}
		msg = strings.TrimPrefix(msg, "settings: ")
		if !strings.Contains(msg, name) {
			msg = fmt.Sprintf("%s driver %q: %s", kind, name, msg)
		}
		v.add(path+".settings", "%s", msg)
	}
}

// checkDriver calls the checker; a driver that panics on odd settings is a
// problem in the plan's report, not a crash of the CLI.
func (v *validator) checkDriver(kind DriverKind, name string, settings Settings) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s driver %q failed checking its settings: %v", kind, name, r)
		}
	}()
	return v.checker.CheckDriver(string(kind), name, settings)
}

// secretWords mark settings keys that hold credentials; secretSuffixes mark
// keys that only name where a credential is (passwordFile, tokenURL).
var (
	secretWords    = []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "privatekey", "private_key", "credential"}
	secretSuffixes = []string{"file", "path", "env", "ref", "url", "uri", "name", "user", "username", "id", "ttl", "timeout"}
)

// secrets rejects settings that look like a credential written in clear:
// plans travel in workflow history, so they hold env:NAME or file:PATH.
func (v *validator) secrets(s Settings, path string) {
	v.secretsIn(map[string]any(s), path)
}

func (v *validator) secretsIn(val any, path string) {
	switch x := val.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := x[k]
			kp := joinPath(path, k)
			if s, ok := sub.(string); ok && looksSecret(k) && s != "" &&
				!strings.HasPrefix(s, "env:") && !strings.HasPrefix(s, "file:") {
				v.add(kp, "looks like a secret written in the plan; write a reference env:NAME or file:PATH instead (plans travel in workflow history)")
				continue
			}
			v.secretsIn(sub, kp)
		}
	case []any:
		for i, sub := range x {
			v.secretsIn(sub, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func looksSecret(key string) bool {
	k := strings.ToLower(key)
	for _, suf := range secretSuffixes {
		if strings.HasSuffix(k, suf) {
			return false
		}
	}
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// firstAt says where the first of two duplicates was written, when known.
func firstAt(p Pos) string {
	if p.Line > 0 {
		return fmt.Sprintf(" (first at line %d)", p.Line)
	}
	return ""
}

// hosts checks each site's machines and that every component and group is
// placed on a host that exists at every site it may run at.
func (v *validator) hosts() {
	p := v.p
	sites := []struct {
		role string
		site *Site
	}{{SitePrimary, p.Sites.Primary}, {SiteSecondary, p.Sites.Secondary}, {SiteSandbox, p.Sites.Sandbox}}
	for _, r := range sites {
		if r.site == nil {
			continue
		}
		path := "sites." + r.role
		var local []string
		for _, name := range sortedKeys(r.site.Hosts) {
			h := r.site.Hosts[name]
			hp := path + ".hosts." + name
			v.name(hp, name, "host")
			if h.Worker && len(h.SSH) > 0 {
				v.add(hp+".ssh", "a host with its own worker needs no SSH: remove ssh or worker")
			}
			v.secrets(h.SSH, hp+".ssh")
			if !h.Worker && len(h.SSH) == 0 {
				local = append(local, name)
			}
		}
		if len(local) > 1 {
			v.add(path+".hosts", "hosts %s have neither a worker of their own nor ssh settings: only the host the site's worker runs on may be reached without either",
				strings.Join(local, ", "))
		}
		for _, from := range sortedKeys(r.site.HostMap) {
			if _, ok := r.site.Hosts[r.site.HostMap[from]]; !ok {
				v.add(path+".hostMap."+from, "maps %q to %q, which is not one of this site's hosts", from, r.site.HostMap[from])
			}
		}
	}
	place := func(what, path, host string) {
		for _, r := range sites {
			if r.site == nil || r.site.Name == "" {
				continue
			}
			if _, ok := r.site.Host(host); ok {
				continue
			}
			switch {
			case host == "" && len(r.site.Hosts) > 1:
				v.add(path+".host", "required: site %s has %d hosts (%s); say which one %s runs on",
					r.site.Name, len(r.site.Hosts), strings.Join(sortedKeys(r.site.Hosts), ", "), what)
			case len(r.site.Hosts) == 0:
				v.add(path+".host", "site %s lists no hosts, so %s cannot be placed on %q: add hosts to the site or remove host",
					r.site.Name, what, host)
			default:
				v.add(path+".host", "unknown host %q at site %s (hosts: %s); add it, or map it with sites.%s.hostMap",
					host, r.site.Name, strings.Join(sortedKeys(r.site.Hosts), ", "), r.role)
			}
			return
		}
	}
	for i, c := range p.Components {
		place("component "+c.Name, fmt.Sprintf("components[%d]", i), c.Host)
	}
	for i, g := range p.Storage.Groups {
		place("consistency group "+g.Name, fmt.Sprintf("storage.groups[%d]", i), g.Host)
	}
	if rs := p.Storage.ReverseStoreAt; rs.Site != "" && p.Sites.Secondary != nil && rs.Site == p.Sites.Secondary.Name {
		v.add("storage.reverseStore.site", "the reverse store is where backups of %s go while it is the primary: it must not be at %s itself (place it at %s or a third site)",
			rs.Site, rs.Site, siteNameOf(p.Sites.Primary))
	}
	at := p.Storage.StoreAt
	// (Two sites with one name are reported already.)
	sameNames := p.Sites.Secondary != nil && p.Sites.Primary != nil && p.Sites.Secondary.Name == p.Sites.Primary.Name
	if p.Sites.Primary != nil && at.Site != "" && at.Site == p.Sites.Primary.Name && !sameNames {
		v.add("storage.store.site", "the store is at the primary site %s: it would be lost with the site it protects; place it at the secondary (%s) or a third site",
			at.Site, siteNameOf(p.Sites.Secondary))
	}
	for _, r := range sites {
		if r.site != nil && r.site.Name == at.Site && at.Host != "" {
			if _, ok := r.site.Hosts[at.Host]; !ok {
				v.add("storage.store.host", "unknown host %q at site %s, where the store is", at.Host, at.Site)
			}
		}
	}
}

func siteNameOf(s *Site) string {
	if s == nil {
		return "?"
	}
	return s.Name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// systemFolders are top-level folders of a Unix host that no data root may
// be: a restore replaces what is there and a wipe empties it.
var systemFolders = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root",
	"/run", "/sbin", "/sys", "/tmp", "/usr", "/var"}

// dataRoots refuses data roots a restore or a wipe must never touch: the
// root folder, a system folder, the store, and a sandbox whose data root is
// the primary's (a drill would replace production data).
func (v *validator) dataRoots() {
	p := v.p
	root := func(s *Site) string {
		if s == nil {
			return ""
		}
		r, _ := s.Settings["dataRoot"].(string)
		if r == "" {
			return ""
		}
		return filepath.Clean(r)
	}
	store, _ := p.Storage.Store["path"].(string)
	if store != "" {
		store = filepath.Clean(store)
	}
	for _, r := range []struct {
		role string
		site *Site
	}{{SitePrimary, p.Sites.Primary}, {SiteSecondary, p.Sites.Secondary}, {SiteSandbox, p.Sites.Sandbox}} {
		dr := root(r.site)
		if dr == "" {
			continue
		}
		path := "sites." + r.role + ".settings.dataRoot"
		switch {
		case dr == "/":
			v.add(path, "%q is the root folder: a restore would replace, and a wipe empty, the whole host", dr)
		case slices.Contains(systemFolders, dr):
			v.add(path, "%q is a system folder: name the folder that holds the cell's data (a mount such as /home or /srv/cell)", dr)
		case store != "" && (dr == store || within(store, dr) || within(dr, store)):
			v.add(path, "%q overlaps the store %s: a restore or a wipe there would destroy recovery points", dr, store)
		}
	}
	// A sandbox or secondary may use the primary's path only on machines of
	// its own: a drill would otherwise replace, and a wipe empty, production.
	for _, r := range []struct {
		role string
		site *Site
	}{{SiteSecondary, p.Sites.Secondary}, {SiteSandbox, p.Sites.Sandbox}} {
		for _, other := range []struct {
			role string
			site *Site
		}{{SitePrimary, p.Sites.Primary}, {SiteSecondary, p.Sites.Secondary}} {
			if other.role == r.role || (r.role == SiteSecondary && other.role == SiteSecondary) {
				continue
			}
			dr := root(r.site)
			if dr == "" || dr != root(other.site) || separateMachines(r.site, other.site) {
				continue
			}
			v.add("sites."+r.role+".settings.dataRoot", "%q is also the %s's data root, and nothing says the two sites are different machines: "+
				"give the %s a data root of its own, or list both sites' hosts with their addresses (none shared)", dr, other.role, r.role)
		}
	}
}

// separateMachines reports whether two sites list their hosts with
// addresses and share none: then one path at both is two folders.
func separateMachines(a, b *Site) bool {
	addrs := func(s *Site) map[string]bool {
		out := map[string]bool{}
		for _, h := range s.Hosts {
			if h.Address == "" {
				return nil
			}
			out[h.Address] = true
		}
		return out
	}
	aa, ba := addrs(a), addrs(b)
	if len(aa) == 0 || len(ba) == 0 {
		return false
	}
	for addr := range aa {
		if ba[addr] {
			return false
		}
	}
	return true
}

// within reports whether path lies inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}

// userSteps checks the operators' own steps: a phase that exists, a tier
// the plan derives, a driver or a gate (not both), a known failure policy.
func (v *validator) userSteps() {
	p := v.p
	var tierNames []string
	if len(p.Steps) > 0 {
		if tiers, err := Tiers(p); err == nil {
			for _, t := range tiers {
				tierNames = append(tierNames, TierName(p, t))
			}
		}
	}
	gates := map[string]bool{}
	for _, g := range p.Gates {
		gates[g.Name] = true
	}
	first := map[string]int{}
	for i := range p.Steps {
		s := &p.Steps[i]
		path := fmt.Sprintf("steps[%d]", i)
		v.name(path+".name", s.Name, "the step")
		if j, dup := first[s.Name]; dup && s.Name != "" {
			v.add(path+".name", "duplicate step %q%s", s.Name, firstAt(p.Steps[j].Pos))
		} else {
			first[s.Name] = i
		}
		phase, _ := s.Phase()
		field := path + ".before"
		if s.After != "" {
			field = path + ".after"
		}
		switch {
		case s.Before != "" && s.After != "":
			v.add(path+".after", "a step runs before or after one phase: write before or after, not both")
		case phase == "":
			v.add(path+".before", "required: before or after, one of %s", strings.Join(StepPhases, ", "))
		case !slices.Contains(StepPhases, phase):
			hint := ""
			if g := closest(phase, StepPhases); g != "" {
				hint = fmt.Sprintf("; did you mean %q?", g)
			}
			v.add(field, "unknown phase %q (want one of %s)%s", phase, strings.Join(StepPhases, ", "), hint)
		}
		switch {
		case phase == PhaseTier && s.Tier == "":
			v.add(path+".tier", "required: the tier the step runs %s (%s)", map[bool]string{true: "after", false: "before"}[s.After != ""], strings.Join(tierNames, ", "))
		case phase != PhaseTier && s.Tier != "":
			v.add(path+".tier", "a tier is named only for %s: %s", PhaseTier, PhaseTier)
		case s.Tier != "" && tierNames != nil && !slices.Contains(tierNames, s.Tier):
			hint := ""
			if g := closest(s.Tier, tierNames); g != "" {
				hint = fmt.Sprintf("; did you mean %q?", g)
			}
			v.add(path+".tier", "unknown tier %q (the plan's tiers: %s)%s", s.Tier, strings.Join(tierNames, ", "), hint)
		}
		for j, k := range s.Runs {
			if !slices.Contains(StepRuns, k) {
				v.add(fmt.Sprintf("%s.runs[%d]", path, j), "unknown kind of run %q (want %s)", k, strings.Join(StepRuns, ", "))
			}
		}
		if phase == PhaseCapture && len(s.Runs) > 0 && !slices.Contains(s.Runs, "backup") {
			v.add(path+".runs", "the capture phase is a backup's: add backup to runs")
		}
		switch {
		case s.Gate != "" && s.Driver != "":
			v.add(path+".gate", "a step is a driver call or a manual step at a gate, not both")
		case s.Gate != "":
			if !gates[s.Gate] {
				v.add(path+".gate", "unknown gate %q: define it under gates with its approvers", s.Gate)
			}
			if len(s.Settings) > 0 {
				v.add(path+".settings", "a manual step has no driver settings")
			}
			if phase == PhaseCapture {
				v.add(path+".gate", "a manual step cannot wait in a backup's capture: scheduled backups have nobody to ask and would stop until someone did (a cold backup asks first with storage.schedule.cold.approve)")
			}
		case s.Driver == "":
			v.add(path+".driver", "required: a probe driver to call (exec, sql, http, tcp) or a gate for a manual step")
		default:
			v.driver(KindProbe, s.Driver, s.Settings, path)
			v.secrets(s.Settings, path+".settings")
		}
		for j, item := range s.Checklist {
			if strings.TrimSpace(item) == "" {
				v.add(fmt.Sprintf("%s.checklist[%d]", path, j), "empty checklist item")
			}
		}
		v.notNegative(path+".timeout", s.Timeout, "means 10m")
		switch s.OnFailure {
		case "", StepAbort, StepContinue:
		case StepGate:
			if !gates["step-failed"] {
				v.add(path+".onFailure", "gate asks at the step-failed gate, which the plan does not define")
			}
		default:
			v.add(path+".onFailure", "want abort, continue or gate, got %q", s.OnFailure)
		}
		if s.Host != "" {
			for _, site := range []*Site{p.Sites.Primary, p.Sites.Secondary, p.Sites.Sandbox} {
				if site == nil || site.Name == "" {
					continue
				}
				if _, ok := site.Host(s.Host); !ok {
					v.add(path+".host", "unknown host %q at site %s (hosts: %s)", s.Host, site.Name, strings.Join(sortedKeys(site.Hosts), ", "))
					break
				}
			}
		}
	}
}

// priorities checks the priority classes and that no component waits
// (after:) for one of a later class, which a subset run would not start.
func (v *validator) priorities() {
	p := v.p
	rank := map[string]int{}
	for i, pc := range p.Priorities {
		path := fmt.Sprintf("priorities[%d].name", i)
		v.name(path, pc.Name, "the priority class")
		if _, dup := rank[pc.Name]; dup && pc.Name != "" {
			v.add(path, "duplicate priority class %q", pc.Name)
			continue
		}
		rank[pc.Name] = i
	}
	if len(p.Priorities) == 0 {
		for i, pc := range DefaultPriorities {
			rank[pc.Name] = i
		}
	}
	classes := make([]string, 0, len(rank))
	for _, pc := range p.PriorityClasses() {
		classes = append(classes, pc.Name)
	}
	for i, c := range p.Components {
		path := fmt.Sprintf("components[%d].priority", i)
		if c.Priority != "" {
			if _, ok := rank[c.Priority]; !ok {
				v.add(path, "unknown priority class %q (the plan's classes: %s)", c.Priority, strings.Join(classes, ", "))
				continue
			}
		}
		for j, a := range c.After {
			dep, ok := p.Component(a)
			if !ok {
				continue
			}
			if rank[p.PriorityOf(*dep)] > rank[p.PriorityOf(c)] {
				v.add(fmt.Sprintf("components[%d].after[%d]", i, j), "%s (%s) starts after %s, whose class %s comes later: a run that brings up %s would wait for it",
					c.Name, p.PriorityOf(c), a, p.PriorityOf(*dep), p.PriorityOf(c))
			}
		}
	}
}
