package plan

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// problems parses and validates src and returns every problem, formatted.
func problems(t *testing.T, src string) []string {
	t.Helper()
	p, err := Parse("p.yaml", []byte(src))
	require.NoError(t, err)
	err = Validate(p, newFakeChecker())
	if err == nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, line)
	}
	return out
}

func TestFailurePolicies(t *testing.T) {
	t.Run("defaults by role", func(t *testing.T) {
		p, err := Parse("p.yaml", []byte(base))
		require.NoError(t, err)
		got := map[string]FailurePolicy{}
		for _, c := range p.Components {
			got[c.Name] = c.FailurePolicy()
		}
		assert.Equal(t, map[string]FailurePolicy{"db": PolicyRestart, "dmgr": PolicyGate, "app": PolicyRecreate}, got)
		assert.Equal(t, PolicyRestart, DefaultFailurePolicy(RoleMessaging))
		assert.Equal(t, PolicyGate, DefaultFailurePolicy(RoleOther))
	})
	t.Run("written policy wins", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    onFailure: restart\n")
		assert.Empty(t, problems(t, src))
		p, _ := Parse("p.yaml", []byte(src))
		assert.Equal(t, PolicyRestart, p.Components[1].FailurePolicy())
	})
	t.Run("unknown policy", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    onFailure: reboot\n")
		assert.Equal(t, []string{`p.yaml:15: components[1].onFailure: unknown failure policy "reboot" (want one of restart, recreate, takeover, gate)`},
			problems(t, src))
	})
	t.Run("takeover is for databases", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    onFailure: takeover\n")
		assert.Equal(t, []string{`p.yaml:15: components[1].onFailure: takeover promotes a database's standby; dmgr has role dmgr (use restart, recreate or gate)`},
			problems(t, src))
		src = edit(t, "    role: database\n", "    role: database\n    onFailure: takeover\n")
		assert.Equal(t, []string{`p.yaml:12: components[0].onFailure: takeover promotes db's standby, but the component has no replication (set replication.standby)`},
			problems(t, src))
		src = edit(t, "    role: database\n", "    role: database\n    onFailure: takeover\n    replication: {standby: b}\n")
		assert.Equal(t, []string{`p.yaml:14: components[0].driver: unknown replicator driver "exec" (known: db2): a replicated component needs a driver that replicates`},
			problems(t, src))
		src = strings.Replace(src, "driver: exec", "driver: db2", 1)
		assert.Empty(t, problems(t, src))
	})
	t.Run("recreate needs data in a group", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    onFailure: recreate\n")
		assert.Equal(t, []string{`p.yaml:15: components[1].onFailure: recreate restores dmgr's data from the point, but no storage group lists it in its components`},
			problems(t, src))
		src = strings.Replace(src, "      classes: [configuration, runtime]\n", "      classes: [configuration, runtime]\n      components: [dmgr]\n", 1)
		assert.Empty(t, problems(t, src))
	})
}

func TestPriorityClasses(t *testing.T) {
	t.Run("default classes, first class by default", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    priority: deferred\n")
		assert.Empty(t, problems(t, src))
		p, _ := Parse("p.yaml", []byte(src))
		assert.Equal(t, []string{"db", "app"}, p.ComponentsOf([]string{"critical"}))
		assert.Equal(t, []string{"dmgr"}, p.ComponentsOf([]string{"deferred"}))
		assert.Empty(t, p.FirstClasses())
	})
	t.Run("plan classes marked first", func(t *testing.T) {
		src := base + "priorities:\n  - {name: tier1, first: true}\n  - {name: tier2}\n"
		src = strings.Replace(src, "    role: app\n", "    role: app\n    priority: tier2\n", 1)
		assert.Empty(t, problems(t, src))
		p, _ := Parse("p.yaml", []byte(src))
		assert.Equal(t, []string{"tier1"}, p.FirstClasses())
		assert.Equal(t, []string{"db", "dmgr"}, p.ComponentsOf(p.FirstClasses()))
	})
	t.Run("unknown class and a wait on a later class", func(t *testing.T) {
		src := edit(t, "    role: dmgr\n", "    role: dmgr\n    priority: later\n")
		assert.Equal(t, []string{`p.yaml:15: components[1].priority: unknown priority class "later" (the plan's classes: critical, important, deferred)`},
			problems(t, src))
		src = edit(t, "    role: dmgr\n", "    role: dmgr\n    priority: deferred\n")
		src = strings.Replace(src, "    role: app\n", "    role: app\n    after: [dmgr]\n", 1)
		assert.Equal(t, []string{`p.yaml:19: components[2].after[0]: app (critical) starts after dmgr, whose class deferred comes later: a run that brings up critical would wait for it`},
			problems(t, src))
	})
}
