package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeChecker knows a few drivers per kind, like drivers.Registry would,
// and checks the settings of exec strictly so settings problems can be
// told from unknown drivers.
type fakeChecker map[string][]string

func newFakeChecker() fakeChecker {
	return fakeChecker{
		"middleware": {"exec", "db2", "websphere"},
		"probe":      {"http", "tcp", "exec"},
		"storage":    {"archive", "lvm"},
		"redirect":   {"dns"},
		"replicator": {"db2"},
	}
}

// execSettings are the fields of the real exec driver's settings.
var execSettings = map[string]bool{
	"start": true, "stop": true, "stopImmediate": true, "status": true, "quiesce": true, "resume": true, "pidfile": true,
	"timeout": true, "timeouts": true, "killGrace": true, "workdir": true, "env": true, "vars": true, "statusRunning": true, "statusStopped": true,
}

func (f fakeChecker) CheckDriver(kind, name string, settings map[string]any) error {
	known, ok := f[kind]
	if !ok {
		return fmt.Errorf("unknown driver kind %q", kind)
	}
	for _, k := range known {
		if k != name {
			continue
		}
		if name == "exec" && kind == "middleware" {
			keys := make([]string, 0, len(settings))
			for key := range settings {
				keys = append(keys, key)
			}
			sort.Strings(keys)
			for _, key := range keys {
				if !execSettings[key] {
					return fmt.Errorf("settings: unknown field %q", key)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("unknown %s driver %q (known: %s)", kind, name, strings.Join(known, ", "))
}

// base is a small valid plan; the table below edits it. Line numbers in the
// expectations refer to it after the edit.
const base = `apiVersion: drover/v1
name: t
rpo: 15m
rto: 1h
products: [bpm]
sites:
  primary: {name: a}
  secondary: {name: b}
components:
  - name: db
    role: database
    driver: exec
  - name: dmgr
    role: dmgr
    driver: exec
  - name: app
    role: app
    product: bpm
    driver: exec
storage:
  groups:
    - name: cell
      driver: archive
      classes: [configuration, runtime]
verification:
  system:
    - name: up
      driver: http
approvers:
  - name: alice
  - name: bob
gates:
  - name: start-secondary
    approvers: [alice, bob]
  - name: failback
    approvers: [alice]
`

func edit(t *testing.T, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(base, old), "edit %q must match the base plan once", old)
	return strings.Replace(base, old, new, 1)
}

func TestBasePlanIsValid(t *testing.T) {
	p, err := Parse("p.yaml", []byte(base))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
}

func TestMalformedPlans(t *testing.T) {
	cases := []struct {
		name     string
		old, new string
		want     []string // every problem, formatted
	}{
		{
			name: "unknown field",
			old:  "    role: dmgr\n", new: "    role: dmgr\n    colour: blue\n",
			want: []string{`p.yaml:15: components[1].colour: unknown field (known: after, driver, host, name, onFailure, optional, priority, product, readiness, replication, role, settings, startTimeout)`},
		},
		{
			name: "unknown field with a guess",
			old:  "    role: dmgr\n", new: "    rolee: dmgr\n",
			want: []string{
				`p.yaml:13: components[1].role: required: one of database, dmgr, nodeagent, messaging, support, app, webserver, other`,
				`p.yaml:14: components[1].rolee: unknown field; did you mean "role"? (known: after, driver, host, name, onFailure, optional, priority, product, readiness, replication, role, settings, startTimeout)`,
			},
		},
		{
			name: "unknown nested field",
			old:  "      classes: [configuration, runtime]\n", new: "      classes: [configuration, runtime]\n      retention: 7d\n",
			want: []string{`p.yaml:25: storage.groups[0].retention: unknown field (known: classes, components, driver, host, name, quiesce, settings)`},
		},
		{
			name: "host on a site without hosts",
			old:  "  - name: dmgr\n", new: "  - name: dmgr\n    host: db9\n",
			want: []string{
				`p.yaml:14: components[1].host: site a lists no hosts, so component dmgr cannot be placed on "db9": add hosts to the site or remove host`,
			},
		},
		{
			name: "component with no host on a site with several",
			old:  "  primary: {name: a}\n  secondary: {name: b}\n", new: "  primary: {name: a, hosts: {h1: {worker: true}, h2: {worker: true}}}\n  secondary: {name: b, hosts: {h1: {worker: true}, h2: {worker: true}}}\n",
			want: []string{
				`p.yaml:10: components[0].host: required: site a has 2 hosts (h1, h2); say which one component db runs on`,
				`p.yaml:13: components[1].host: required: site a has 2 hosts (h1, h2); say which one component dmgr runs on`,
				`p.yaml:16: components[2].host: required: site a has 2 hosts (h1, h2); say which one component app runs on`,
				`p.yaml:22: storage.groups[0].host: required: site a has 2 hosts (h1, h2); say which one consistency group cell runs on`,
			},
		},
		{
			name: "store at the primary",
			old:  "storage:\n", new: "storage:\n  store: {site: a, path: /srv/store}\n",
			want: []string{
				`p.yaml:21: storage.store.site: the store is at the primary site a: it would be lost with the site it protects; place it at the secondary (b) or a third site`,
			},
		},
		{
			name: "duplicate component name",
			old:  "  - name: dmgr\n", new: "  - name: db\n",
			want: []string{`p.yaml:13: components[1].name: duplicate component name "db" (first at line 10)`},
		},
		{
			name: "unknown role",
			old:  "    role: dmgr\n", new: "    role: dmgrr\n",
			want: []string{`p.yaml:14: components[1].role: unknown role "dmgrr" (want one of database, dmgr, nodeagent, messaging, support, app, webserver, other); did you mean "dmgr"?`},
		},
		{
			name: "unknown driver",
			old:  "    role: dmgr\n    driver: exec\n", new: "    role: dmgr\n    driver: exek\n",
			want: []string{`p.yaml:15: components[1].driver: unknown middleware driver "exek" (known: exec, db2, websphere)`},
		},
		{
			name: "driver of the wrong kind",
			old:  "      driver: archive\n", new: "      driver: exec\n",
			want: []string{`p.yaml:23: storage.groups[0].driver: unknown storage driver "exec" (known: archive, lvm)`},
		},
		{
			name: "settings the driver rejects",
			old:  "    role: dmgr\n    driver: exec\n", new: "    role: dmgr\n    driver: exec\n    settings:\n      strat: startManager.sh\n",
			want: []string{`p.yaml:16: components[1].settings: middleware driver "exec": unknown field "strat"`},
		},
		{
			name: "missing product on an app server",
			old:  "    product: bpm\n", new: "",
			want: []string{`p.yaml:16: components[2].product: required for role app: one of the plan's products (bpm)`},
		},
		{
			name: "product not in products",
			old:  "    product: bpm\n", new: "    product: monitor\n",
			want: []string{`p.yaml:18: components[2].product: unknown product "monitor" (the plan's products: bpm)`},
		},
		{
			name: "after names an unknown component",
			old:  "    product: bpm\n", new: "    product: bpm\n    after: [dmgrr]\n",
			want: []string{`p.yaml:19: components[2].after[0]: unknown component "dmgrr"; did you mean "dmgr"?`},
		},
		{
			name: "after names itself",
			old:  "    product: bpm\n", new: "    product: bpm\n    after: [app]\n",
			want: []string{`p.yaml:19: components[2].after[0]: a component cannot start after itself`},
		},
		{
			name: "after as a string, not a list",
			old:  "    product: bpm\n", new: "    product: bpm\n    after: dmgr\n",
			want: []string{`p.yaml:19: components[2].after: want a list, got "dmgr" (write [dmgr] for a list of one)`},
		},
		{
			name: "dependency cycle",
			old:  "    role: database\n", new: "    role: database\n    after: [app]\n",
			want: []string{`p.yaml:12: components[0].after[0]: dependency cycle: db → app → dmgr → db (a → b: a starts after b)`},
		},
		{
			name: "missing secondary site",
			old:  "  secondary: {name: b}\n", new: "",
			want: []string{`p.yaml:6: sites.secondary: required: the site the cell recovers to, with a name`},
		},
		{
			name: "site without a name",
			old:  "  secondary: {name: b}\n", new: "  secondary: {settings: {host: b.example.com}}\n",
			want: []string{`p.yaml:8: sites.secondary.name: required: the name of the secondary site`},
		},
		{
			name: "sites with the same name",
			old:  "  secondary: {name: b}\n", new: "  secondary: {name: a}\n  sandbox: {name: a}\n",
			want: []string{
				`p.yaml:8: sites.secondary.name: "a" is also the name of the primary site; each site needs its own name`,
				`p.yaml:9: sites.sandbox.name: "a" is also the name of the primary site; each site needs its own name`,
			},
		},
		{
			name: "zero rpo",
			old:  "rpo: 15m\n", new: "rpo: 0s\n",
			want: []string{`p.yaml:3: rpo: must be > 0, got 0s`},
		},
		{
			name: "negative rpo",
			old:  "rpo: 15m\n", new: "rpo: -15m\n",
			want: []string{`p.yaml:3: rpo: must be > 0, got -15m0s`},
		},
		{
			name: "missing rpo",
			old:  "rpo: 15m\n", new: "",
			want: []string{`p.yaml: rpo: required: how much recent data may be lost, a Go duration > 0 such as 15m`},
		},
		{
			name: "bad duration",
			old:  "rto: 1h\n", new: "rto: 1 hour\n",
			want: []string{`p.yaml:4: rto: invalid duration "1 hour": want a Go duration such as 90s, 15m or 1h30m`},
		},
		{
			name: "duration as a bare number",
			old:  "rto: 1h\n", new: "rto: 60\n",
			want: []string{`p.yaml:4: rto: invalid duration "60": want a Go duration such as 90s, 15m or 1h30m`},
		},
		{
			name: "wrong apiVersion",
			old:  "apiVersion: drover/v1\n", new: "apiVersion: drover/v2\n",
			want: []string{`p.yaml:1: apiVersion: unsupported version "drover/v2": this drover reads drover/v1`},
		},
		{
			name: "no products",
			old:  "products: [bpm]\n", new: "products: []\n",
			want: []string{
				`p.yaml:5: products: required: at least one product, in the order products start (e.g. [bpm, monitor])`,
				`p.yaml:18: components[2].product: unknown product "bpm" (the plan's products: )`,
			},
		},
		{
			name: "duplicate product",
			old:  "products: [bpm]\n", new: "products: [bpm, bpm]\n",
			want: []string{`p.yaml:5: products[1]: product "bpm" is listed twice (first as products[0])`},
		},
		{
			name: "installation data",
			old:  "      classes: [configuration, runtime]\n", new: "      classes: [configuration, runtime, installation]\n",
			want: []string{`p.yaml:24: storage.groups[0].classes[2]: installation data is checked, not copied: reinstall it at the secondary site (the seed's restore steps 1-2) and list only configuration and runtime`},
		},
		{
			name: "group lists an unknown component",
			old:  "      classes: [configuration, runtime]\n", new: "      classes: [configuration, runtime]\n      components: [db, db3]\n",
			want: []string{`p.yaml:25: storage.groups[0].components[1]: unknown component "db3"`},
		},
		{
			name: "check without a driver",
			old:  "      driver: http\n", new: "",
			want: []string{`p.yaml:27: verification.system[0].driver: required: the name of a probe driver`},
		},
		{
			name: "duplicate check name across levels",
			old:  "      driver: http\n", new: "      driver: http\n  sca:\n    - name: up\n      driver: tcp\n",
			want: []string{`p.yaml:30: verification.sca[0].name: duplicate check name "up" (first at verification.system[0], line 27)`},
		},
		{
			name: "gate with an unknown approver and too big a quorum",
			old:  "    approvers: [alice, bob]\n", new: "    approvers: [alice, eve]\n    quorum: 3\n",
			want: []string{
				`p.yaml:34: gates[0].approvers[1]: unknown approver "eve" (not in approvers:)`,
				`p.yaml:35: gates[0].quorum: must be between 1 and 2 (the gate's approvers), got 3`,
			},
		},
		{
			name: "gate escalation",
			old:  "    approvers: [alice, bob]\n", new: "    approvers: [alice, bob]\n    timeout: -1m\n    onTimeout: page\n",
			want: []string{
				`p.yaml:35: gates[0].timeout: must not be negative, got -1m0s (0 waits for ever)`,
				`p.yaml:36: gates[0].onTimeout: want abort or remind, got "page"`,
			},
		},
		{
			name: "duplicate approver",
			old:  "  - name: bob\n", new: "  - name: bob\n  - name: alice\n",
			want: []string{`p.yaml:32: approvers[2].name: duplicate approver "alice" (first at line 30)`},
		},
		{
			name: "redirect without a driver",
			old:  "approvers:\n", new: "redirect:\n  settings: {zone: example.com}\napprovers:\n",
			want: []string{`p.yaml:29: redirect.driver: required: the name of a redirect driver`},
		},
		{
			name: "secret written in clear",
			old:  "  primary: {name: a}\n", new: "  primary: {name: a, settings: {adminPassword: hunter2, passwordFile: /etc/pw, token: env:TOKEN}}\n",
			want: []string{`p.yaml:7: sites.primary.settings.adminPassword: looks like a secret written in the plan; write a reference env:NAME or file:PATH instead (plans travel in workflow history)`},
		},
		{
			name: "key written twice",
			old:  "    role: dmgr\n", new: "    role: dmgr\n    role: app\n",
			want: []string{`p.yaml:15: components[1].role: written twice (first at line 14)`},
		},
		{
			name: "wrong type",
			old:  "    role: dmgr\n", new: "    role: [dmgr]\n",
			want: []string{`p.yaml:14: components[1].role: want a string, got a list`},
		},
		{
			name: "environment rewrite that changes nothing",
			old:  "approvers:\n", new: "environment:\n  - name: ds\n    files: [a.xml]\n    primary: db1\n    secondary: db1\napprovers:\n",
			want: []string{`p.yaml:33: environment[0].secondary: same as primary ("db1"): nothing to rewrite`},
		},
		{
			name: "environment rewrite in a database",
			old:  "approvers:\n", new: "environment:\n  - name: ds\n    sql: {dsn: \"env:DSN\", statement: \"update e set host=$1 where host=$2\", tables: [e]}\n    primary: db1\n    secondary: db2\napprovers:\n",
			want: []string{
				`p.yaml:31: environment[0].sql.tables: unknown field (known: database, dsn, host, password, port, statement, timeout)`,
			},
		},
		{
			name: "environment rewrite in a database, bad statement",
			old:  "approvers:\n", new: "environment:\n  - name: ds\n    sql: {dsn: \"postgres://u:pw@db/x\", statement: \"update e set host=$1 where id=$3\"}\n    files: [a.xml]\n    primary: db1\n    secondary: db2\napprovers:\n",
			want: []string{
				`p.yaml:31: environment[0].sql: a rewrite changes files or a database, not both: write two rewrites`,
			},
		},
		{
			name: "environment rewrite in a database, statement and dsn",
			old:  "approvers:\n", new: "environment:\n  - name: ds\n    sql: {dsn: \"postgres://u:pw@db/x\", statement: \"update e set host=$1 where id=$3\"}\n    primary: db1\n    secondary: db2\napprovers:\n",
			want: []string{
				`p.yaml:31: environment[0].sql.dsn: write a secret reference env:NAME or file:PATH (plans travel in workflow history)`,
				`p.yaml:31: environment[0].sql.statement: uses $3: only $1 (the site's value) and $2 (the value it replaces) are given`,
				`p.yaml:31: environment[0].sql.statement: must use $1 (the site's value) and select the rows by $2 (the value it replaces), so a second run changes nothing`,
			},
		},
		{
			name: "configuration watch and cold backups",
			old:  "storage:\n", new: "storage:\n  schedule:\n    onChange: {installation: true, paths: [/etc/was], evry: 1m}\n    cold: {every: 0s, approve: true}\n",
			want: []string{
				`p.yaml:22: storage.schedule.onChange.evry: unknown field; did you mean "every"? (known: every, installation, paths)`,
				`p.yaml:22: storage.schedule.onChange.installation: the primary site names no installation manifest (sites.primary.installation)`,
				`p.yaml:22: storage.schedule.onChange.paths[0]: "/etc/was" is absolute: patterns are relative to the site's dataRoot (fingerprinted at the primary)`,
				`p.yaml:23: storage.schedule.cold.every: must be > 0, got 0s`,
				`p.yaml:23: storage.schedule.cold.approve: the plan defines no gate cold-backup to approve the cell's stop`,
			},
		},
		{
			name: "site checks",
			old:  "approvers:\n", new: "siteChecks:\n  hosts: [{name: m1, addresses: [10.0.0.300]}, {name: m1}]\n  mounts: [{path: home, type: nfs}]\n  paths: [opt/ibm]\n  probes: [{name: db2inst1}]\napprovers:\n",
			want: []string{
				`p.yaml:30: siteChecks.hosts[0].addresses[0]: "10.0.0.300" is not an IP address`,
				`p.yaml:30: siteChecks.hosts[1].name: host "m1" is listed twice`,
				`p.yaml:31: siteChecks.mounts[0].path: want an absolute path, got "home"`,
				`p.yaml:32: siteChecks.paths[0]: want an absolute path, got "opt/ibm"`,
				`p.yaml:33: siteChecks.probes[0].driver: required: the name of a probe driver`,
			},
		},
		{
			name: "settings value JSON cannot hold",
			old:  "  primary: {name: a}\n", new: "  primary: {name: a, settings: {weight: .inf}}\n",
			want: []string{`p.yaml:7: sites.primary.settings.weight: .inf is not a finite number (plans travel as JSON)`},
		},
		{
			// The YAML library reports where the broken block starts.
			name: "YAML syntax error",
			old:  "    role: dmgr\n", new: "    role: dmgr\n   bad: [\n",
			want: []string{`p.yaml:9: invalid YAML at or near this line: did not find expected '-' indicator`},
		},
		{
			name: "YAML scanner error",
			old:  "name: t\n", new: "name: t\n\tindent: tab\n",
			want: []string{`p.yaml:2: invalid YAML at or near this line: found a tab character that violates indentation`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := edit(t, tc.old, tc.new)
			path := filepath.Join(t.TempDir(), "p.yaml")
			require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
			_, err := LoadAndValidate(path, newFakeChecker())
			require.Error(t, err)
			var probs Problems
			require.True(t, errors.As(err, &probs), "want Problems, got %T: %v", err, err)
			got := make([]string, len(probs))
			for i, p := range probs {
				got[i] = strings.Replace(p.String(), path, "p.yaml", 1)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	src := edit(t, "rpo: 15m\n", "rpo: 0s\n")
	src = strings.Replace(src, "  secondary: {name: b}\n", "", 1)
	src = strings.Replace(src, "    role: dmgr\n", "    role: dmgrr\n", 1)
	src = strings.Replace(src, "    product: bpm\n", "", 1)
	_, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err, "each of these is a validation problem, not a parse one")
	p, _ := Parse("p.yaml", []byte(src))
	err = Validate(p, nil)
	var probs Problems
	require.ErrorAs(t, err, &probs)
	assert.Equal(t, "p.yaml:3: rpo: must be > 0, got 0s\n"+
		"p.yaml:6: sites.secondary: required: the site the cell recovers to, with a name\n"+
		`p.yaml:13: components[1].role: unknown role "dmgrr" (want one of database, dmgr, nodeagent, messaging, support, app, webserver, other); did you mean "dmgr"?`+"\n"+
		"p.yaml:15: components[2].product: required for role app: one of the plan's products (bpm)",
		err.Error())
}

func TestParseProblemsAreNotRepeatedByValidation(t *testing.T) {
	// rpo that does not parse must not also be reported as "must be > 0".
	src := edit(t, "rpo: 15m\n", "rpo: soon\n")
	path := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	_, err := LoadAndValidate(path, nil)
	var probs Problems
	require.ErrorAs(t, err, &probs)
	require.Len(t, probs, 1)
	assert.Equal(t, "rpo", probs[0].Field)
	assert.Equal(t, 3, probs[0].Line)
}

func TestEmptyAndMultiDocumentFiles(t *testing.T) {
	_, err := Parse("e.yaml", []byte("# nothing here\n"))
	assert.EqualError(t, err, "e.yaml: the plan is empty (want a mapping starting with apiVersion: drover/v1)")

	_, err = Parse("m.yaml", []byte(base+"---\nname: again\n"))
	assert.EqualError(t, err, "m.yaml:37: a plan file holds one YAML document; remove the second one (from this line)")

	_, err = Parse("s.yaml", []byte("just a string\n"))
	assert.EqualError(t, err, `s.yaml:1: a plan is a mapping (apiVersion: drover/v1, name: ..., ...), got "just a string"`)
}

func TestMissingFile(t *testing.T) {
	_, err := LoadAndValidate(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yaml")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestAliasesAndMergeKeys(t *testing.T) {
	src := edit(t, "components:\n", `x-defaults: &exec
  driver: exec
components:
`)
	// x-defaults is not a plan field; anchors belong in a field, so use one.
	_, err := Parse("p.yaml", []byte(src))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "p.yaml:9: x-defaults: unknown field")

	src = edit(t, "  - name: dmgr\n    role: dmgr\n    driver: exec\n", `  - name: dmgr
    role: dmgr
    driver: exec
    settings: &was
      start: startManager.sh
      stop: stopManager.sh
  - name: app2
    role: app
    product: bpm
    driver: exec
    settings:
      <<: *was
      start: startServer.sh app2
`)
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
	c, ok := p.Component("app2")
	require.True(t, ok)
	assert.Equal(t, Settings{"start": "startServer.sh app2", "stop": "stopManager.sh"}, c.Settings)
	assert.Equal(t, 19, c.Pos.Line)

	// An alias that refers to the value containing it must not hang.
	_, err = Parse("p.yaml", []byte("apiVersion: drover/v1\nsites:\n  primary: &a {name: x, settings: {self: *a}}\n"))
	require.Error(t, err)
}

func TestAliasBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nsites:\n  primary:\n    name: a\n    settings:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expands to more than")
}

func TestPositions(t *testing.T) {
	p, err := Parse("p.yaml", []byte(base))
	require.NoError(t, err)
	assert.Equal(t, Pos{File: "p.yaml", Line: 7}, p.Sites.Primary.Pos)
	assert.Equal(t, Pos{File: "p.yaml", Line: 13}, p.Components[1].Pos)
	assert.Equal(t, Pos{File: "p.yaml", Line: 22}, p.Storage.Groups[0].Pos)
	assert.Equal(t, Pos{File: "p.yaml", Line: 27}, p.Verification.System[0].Pos)
	assert.Equal(t, Pos{File: "p.yaml", Line: 31}, p.Approvers[1].Pos)
	assert.Equal(t, Pos{File: "p.yaml", Line: 33}, p.Gates[0].Pos)
}

func TestDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte(base))
	require.NoError(t, err)
	assert.Equal(t, 1, p.Gates[0].Quorum)
	assert.Equal(t, EscalateAbort, p.Gates[0].OnTimeout)

	// quorum: 0 written out is a mistake, not "the default".
	p, err = Parse("p.yaml", []byte(edit(t, "    approvers: [alice, bob]\n", "    approvers: [alice, bob]\n    quorum: 0\n")))
	require.NoError(t, err)
	assert.EqualError(t, Validate(p, nil), "p.yaml:35: gates[0].quorum: must be between 1 and 2 (the gate's approvers), got 0")
}

// A quorum of two is two people only with signed approvals (issue 11 item
// 5): every approver of such a gate needs a publicKey.
func TestQuorumOfTwoNeedsSignedApprovers(t *testing.T) {
	twoPerson := edit(t, "    approvers: [alice, bob]\n", "    approvers: [alice, bob]\n    quorum: 2\n")
	p, err := Parse("p.yaml", []byte(twoPerson))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	require.Error(t, err)
	assert.Equal(t, []string{
		`p.yaml:34: gates[0].approvers[0]: gate "start-secondary" has quorum 2, which needs signed approvals, but approver "alice" has no publicKey (make one: drover keys new --name alice)`,
		`p.yaml:34: gates[0].approvers[1]: gate "start-secondary" has quorum 2, which needs signed approvals, but approver "bob" has no publicKey (make one: drover keys new --name bob)`,
	}, strings.Split(err.Error(), "\n"))

	bobKeyed := strings.Replace(twoPerson, "  - name: bob\n", "  - name: bob\n    publicKey: HSUlu6wU2htZBEoPD7sb4EZqtW195ZpPxE59DraH5FQ=\n", 1)
	p, err = Parse("p.yaml", []byte(bobKeyed))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), `"bob"`)
	assert.Contains(t, err.Error(), `approver "alice" has no publicKey`)

	bothKeyed := strings.Replace(bobKeyed, "  - name: alice\n", "  - name: alice\n    publicKey: bItPygPWyJo51pjKsD4g6oBwFfLPl79ngF3eC4w8GNU=\n", 1)
	p, err = Parse("p.yaml", []byte(bothKeyed))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		D Duration `json:"d"`
	}{Duration(90 * time.Second)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"d":"1m30s"}`, string(b))

	var out struct {
		D Duration `json:"d"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"d":"15m"}`), &out))
	assert.Equal(t, Duration(15*time.Minute), out.D)
	assert.Error(t, json.Unmarshal([]byte(`{"d":"15 minutes"}`), &out))
	assert.Error(t, json.Unmarshal([]byte(`{"d":900}`), &out))
}

func TestPlanSurvivesJSON(t *testing.T) {
	p, err := LoadAndValidate("../examples/plans/bpm-golden.yaml", newFakeChecker())
	require.NoError(t, err)
	b, err := json.Marshal(p)
	require.NoError(t, err, "settings must be JSON-serialisable")
	assert.Contains(t, string(b), `"rpo":"15m0s"`)

	var back Plan
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, p.RPO, back.RPO)
	assert.Equal(t, p.Components[0].Settings, back.Components[0].Settings)
	require.NoError(t, Validate(&back, newFakeChecker()))
	want, err := Tiers(p)
	require.NoError(t, err)
	got, err := Tiers(&back)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Without source positions problems still name the field.
	back.RPO = 0
	back.Source = ""
	assert.EqualError(t, Validate(&back, nil), "rpo: required: how much recent data may be lost, a Go duration > 0 such as 15m")
}

func TestGoldenPlan(t *testing.T) {
	p, err := LoadAndValidate("../examples/plans/bpm-golden.yaml", newFakeChecker())
	require.NoError(t, err)
	tiers, err := Tiers(p)
	require.NoError(t, err)
	// The seed's restore step 7: DB; dmgr; node agents; BPM messaging,
	// support, app; Monitor messaging, support, app; then the web server.
	assert.Equal(t, []Tier{
		{1, []string{"db2"}},
		{2, []string{"dmgr"}},
		{3, []string{"nodeagent1", "nodeagent2"}},
		{4, []string{"bpm-me1", "bpm-me2"}},
		{5, []string{"bpm-support1", "bpm-support2"}},
		{6, []string{"bpm-app1", "bpm-app2"}},
		{7, []string{"mon-me1", "mon-me2"}},
		{8, []string{"mon-support1", "mon-support2"}},
		{9, []string{"mon-app1", "mon-app2"}},
		{10, []string{"ihs"}},
	}, tiers)

	stop, err := StopOrder(p)
	require.NoError(t, err)
	require.Len(t, stop, 10)
	assert.Equal(t, Tier{1, []string{"ihs"}}, stop[0])
	assert.Equal(t, Tier{2, []string{"mon-app1", "mon-app2"}}, stop[1])
	assert.Equal(t, Tier{10, []string{"db2"}}, stop[9])

	for _, l := range Levels {
		assert.NotEmpty(t, p.Verification.Checks(l), "level %s has no check", l)
	}
	primary, ok := p.Site(SitePrimary)
	require.True(t, ok)
	assert.Equal(t, "dc1", primary.Name)
	_, ok = p.Site("elsewhere")
	assert.False(t, ok)
	c, ok := p.Component("bpm-app2")
	require.True(t, ok)
	assert.Equal(t, RoleApp, c.Role)
	assert.Equal(t, "bpm", c.Product)
	_, ok = p.Component("nope")
	assert.False(t, ok)
}

func TestTiersFollowProductsOrderAndAfter(t *testing.T) {
	src := `apiVersion: drover/v1
