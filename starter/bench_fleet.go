package starter

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/bench"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchFleetCmd) }

func newBenchFleetCmd(g *Globals) *cobra.Command {
	var o bench.FleetOptions
	var counts string
	var db dbFlags
	cmd := &cobra.Command{
		Use:   "fleet [--plans 1,10,50]",
		Short: "N independent plans declared lost at once and failed over together, against a lone plan, on Temporal with PostgreSQL",
		Long: `For each N, fails over N independent plans at once on one declaration: each plan has three components,
real processes started and watched by the exec driver, and an archive group restored from its recovery
point. Temporal runs embedded on PostgreSQL (a throwaway cluster started for the run, or --db). Just
before each batch, one plan is failed over alone on the same server: the batch's figures are printed
beside it.

  overhead ratio   time until every plan is redirected / the slowest plan's critical path
  RTO p50, p99     per-plan RTO of the batch / the lone plan's RTO
  CPU per plan     server and worker (goroutine labels of a CPU profile), PostgreSQL (/proc),
                   the components' processes; beside the lone plan's

and where the per-plan RTO bends: activity dispatch (worker pollers and slots), workflow reactions
(server and persistence) or the activities' own work (the machine), with the worker options that
move it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := bench.ParseCounts(counts, bench.FleetMaxPlans)
			if err != nil {
				return BadInputf("--plans: %v", err)
			}
			o.Counts = ns
			if o.Timeout <= 0 {
				return BadInputf("--timeout: %s is not positive", o.Timeout)
			}
			for flag, v := range map[string]int{"--activity-pollers": o.Tuning.ActivityPollers, "--workflow-pollers": o.Tuning.WorkflowPollers,
				"--max-activities": o.Tuning.MaxConcurrentActivities, "--max-workflow-tasks": o.Tuning.MaxConcurrentWorkflowTasks} {
				if v < 0 {
					return BadInputf("%s: %d is negative", flag, v)
				}
			}
			if db.DB != "" || db.DBPassword != "" {
				if o.Postgres, err = db.postgres(""); err != nil {
					return err
				}
				if o.Postgres == nil {
					return BadInputf("--db: the fleet runs on PostgreSQL; give postgres://USER@HOST:PORT/DATABASE, or leave it out for a throwaway cluster")
				}
			}
			doc, err := bench.Fleet(cmd.Context(), benchEnv(g), o)
			if err != nil {
				return benchError(err)
			}
			return benchWrite(g, doc, doc.Print)
		},
	}
	cmd.Flags().StringVar(&counts, "plans", "1,10,50", "plans failed over at once, a comma-separated list")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "work folder for the plans (default: a new temporary folder, removed afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the work folder")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 15*time.Minute, "how long one batch may take")
	cmd.Flags().IntVar(&o.Tuning.ActivityPollers, "activity-pollers", 0, "activity task pollers per queue (0: the SDK default, as drover's worker uses)")
	cmd.Flags().IntVar(&o.Tuning.WorkflowPollers, "workflow-pollers", 0, "workflow task pollers (0: the SDK default)")
	cmd.Flags().IntVar(&o.Tuning.MaxConcurrentActivities, "max-activities", 0, "activity execution slots per queue (0: the SDK default)")
	cmd.Flags().IntVar(&o.Tuning.MaxConcurrentWorkflowTasks, "max-workflow-tasks", 0, "workflow task execution slots (0: the SDK default)")
	cmd.Flags().StringVar(&db.DB, "db", "", "Temporal's PostgreSQL, postgres://USER@HOST:PORT/DATABASE (default: a throwaway cluster, initdb and pg_ctl, for the run)")
	cmd.Flags().StringVar(&db.DBPassword, "db-password", "", "the PostgreSQL password as a secret reference, env:NAME or file:PATH")
	return cmd
}
