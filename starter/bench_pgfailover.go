package starter

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/bench"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchPgFailoverCmd) }

func newBenchPgFailoverCmd(g *Globals) *cobra.Command {
	var o bench.PgFailoverOptions
	cmd := &cobra.Command{
		Use:   "pgfailover [--runs 3]",
		Short: "PostgreSQL failover under pgbench: drover against a shell runbook doing the same promote and redirect, and Patroni's defaults",
		Long: `Sets up the PostgreSQL estate of examples/plans/postgres.yaml (primary at dc1, standby at dc2 seeded by
drover's plan apply, HAProxy in front, pgbench through HAProxy), kills dc1's postmaster and measures the
time from the declaration to the first pgbench transaction committed at dc2 through HAProxy:

  drover   the unplanned failover workflow (fence, lag at declaration, promote, verify, redirect)
  shell    a bash script doing the same promote (pg_promote) and HAProxy redirect (runtime API over
           /dev/tcp), nothing else; the bench writes it to the work folder

Each side runs --runs times, each on a fresh estate, alternating which goes first. It prints p50 and max
of both, drover/shell, drover against Patroni's defaults (ttl 30s + loop_wait 10s), and where drover's
time goes (its run's report, phase by phase). Needs PostgreSQL and HAProxy (Debian packages); as root,
the clusters run as the postgres OS user.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Runs < 1 || o.Runs > bench.PgFailoverMaxRuns {
				return BadInputf("--runs: %d is not between 1 and %d", o.Runs, bench.PgFailoverMaxRuns)
			}
			if o.Clients < 1 || o.Clients > 20 {
				return BadInputf("--clients: %d is not between 1 and 20 (the clusters allow 50 connections)", o.Clients)
			}
			if o.Load <= 0 {
				return BadInputf("--load: %s is not positive", o.Load)
			}
			if o.Timeout <= 0 {
				return BadInputf("--timeout: %s is not positive", o.Timeout)
			}
			doc, err := bench.PgFailover(cmd.Context(), benchEnv(g), o)
			if err != nil {
				return benchError(err)
			}
			return benchWrite(g, doc, doc.Print)
		},
	}
	cmd.Flags().IntVar(&o.Runs, "runs", 3, "failovers of each side, each on a fresh estate")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "work folder (default: a new temporary folder, removed afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the work folder")
	cmd.Flags().DurationVar(&o.Load, "load", 3*time.Second, "how long pgbench runs at dc1 before the disaster")
	cmd.Flags().IntVar(&o.Clients, "clients", 2, "pgbench clients through HAProxy, each restarted when its server is lost")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 3*time.Minute, "how long one failover may take, declaration to first commit")
	return cmd
}
