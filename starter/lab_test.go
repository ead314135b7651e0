package starter

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/plan"
)

// The lab's launcher re-executes this test binary as "lab serve ...": it
// must become the server before any test runs.
func init() { lab.RunIfServer() }

const labPlan = "../examples/plans/lab.yaml"

func TestLabTopologyFromThePlan(t *testing.T) {
	p, err := plan.Load(labPlan)
	require.NoError(t, err)
	topo, dir, err := labplan.Topology(p, 0, -1)
	require.NoError(t, err)
	assert.Equal(t, "${DROVER_LAB_DIR}", dir)
	assert.Equal(t, 0.05, topo.TimeScale)
	require.Len(t, topo.Sites, 3)
	assert.Equal(t, lab.SiteSpec{Name: "dc1", Role: lab.SitePrimary, Host: "127.0.1.1"}, topo.Sites[0])
	assert.Equal(t, lab.SiteSpec{Name: "dc2", Role: lab.SiteSecondary, Host: "127.0.2.1"}, topo.Sites[1])
	assert.Equal(t, lab.SiteSpec{Name: "sandbox", Role: lab.SiteSandbox, Host: "127.0.3.1"}, topo.Sites[2])
	require.Len(t, topo.Servers, 12)
	assert.Equal(t, lab.ServerSpec{Name: "db", Role: lab.RoleDatabase, Port: 17100}, topo.Servers[0])
	assert.Equal(t, lab.ServerSpec{Name: "bpm-app2", Role: lab.RoleApp, Product: "bpm", Node: "node2", Port: 17107}, topo.Servers[7])
	assert.Equal(t, lab.Endpoint{Host: "127.0.0.1", Port: 17112}, topo.FrontDoor)
	assert.Len(t, topo.ByRole(lab.RoleApp, lab.ProductBPM), 2)
	assert.Len(t, topo.ByRole(lab.RoleApp, lab.ProductMonitor), 2)

	topo, _, err = labplan.Topology(p, 30000, 0.01)
	require.NoError(t, err)
	assert.Equal(t, 30000, topo.Servers[0].Port)
	assert.Equal(t, 30012, topo.FrontDoor.Port)
	assert.Equal(t, 0.01, topo.TimeScale)
}

func TestLabTopologyRejectsWhatTheLabCannotRun(t *testing.T) {
	load := func(edit func(p *plan.Plan)) error {
		p, err := plan.Load(labPlan)
		require.NoError(t, err)
		edit(p)
		_, _, err = labplan.Topology(p, 0, -1)
		return err
	}
	err := load(func(p *plan.Plan) { p.Components[3].Driver = "exec" })
	require.ErrorContains(t, err, `component nodeagent2 uses driver "exec"`)
	err = load(func(p *plan.Plan) { delete(p.Sites.Secondary.Settings, "host") })
	require.ErrorContains(t, err, "site dc2: setting host is required")
	err = load(func(p *plan.Plan) { p.Sites.Sandbox.Settings["basePort"] = 18000 })
	require.ErrorContains(t, err, "basePort 18000 differs")
	err = load(func(p *plan.Plan) { p.Sites.Secondary.Settings["host"] = "127.0.1.1" })
	require.ErrorContains(t, err, "already used by site")
	err = load(func(p *plan.Plan) { p.Components = p.Components[:6] })
	require.ErrorContains(t, err, "product bpm needs an app server")
}

