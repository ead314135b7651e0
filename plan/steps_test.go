package plan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserSteps(t *testing.T) {
	withSteps := func(steps string) string { return base + "steps:\n" + steps }
	t.Run("valid", func(t *testing.T) {
		src := withSteps(`  - name: catalog
    after: restore
    driver: http
    timeout: 5m
    onFailure: continue
  - name: before-apps
    before: tier
    tier: bpm-app
    driver: tcp
  - name: keys
    after: environment
    gate: failback
    checklist: [add the license keys]
`)
		assert.Empty(t, problems(t, src))
		p, err := Parse("p.yaml", []byte(src))
		require.NoError(t, err)
		phase, after := p.Steps[0].Phase()
		assert.Equal(t, PhaseRestore, phase)
		assert.True(t, after)
	})
	t.Run("every mistake named at its line", func(t *testing.T) {
		src := withSteps(`  - name: a
    after: restor
    driver: http
  - name: b
    before: tier
    tier: bpm-apps
    driver: http
  - name: c
    before: verify
  - name: d
    before: redirect
    driver: http
    gate: nobody
  - name: e
    before: restore
    after: verify
    driver: http
    onFailure: retry
    runs: [validate]
`)
		assert.Equal(t, []string{
			`p.yaml:39: steps[0].after: unknown phase "restor" (want one of restore, environment, tier, verify, redirect, capture); did you mean "restore"?`,
			`p.yaml:43: steps[1].tier: unknown tier "bpm-apps" (the plan's tiers: database, dmgr, bpm-app); did you mean "bpm-app"?`,
			`p.yaml:45: steps[2].driver: required: a probe driver to call (exec, sql, http, tcp) or a gate for a manual step`,
			`p.yaml:50: steps[3].gate: a step is a driver call or a manual step at a gate, not both`,
			`p.yaml:53: steps[4].after: a step runs before or after one phase: write before or after, not both`,
			`p.yaml:55: steps[4].onFailure: want abort, continue or gate, got "retry"`,
			`p.yaml:56: steps[4].runs[0]: unknown kind of run "validate" (want failover, failback, drill, backup)`,
		}, problems(t, src))
	})
	t.Run("a manual step in a backup's capture is refused", func(t *testing.T) {
		src := withSteps("  - name: ask\n    before: capture\n    gate: failback\n")
		assert.Equal(t, []string{
			`p.yaml:40: steps[0].gate: a manual step cannot wait in a backup's capture: scheduled backups have nobody to ask and would stop until someone did (a cold backup asks first with storage.schedule.cold.approve)`,
		}, problems(t, src))
	})
	t.Run("an unknown field is refused", func(t *testing.T) {
		_, err := Parse("p.yaml", []byte(withSteps("  - name: a\n    after: restore\n    driver: http\n    command: db2 catalog\n")))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "p.yaml:41: steps[0].command: unknown field")
	})
}
