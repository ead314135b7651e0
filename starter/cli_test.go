package starter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/report"
)

// rawGoValue matches what fmt's %v prints for maps, structs and slices.
var rawGoValue = regexp.MustCompile(`map\[|\{[A-Za-z0-9_]+:|&\{|\[\]`)

func statusFixture(now time.Time) RunSnapshot {
	return RunSnapshot{
		WorkflowID: "drover/lab/switchover", RunID: "r-1", Kind: "failover", Plan: "lab", Status: "running",
		Started: now.Add(-3*time.Minute - 7*time.Second), Phase: "restart", CurrentStep: "start app1",
		Child: &ChildRun{WorkflowID: "drover/lab/switchover/restart", Phase: "tier 2"},
		Tiers: []TierProgress{
			{Index: 1, Members: []string{"db"}, Started: 1, Ready: 1},
			{Index: 2, Members: []string{"app1", "app2", "app3"}, Started: 2, Ready: 1},
		},
		Transfers: []Transfer{{Activity: "RestoreGroup", WorkflowID: "drover/lab/switchover", Attempt: 1,
			Done: 512 << 20, Total: 1 << 30, Started: now.Add(-10 * time.Second)}},
		Gates: []GateView{{
			Gate: report.Gate{Name: "start-secondary", Detail: "start the cell at dc2", Checklist: []string{"dc1 is fenced", "DNS TTL passed"},
				Options: []string{"approve", "reject"}, Approvers: []string{"alice", "bob"}, Quorum: 2, Opened: now.Add(-90 * time.Second),
				Outcome: "pending", Approvals: []report.Approval{{Approver: "alice", Decision: "approve", At: now.Add(-time.Minute)}}},
			WorkflowID: "drover/lab/switchover", ApproveCommand: "drover approve drover/lab/switchover --gate start-secondary --as NAME",
		}},
		Steps:   []report.Step{{Name: "restore cell", Outcome: "ok", Started: now.Add(-2 * time.Minute), Ended: now.Add(-time.Minute)}},
		Queried: true,
	}
}

