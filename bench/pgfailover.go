package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/lab/pgcluster"
	"github.com/drover-dr/drover/lab/pgestate"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

// Patroni's defaults, the failover time PostgreSQL users know: a lost
// leader's key expires after ttl, and a replica's loop notices it within
// loop_wait; only then does promotion begin.
const (
	PatroniTTL      = 30 * time.Second
	PatroniLoopWait = 10 * time.Second
)

// PgFailoverMaxRuns bounds --runs: two estates set up per run.
const PgFailoverMaxRuns = 50

// PgFailoverOptions shape `drover bench pgfailover`.
type PgFailoverOptions struct {
	// Runs is how many times each side fails over, each on a fresh estate.
	Runs int
	// Dir is the work folder; empty: a new temporary folder, removed
	// afterwards unless Keep.
	Dir  string
	Keep bool
	// Load is how long pgbench runs at dc1 before the disaster.
	Load time.Duration
	// Clients are pgbench's connections, each its own pgbench process
	// started again whenever it ends (a lost server ends it).
	Clients int
	// Timeout bounds one failover, declaration to first commit.
	Timeout time.Duration
}

// PgFailoverDoc is what `drover bench pgfailover` prints.
type PgFailoverDoc struct {
	CPUs       int     `json:"cpus"`
	LoadBefore float64 `json:"loadBefore"`
	LoadAfter  float64 `json:"loadAfter"`
	// Script is the shell runbook the baseline ran; ScriptKept says
	// whether it outlives the run (the work folder is kept).
	Script     string          `json:"script"`
	ScriptKept bool            `json:"scriptKept"`
	Runs       []PgFailoverRun `json:"runs"`
	// Drover and Shell are declaration to first commit at dc2, over the
	// runs.
	Drover Spread `json:"drover"`
	Shell  Spread `json:"shell"`
	// Ratio is drover's p50 over the shell runbook's; PatroniRatio is
	// drover's p50 over Patroni's ttl + loop_wait.
	Ratio          float64 `json:"ratio"`
	PatroniSeconds float64 `json:"patroniSeconds"`
	PatroniRatio   float64 `json:"patroniRatio"`
	// Phases are where drover's time went, medians over the runs.
	Phases []Phase `json:"phases"`
}

// Spread is the p50 and max of a few measurements, in seconds.
type Spread struct {
	P50 float64 `json:"p50"`
	Max float64 `json:"max"`
}

// PgFailoverRun is one run: drover's failover and the shell runbook's,
// each on its own fresh estate.
type PgFailoverRun struct {
	Drover float64 `json:"droverSeconds"`
	Shell  float64 `json:"shellSeconds"`
	// Phases are drover's, from its run's report.
	Phases []Phase `json:"phases"`
	// Lag is the standby's lag at declaration as drover's report says.
	Lag string `json:"lag,omitempty"`
}

// Phase is a span of drover's failover, offsets from the declaration.
type Phase struct {
	Name string `json:"name"`
	// Steps are the report's steps in the phase; Longest is the one that
	// took longest and LongestSeconds its time.
	Steps          []string `json:"steps,omitempty"`
	Longest        string   `json:"longest,omitempty"`
	LongestSeconds float64  `json:"longestSeconds,omitempty"`
	Start          float64  `json:"startSeconds"`
	Seconds        float64  `json:"seconds"`
}

// The phases drover's time is read in besides the report's own.
const (
	phaseRunStart    = "run start (declaration to first step)"
	phaseFirstCommit = "redirected to first commit at dc2"
)

