package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver/pgtest"
	"github.com/drover-dr/drover/drivers/sitefs"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/pgcluster"
	"github.com/drover-dr/drover/workflows"
)

// sitechkPrereqs are the secondary's prerequisites (seed 000 §3) a site
// check of these tests looks for: the database instance's databases and
// users in the shared PostgreSQL cluster, and the instance home on disk.
type sitechkPrereqs struct {
	c *pgtest.Cluster
	// home is the database instance's home at dc2 (000 §3.2.1).
	home string
	// prefix names this test's databases and users in the shared cluster.
	prefix string
}

// sitechkSetUp creates the databases <prefix>_bpmdb and <prefix>_mondb,
// the users <prefix>_bpmuser and <prefix>_monuser, and the instance home,
// and points the probes' secret references at the cluster.
func sitechkSetUp(t *testing.T, prefix string) *sitechkPrereqs {
	t.Helper()
	s := &sitechkPrereqs{c: pg.Get(t), prefix: prefix, home: filepath.Join(t.TempDir(), "dc2", "home", "db2inst1")}
	require.NoError(t, os.MkdirAll(s.home, 0o755))
	t.Setenv("SITECHK_DSN", s.c.URL("postgres"))
	t.Setenv("SITECHK_PGPASSWORD", s.c.Password)
	var undo []string
	for _, db := range []string{"bpmdb", "mondb"} {
		name := prefix + "_" + db
		s.sql(t, "DROP DATABASE IF EXISTS "+name, "CREATE DATABASE "+name)
		undo = append(undo, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	for _, u := range []string{"bpmuser", "monuser"} {
		name := prefix + "_" + u
		s.sql(t, "DROP ROLE IF EXISTS "+name, "CREATE ROLE "+name+" LOGIN")
		undo = append(undo, "DROP ROLE IF EXISTS "+name)
	}
	t.Cleanup(func() { s.sql(t, undo...) })
	return s
}

// sql runs statements on the cluster as its superuser.
func (s *sitechkPrereqs) sql(t *testing.T, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.c.URL("postgres"))
	require.NoError(t, err)
	cfg.Password = s.c.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, st := range stmts {
		_, err := conn.Exec(ctx, st)
		require.NoError(t, err, st)
	}
}

// checks is the plan's siteChecks: hosts, mounts and paths as given (YAML
// flow lists), and two database probes: db-instance (the instance answers
// and holds the cell's databases) and db-users (users exist). Each query
// answers with the names missing, NULL when none is, so a failing check
// says which.
func (s *sitechkPrereqs) checks(hosts, mounts, paths string, users ...string) string {
	if len(users) == 0 {
		users = []string{s.prefix + "_bpmuser", s.prefix + "_monuser"}
	}
	quoted := func(names ...string) string {
		var q []string
		for _, n := range names {
			q = append(q, "'"+n+"'")
		}
		return strings.Join(q, ", ")
	}
	return fmt.Sprintf(`
siteChecks:
  hosts: %s
  mounts: %s
  paths: %s
  probes:
    - name: db-instance
      driver: sql
      settings:
        dsn: env:SITECHK_DSN
        password: env:SITECHK_PGPASSWORD
        query: "SELECT string_agg(d, ', ') AS missing FROM unnest(ARRAY[%s]) d WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d)"
        expect: {rows: [[null]]}
    - name: db-users
      driver: sql
      settings:
        dsn: env:SITECHK_DSN
        password: env:SITECHK_PGPASSWORD
        query: "SELECT string_agg(u, ', ') AS missing FROM unnest(ARRAY[%s]) u WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = u)"
        expect: {rows: [[null]]}
`, hosts, mounts, paths, quoted(s.prefix+"_bpmdb", s.prefix+"_mondb"), quoted(users...))
}

// sitechkPlanFile writes a copy of the test's plan (same name) with other
// site checks, for `drover plan apply`.
func sitechkPlanFile(t *testing.T, e *labEnv, tag, checks string) string {
	t.Helper()
	path := filepath.Join(e.dir, e.p.Name+"-"+tag+".yaml")
	text := planText(e.p.Name, e.labDir, testTimeScale, func(s string) string { return s + checks })
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// sitechkExitCode is the exit code of a failed e.drover call.
func sitechkExitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "drover did not run: %v", err)
	return exit.ExitCode()
}

