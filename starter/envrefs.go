package starter

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/drover-dr/drover/plan"
)

// Where a plan names environment variables, and who resolves them:
//
//   - storage.store (path, staging, caFile as ${VAR}; keys and credentials
//     as env:NAME) is opened by the CLI itself for plan apply and status,
//     points and report, as well as by the workers at the store's site;
//   - sites.*.settings.dataRoot and sites.*.installation (${VAR}) are read
//     by plan apply on the host running it (data roots found, installation
//     manifests compared);
//   - everything else (component, group, probe, redirect and notify
//     settings, env:NAME secrets) is resolved by the site worker that runs
//     the step, in that worker's environment, never on the operator's host.
//
// So plan validate and plan apply check the first two kinds in their own
// environment, and a variable unset there is bad input (exit 2) naming the
// file, the field and the variable. failover, failback and drill check
// nothing of the operator's environment: the site workers resolve what
// they use, a reference unset there fails the step as BadSettings, and
// drover failover --watch exits 2 on such a failure.
var envVarRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// localEnvProblems lists the environment variables the plan's store and
// sites name that are unset (or empty) here.
func localEnvProblems(p *plan.Plan, file string) plan.Problems {
	var probs plan.Problems
	add := func(field, name, how string) {
		probs = append(probs, plan.Problem{File: file, Line: p.Line(field), Field: field,
			Message: fmt.Sprintf("environment variable %s is not set (%s; this command resolves it here)", name, how)})
	}
	for _, k := range sortedKeys(p.Storage.Store) {
		walkEnv("storage.store."+k, p.Storage.Store[k], add)
	}
	for _, role := range []string{"primary", "secondary", "sandbox"} {
		s, ok := p.Site(role)
		if !ok || s == nil {
			continue
		}
		if raw, ok := s.Settings["dataRoot"].(string); ok {
			pathVars("sites."+role+".settings.dataRoot", raw, add)
		}
		if s.Installation != "" {
			pathVars("sites."+role+".installation", s.Installation, add)
		}
	}
	return probs
}

// walkEnv checks env:NAME references anywhere under v and ${VAR} in the
// path-like strings (expanded by drivers.ExpandPath).
func walkEnv(field string, v any, add func(field, name, how string)) {
	switch x := v.(type) {
	case string:
		if name, ok := strings.CutPrefix(x, "env:"); ok {
			if os.Getenv(name) == "" {
				add(field, name, "a secret reference")
			}
			return
		}
		pathVars(field, x, add)
	case map[string]any:
		for _, k := range sortedKeys(x) {
			walkEnv(field+"."+k, x[k], add)
		}
	case []any:
		for i, e := range x {
			walkEnv(fmt.Sprintf("%s[%d]", field, i), e, add)
		}
	}
}

func pathVars(field, s string, add func(field, name, how string)) {
	for _, m := range envVarRE.FindAllStringSubmatch(s, -1) {
		name := m[1] + m[2]
		if os.Getenv(name) == "" {
			add(field, name, "expanded in "+s)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// storeEnvProblems are the unset variables of the store's settings, which
// every command that reads the store resolves here.
func storeEnvProblems(p *plan.Plan) plan.Problems {
	var probs plan.Problems
	for _, pr := range localEnvProblems(p, p.Source) {
		if strings.HasPrefix(pr.Field, "storage.store.") {
			probs = append(probs, pr)
		}
	}
	return probs
}

// checkLocalEnv fails as bad input when the plan names variables unset
// here (plan validate, plan apply).
func checkLocalEnv(g *Globals, p *plan.Plan, file string) error {
	probs := localEnvProblems(p, file)
	if len(probs) == 0 {
		return nil
	}
	if g.Structured() {
		if err := planWriteJSON(g, map[string]any{"file": file, "valid": false, "problems": probs}); err != nil {
			return err
		}
	} else {
		for _, pr := range probs {
			fmt.Fprintln(g.Stderr, pr.String())
		}
	}
	return BadInputf("%s: %s", file, count(len(probs), "unset environment variable"))
}