// PgFailover fails the PostgreSQL estate over Runs times with drover and
// as many times with a shell runbook doing the same promote and redirect,
// each on a fresh estate, and measures declaration to the first pgbench
// transaction committed at dc2 through HAProxy.
func PgFailover(ctx context.Context, env Env, o PgFailoverOptions) (doc PgFailoverDoc, err error) {
	if m := pgestate.Missing(); m != "" {
		return doc, fmt.Errorf("the PostgreSQL estate needs: %s", m)
	}
	dir, cleanup, err := workDir(o.Dir, o.Keep, "drover-bench-pgfailover-")
	if err != nil {
		return doc, err
	}
	defer cleanup()
	// The clusters run as the postgres OS user when drover runs as root:
	// it must reach the estates below dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return doc, err
	}
	doc = PgFailoverDoc{CPUs: runtime.NumCPU(), LoadBefore: loadAverage(), Script: filepath.Join(dir, "shell-runbook.sh"),
		ScriptKept: o.Dir != "" || o.Keep, PatroniSeconds: (PatroniTTL + PatroniLoopWait).Seconds()}
	if err := os.WriteFile(doc.Script, []byte(shellRunbook), 0o755); err != nil {
		return doc, err
	}

	env.progress("starting Temporal and drover's orchestrator (the sites' workers start with each estate) ...")
	// No site in the stack's own worker: each estate's sites have workers
	// of their own, and dc1's is lost with dc1.
	st, err := env.startStack(ctx, stack.Options{DBFile: filepath.Join(dir, "temporal.db"), Sites: []contract.Placement{}})
	if err != nil {
		return doc, err
	}
	defer st.Close()

	doc.Runs = make([]PgFailoverRun, o.Runs)
	calls := 0
	err = alternate(o.Runs, func(side int) error {
		i := calls / 2
		calls++
		name := [2]string{"drover", "shell runbook"}[side]
		edir := filepath.Join(dir, fmt.Sprintf("run%d-%s", i+1, [2]string{"drover", "shell"}[side]))
		env.progress("run %d, %s: setting up a fresh estate in %s ...", i+1, name, edir)
		m, err := pgfailoverOnce(ctx, env, st, edir, side == 0, doc.Script, o)
		if err != nil {
			return fmt.Errorf("run %d, %s (estate %s): %w", i+1, name, edir, err)
		}
		if side == 0 {
			doc.Runs[i].Drover, doc.Runs[i].Phases, doc.Runs[i].Lag = m.took.Seconds(), m.phases, m.lag
		} else {
			doc.Runs[i].Shell = m.took.Seconds()
		}
		env.progress("run %d, %s: declaration to first commit at dc2 %s", i+1, name, secs(m.took))
		return nil
	})
	if err != nil {
		return doc, err
	}
	doc.LoadAfter = loadAverage()
	doc.figures()
	return doc, nil
}

// figures computes the spreads, the ratios and the median phases from the
// runs.
func (d *PgFailoverDoc) figures() {
	var dr, sh []float64
	for _, r := range d.Runs {
		dr, sh = append(dr, r.Drover), append(sh, r.Shell)
	}
	d.Drover, d.Shell = spread(dr), spread(sh)
	if d.Shell.P50 > 0 {
		d.Ratio = d.Drover.P50 / d.Shell.P50
	}
	if d.PatroniSeconds > 0 {
		d.PatroniRatio = d.Drover.P50 / d.PatroniSeconds
	}
	d.Phases = medianPhases(d.Runs)
}

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	p50 := s[len(s)/2]
	if len(s)%2 == 0 {
		p50 = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{P50: p50, Max: s[len(s)-1]}
}

// medianPhases is each phase's median start and length over the runs, in
// the order of the first run's phases.
func medianPhases(runs []PgFailoverRun) []Phase {
	if len(runs) == 0 {
		return nil
	}
	var out []Phase
	for _, p := range runs[0].Phases {
		var starts, lens, longest []float64
		for _, r := range runs {
			for _, q := range r.Phases {
				if q.Name == p.Name {
					starts, lens = append(starts, q.Start), append(lens, q.Seconds)
					if q.Longest == p.Longest {
						longest = append(longest, q.LongestSeconds)
					}
				}
			}
		}
		out = append(out, Phase{Name: p.Name, Steps: p.Steps, Longest: p.Longest, LongestSeconds: spread(longest).P50,
			Start: spread(starts).P50, Seconds: spread(lens).P50})
	}
	return out
}