// sitechkNotEnabled checks a plan apply left the plan defined: no RPO
// monitor, no backup schedule.
func sitechkNotEnabled(t *testing.T, ctx context.Context, e *labEnv, why string) {
	t.Helper()
	out, err := e.drover("plan", "status", e.planPath)
	require.NoError(t, err)
	assert.Contains(t, out, "plan "+e.p.Name+": defined (roles enabled: -)", why)
	_, err = e.c.DescribeWorkflowExecution(ctx, contract.MonitorID(e.p.Name), "")
	var nf *serviceerror.NotFound
	assert.True(t, errors.As(err, &nf), "%s: the RPO monitor was started: %v", why, err)
	_, err = e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name)).Describe(ctx)
	assert.True(t, errors.As(err, &nf), "%s: the backup schedule was set: %v", why, err)
}

// TestSiteChecksPlanApply (issue 16, seed 000 §3): `drover plan apply`
// checks at the secondary what a restore there needs, each check by name
// with its evidence: the same host names and addresses (§3.1.1), the shared
// file system mounted and writable (§3.1.3), the database instance's home,
// databases and users (§3.2.1, in a real PostgreSQL), and the installation
// manifests. Each failing prerequisite, and a manifest that differs between
// the sites, leaves the plan defined (exit 1, the run failed: the plan is
// good, the site is not ready) with the check and the difference named;
// once every prerequisite holds the plan is enabled and every check is
// printed as passed with its evidence.
func TestSiteChecksPlanApply(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	const prefix = "sitechk"
	const hosts = `[{name: localhost, addresses: [127.0.0.1]}]`
	const mounts = `[{path: /dev/shm, type: tmpfs, writable: true}]`
	s := sitechkSetUp(t, prefix)
	paths := fmt.Sprintf("[%s]", s.home)
	e := newLabEnv(t, envOptions{name: "sitechk", edit: func(text string) string { return text + s.checks(hosts, mounts, paths) }})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	notMounted := filepath.Dir(filepath.Dir(s.home))
	missing := filepath.Join(notMounted, "opt", "ibm", "db2", "V11.5")
	for _, tc := range []struct {
		tag, checks string
		// want is what stderr says: the check's name and the difference.
		want []string
	}{
		{"host-unknown", s.checks(`[{name: dc2-db.drover-sitechk.invalid}]`, mounts, paths),
			[]string{"siteChecks: host dc2-db.drover-sitechk.invalid at dc2: resolve dc2-db.drover-sitechk.invalid:"}},
		{"host-other-address", s.checks(`[{name: localhost, addresses: [127.0.2.1]}]`, mounts, paths),
			[]string{"siteChecks: host localhost at dc2: resolves to ", ", not to 127.0.2.1"}},
		{"not-mounted", s.checks(hosts, fmt.Sprintf(`[{path: %s, type: nfs}]`, notMounted), paths),
			[]string{"siteChecks: mount " + notMounted + " at dc2: " + notMounted + " is not a mount point: the shared file system is not mounted"}},
		{"mount-type", s.checks(hosts, `[{path: /dev/shm, type: nfs}]`, paths),
			[]string{"siteChecks: mount /dev/shm at dc2: /dev/shm is a tmpfs mount of tmpfs, want nfs"}},
		{"path-missing", s.checks(hosts, mounts, fmt.Sprintf("[%s, %s]", s.home, missing)),
			[]string{"siteChecks: path " + missing + " at dc2: stat " + missing + ": no such file or directory"}},
		{"db-user-missing", s.checks(hosts, mounts, paths, prefix+"_bpmuser", prefix+"_nouser"),
			[]string{`siteChecks: db-users at dc2: row 1 column missing: got "` + prefix + `_nouser", want NULL`}},
	} {
		f := sitechkPlanFile(t, e, tc.tag, tc.checks)
		out, err := e.drover("plan", "apply", f)
		t.Logf("%s: %v\nstdout:\n%s", tc.tag, err, out)
		require.Error(t, err, "%s: plan apply enabled a plan whose site check fails", tc.tag)
		assert.Equal(t, 1, sitechkExitCode(t, err), tc.tag)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w, tc.tag)
		}
		assert.Contains(t, err.Error(), "not validated", tc.tag)
		assert.Contains(t, out, "FAILED", "%s: the failing check is printed", tc.tag)
		sitechkNotEnabled(t, ctx, e, tc.tag)
	}

	// No database instance answers where the plan says it is.
	t.Setenv("SITECHK_DSN", "postgres://"+pgcluster.User+"@127.0.0.1:1/postgres")
	out, err := e.drover("plan", "apply", e.planPath)
	t.Logf("db-instance-down: %v\nstdout:\n%s", err, out)
	require.Error(t, err, "plan apply enabled a plan whose database instance does not answer")
	assert.Equal(t, 1, sitechkExitCode(t, err))
	assert.Contains(t, err.Error(), "siteChecks: db-instance at dc2: query on 127.0.0.1:1/postgres failed: ")
	assert.Contains(t, err.Error(), "siteChecks: db-users at dc2: query on 127.0.0.1:1/postgres failed: ")
	sitechkNotEnabled(t, ctx, e, "db-instance-down")
	t.Setenv("SITECHK_DSN", s.c.URL("postgres"))

	// The installations differ: dc2 has another fix level of BPM.
	instFile := e.l.L.InstallationFile("dc2")
	orig, err := os.ReadFile(instFile)
	require.NoError(t, err)
	var inst lab.Installation
	require.NoError(t, json.Unmarshal(orig, &inst))
	inst.Installed["bpm"] = "8.5.7.0 CF2016.09"
	changed, err := json.Marshal(inst)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(instFile, changed, 0o644))
	out, err = e.drover("plan", "apply", e.planPath)
	t.Logf("installation-mismatch: %v\nstdout:\n%s", err, out)
	require.Error(t, err, "plan apply enabled a plan whose sites' installations differ")
	assert.Equal(t, 1, sitechkExitCode(t, err))
	assert.Contains(t, err.Error(), "installation manifests differ: ")
	assert.Contains(t, err.Error(), "CF2016.09")
	sitechkNotEnabled(t, ctx, e, "installation-mismatch")
	require.NoError(t, os.WriteFile(instFile, orig, 0o644))

	// Every prerequisite holds: enabled, each check printed with its evidence.
	out, err = e.drover("plan", "apply", e.planPath)
	require.NoError(t, err)
	t.Logf("plan apply:\n%s", out)
	db := fmt.Sprintf("127.0.0.1:%d/postgres", s.c.Port)
	for _, line := range []string{
		"plan sitechk: site check host localhost at dc2: passed: resolves to 127.0.0.1",
		"plan sitechk: site check mount /dev/shm at dc2: passed: tmpfs mount of tmpfs, writable (find /dev/shm in /proc/self/mountinfo at dc2)",
		"plan sitechk: site check path " + s.home + " at dc2: passed: present (",
		"plan sitechk: site check db-instance at dc2: passed: 1 row(s) from " + db + " as expected (sql query on " + db + ": SELECT string_agg(d, ', ') AS missing",
		"plan sitechk: site check db-users at dc2: passed: 1 row(s) from " + db + " as expected (sql query on " + db + ": SELECT string_agg(u, ', ') AS missing",
		"plan sitechk: enabled as primary",
	} {
		assert.Contains(t, out, line)
	}
	assert.NotContains(t, out, "FAILED")
	assert.NotContains(t, out, s.c.Password, "a secret in the output")
}

