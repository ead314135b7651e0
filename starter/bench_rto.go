package starter

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/bench"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchRTOCmd) }

func newBenchRTOCmd(g *Globals) *cobra.Command {
	var o bench.RTOOptions
	var counts string
	cmd := &cobra.Command{
		Use:   "rto [--n 1,8,32] [--time-scale 0.02]",
		Short: "Unplanned failover on the lab against its critical path and a sequential runbook, for N app servers per product",
		Long: `For each N, builds the lab with N app servers per product (BPM and Monitor), takes a recovery point with
BackupWorkflow, destroys the primary (lab disaster) and runs:

  failover    a real FailoverWorkflow (unplanned) on an embedded Temporal server with an in-process
              worker, timed from the start request to the result;
  critical    the critical path of that same run, from what its activities measured: restore (groups
              in parallel, then the environment rewrite) + for each restart tier the slowest member's
              start and readiness + for each verification level the slowest check;
  other work  the run's other activities (preflight, recovery point choice, in-flight recovery,
              redirect, report), also measured inside the activities;
  overhead    failover - critical - other work: what orchestration adds (workflow tasks, activity
              dispatch, child workflows, members of a tier not starting together);
  sequential  the same steps one after another as a shell runbook does, through the same drivers
              without Temporal, after dc2 is stopped and wiped: restore, each server started and
              waited for in plan order, each check, the recovery check, the redirect.

Every server of a role starts in the same time (the lab's start-up time of the role, scaled by
--time-scale), so the slowest member of a tier takes as long as any: the critical path should not
depend on N, the sequential runbook does. (On a small machine N servers starting at once still
compete for the CPUs; the measured critical path shows how much.)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := bench.ParseCounts(counts, bench.RTOMaxN)
			if err != nil {
				return BadInputf("--n: %v", err)
			}
			o.Counts = ns
			if o.TimeScale <= 0 || o.TimeScale > 1 {
				return BadInputf("--time-scale: %v is not in (0, 1]", o.TimeScale)
			}
			if o.Rounds < 1 {
				return BadInputf("--rounds: %d is below 1", o.Rounds)
			}
			if o.ActivityPollers < 0 {
				return BadInputf("--activity-pollers: %d is negative", o.ActivityPollers)
			}
			if o.Timeout <= 0 {
				return BadInputf("--timeout: %s is not positive", o.Timeout)
			}
			doc, err := bench.RTO(cmd.Context(), benchEnv(g), o)
			if err != nil {
				return benchError(err)
			}
			return benchWrite(g, doc, doc.Print)
		},
	}
	cmd.Flags().StringVar(&counts, "n", "1,8,32", "app servers per product, a comma-separated list")
	cmd.Flags().Float64Var(&o.TimeScale, "time-scale", 0.02, "scale of the lab's realistic start-up times (1 = minutes, 0.02: an app server starts in 1.8s)")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "work folder for the labs (default: a new temporary folder, removed afterwards)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the labs' folders (logs, stores, plans)")
	cmd.Flags().IntVar(&o.Rounds, "rounds", 1, "failover and sequential runs per N; the fastest of each is kept")
	cmd.Flags().IntVar(&o.ActivityPollers, "activity-pollers", 0, "activity task pollers of the bench's worker (0: the SDK default, as drover's worker uses)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 20*time.Minute, "how long one N may take")
	cmd.Flags().StringVar(&o.LabExe, "lab-exe", "auto", "what runs the lab's servers: auto (drover-lab beside drover, else built with go for this bench, else drover), self (drover), or a path")
	return cmd
}
