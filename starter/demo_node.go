package starter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func init() { register(newDemoNodeCmd) }

// newDemoNodeCmd is a tiny server for the first-run demo: it refuses to start
// unless what it needs answers, takes a moment to come up, and serves a
// health endpoint. It stands in for a real server until the lab runs the
// demo; it is hidden from help.
func newDemoNodeCmd(g *Globals) *cobra.Command {
	var name, listen, needs string
	var startup time.Duration
	cmd := &cobra.Command{
		Use:    "demo-node",
		Short:  "A small server process for the demo (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := g.Logger().With(zap.String("node", name))
			for _, need := range strings.Split(needs, ",") {
				if need == "" {
					continue
				}
				conn, err := net.DialTimeout("tcp", need, time.Second)
				if err != nil {
					return fmt.Errorf("%s: cannot start: %s is not reachable: %v", name, need, err)
				}
				_ = conn.Close()
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("%s: listen on %s: %w", name, listen, err)
			}
			up := time.Now()
			mux := http.NewServeMux()
			mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
				// Not ready until the start-up time has passed, as a real
				// server accepts connections before its applications run.
				ready := time.Since(up) >= startup
				w.Header().Set("Content-Type", "application/json")
				if !ready {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				_ = json.NewEncoder(w).Encode(map[string]any{
					"passed":  ready,
					"summary": fmt.Sprintf("%s ready=%v up %s", name, ready, time.Since(up).Round(time.Millisecond)),
				})
			})
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			log.Info("demo node listening", zap.String("listen", listen))
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "node", "node name")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	cmd.Flags().StringVar(&needs, "needs", "", "comma-separated host:port that must answer before start")
	cmd.Flags().DurationVar(&startup, "startup", 300*time.Millisecond, "time before the node reports ready")
	return cmd
}