name: t
rpo: 1m
rto: 1m
products: [monitor, bpm]
sites: {primary: {name: a}, secondary: {name: b}}
components:
  - {name: bpm-app, role: app, product: bpm, driver: exec}
  - {name: mon-app, role: app, product: monitor, driver: exec}
  - {name: db, role: database, driver: exec}
  - {name: tools, role: other, driver: exec}
  - {name: cache, role: other, driver: exec, after: [db]}
  - {name: batch, role: other, driver: exec, after: [tools]}
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
`
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	require.NoError(t, Validate(p, nil))
	tiers, err := Tiers(p)
	require.NoError(t, err)
	// No dmgr, node agents, messaging or support: ranks skip to the next
	// non-empty one. monitor comes before bpm because products says so.
	assert.Equal(t, []Tier{
		{1, []string{"db"}},
		{2, []string{"mon-app"}},
		{3, []string{"bpm-app"}},
		{4, []string{"cache", "tools"}},
		{5, []string{"batch"}},
	}, tiers)

	deps, err := Dependencies(p)
	require.NoError(t, err)
	assert.Equal(t, []string{"bpm-app", "tools"}, deps["batch"])
	assert.Equal(t, []string{"db"}, deps["mon-app"])
	assert.Empty(t, deps["db"])
}

func TestTiersReportCycles(t *testing.T) {
	src := edit(t, "    role: database\n", "    role: database\n    after: [app]\n")
	p, _ := Parse("p.yaml", []byte(src))
	_, err := Tiers(p)
	assert.EqualError(t, err, "dependency cycle: db → app → dmgr → db (at p.yaml:12: components[0].after[0])")

	// Two separate cycles are both reported.
	src = `apiVersion: drover/v1
