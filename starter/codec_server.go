package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/codec"
)

func init() { register(newCodecServerCmd) }

type codecServerFlags struct {
	KeyFile   string
	Listen    string
	Port      int
	UIOrigins []string
	TokenFile string
}

func newCodecServerCmd(g *Globals) *cobra.Command {
	var f codecServerFlags
	cmd := &cobra.Command{
		Use:   "codec-server --encryption-key-file FILE [--port P] [--ui-origin URL] [--token-file FILE]",
		Short: "Serve Temporal's remote codec protocol so the Web UI shows encrypted payloads",
		Long: "Decrypts (and encrypts) payloads for the Temporal Web UI and the temporal CLI: POST /decode and\n" +
			"POST /encode with {\"payloads\": [...]}. Set the UI's codec endpoint to the URL it prints.\n" +
			"Browsers may call it only from --ui-origin; with --token-file every request needs\n" +
			"\"Authorization: Bearer TOKEN\". It listens on loopback unless --listen says otherwise: whoever\n" +
			"can reach it can read every payload, so put it behind the same access control as the UI.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := f.handler()
			if err != nil {
				return err
			}
			return runCodecServer(cmd.Context(), g, f, h)
		},
	}
	fl := cmd.Flags()
	// Same name and env var as the worker's and CLI's global flag, so one
	// setting serves all three.
	fl.StringVar(&f.KeyFile, "encryption-key-file", os.Getenv("DROVER_ENCRYPTION_KEY_FILE"), "AES-256 key file the payloads were encrypted with (env DROVER_ENCRYPTION_KEY_FILE)")
	fl.StringVar(&f.Listen, "listen", "127.0.0.1", "IP address to listen on")
	fl.IntVar(&f.Port, "port", 8081, "port to listen on (0 picks a free port)")
	fl.StringSliceVar(&f.UIOrigins, "ui-origin", []string{"http://127.0.0.1:8233"}, "Web UI origin (scheme://host:port) allowed to call from a browser; repeatable")
	fl.StringVar(&f.TokenFile, "token-file", "", "file holding a bearer token every request must carry (default: no token)")
	return cmd
}

func (f codecServerFlags) handler() (http.Handler, error) {
	if f.KeyFile == "" {
		return nil, BadInputf("--encryption-key-file: required: the key the payloads were encrypted with")
	}
	ip := net.ParseIP(f.Listen)
	if ip == nil {
		return nil, BadInputf("--listen: %q is not an IP address", f.Listen)
	}
	if f.Port < 0 || f.Port > 65535 {
		return nil, BadInputf("--port: %d is not a port (0-65535)", f.Port)
	}
	for _, o := range f.UIOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return nil, BadInputf("--ui-origin: %q is not an origin like http://127.0.0.1:8233 (scheme, host and port only)", o)
		}
	}
	key, err := codec.LoadKey(f.KeyFile)
	if err != nil {
		return nil, BadInputf("--encryption-key-file: %v", err)
	}
	c, err := codec.NewCodec(key)
	if err != nil {
		return nil, err
	}
	var token string
	if f.TokenFile != "" {
		b, err := os.ReadFile(f.TokenFile)
		if err != nil {
			return nil, BadInputf("--token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, BadInputf("--token-file: %s is empty", f.TokenFile)
		}
		if strings.ContainsAny(token, " \t\r\n") {
			return nil, BadInputf("--token-file: %s: the token must be one line without spaces", f.TokenFile)
		}
	}
	return codec.NewHTTPHandler(c, codec.HTTPOptions{AllowedOrigins: f.UIOrigins, Token: token}), nil
}

func runCodecServer(ctx context.Context, g *Globals, f codecServerFlags, h http.Handler) error {
	log := g.Logger()
	addr := net.JoinHostPort(f.Listen, strconv.Itoa(f.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("codec server: listen on %s: %w", addr, err)
	}
	if ip := net.ParseIP(f.Listen); !ip.IsLoopback() && f.TokenFile == "" {
		log.Warn("codec server reachable beyond this machine without a token: anyone who can connect can decrypt every payload",
			zap.String("listen", ln.Addr().String()))
	}
	srv := codecHTTPServer(log, h)
	endpoint := "http://" + ln.Addr().String()
	if g.JSON() {
		err = json.NewEncoder(g.Stdout).Encode(map[string]any{"endpoint": endpoint, "uiOrigins": f.UIOrigins, "token": f.TokenFile != ""})
	} else {
		_, err = fmt.Fprintf(g.Stdout, "Codec server: %s\nIn the Web UI, set the codec endpoint to %s (allowed origins: %s).\n",
			endpoint, endpoint, strings.Join(f.UIOrigins, ", "))
	}
	if err != nil {
		_ = ln.Close()
		return err
	}
	return serveCodec(ctx, log, srv, ln, endpoint)
}

// serveCodec serves the codec endpoint on ln until ctx ends.
func serveCodec(ctx context.Context, log *zap.Logger, srv *http.Server, ln net.Listener, endpoint string) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("codec server on %s: %w", endpoint, err)
	case <-ctx.Done():
	}
	log.Info("stopping codec server")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("codec server: shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("codec server on %s: %w", endpoint, err)
	}
	return nil
}

func codecHTTPServer(log *zap.Logger, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		ErrorLog:          zap.NewStdLog(log.Named("codec-server")),
	}
}
