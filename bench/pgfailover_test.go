package bench

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab/pgestate"
	"github.com/drover-dr/drover/report"
)

// fakeAdmin is HAProxy's runtime API on loopback: it records the line it
// is sent and answers reply, as HAProxy does before closing.
func fakeAdmin(t *testing.T, reply string) (string, <-chan string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
		_, _ = c.Write([]byte(reply))
	}()
	return l.Addr().String(), got
}

// runRunbook runs the shell runbook with a psql that prints promoted.
func runRunbook(t *testing.T, admin, promoted string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "shell-runbook.sh")
	require.NoError(t, os.WriteFile(script, []byte(shellRunbook), 0o755))
	psql := filepath.Join(dir, "psql")
	require.NoError(t, os.WriteFile(psql, []byte("#!/bin/sh\necho \"$@\" > "+filepath.Join(dir, "psql.args")+"\necho "+promoted+"\n"), 0o755))
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "STANDBY=127.0.2.1:6543", "HAPROXY_ADMIN="+admin, "PSQL="+psql)
	out, err := cmd.CombinedOutput()
	if args, rerr := os.ReadFile(filepath.Join(dir, "psql.args")); rerr == nil {
		return string(args) + string(out), err
	}
	return string(out), err
}

// The shell runbook promotes dc2 with pg_promote, then sends HAProxy the
// same redirect drover's haproxy driver does, in one request.
func TestShellRunbookPromotesThenRedirects(t *testing.T) {
	admin, got := fakeAdmin(t, "\n\n")
	out, err := runRunbook(t, admin, "t")
	require.NoError(t, err, out)
	assert.Contains(t, out, "-h 127.0.2.1 -p 6543")
	assert.Contains(t, out, "select pg_promote(true, 60)")
	select {
	case line := <-got:
		assert.Equal(t, "set server pg/dc2 state ready; set server pg/dc1 state maint\n", line)
	case <-time.After(5 * time.Second):
		t.Fatal("the runbook sent HAProxy nothing")
	}
}

// A promote that did not finish stops the runbook before the redirect; an
// answer from HAProxy other than empty lines fails it.
func TestShellRunbookFails(t *testing.T) {
	admin, got := fakeAdmin(t, "\n")
	out, err := runRunbook(t, admin, "f")
	require.Error(t, err)
	assert.Contains(t, out, "pg_promote did not finish")
	select {
	case line := <-got:
		t.Fatalf("redirected after a failed promote: %q", line)
	case <-time.After(200 * time.Millisecond):
	}

	admin, _ = fakeAdmin(t, "No such server.\n")
	out, err = runRunbook(t, admin, "t")
	require.Error(t, err)
	assert.Contains(t, out, "haproxy: No such server.")
}

// Where drover's time goes: the wait for the first step, each phase's span
// from the report's steps, and the redirect to the first commit.
func TestPhasesOfAFailoverReport(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rep := report.Report{Redirected: at(14), Steps: []report.Step{
		{Name: "preflight", Phase: "preflight", Started: at(0.2), Ended: at(0.5)},
		{Name: "fence pg at dc1", Phase: "takeover", Started: at(0.6), Ended: at(10.6)},
		{Name: "promote pg at dc2", Phase: "takeover", Started: at(10.7), Ended: at(11.7)},
		{Name: "pg-primary", Phase: "verify:application", Started: at(12), Ended: at(13)},
		{Name: "pg-port", Phase: "verify:system", Started: at(11.8), Ended: at(11.9)},
		{Name: "point HAProxy at dc2", Phase: "redirect", Started: at(13.5), Ended: at(14)},
	}}
	ps := phasesOf(rep, t0, at(14.25))
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{phaseRunStart, "preflight", "takeover", "verify:system", "verify:application", "redirect", phaseFirstCommit}, names)
	assert.InDelta(t, 0.2, ps[0].Seconds, 1e-6)
	assert.InDelta(t, 0.6, ps[2].Start, 1e-6)
	assert.InDelta(t, 11.1, ps[2].Seconds, 1e-6)
	assert.Equal(t, []string{"fence pg at dc1", "promote pg at dc2"}, ps[2].Steps)
	assert.Equal(t, "fence pg at dc1", ps[2].Longest)
	assert.InDelta(t, 10, ps[2].LongestSeconds, 1e-6)
	assert.InDelta(t, 14, ps[6].Start, 1e-6)
	assert.InDelta(t, 0.25, ps[6].Seconds, 1e-6)
}

// p50 and max of each side, drover over the shell runbook and over
// Patroni's ttl + loop_wait, and each phase's median.
func TestPgFailoverFigures(t *testing.T) {
	d := PgFailoverDoc{PatroniSeconds: 40, Runs: []PgFailoverRun{
		{Drover: 12, Shell: 0.5, Phases: []Phase{{Name: "takeover", Longest: "fence", LongestSeconds: 9, Start: 1, Seconds: 10}}},
		{Drover: 16, Shell: 0.7, Phases: []Phase{{Name: "takeover", Longest: "fence", LongestSeconds: 11, Start: 3, Seconds: 12}}},
		{Drover: 14, Shell: 0.6, Phases: []Phase{{Name: "takeover", Longest: "promote", LongestSeconds: 1, Start: 2, Seconds: 11}}},
	}}
	d.figures()
	assert.Equal(t, Spread{P50: 14, Max: 16}, d.Drover)
	assert.Equal(t, Spread{P50: 0.6, Max: 0.7}, d.Shell)
	assert.InDelta(t, 14/0.6, d.Ratio, 1e-9)
	assert.InDelta(t, 14.0/40, d.PatroniRatio, 1e-9)
	require.Len(t, d.Phases, 1)
	assert.Equal(t, Phase{Name: "takeover", Longest: "fence", LongestSeconds: 10, Start: 2, Seconds: 11}, d.Phases[0])
	assert.Equal(t, Spread{P50: 1.5, Max: 2}, spread([]float64{2, 1}))

	var out bytes.Buffer
	d.Print(&out)
	assert.Contains(t, out.String(), "drover/shell   23.33x")
	assert.Contains(t, out.String(), "drover/Patroni 0.35x")
}

// One run of each side on real PostgreSQL clusters and HAProxy: both
// measured, drover's phases read from its report; no timing asserted.
func TestBenchPgFailoverOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("sets up two PostgreSQL estates and fails both over")
	}
	if m := pgestate.Missing(); m != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must run the PostgreSQL failover benchmark: %s", m)
		}
		t.Skip(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	doc, err := PgFailover(ctx, testEnv(t), PgFailoverOptions{Runs: 1, Load: time.Second, Clients: 2, Timeout: 2 * time.Minute})
	require.NoError(t, err)
	require.Len(t, doc.Runs, 1)
	r := doc.Runs[0]
	assert.Positive(t, r.Drover)
	assert.Positive(t, r.Shell)
	assert.NotEmpty(t, r.Lag)
	var names []string
	for _, p := range r.Phases {
		names = append(names, p.Name)
	}
	assert.Contains(t, names, "takeover")
	assert.Contains(t, names, "redirect")
	assert.Contains(t, names, phaseFirstCommit)
	var out bytes.Buffer
	doc.Print(&out)
	t.Log(out.String())
}