// phasesOf reads where a failover's time went from its report: the wait
// for its first step, each phase's span (first step's start to last
// step's end), and the redirect to the first commit.
func phasesOf(rep report.Report, declared, firstCommit time.Time) []Phase {
	var out []Phase
	index := map[string]int{}
	var firstStep time.Time
	for _, s := range rep.Steps {
		if s.Started.IsZero() {
			continue
		}
		if firstStep.IsZero() || s.Started.Before(firstStep) {
			firstStep = s.Started
		}
		name := s.Phase
		if name == "" {
			name = "(no phase)"
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, Phase{Name: name, Start: s.Started.Sub(declared).Seconds()})
		}
		p := &out[i]
		p.Steps = append(p.Steps, s.Name)
		start := declared.Add(time.Duration(p.Start * float64(time.Second)))
		if s.Started.Before(start) {
			start = s.Started
			p.Start = start.Sub(declared).Seconds()
		}
		end := s.Ended
		if end.IsZero() {
			end = s.Started
		}
		if e := end.Sub(start).Seconds(); e > p.Seconds {
			p.Seconds = e
		}
		if took := end.Sub(s.Started).Seconds(); p.Longest == "" || took > p.LongestSeconds {
			p.Longest, p.LongestSeconds = s.Name, took
		}
	}
	slices.SortStableFunc(out, func(a, b Phase) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	if !firstStep.IsZero() {
		out = append([]Phase{{Name: phaseRunStart, Start: 0, Seconds: firstStep.Sub(declared).Seconds()}}, out...)
	}
	if !rep.Redirected.IsZero() && !firstCommit.IsZero() {
		out = append(out, Phase{Name: phaseFirstCommit, Start: rep.Redirected.Sub(declared).Seconds(),
			Seconds: firstCommit.Sub(rep.Redirected).Seconds()})
	}
	return out
}

// shellRunbook is the baseline: what a DBA's script does once dc1 is
// declared lost, the same promote and redirect as drover's failover and
// nothing else (no fence, no checks, no report).
const shellRunbook = `#!/usr/bin/env bash
# drover bench pgfailover's baseline: the shell runbook a DBA runs once the
# primary's site (dc1) is declared lost. It does what drover's failover does
# to the estate, no more: promote the standby at dc2, then point HAProxy's
# backend at dc2 through its runtime API. No fence, no checks, no report.
#
#   PGPASSWORD=... STANDBY=HOST:PORT HAPROXY_ADMIN=HOST:PORT PSQL=/path/to/psql shell-runbook.sh
set -euo pipefail
: "${STANDBY:?host:port of the standby at dc2}" "${HAPROXY_ADMIN:?host:port of the HAProxy runtime API}"
PSQL=${PSQL:-psql}

# 1. Promote dc2: pg_promote waits (up to 60 s) until it accepts writes.
promoted=$("$PSQL" -X -q -At -h "${STANDBY%:*}" -p "${STANDBY##*:}" -U postgres -d postgres \
  -v ON_ERROR_STOP=1 -c 'select pg_promote(true, 60)')
if [ "$promoted" != t ]; then
  echo "pg_promote did not finish: $promoted" >&2
  exit 1
fi

# 2. Redirect: dc2's server takes traffic, dc1's goes to maintenance, in one
# request to the runtime API (bash's /dev/tcp: no socat needed). HAProxy
# answers each command with an empty line when it succeeds.
exec 3<>"/dev/tcp/${HAPROXY_ADMIN%:*}/${HAPROXY_ADMIN##*:}"
printf 'set server pg/dc2 state ready; set server pg/dc1 state maint\n' >&3
reply=$(cat <&3)
exec 3<&-
if [ -n "${reply//[[:space:]]/}" ]; then
  echo "haproxy: $reply" >&2
  exit 1
fi
`

// measured is one side's failover.
type measured struct {
	took   time.Duration
	phases []Phase
	lag    string
}

