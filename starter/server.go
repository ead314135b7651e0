package starter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
)

func init() { register(newServerCmd) }

type serverFlags struct {
	IP       string
	Port     int
	HTTPPort int
	UIPort   int
	DBFile   string
	dbFlags
	pg *devserver.Postgres // from dbFlags, set in RunE
}

func newServerCmd(g *Globals) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the embedded Temporal server and Web UI (no worker)",
		Long: "Runs a Temporal server inside this process, with SQLite persistence and the Temporal Web UI,\n" +
			"and registers drover's namespace and search attributes. Point `drover worker` at it.\n" +
			"State is kept in memory unless --db-file names a file, or in PostgreSQL with --db postgres://...\n" +
			"(the production shape: schemas set up or updated on start). Stops on SIGINT/SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			pg, err := f.dbFlags.postgres(f.DBFile)
			if err != nil {
				return err
			}
			f.pg = pg
			return runServer(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.IP, "ip", devserver.DefaultIP, "IP address the frontend and Web UI listen on")
	fl.IntVar(&f.Port, "port", 7233, "frontend gRPC port (0 picks a free port)")
	fl.IntVar(&f.HTTPPort, "http-port", 0, "frontend HTTP API port (0 picks a free port)")
	fl.IntVar(&f.UIPort, "ui-port", 8233, "Web UI port (0 picks a free port, -1 runs no UI)")
	fl.StringVar(&f.DBFile, "db-file", "", "SQLite file that keeps the server's state across restarts (default: in memory)")
	f.dbFlags.register(cmd)
	return cmd
}

func (f serverFlags) validate() error {
	if net.ParseIP(f.IP) == nil {
		return BadInputf("--ip: %q is not an IP address", f.IP)
	}
	if f.Port < 0 || f.Port > 65535 {
		return BadInputf("--port: %d is not a port (0-65535)", f.Port)
	}
	if f.UIPort < -1 || f.UIPort > 65535 {
		return BadInputf("--ui-port: %d is not a port (0-65535, or -1 for no UI)", f.UIPort)
	}
	if f.HTTPPort < 0 || f.HTTPPort > 65535 {
		return BadInputf("--http-port: %d is not a port (0-65535)", f.HTTPPort)
	}
	for _, p := range [][2]string{{"port", "ui-port"}, {"port", "http-port"}, {"http-port", "ui-port"}} {
		a, b := f.port(p[0]), f.port(p[1])
		if a > 0 && a == b {
			return BadInputf("--%s and --%s are both %d", p[0], p[1], a)
		}
	}
	if f.DBFile != "" {
		if st, err := os.Stat(f.DBFile); err == nil && st.IsDir() {
			return BadInputf("--db-file: %s is a directory", f.DBFile)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return BadInputf("--db-file: %v", err)
		}
		dir := filepath.Dir(f.DBFile)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return BadInputf("--db-file: directory %s does not exist", dir)
		}
	}
	return nil
}

func (f serverFlags) port(flag string) int {
	switch flag {
	case "port":
		return f.Port
	case "http-port":
		return f.HTTPPort
	default:
		return f.UIPort
	}
}

func runServer(cmd *cobra.Command, g *Globals, f serverFlags) error {
	ctx := cmd.Context()
	log := g.Logger()
	srv, err := devserver.Start(ctx, devserver.Options{
		IP: f.IP, Port: f.Port, HTTPPort: f.HTTPPort, UIPort: f.UIPort, DBFile: f.DBFile, Postgres: f.pg,
		Namespace: g.Namespace,
		// The attributes the workflows set, so runs filter in the UI.
		SearchAttributes: contract.SearchAttributes,
		Logger:           log.Named("temporal"),
	})
	if err != nil {
		return fmt.Errorf("start embedded Temporal server: %w", err)
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			log.Warn("stop embedded Temporal server", zap.Error(err))
		}
	}()

	db := f.DBFile
	if f.pg != nil {
		db = f.pg.Describe()
	}
	if err := printServer(g, srv, db); err != nil {
		return err
	}
	log.Info("embedded Temporal server up; Ctrl-C stops it", zap.String("frontend", srv.FrontendAddress()))
	<-ctx.Done()
	log.Info("stopping embedded Temporal server")
	return nil
}

func printServer(g *Globals, srv *devserver.Server, db string) error {
	if db == "" {
		db = "memory"
	}
	if g.JSON() {
		return json.NewEncoder(g.Stdout).Encode(map[string]string{
			"frontend":  srv.FrontendAddress(),
			"http":      srv.HTTPAddress(),
			"ui":        srv.UIURL(),
			"namespace": srv.Namespace(),
			"db":        db,
		})
	}
	ui := srv.UIURL()
	if ui == "" {
		ui = "(off)"
	}
	_, err := fmt.Fprintf(g.Stdout,
		"Temporal frontend: %s\nTemporal HTTP API: %s\nTemporal Web UI:   %s\nNamespace:         %s\nState:             %s\n",
		srv.FrontendAddress(), srv.HTTPAddress(), ui, srv.Namespace(), db)
	return err
}