// TestSiteChecksFailoverPreflightRefuses (issue 16, seed 000 §3): the plan
// was enabled while dc2 met every prerequisite; since then the database
// instance's home was removed and one of its users dropped (in a real
// PostgreSQL). The failover's preflight checks dc2 again before anything
// is paused, stopped or restored, names both failures with their evidence
// at the site-checks gate, and a rejection ends the run with dc2 untouched
// and the backups still scheduled.
func TestSiteChecksFailoverPreflightRefuses(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	const prefix = "sitechkfo"
	s := sitechkSetUp(t, prefix)
	e := newLabEnv(t, envOptions{name: "sitechkfo", edit: func(text string) string {
		text = strings.Replace(text, "\ngates:\n", "\ngates:\n  - {name: site-checks, approvers: [alice, bob], timeout: 30m, onTimeout: abort}\n", 1)
		return text + s.checks(`[{name: localhost}]`, `[]`, fmt.Sprintf("[%s]", s.home))
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e.enable()

	require.NoError(t, os.RemoveAll(s.home))
	s.sql(t, "DROP ROLE "+prefix+"_monuser")

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, DeclaredAt: time.Now()})
	require.NoError(t, err)
	gate := waitGate(t, ctx, e.c, id, contract.GateSiteChecks, 90*time.Second)
	t.Logf("gate %s: %s", gate.Name, gate.Detail)
	assert.Contains(t, gate.Detail, "a restore at dc2 may not work")
	assert.Contains(t, gate.Detail, "path "+s.home+": stat "+s.home+": no such file or directory")
	assert.Contains(t, gate.Detail, `db-users: row 1 column missing: got "`+prefix+`_monuser", want NULL`)
	assert.NotContains(t, gate.Detail, "host localhost", "a passing check is named as failed")

	st, err := queryStatus(ctx, e.c, id)
	require.NoError(t, err)
	assert.Equal(t, "waiting:"+contract.GateSiteChecks, st.Phase, "the run went past its preflight before the gate was decided")

	payload, err := labkeys.Payload(ctx, e.c, id, contract.GateSiteChecks, "alice", contract.DecisionReject, "dc2 is not ready")
	require.NoError(t, err)
	require.NoError(t, e.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload))
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	require.Error(t, err, "the failover went on past a failing site check")
	assert.Contains(t, err.Error(), "gate site-checks: reject")

	// Nothing happened at dc2, and the backups go on at dc1.
	assert.Empty(t, labProcesses(e.labDir, "dc2"), "servers started at dc2")
	assert.Empty(t, e.serverPIDs("dc2"))
	entries, _ := os.ReadDir(e.l.L.DataRoot("dc2"))
	for _, ent := range entries {
		assert.Equal(t, sitefs.MarkerFile, ent.Name(), "dc2's data root holds %s after a refused failover", ent.Name())
	}
	desc, err := e.c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(e.p.Name)).Describe(ctx)
	require.NoError(t, err)
	assert.False(t, desc.Schedule.State.Paused, "the refused failover paused the backups")
	out, err := e.drover("plan", "status", e.planPath)
	require.NoError(t, err)
	assert.Contains(t, out, "primary site: dc1")

	// The report names every check with its evidence.
	out, err = e.drover("report", id, "--plan", e.planPath)
	require.NoError(t, err)
	t.Logf("report:\n%s", out)
	assert.Contains(t, out, "## Site checks (seed 000 §3)")
	assert.Regexp(t, `\| pass \| host localhost \| resolves to 127\.0\.0\.1`, out)
	assert.Regexp(t, `\| pass \| same addresses localhost \|`, out)
	assert.Contains(t, out, "| **FAIL** | path "+s.home+" |")
	assert.Contains(t, out, "| **FAIL** | db-users |")
	assert.Contains(t, out, "| pass | db-instance |")
}