func TestRenderSnapshotShowsPhaseTiersGatesAndProgress(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	renderSnapshot(&b, statusFixture(now), now, false)
	out := b.String()
	for _, want := range []string{
		"drover/lab/switchover (run r-1): failover of plan lab, running",
		"running for 3m07s",
		"phase restart > tier 2 (drover/lab/switchover/restart)",
		"step  start app1",
		"tier 1: 1/1 started, 1/1 ready (db)",
		"tier 2: 2/3 started, 1/3 ready (app1, app2, app3)",
		"restore: 512.0 MiB of 1.0 GiB (50%), 51.2 MiB/s, ETA 10s",
		"GATE start-secondary waits for 2 approvals of alice, bob since 1m30s: start the cell at dc2",
		"approved by alice",
		"[ ] dc1 is fenced",
		"[ ] DNS TTL passed",
		"approve: drover approve drover/lab/switchover --gate start-secondary --as NAME",
		"restore cell",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotRegexp(t, rawGoValue, out, "no raw Go values in text output")

	// Plain (not a terminal) lines do not change while nothing moves: no
	// elapsed times, transfers in tenths.
	s := statusFixture(now)
	first := plainLines(s)
	s.Transfers[0].Done += 1 << 20
	s.Started = s.Started.Add(-time.Minute)
	assert.Equal(t, first, plainLines(s))
	s.Transfers[0].Done = 700 << 20
	assert.NotEqual(t, first, plainLines(s))
}

func TestApproveCommandNamesTheDecisionsAGateTakes(t *testing.T) {
	assert.Equal(t, "drover approve W --gate start-failed --as NAME --decision retry|skip|abort",
		approveCommand("W", report.Gate{Name: "start-failed", Options: []string{"retry", "skip", "abort"}}))
	assert.Equal(t, "drover approve W --gate g --as NAME", approveCommand("W", report.Gate{Name: "g", Options: []string{"approve", "reject"}}))
}

func TestOutputFormatsAlike(t *testing.T) {
	store, data, planFile := pointsFixture(t)
	makePoint(t, store, data, "p1", catalog.ModeFull, "")
	makePoint(t, store, data, "p2", catalog.ModeCumulative, "p1")

	code, jsonOut, errs := runDrover("points", "list", "--plan", planFile, "-o", "json")
	require.Equal(t, ExitOK, code, errs)
	code, yamlOut, errs := runDrover("points", "list", "--plan", planFile, "-o", "yaml")
	require.Equal(t, ExitOK, code, errs)
	var fromJSON, fromYAML pointList
	require.NoError(t, json.Unmarshal([]byte(jsonOut), &fromJSON))
	var doc any
	require.NoError(t, yaml.Unmarshal([]byte(yamlOut), &doc))
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &fromYAML))
	require.Len(t, fromJSON.Points, 2)
	assert.Equal(t, []string{"p2", "p1"}, []string{fromJSON.Points[0].ID, fromJSON.Points[1].ID}, "newest first")
	assert.Equal(t, []string{"p2", "p1"}, []string{fromYAML.Points[0].ID, fromYAML.Points[1].ID}, "the same order in YAML")
	code, text, _ := runDrover("points", "list", "--plan", planFile)
	require.Equal(t, ExitOK, code)
	assert.Less(t, strings.Index(text, "p2 "), strings.Index(text, "p1 "), "the same order in text")

	code, out, errs := runDrover("points", "describe", "p2", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Regexp(t, `point\s+p2 \(plan bpm-golden\)`, out)
	assert.Regexp(t, `mode\s+cumulative of p1`, out)
	assert.NotRegexp(t, rawGoValue, out)
	code, out, _ = runDrover("points", "describe", "p9", "--plan", planFile)
	assert.Equal(t, ExitBadInput, code)
	code, out, _ = runDrover("points", "describe", "p1", "--plan", planFile, "-o", "yaml")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "id: p1\n")

	code, _, errs = runDrover("points", "list", "--plan", planFile, "-o", "xml")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, `--output "xml": want text, json or yaml`)
}

func TestTLSEnvironmentAcceptsTheTemporalCLINames(t *testing.T) {
	for _, n := range append(append(append(envTLSCA, envTLSCert...), envTLSKey...), "TEMPORAL_TLS", "TEMPORAL_API_KEY",
		"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "TEMPORAL_TLS_SERVER_NAME") {
		t.Setenv(n, "")
	}
	t.Setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/ca-temporal.pem")
	t.Setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", "/cert-temporal.pem")
	t.Setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", "/key-temporal.pem")
	t.Setenv("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "true")
	t.Setenv("TEMPORAL_API_KEY", "k")
	_, g := NewRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	assert.Equal(t, "/ca-temporal.pem", g.TLS.CACert)
	assert.Equal(t, "/cert-temporal.pem", g.TLS.ClientCert)
	assert.Equal(t, "/key-temporal.pem", g.TLS.ClientKey)
	assert.True(t, g.TLS.DisableHostVerification)
	assert.Equal(t, "k", g.APIKey)

	// drover's own names win when both are set.
	t.Setenv("TEMPORAL_TLS_CA", "/ca-drover.pem")
	t.Setenv("TEMPORAL_TLS_CERT", "/cert-drover.pem")
	t.Setenv("TEMPORAL_TLS_KEY", "/key-drover.pem")
	_, g = NewRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	assert.Equal(t, "/ca-drover.pem", g.TLS.CACert)
	assert.Equal(t, "/cert-drover.pem", g.TLS.ClientCert)
	assert.Equal(t, "/key-drover.pem", g.TLS.ClientKey)

	// An API key alone turns TLS on; TEMPORAL_TLS=false turns it off.
	cfg, err := TLSFlags{}.config(true)
	require.NoError(t, err)
	assert.NotNil(t, cfg)
	cfg, err = TLSFlags{Disabled: true}.config(true)
	require.NoError(t, err)
	assert.Nil(t, cfg)
	cfg, err = TLSFlags{DisableHostVerification: true}.config(false)
	require.NoError(t, err)
	assert.True(t, cfg.InsecureSkipVerify)
	_, err = TLSFlags{CertData: "x"}.config(false)
	assert.Equal(t, ExitBadInput, ExitCode(err), "cert data without key data is bad input")
}

func TestCompletionOfPlansAndPoints(t *testing.T) {
	store, data, planFile := pointsFixture(t)
	makePoint(t, store, data, "p1", catalog.ModeFull, "")
	makePoint(t, store, data, "p2", catalog.ModeCumulative, "p1")

	code, out, errs := runDrover("__complete", "points", "describe", "--plan", planFile, "")
	require.Equal(t, ExitOK, code, errs)
	assert.Regexp(t, `(?m)^p2\tcumulative, unverified\np1\tfull, unverified\n:36$`, out)

	dir := filepath.Dir(planFile)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("kind: Deployment\n"), 0o644))
	code, out, errs = runDrover("__complete", "plan", "validate", dir+"/")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, planFile+"\n")
	assert.NotContains(t, out, "other.yaml", "only drover plans are offered")
	code, out, errs = runDrover("__complete", "points", "list", "--plan", dir+"/")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, planFile+"\n")

	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errs := runDrover("completion", shell)
		require.Equal(t, ExitOK, code, errs)
		assert.Contains(t, out, "__complete", shell)
	}
}