name: t
rpo: 1m
rto: 1m
products: [bpm]
sites: {primary: {name: a}, secondary: {name: b}}
components:
  - {name: a, role: other, driver: exec, after: [b]}
  - {name: b, role: other, driver: exec, after: [c]}
  - {name: c, role: other, driver: exec, after: [a]}
  - {name: x, role: other, driver: exec, after: [y]}
  - {name: y, role: other, driver: exec, after: [x]}
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
`
	p, err = Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	assert.EqualError(t, Validate(p, nil),
		"p.yaml:8: components[0].after[0]: dependency cycle: a → b → c → a (a → b: a starts after b)\n"+
			"p.yaml:11: components[3].after[0]: dependency cycle: x → y → x (a → b: a starts after b)")
}

func TestTiersRefuseAnInvalidPlan(t *testing.T) {
	p, _ := Parse("p.yaml", []byte(edit(t, "    role: dmgr\n", "    role: boss\n")))
	_, err := Tiers(p)
	assert.EqualError(t, err, `derive restart order: component "dmgr": unknown role "boss"`)
	_, err = Tiers(nil)
	assert.Error(t, err)
}

func TestExampleFilesInTestdata(t *testing.T) {
	// The plans in testdata/plans (also FuzzParse's seeds): valid-* must
	// validate, every other one must fail with problems.
	files, err := filepath.Glob("testdata/plans/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		_, err := LoadAndValidate(f, newFakeChecker())
		if strings.HasPrefix(filepath.Base(f), "valid-") {
			assert.NoError(t, err, f)
		} else {
			assert.Error(t, err, f)
		}
	}
}

func TestMergeBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: drover/v1\nsites:\n  primary:\n    name: a\n    settings:\n      l0: &l0 {a: 1, b: 2, c: 3}\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "      l%d: &l%d {<<: [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expands to more than")
}

// A host the primary names must exist at the secondary, or be mapped there.
func TestHostsAtBothSites(t *testing.T) {
	src := strings.Replace(base, "  primary: {name: a}\n  secondary: {name: b}\n",
		"  primary: {name: a, hosts: {db1: {worker: true}, app1: {}}}\n  secondary: {name: b, hosts: {drdb: {worker: true}, app1: {}}}\n", 1)
	src = strings.Replace(src, "    role: database\n", "    role: database\n    host: db1\n", 1)
	src = strings.Replace(src, "    role: dmgr\n", "    role: dmgr\n    host: app1\n", 1)
	src = strings.Replace(src, "    product: bpm\n", "    product: bpm\n    host: app1\n", 1)
	src = strings.Replace(src, "      classes: [configuration, runtime]\n", "      classes: [configuration, runtime]\n      host: db1\n", 1)
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `components[0].host: unknown host "db1" at site b (hosts: app1, drdb); add it, or map it with sites.secondary.hostMap`)
	assert.Contains(t, err.Error(), `storage.groups[0].host: unknown host "db1" at site b`)

	mapped := strings.Replace(src, "secondary: {name: b, ", "secondary: {name: b, hostMap: {db1: drdb}, ", 1)
	p, err = Parse("p.yaml", []byte(mapped))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
	h, ok := p.Sites.Secondary.Host("db1")
	require.True(t, ok)
	assert.Equal(t, "drdb", h.Name)
	assert.True(t, h.Worker)
	assert.Equal(t, "b", p.Storage.StoreAt.Site, "the store defaults to the secondary site")
	require.NotEmpty(t, p.Order, "a valid plan carries its restart order")
}

// The gates the seeds require are in every plan, or waived in so many words.
func TestRequiredGates(t *testing.T) {
	src := strings.Replace(base, "  - name: failback\n    approvers: [alice]\n", "", 1)
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `gates: required: gate "failback"`)

	waived := strings.Replace(base, "  - name: failback\n    approvers: [alice]\n", "  - name: failback\n    approvers: none\n", 1)
	p, err = Parse("p.yaml", []byte(waived))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
	g := p.Gates[1]
	assert.True(t, g.NoApproval)
	assert.Empty(t, g.Approvers)

	// none only waives the gates a plan may waive.
	other := strings.Replace(base, "  - name: failback\n    approvers: [alice]\n", "  - name: failback\n    approvers: [alice]\n  - name: start-failed\n    approvers: none\n", 1)
	p, err = Parse("p.yaml", []byte(other))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `gates[2].approvers: none is only for the gates a plan may waive`)
}

// A drill or validation must never touch production data: data roots that
// a restore or a wipe must not touch are refused.
func TestDataRootsThatMustNeverBeTouched(t *testing.T) {
	withSites := func(primary, secondary, sandbox string) string {
		return strings.Replace(base, "  primary: {name: a}\n  secondary: {name: b}\n",
			"  primary: {name: a, settings: {dataRoot: "+primary+"}}\n  secondary: {name: b, settings: {dataRoot: "+secondary+"}}\n"+
				"  sandbox: {name: s, settings: {dataRoot: "+sandbox+"}}\n", 1)
	}
	cases := []struct{ name, src, want string }{
		{"sandbox on the primary's data", withSites("/home", "/srv/b", "/home"), `sites.sandbox.settings.dataRoot: "/home" is also the primary's data root`},
		{"root folder", withSites("/", "/srv/b", "/srv/s"), `sites.primary.settings.dataRoot: "/" is the root folder`},
		{"system folder", withSites("/srv/a", "/etc", "/srv/s"), `sites.secondary.settings.dataRoot: "/etc" is a system folder`},
		{"the store", strings.Replace(withSites("/srv/a", "/srv/b", "/srv/store/sandbox"), "storage:\n", "storage:\n  store: {path: /srv/store}\n", 1),
			`sites.sandbox.settings.dataRoot: "/srv/store/sandbox" overlaps the store /srv/store`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(tc.src))
			require.NoError(t, err)
			err = Validate(p, newFakeChecker())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The same path on machines of their own is two folders.
	src := strings.Replace(base, "  primary: {name: a}\n  secondary: {name: b}\n",
		"  primary: {name: a, settings: {dataRoot: /home}, hosts: {m1: {address: 10.1.0.1}}}\n"+
			"  secondary: {name: b, settings: {dataRoot: /home}, hosts: {m1: {address: 10.2.0.1}}}\n", 1)
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	require.NoError(t, Validate(p, newFakeChecker()))
}