// pgfailoverOnce sets up a fresh estate, runs pgbench through HAProxy,
// kills dc1's postmaster and fails over with drover (or the shell
// runbook), and measures the declaration to the first commit at dc2.
func pgfailoverOnce(ctx context.Context, env Env, st *stack.Stack, dir string, withDrover bool, script string, o PgFailoverOptions) (m measured, err error) {
	addrs, err := freeAddrs("127.0.1.1", "127.0.2.1", "127.0.0.1", "127.0.0.1")
	if err != nil {
		return m, err
	}
	dc1, dc2 := pgestate.Site{Name: "dc1", Host: "127.0.1.1", Port: addrs[0]}, pgestate.Site{Name: "dc2", Host: "127.0.2.1", Port: addrs[1]}
	e, err := pgestate.New(dir, dc1, dc2, net.JoinHostPort("127.0.0.1", strconv.Itoa(addrs[2])))
	if err != nil {
		return m, err
	}
	e.Admin = net.JoinHostPort("127.0.0.1", strconv.Itoa(addrs[3]))
	defer e.Down(context.WithoutCancel(ctx))
	d, err := pgestate.NewDrover(ctx, st.Client, env.log(), e)
	if err != nil {
		return m, err
	}
	defer d.Close()
	if err := d.StartPrimary(ctx); err != nil {
		return m, err
	}
	if err := e.StartHAProxy(); err != nil {
		return m, err
	}
	if _, err := d.Enable(ctx, "drover bench pgfailover"); err != nil {
		return m, err
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	load := startLoad(loadCtx, e, o.Clients)
	defer func() {
		stopLoad()
		load.wait()
	}()
	select {
	case <-ctx.Done():
		return m, ctx.Err()
	case <-time.After(o.Load):
	}
	if load.commits(ctx) == 0 {
		return m, fmt.Errorf("pgbench committed nothing at dc1 in %s: %s", o.Load, load.last())
	}
	if _, err := d.Disaster(); err != nil {
		return m, err
	}

	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	declared := time.Now()
	first := watchFirstCommit(tctx, e, declared)
	var run interface {
		Get(context.Context, any) error
	}
	var shell *exec.Cmd
	var shellOut strings.Builder
	if withDrover {
		if run, err = d.StartFailover(tctx, declared); err != nil {
			return m, err
		}
	} else {
		shell = exec.CommandContext(tctx, "bash", script)
		shell.Env = append(os.Environ(), "PGPASSWORD="+e.Password, "STANDBY="+dc2.Addr(), "HAPROXY_ADMIN="+e.Admin,
			"PSQL="+filepath.Join(e.Tools.BinDir, "psql"))
		shell.Stdout, shell.Stderr = &shellOut, &shellOut
		if err := shell.Start(); err != nil {
			return m, fmt.Errorf("shell runbook: %w", err)
		}
	}
	var at time.Time
	select {
	case at = <-first:
	case <-tctx.Done():
	}
	if at.IsZero() {
		why := "pgbench: " + load.last()
		if shell != nil {
			_ = shell.Wait()
			why = "shell runbook: " + shellOut.String() + "; " + why
		}
		return m, fmt.Errorf("no pgbench transaction committed at dc2 within %s of the declaration (%s)", o.Timeout, why)
	}
	m.took = at.Sub(declared)
	if shell != nil {
		if err := shell.Wait(); err != nil {
			return m, fmt.Errorf("shell runbook: %w: %s", err, shellOut.String())
		}
		return m, nil
	}
	var res workflows.FailoverResult
	if err := run.Get(tctx, &res); err != nil {
		return m, fmt.Errorf("failover: %w", err)
	}
	rep, err := report.Read(res.Report.JSON)
	if err != nil {
		return m, err
	}
	m.phases = phasesOf(rep, declared, at)
	if len(rep.Replicas) > 0 && rep.Replicas[0].LagAtDeclaration != nil {
		m.lag = rep.Replicas[0].LagAtDeclaration.String()
	}
	return m, nil
}

// freeAddrs picks a free port at each host.
func freeAddrs(hosts ...string) ([]int, error) {
	var ports []int
	for _, h := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(h, "0"))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// watchFirstCommit polls dc2 every 10 ms for a pgbench_history row begun
// after declared (pgbench's mtime is its transaction's start), which only
// a commit at dc2 can have made: pgbench reaches dc2 through HAProxy
// alone. The time it is first seen is sent once.
func watchFirstCommit(ctx context.Context, e *pgestate.Estate, declared time.Time) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		var c *pgx.Conn
		defer func() {
			if c != nil {
				c.Close(context.Background())
			}
		}()
		for ctx.Err() == nil {
			if c == nil {
				cc, err := e.Connect(ctx, e.Standby.Addr())
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c = cc
			}
			var seen bool
			err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pgbench_history WHERE mtime > ($1::timestamptz AT TIME ZONE current_setting('TimeZone')))", declared).Scan(&seen)
			switch {
			case err != nil:
				c.Close(context.Background())
				c = nil
			case seen:
				out <- time.Now()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return out
}

// load is pgbench through the front door: one pgbench process per
// client, started again 20 ms after it ends, as an application's pool
// reconnects.
type load struct {
	e    *pgestate.Estate
	wg   sync.WaitGroup
	mu   sync.Mutex
	out  string
	runs int
}

func startLoad(ctx context.Context, e *pgestate.Estate, clients int) *load {
	l := &load{e: e}
	host, port, _ := net.SplitHostPort(e.Front)
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, filepath.Join(e.Tools.BinDir, "pgbench"), "-n", "-c", "1", "-T", "3600",
					"-h", host, "-p", port, "-U", "postgres", "postgres")
				cmd.Env = append(os.Environ(), "PGPASSWORD="+e.Password, "PGCONNECT_TIMEOUT=3")
				out, _ := cmd.CombinedOutput()
				l.mu.Lock()
				l.out, l.runs = string(out), l.runs+1
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	return l
}