func TestOldVerbsStayAsAliases(t *testing.T) {
	root, _ := NewRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	for _, path := range [][]string{
		{"status"}, {"runs", "describe"}, {"runs", "list"}, {"runs", "report"}, {"report"},
		{"approve"}, {"gates", "approve"}, {"gates", "list"},
		{"points", "list"}, {"points", "describe"}, {"points", "validate"}, {"points", "invalidate"},
		{"schedule", "list"}, {"schedule", "describe"}, {"schedule", "pause"}, {"schedule", "unpause"}, {"schedule", "trigger"}, {"schedule", "apply"},
		{"backup", "schedule"}, {"backup", "run"}, {"backup", "create"},
		{"plan", "list"}, {"plan", "apply"}, {"plan", "status"}, {"plan", "validate"},
		{"failover"}, {"failover", "start"}, {"failback", "start"}, {"drill", "start"},
	} {
		c, rest, err := root.Find(path)
		require.NoError(t, err, path)
		assert.Empty(t, rest, path)
		want := path[len(path)-1]
		assert.True(t, c.Name() == want || c.HasAlias(want), "%v found %s", path, c.CommandPath())
	}
}

// A plan naming a variable unset where it is resolved is bad input, named
// by file, line, field and variable; the failover command leaves the check
// to the site workers (see envrefs.go).
func TestPlanNamingAnUnsetVariableIsBadInput(t *testing.T) {
	useFakePlanChecker(t)
	t.Setenv("DROVER_T_UNSET_STORE", "")
	planFile := planWithStore(t, "${DROVER_T_UNSET_STORE}/store")
	for _, verb := range []string{"validate", "apply"} {
		code, _, errs := runDrover("plan", verb, planFile)
		assert.Equal(t, ExitBadInput, code, verb)
		assert.Regexp(t, regexp.QuoteMeta(planFile)+`:\d+: storage\.store\.path: environment variable DROVER_T_UNSET_STORE is not set`, errs, verb)
	}
	code, _, errs := runDrover("points", "list", "--plan", planFile)
	assert.Equal(t, ExitBadInput, code, errs)

	t.Setenv("DROVER_T_UNSET_STORE", t.TempDir())
	code, _, errs = runDrover("plan", "validate", planFile)
	assert.Equal(t, ExitOK, code, errs)
}
