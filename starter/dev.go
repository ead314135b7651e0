package starter

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/stack"
)

func init() { register(newDevCmd) }

func newDevCmd(g *Globals) *cobra.Command {
	var o stack.Options
	var db dbFlags
	var labPlan, labDir string
	var codecPort int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded Temporal server, its Web UI and a drover worker until Ctrl-C",
		Long: "The all-in-one development stack: an embedded Temporal server (in memory, --db-file to keep\n" +
			"runs, or --db postgres://... for PostgreSQL), the Temporal Web UI and a drover worker in one\n" +
			"process. Other drover commands reach it with --address.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pg, err := db.postgres(o.DBFile)
			if err != nil {
				return err
			}
			o.Postgres = pg
			// Encrypted payloads: the UI decodes them through a codec
			// server in this process, on loopback (it decrypts for
			// whoever reaches it).
			var codecLn net.Listener
			if g.EncryptionKeyFile != "" {
				codecLn, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(codecPort)))
				if err != nil {
					return fmt.Errorf("codec server: %w", err)
				}
				defer codecLn.Close()
				o.CodecEndpoint = "http://" + codecLn.Addr().String()
			}
			st, err := startStack(cmd.Context(), g, o)
			if err != nil {
				return err
			}
			defer st.Close()
			codecDone := make(chan error, 1)
			if codecLn != nil {
				f := codecServerFlags{KeyFile: g.EncryptionKeyFile, Listen: "127.0.0.1", UIOrigins: []string{st.Server.UIURL()}}
				h, err := f.handler()
				if err != nil {
					return err
				}
				go func() {
					codecDone <- serveCodec(cmd.Context(), g.Logger(), codecHTTPServer(g.Logger(), h), codecLn, o.CodecEndpoint)
				}()
			}
			if labPlan != "" {
				l, err := devLab(cmd.Context(), g, labPlan, labDir)
				if err != nil {
					return err
				}
				defer func() {
					if err := l.Down(); err != nil {
						g.Logger().Warn("lab down", zap.Error(err))
					}
				}()
				if err := startSiteWorkers(cmd.Context(), g, st.Client, l); err != nil {
					return err
				}
				fmt.Fprintf(g.Stdout, "Lab:               %s (DROVER_LAB_DIR), primary up; front door %s\n", l.Dir, l.Topo.FrontDoor.Addr())
				fmt.Fprintf(g.Stdout, "Site workers:      one process per lab site (%s), logs under %s/sites/SITE/logs\n", strings.Join(l.Topo.SiteNames(), ", "), l.Dir)
			}
			fmt.Fprintf(g.Stdout, "Temporal frontend: %s (namespace %s)\n", st.Server.FrontendAddress(), g.Namespace)
			fmt.Fprintf(g.Stdout, "Web UI:            %s\n", st.Server.UIURL())
			if o.CodecEndpoint != "" {
				fmt.Fprintf(g.Stdout, "Codec server:      %s (the Web UI decrypts payloads through it)\n", o.CodecEndpoint)
			}
			if pg != nil {
				fmt.Fprintf(g.Stdout, "State:             %s\n", pg.Describe())
			}
			fmt.Fprintf(g.Stdout, "Orchestrator polling task queue %q", contract.OrchestratorQueue)
			for _, site := range o.Sites {
				fmt.Fprintf(g.Stdout, "; site %s on %q", site, contract.Queue(site))
			}
			fmt.Fprintln(g.Stdout, ". Press Ctrl-C to stop.")
			select {
			case <-cmd.Context().Done():
				if codecLn != nil {
					return <-codecDone
				}
				return nil
			case err := <-codecDone:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&o.IP, "ip", "127.0.0.1", "address to listen on")
	cmd.Flags().IntVar(&o.Port, "port", 7233, "Temporal frontend port")
	cmd.Flags().IntVar(&o.UIPort, "ui-port", 8233, "Web UI port")
	cmd.Flags().IntVar(&codecPort, "codec-port", 0, "with --encryption-key-file: port of the codec server the Web UI decrypts through, on 127.0.0.1 (0 picks a free port)")
	cmd.Flags().StringVar(&o.DBFile, "db-file", "", "SQLite file to keep runs in (default: in memory)")
	db.register(cmd)
	cmd.Flags().Var(placesFlag{&o.Sites}, "site", "also serve this site's steps in this process (repeat for several)")
	cmd.Flags().StringVar(&labPlan, "lab-plan", "", "also bring up the lab from this plan (e.g. examples/plans/lab.yaml); the worker drives it")
	cmd.Flags().StringVar(&labDir, "lab-dir", filepath.Join(".drover", "lab"), "the lab's directory (with --lab-plan)")
	return cmd
}

// devLab creates the lab from a plan and starts its primary, with the
// environment the in-process worker's lab drivers read.
func devLab(ctx context.Context, g *Globals, planFile, dir string) (*lab.Lab, error) {
	p, _, err := loadCheckedPlan(g, planFile)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, BadInputf("--lab-dir: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	os.Setenv("DROVER_LAB_DIR", abs)
	os.Setenv("DROVER_LAB_EXE", exe)
	t, _, err := labplan.Topology(p, 0, -1)
	if err != nil {
		return nil, BadInputf("%s: %v", planFile, err)
	}
	l, err := lab.Create(abs, t, g.Logger())
	if err != nil {
		return nil, BadInput(err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "store"), 0o755); err != nil {
		return nil, err
	}
	return l, l.Up(ctx)
}

// placesFlag collects --site values as placements.
type placesFlag struct{ places *[]contract.Placement }

func (f placesFlag) String() string { return "" }
func (f placesFlag) Type() string   { return "site" }
func (f placesFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("want a site name")
	}
	*f.places = append(*f.places, contract.Placement{Site: v})
	return nil
}
