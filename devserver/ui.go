package devserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/server_options"
	"go.uber.org/zap"
)

// startUI serves the Temporal Web UI (its assets are embedded in the
// ui-server module) and waits until it answers.
func (s *Server) startUI(ctx context.Context, o Options, p ports) error {
	addr := net.JoinHostPort(p.ip, strconv.Itoa(p.ui))
	// The UI server exits the whole process (echo's Logger.Fatal) when it
	// cannot bind. Binding once here first turns a taken port into an error.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web UI on %s: %w", addr, err)
	}
	_ = l.Close()

	cfg := &uiconfig.Config{
		Host:                uiHost(p.ip),
		Port:                p.ui,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		// No internet on the machines drover runs on, and no need for it.
		DisableNewsFetch: true,
		// Plain HTTP on loopback: the CSRF cookie must not require HTTPS.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true,
		// The browser calls the codec endpoint itself, from the UI's
		// origin: the codec server must allow that origin.
		Codec: uiconfig.Codec{Endpoint: o.CodecEndpoint},
	}
	if o.TLS != nil {
		cfg.TLS = uiconfig.TLS{
			CaFile:                 o.TLS.ServerCAFile,
			CertFile:               o.TLS.ClientCertFile,
			KeyFile:                o.TLS.ClientKeyFile,
			ServerName:             o.TLS.serverName(p.dialHost),
			EnableHostVerification: true,
		}
	}
	ui := uiserver.NewServer(server_options.WithConfigProvider(cfg))
	s.ui = ui
	go func() {
		if err := ui.Start(); err != nil {
			s.logger.Error("web UI stopped", zap.String("address", addr), zap.Error(err))
		}
	}()

	dialAddr := net.JoinHostPort(p.dialHost, strconv.Itoa(p.ui))
	s.uiURL = "http://" + dialAddr
	if err := waitHTTP(ctx, "http://"+dialAddr+"/healthz"); err != nil {
		return fmt.Errorf("web UI on %s: %w", addr, err)
	}
	return nil
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w (last error: %v)", ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// uiHost brackets an IPv6 address: the UI server joins host and port with a
// plain colon.
func uiHost(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]"
	}
	return ip
}