func TestLabCommandsRunTheCell(t *testing.T) {
	t.Setenv(lab.EnvWatchPID, fmt.Sprint(os.Getpid()))
	base, err := lab.FreeBasePort(13)
	require.NoError(t, err)
	dir := t.TempDir()
	t.Cleanup(func() { runDrover("lab", "down", "--dir", dir) })

	code, out, errs := runDrover("lab", "up")
	require.Equal(t, ExitBadInput, code, errs)

	code, out, errs = runDrover("lab", "up", "--plan", labPlan, "--dir", dir, "--base-port", fmt.Sprint(base), "--time-scale", "0.005")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "lab lab is up in "+dir)
	assert.Contains(t, out, "bpm-app2")

	code, out, errs = runDrover("lab", "load", "--dir", dir, "--rate", "30", "--duration", "1s")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "accepted (dc1 ")
	assert.Contains(t, out, ", 0 failed")

	code, out, errs = runDrover("lab", "probe", "--dir", dir, "system", "sca")
	require.Equal(t, ExitOK, code, errs+out)
	assert.Contains(t, out, "PASS system")

	code, _, errs = runDrover("lab", "probe", "--dir", dir, "everything")
	require.Equal(t, ExitBadInput, code, errs)

	code, out, errs = runDrover("lab", "kill", "--dir", dir, "mon-me1")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "mon-me1 at dc1")
	code, out, _ = runDrover("lab", "probe", "--dir", dir, "system")
	require.Equal(t, ExitRunFailed, code)
	assert.Contains(t, out, "FAIL system")
	assert.Contains(t, out, "messaging engine mon-me1")

	code, out, errs = runDrover("lab", "status", "--dir", dir, "-o", "json")
	require.Equal(t, ExitOK, code, errs)
	var st lab.LabStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "dc1", st.Sites[0].Name)
	states := map[string]string{}
	for _, s := range st.Sites[0].Servers {
		states[s.Server] = s.State
	}
	assert.Equal(t, "stopped", states["mon-me1"])
	assert.Equal(t, "running", states["bpm-app1"])
	require.NotNil(t, st.Sites[0].Counts)
	assert.Positive(t, st.Sites[0].Counts.Steps)

	code, out, errs = runDrover("lab", "ledger", "--dir", dir, "--site", "dc1")
	require.Equal(t, ExitOK, code, errs+out)
	assert.Contains(t, out, "0 missing, 0 duplicated")

	code, out, errs = runDrover("lab", "disaster", "--dir", dir, "--site", "dc1")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "site dc1 destroyed")
	code, out, errs = runDrover("lab", "start", "--dir", dir, "dmgr", "--site", "dc2")
	require.Equal(t, ExitRunFailed, code)
	assert.Contains(t, errs, "dmgr: cannot start: data root")

	code, out, errs = runDrover("lab", "down", "--dir", dir)
	require.Equal(t, ExitOK, code, errs)
	assert.True(t, strings.HasPrefix(out, "lab "+dir+" is down"))
}

// The checks of a command's own flags come before the lab is looked for;
// both are bad input.
func TestLabCommandsCheckTheirFlagsBeforeTheLab(t *testing.T) {
	t.Setenv(labDirEnv, "")
	code, _, errs := runDrover("lab", "load")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--rate must be positive")
	code, _, errs = runDrover("lab", "load", "--rate", "1")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--duration must be positive")
	code, _, errs = runDrover("lab", "disaster")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--site is required")

	code, _, errs = runDrover("lab", "load", "--rate", "1", "--duration", "1s")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "no lab dir: give --dir or set $"+labDirEnv)
	code, _, errs = runDrover("lab", "disaster", "--site", "dc1", "--dir", t.TempDir())
	assert.Equal(t, ExitBadInput, code, "a dir with no lab in it")
	assert.NotEmpty(t, errs)

	t.Setenv(labDirEnv, t.TempDir())
	code, _, _ = runDrover("lab", "status")
	assert.Equal(t, ExitBadInput, code, "$%s names a dir with no lab in it", labDirEnv)
}

func TestLabTargetOfStartAndStop(t *testing.T) {
	p, err := plan.Load(labPlan)
	require.NoError(t, err)
	topo, _, err := labplan.Topology(p, 0, -1)
	require.NoError(t, err)
	l, err := lab.Create(t.TempDir(), topo, nil) // files only: nothing runs
	require.NoError(t, err)

	site, server, err := labTarget(l, "", true, nil)
	require.NoError(t, err)
	assert.Equal(t, [2]string{"dc1", ""}, [2]string{site, server}, "--all without --site: the primary")
	site, server, err = labTarget(l, "dc2", true, nil)
	require.NoError(t, err)
	assert.Equal(t, [2]string{"dc2", ""}, [2]string{site, server})

	site, server, err = labTarget(l, "", false, []string{"dmgr"})
	require.NoError(t, err)
	assert.Equal(t, [2]string{"dc1", "dmgr"}, [2]string{site, server}, "a server that runs nowhere: the primary")
	site, server, err = labTarget(l, "dc2", false, []string{"dmgr"})
	require.NoError(t, err)
	assert.Equal(t, [2]string{"dc2", "dmgr"}, [2]string{site, server})

	_, _, err = labTarget(l, "", true, []string{"dmgr"})
	assert.EqualError(t, err, "give a server or --all, not both")
	assert.Equal(t, ExitBadInput, ExitCode(err))
	_, _, err = labTarget(l, "dc1", false, nil)
	assert.EqualError(t, err, "name a server, or give --all")
	assert.Equal(t, ExitBadInput, ExitCode(err))
}