func TestReplicatedComponent(t *testing.T) {
	checker := newFakeChecker()
	checker["middleware"] = append(checker["middleware"], "postgres")
	checker["replicator"] = []string{"postgres"}
	replicated := func(driver, standby string) string {
		return edit(t, "  - name: db\n    role: database\n    driver: exec\n",
			"  - name: db\n    role: database\n    driver: "+driver+"\n    replication: {standby: "+standby+"}\n")
	}

	p, err := Parse("p.yaml", []byte(replicated("postgres", "b")))
	require.NoError(t, err)
	require.NoError(t, Validate(p, checker))
	require.True(t, p.Components[0].Replicated())
	require.Equal(t, []string{"db"}, func() (n []string) {
		for _, c := range p.ReplicatedComponents() {
			n = append(n, c.Name)
		}
		return n
	}())

	cases := []struct{ name, src, want string }{
		{"standby is not the secondary", replicated("postgres", "a"),
			`p.yaml:13: components[0].replication.standby: standby site "a" is not the secondary site "b"`},
		{"standby left out", replicated("postgres", "''"),
			`p.yaml:13: components[0].replication.standby: required: the site that holds the standby (the secondary site, b)`},
		{"driver does not replicate", replicated("exec", "b"),
			`p.yaml:12: components[0].driver: unknown replicator driver "exec"`},
		{"unknown field", replicated("postgres", "b, lag: 1s"),
			`p.yaml:13: components[0].replication.lag: unknown field (known: standby)`},
		{"listed in a group", strings.Replace(replicated("postgres", "b"), "      classes: [configuration, runtime]\n",
			"      classes: [configuration, runtime]\n      components: [db]\n", 1),
			`components[0]: component "db" is protected by its replication`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.yaml", []byte(tc.src))
			if err == nil {
				err = Validate(p, checker)
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
