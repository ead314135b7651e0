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
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a drover worker against a Temporal frontend",
		Long: "Connects to the Temporal frontend (--address, --namespace, TLS flags), registers every drover\n" +
			"workflow and activity, and runs until SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			log := g.Logger()
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
	return cmd
}