// commits counts pgbench_history at the primary.
func (l *load) commits(ctx context.Context) int64 {
	n, _ := l.e.Committed(ctx, l.e.Primary.Addr())
	return n
}

// last is what the last pgbench to end printed.
func (l *load) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runs == 0 {
		return "still running"
	}
	return pgcluster.Tail(l.out, 600)
}

// wait waits for the clients once their context ended.
func (l *load) wait() { l.wg.Wait() }

// Print writes the figures as text.
func (d PgFailoverDoc) Print(w io.Writer) {
	fmt.Fprintf(w, "drover bench pgfailover: PostgreSQL primary at dc1 killed under pgbench, failed over to dc2 behind HAProxy; declaration to the first pgbench transaction committed at dc2 through HAProxy\n")
	fmt.Fprintf(w, "%d runs, each side on a fresh estate (dc2 seeded by drover's plan apply); %d CPUs, load average %.2f before, %.2f after\n",
		len(d.Runs), d.CPUs, d.LoadBefore, d.LoadAfter)
	fmt.Fprintf(w, "gates: the plan's start-secondary and failback gates say approvers: none (examples/plans/postgres.yaml): nobody approves, in either run\n")
	kept := ""
	if !d.ScriptKept {
		kept = " (removed with the work folder; --keep or --dir keeps it)"
	}
	fmt.Fprintf(w, "shell runbook (the baseline, the same promote and redirect): %s%s\n\n", d.Script, kept)
	fmt.Fprintf(w, "run   drover    shell   lag at declaration\n")
	for i, r := range d.Runs {
		fmt.Fprintf(w, "%3d %7.2fs %7.2fs   %s\n", i+1, r.Drover, r.Shell, r.Lag)
	}
	fmt.Fprintf(w, "\n                 p50      max\n")
	fmt.Fprintf(w, "drover       %7.2fs %7.2fs\n", d.Drover.P50, d.Drover.Max)
	fmt.Fprintf(w, "shell        %7.2fs %7.2fs\n", d.Shell.P50, d.Shell.Max)
	fmt.Fprintf(w, "drover/shell   %.2fx  (p50: drover's time over a bare script's doing the same promote and redirect)\n", d.Ratio)
	fmt.Fprintf(w, "drover/Patroni %.2fx  (p50 over Patroni's defaults, ttl %s + loop_wait %s = %.0fs before it even starts to promote)\n",
		d.PatroniRatio, PatroniTTL, PatroniLoopWait, d.PatroniSeconds)
	fmt.Fprintf(w, "\nwhere drover's time goes (medians over the runs, seconds from the declaration):\n")
	fmt.Fprintf(w, "   start   length  phase: its steps (the longest, its length)\n")
	for _, p := range d.Phases {
		steps := ""
		if len(p.Steps) > 0 {
			steps = fmt.Sprintf(": %s (%s %.2fs)", strings.Join(p.Steps, "; "), p.Longest, p.LongestSeconds)
		}
		fmt.Fprintf(w, "  %6.2fs +%6.2fs  %s%s\n", p.Start, p.Seconds, p.Name, steps)
	}
}
