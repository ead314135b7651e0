package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// TestFullDemo runs `drover demo` as a user does, on the lab: scheduled
// backups under load, validation, a disaster at dc1, an unplanned failover,
// the primary back, a planned failback. It must finish, print the RPO and
// RTO achieved, find nothing missing or duplicated in either ledger check,
// confirm in its reports that the in-flight work was recovered before
// traffic came back, and leave no lab process behind.
func TestFullDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the full demo takes about two minutes")
	}
	dir := t.TempDir()
	labDir := filepath.Join(dir, "lab")
	t.Cleanup(func() {
		// Whatever happened, nothing of the demo's lab may outlive the test.
		for _, p := range labProcesses(labDir, "") {
			t.Errorf("lab process left running: %s", p)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, droverBin, "demo", "--dir", dir)
	// The demo's lab servers watch the demo process itself.
	cmd.Env = withoutEnv(os.Environ(), "DROVER_LAB_DIR", "DROVER_LAB_EXE", "DROVER_LAB_WATCH_PID")
	cmd.Stdout, cmd.Stderr = &out, &errb
	begin := time.Now()
	err := cmd.Run()
	took := time.Since(begin)
	text := out.String()
	t.Logf("drover demo took %s; its output:\n%s", took.Round(time.Second), text)
	require.NoError(t, err, "drover demo failed\nstderr (end):\n%s", lastChars(errb.String(), 4000))

	// The RPO and RTO of both runs, against the plan's targets.
	failover := regexp.MustCompile(`(?m)^unplanned failover: RPO (\S+) \(target 1m0s, met (true|false)\), RTO (\S+) \(target 15m0s, met true\); ledger: 0 missing, 0 duplicated$`)
	m := failover.FindStringSubmatch(text)
	require.NotNil(t, m, "the failover's summary line")
	rpo, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	assert.Positive(t, rpo, "an unplanned failover loses the work since its point")
	failback := regexp.MustCompile(`(?m)^planned failback: RTO (\S+) \(target 15m0s\); ledger: 0 missing, 0 duplicated$`)
	require.Regexp(t, failback, text)
	// Each ledger check also in detail, with work actually checked.
	assert.Regexp(t, `ledger check at dc2: [1-9]\d* of [1-9]\d* steps committed before the capture instant present, 0 missing, 0 duplicated`, text)
	assert.Regexp(t, `ledger at dc1: [1-9]\d* of [1-9]\d* steps present, 0 missing, 0 duplicated`, text)
	assert.Regexp(t, `validation in the sandbox: point \S+ is valid`, text)
	assert.Contains(t, text, "Web UI: http://127.0.0.1:")

	// The reports it names exist, in both forms, and say what it printed.
	reports := regexp.MustCompile(`(?m)^  report: (\S+\.md)$`).FindAllStringSubmatch(text, -1)
	require.Len(t, reports, 2, "a report for the failover and one for the failback")
	for i, r := range reports {
		md, err := os.ReadFile(r[1])
		require.NoError(t, err, "report %s", r[1])
		assert.Contains(t, string(md), "RTO")
		var rep report.Report
		readJSON(t, strings.TrimSuffix(r[1], ".md")+".json", &rep)
		assert.Equal(t, "completed", rep.Outcome, r[1])
		assert.True(t, rep.RTO.Known && rep.RTO.Met, "%s: RTO %+v", r[1], rep.RTO)
		require.NotNil(t, rep.Verification, r[1])
		assert.True(t, rep.Verification.Valid, "%s: six-level verification", r[1])
		// In-flight instances resumed before traffic came back.
		recovered := false
		for _, st := range rep.Steps {
			if st.Name == "recover in-flight work" {
				recovered = st.Outcome == workflows.OutcomeOK
				t.Logf("%s: %s: %s", rep.Kind, st.Name, st.Detail)
			}
		}
		assert.True(t, recovered, "%s: no completed step recovering the in-flight work", r[1])
		if i == 0 {
			assert.Equal(t, contract.KindFailover, rep.Kind)
			assert.False(t, rep.Planned, "the failover after the disaster is unplanned")
			assert.Equal(t, rpo, rep.RPO.Achieved.Round(time.Millisecond))
		} else {
			assert.Equal(t, contract.KindFailback, rep.Kind)
		}
	}
	assert.FileExists(t, filepath.Join(dir, "temporal.db"))

	// No lab process is left, by command line, whatever the pid files say.
	pg, _ := exec.Command("pgrep", "-af", "lab serve").Output()
	for _, line := range strings.Split(string(pg), "\n") {
		assert.NotContains(t, line, labDir, "lab process left running after the demo")
	}
	assert.Empty(t, labProcesses(labDir, ""))
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func lastChars(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
