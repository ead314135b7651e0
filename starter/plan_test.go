package starter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/plan"
)

// fakePlanChecker knows the drivers the example plans name, so these tests
// do not depend on which drivers are built in yet.
type fakePlanChecker map[string][]string

func (f fakePlanChecker) CheckDriver(kind, name string, _ map[string]any) error {
	for _, k := range f[kind] {
		if k == name {
			return nil
		}
	}
	return fmt.Errorf("unknown %s driver %q (known: %s)", kind, name, strings.Join(f[kind], ", "))
}

func useFakePlanChecker(t *testing.T) {
	t.Helper()
	old := planChecker
	planChecker = func(*Globals) plan.DriverChecker {
		return fakePlanChecker{"middleware": {"exec", "db2", "websphere"}, "probe": {"http", "tcp", "exec"}, "storage": {"archive", "lvm"}, "redirect": {"dns"}}
	}
	t.Cleanup(func() { planChecker = old })
}

const goldenPlan = "../examples/plans/bpm-golden.yaml"

func runDrover(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPlanValidateAcceptsTheGoldenPlan(t *testing.T) {
	useFakePlanChecker(t)
	code, out, errs := runDrover("plan", "validate", goldenPlan)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, goldenPlan+": OK: plan bpm-golden, 17 components in 10 tiers, 1 consistency group, 9 verification checks, 12 gates\n", out)

	code, out, errs = runDrover("plan", "validate", "--output", "json", goldenPlan)
	require.Equal(t, ExitOK, code, errs)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, true, doc["valid"])
	assert.Equal(t, float64(10), doc["tiers"])
}

func TestPlanValidateReportsEveryProblem(t *testing.T) {
	useFakePlanChecker(t)
	src := `apiVersion: drover/v1
name: broken
rpo: 0s
rto: 1h
products: [bpm]
sites:
  primary: {name: a}
components:
  - name: db
    role: database
    driver: exec
  - name: db
    role: app
    driver: exek
    colour: blue
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
`
	file := filepath.Join(t.TempDir(), "broken.yaml")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	code, out, errs := runDrover("plan", "validate", file)
	assert.Equal(t, ExitBadInput, code)
	assert.Empty(t, out)
	assert.Equal(t, file+":3: rpo: must be > 0, got 0s\n"+
		file+":6: sites.secondary: required: the site the cell recovers to, with a name\n"+
		file+`:12: components[1].name: duplicate component name "db" (first at line 9)`+"\n"+
		file+":12: components[1].product: required for role app: one of the plan's products (bpm)\n"+
		file+`:14: components[1].driver: unknown middleware driver "exek" (known: exec, db2, websphere)`+"\n"+
		file+":15: components[1].colour: unknown field (known: after, driver, host, name, onFailure, optional, priority, product, readiness, replication, role, settings, startTimeout)\n"+
		"drover: "+file+": 6 problems\n", errs)

	code, out, _ = runDrover("plan", "validate", "-o", "json", file)
	assert.Equal(t, ExitBadInput, code)
	var doc struct {
		Valid    bool           `json:"valid"`
		Problems []plan.Problem `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.False(t, doc.Valid)
	require.Len(t, doc.Problems, 6)
	assert.Equal(t, plan.Problem{File: file, Line: 3, Field: "rpo", Message: "must be > 0, got 0s"}, doc.Problems[0])
}

func TestPlanValidateCycle(t *testing.T) {
	useFakePlanChecker(t)
	src := `apiVersion: drover/v1
name: cyclic
rpo: 1m
rto: 1m
products: [bpm]
sites: {primary: {name: a}, secondary: {name: b}}
components:
  - {name: db, role: database, driver: exec, after: [web]}
  - {name: web, role: webserver, driver: exec}
`
	file := filepath.Join(t.TempDir(), "cyclic.yaml")
	require.NoError(t, os.WriteFile(file, []byte(src), 0o644))
	code, _, errs := runDrover("plan", "show", file)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, file+":8: components[0].after[0]: dependency cycle: db → web → db")
}

func TestPlanBadInput(t *testing.T) {
	useFakePlanChecker(t)
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	code, _, errs := runDrover("plan", "validate", missing)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "missing.yaml")
	assert.Contains(t, errs, "no such file")

	code, _, _ = runDrover("plan", "show", missing)
	assert.Equal(t, ExitBadInput, code)

	code, _, errs = runDrover("plan", "validate")
	assert.Equal(t, ExitBadInput, code, errs)
	code, _, errs = runDrover("plan", "show", "a.yaml", "b.yaml")
	assert.Equal(t, ExitBadInput, code, errs)
}

func TestPlanShowPrintsTheSeedOrder(t *testing.T) {
	useFakePlanChecker(t)
	code, out, errs := runDrover("plan", "show", goldenPlan)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, `plan bpm-golden (`+goldenPlan+`): rpo 15m00s, rto 4h00m, products bpm, monitor
tier 1: db2 (database, on machine2)
tier 2: dmgr (dmgr, on machine1)
tier 3: nodeagent1 (nodeagent, on machine1), nodeagent2 (nodeagent, on machine2)
tier 4: bpm-me1 (messaging/bpm, on machine1), bpm-me2 (messaging/bpm, on machine2)
tier 5: bpm-support1 (support/bpm, on machine1), bpm-support2 (support/bpm, on machine2)
tier 6: bpm-app1 (app/bpm, on machine1), bpm-app2 (app/bpm, on machine2)
tier 7: mon-me1 (messaging/monitor, on machine1), mon-me2 (messaging/monitor, on machine2)
tier 8: mon-support1 (support/monitor, on machine1), mon-support2 (support/monitor, on machine2)
tier 9: mon-app1 (app/monitor, on machine1), mon-app2 (app/monitor, on machine2)
tier 10: ihs (webserver, on machine1)
`, out)
}

func TestPlanShowJSON(t *testing.T) {
	useFakePlanChecker(t)
	code, out, errs := runDrover("--output", "json", "plan", "show", goldenPlan)
	require.Equal(t, ExitOK, code, errs)
	var doc struct {
		Plan  string      `json:"plan"`
		RPO   string      `json:"rpo"`
		Tiers []shownTier `json:"tiers"`
		Stop  []shownTier `json:"stopOrder"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "bpm-golden", doc.Plan)
	assert.Equal(t, "15m0s", doc.RPO)
	require.Len(t, doc.Tiers, 10)
	assert.Equal(t, shownTier{Index: 4, Components: []tierMember{
		{Name: "bpm-me1", Role: plan.RoleMessaging, Product: "bpm", Host: "machine1"},
		{Name: "bpm-me2", Role: plan.RoleMessaging, Product: "bpm", Host: "machine2"},
	}}, doc.Tiers[3])
	require.Len(t, doc.Stop, 10)
	assert.Equal(t, "ihs", doc.Stop[0].Components[0].Name)
	assert.Equal(t, "db2", doc.Stop[9].Components[0].Name)
}
