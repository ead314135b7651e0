package starter

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/workflows"
)

func init() { register(newDevCmd) }

func newDevCmd(g *Globals) *cobra.Command {
	var o stackOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded Temporal server, its Web UI and a drover worker until Ctrl-C",
		Long: "The all-in-one development stack: an embedded Temporal server (in memory, or --db-file to keep\n" +
			"runs), the Temporal Web UI and a drover worker in one process. Other drover commands reach it\n" +
			"with --address.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := startStack(cmd.Context(), g, o)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(g.Stdout, "Temporal frontend: %s (namespace %s)\n", st.server.FrontendAddress(), g.Namespace)
			fmt.Fprintf(g.Stdout, "Web UI:            %s\n", st.server.UIURL())
			fmt.Fprintf(g.Stdout, "Worker polling task queue %q. Press Ctrl-C to stop.\n", workflows.TaskQueue)
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&o.IP, "ip", "127.0.0.1", "address to listen on")
	cmd.Flags().IntVar(&o.Port, "port", 7233, "Temporal frontend port")
	cmd.Flags().IntVar(&o.UIPort, "ui-port", 8233, "Web UI port")
	cmd.Flags().StringVar(&o.DBFile, "db-file", "", "SQLite file to keep runs in (default: in memory)")
	return cmd
}
