package starter

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/worker"
	"github.com/drover-dr/drover/workflows"
)

func init() { register(newWorkerCmd) }

func newWorkerCmd(g *Globals) *cobra.Command {
	var taskQueue string
	var mf metricsFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a drover worker against a Temporal frontend",
		Long: "Connects to the Temporal frontend (--address, --namespace, TLS flags), registers every drover\n" +
			"workflow and activity, and runs until SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.Logger()
			c, err := mf.dialAndServe(cmd.Context(), g, log)
			if err != nil {
				return err
			}
			defer c.Close()
			w, err := worker.New(c, worker.Options{TaskQueue: taskQueue, Registry: builtin.Registry(log), Logger: log})
			if err != nil {
				return err
			}
			log.Info("worker polling", zap.String("address", g.Address), zap.String("namespace", g.Namespace), zap.String("taskQueue", taskQueue))
			// worker.Run stops on the interrupt channel; the command context
			// is cancelled on SIGINT/SIGTERM by Main.
			stop := make(chan interface{})
			go func() { <-cmd.Context().Done(); close(stop) }()
			if err := w.Run(stop); err != nil {
				return err
			}
			log.Info("worker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&taskQueue, "task-queue", workflows.TaskQueue, "task queue to poll")
	cmd.Flags().StringVar(&mf.address, "metrics-address", "", "serve Prometheus metrics (the SDK's and drover's) at HOST:PORT/metrics")
	cmd.Flags().StringArrayVar(&mf.plans, "metrics-plan", nil, "plan file whose points, RPO target and gate reminders are exported (repeatable)")
	cmd.Flags().StringArrayVar(&mf.stores, "metrics-store", nil, "recovery point store whose plans are exported by name (repeatable)")
	cmd.Flags().StringArrayVar(&mf.sites, "metrics-site", nil, "SITE=TASK_QUEUE: export drover_site_workers for a site's queue (repeatable)")
	return cmd
}
