package starter

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/lab/pgestate"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

func init() { register(newEstateCmd) }

func newEstateCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "estate", Short: "Real estates of third-party software for drover to protect (PostgreSQL)"}
	cmd.AddCommand(newEstatePostgresCmd(g))
	return cmd
}

// estateOptions are the flags of drover estate postgres.
type estateOptions struct {
	dir, dc1, dc2, front string
	load, afterFailover  time.Duration
	clients              int
	failback             bool
}

func newEstatePostgresCmd(g *Globals) *cobra.Command {
	var o estateOptions
	cmd := &cobra.Command{
		Use:   "postgres",
		Short: "PostgreSQL primary at dc1, standby at dc2, HAProxy in front: pgbench, disaster at dc1, failover, RPO proof, failback",
		Long: `Sets up the estate of examples/plans/postgres.yaml from the Debian binaries (initdb, pg_ctl,
pgbench, haproxy), enables the plan (drover seeds the standby at dc2 with pg_basebackup), runs
pgbench through HAProxy, destroys dc1 (its postmaster killed, its site worker stopped), fails over
through drover's workflow (lag at declaration, promote dc2, redirect HAProxy), runs pgbench again
against dc2 and proves the RPO: every pgbench_history row committed at dc1 up to the position dc2
had replayed at declaration is at dc2. Then fails back (pg_rewind of dc1, catch-up, switchover) and
stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.dir == "" {
				return BadInputf("--dir is required: the estate's directory (clusters, HAProxy, reports)")
			}
			_, err := runPostgresEstate(cmd.Context(), g, o)
			return err
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "the estate's directory")
	cmd.Flags().StringVar(&o.dc1, "dc1", "127.0.1.1:15432", "address of dc1's cluster")
	cmd.Flags().StringVar(&o.dc2, "dc2", "127.0.2.1:15432", "address of dc2's cluster")
	cmd.Flags().StringVar(&o.front, "front", "127.0.0.1:15400", "HAProxy's front door")
	cmd.Flags().DurationVar(&o.load, "load", 15*time.Second, "how long pgbench runs at dc1 before the disaster")
	cmd.Flags().DurationVar(&o.afterFailover, "after", 5*time.Second, "how long pgbench runs against dc2 after the failover")
	cmd.Flags().IntVar(&o.clients, "clients", 4, "pgbench clients")
	cmd.Flags().BoolVar(&o.failback, "failback", true, "fail back to dc1 at the end")
	return cmd
}

// EstateResult is what a run of the PostgreSQL estate showed.
type EstateResult struct {
	Lag          report.Lag
	Proof        pgestate.Proof
	CommittedDC1 int64
	CommittedDC2 int64
	Failover     workflows.FailoverResult
	Failback     *workflows.FailbackResult
}

func parseSite(name, addr string) (pgestate.Site, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return pgestate.Site{}, BadInputf("--%s %q: want host:port", name, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return pgestate.Site{}, BadInputf("--%s %q: bad port", name, addr)
	}
	return pgestate.Site{Name: name, Host: host, Port: n}, nil
}

func runPostgresEstate(ctx context.Context, g *Globals, o estateOptions) (*EstateResult, error) {
	if m := pgestate.Missing(); m != "" {
		return nil, fmt.Errorf("the PostgreSQL estate needs: %s", m)
	}
	dc1, err := parseSite("dc1", o.dc1)
	if err != nil {
		return nil, err
	}
	dc2, err := parseSite("dc2", o.dc2)
	if err != nil {
		return nil, err
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(g.Stdout, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	e, err := pgestate.New(o.dir, dc1, dc2, o.front)
	if err != nil {
		return nil, err
	}
	defer e.Down(context.Background())
	st, err := startStack(ctx, g, stack.Options{DBFile: filepath.Join(e.Dir, "temporal.db")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	d, err := pgestate.NewDrover(ctx, st.Client, g.Logger(), e)
	if err != nil {
		return nil, err
	}
	defer d.Close()

	// dc1 from the Debian binaries, started by drover's postgres driver.
	if err := d.StartPrimary(ctx); err != nil {
		return nil, err
	}
	say("dc1: PostgreSQL primary up at %s (%s)", dc1.Addr(), e.DataDir(dc1))
	if err := e.StartHAProxy(); err != nil {
		return nil, err
	}
	say("HAProxy front door at %s, backend pg: dc1 ready, dc2 in maintenance", e.Front)

	// plan apply: the plan enabled, the RPO monitor seeds dc2.
	rpo, err := d.Enable(ctx, "drover estate postgres")
	if err != nil {
		return nil, err
	}
	say("plan enabled: dc2 seeded by pg_basebackup and streaming (RPO monitor: %s, lag %s)", rpo.Status, rpo.Age)

	// Load through the front door, watched by the ledger.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ledger := e.Watch(watchCtx, 100*time.Millisecond)
	bench, err := e.StartPgbench(o.load+time.Minute, o.clients)
	if err != nil {
		return nil, err
	}
	time.Sleep(o.load)
	res := &EstateResult{}
	res.CommittedDC1, _ = e.Committed(ctx, dc1.Addr())

	// Disaster: dc1's postmaster killed and its site worker gone.
	pid, err := d.Disaster()
	if err != nil {
		return nil, err
	}
	declared := time.Now()
	stopWatch()
	say("DISASTER at dc1: postmaster %d killed, dc1's drover worker stopped; %d pgbench transactions committed so far", pid, res.CommittedDC1)
	out := bench.Wait()
	say("pgbench at dc1 ended: %s", lastLine(out))

	run, err := d.StartFailover(ctx, declared)
	if err != nil {
		return nil, err
	}
	if err := run.Get(ctx, &res.Failover); err != nil {
		return res, fmt.Errorf("failover: %w", err)
	}
	rep, err := report.Read(res.Failover.Report.JSON)
	if err != nil {
		return res, err
	}
	if len(rep.Replicas) == 0 || rep.Replicas[0].LagAtDeclaration == nil {
		return res, fmt.Errorf("the failover report has no lag at declaration (%s)", res.Failover.Report.Markdown)
	}
	res.Lag = *rep.Replicas[0].LagAtDeclaration
	say("failover done in %s: dc2 promoted, HAProxy points at dc2; lag at declaration: %s",
		res.Failover.Redirected.Sub(declared).Round(time.Millisecond), res.Lag.String())

	// pgbench goes on against dc2, through the same front door.
	before, err := e.Committed(ctx, dc2.Addr())
	if err != nil {
		return res, err
	}
	bench, err = e.StartPgbench(o.afterFailover, o.clients)
	if err != nil {
		return res, err
	}
	out = bench.Wait()
	res.CommittedDC2, err = e.Committed(ctx, dc2.Addr())
	if err != nil {
		return res, err
	}
	say("pgbench through HAProxy now commits at dc2: %d new transactions (%s)", res.CommittedDC2-before, lastLine(out))
	if res.CommittedDC2 <= before {
		return res, fmt.Errorf("pgbench committed nothing at dc2 after the failover:\n%s", out)
	}

	// The RPO proof.
	res.Proof, err = e.Prove(ctx, ledger, res.Lag.ReplayedPosition, dc2.Addr())
	if err != nil {
		return res, err
	}
	say("RPO proof: %d pgbench_history rows committed at dc1 up to %s (dc2 had replayed %s at declaration): %d missing at dc2; %d later rows were beyond that position",
		len(res.Proof.Sample.Rows), res.Proof.Sample.Position, res.Proof.Replayed, len(res.Proof.Missing), res.Proof.AfterPosition)
	if len(res.Proof.Missing) > 0 {
		return res, fmt.Errorf("RPO proof failed: rows %v committed at dc1 before %s are not at dc2", res.Proof.Missing, res.Proof.Replayed)
	}
	say("report: %s", res.Failover.Report.Markdown)

	if o.failback {
		fb, err := d.Failback(ctx)
		if err != nil {
			return res, err
		}
		res.Failback = &fb
		n, err := e.Committed(ctx, dc1.Addr())
		if err != nil {
			return res, err
		}
		say("failback done: dc1 rewound, caught up and switched over (nothing lost: %d rows at dc1, %d were at dc2); HAProxy points at dc1; report %s",
			n, res.CommittedDC2, fb.Report.Markdown)
		if n < res.CommittedDC2 {
			return res, fmt.Errorf("failback lost rows: %d at dc1, %d were at dc2", n, res.CommittedDC2)
		}
	}
	return res, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "tps") || strings.Contains(lines[i], "processed") || strings.Contains(lines[i], "aborted") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
