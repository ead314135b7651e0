package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.uber.org/zap"
)

// Registry holds everything a worker's /metrics shows: the Temporal SDK's
// own metrics (bridged from its metrics handler through OpenTelemetry),
// drover's collector, and the Go runtime's and process's figures.
type Registry struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
	sdk      client.MetricsHandler
	log      *zap.Logger
}

// NewRegistry builds the registry and the SDK metrics handler to give the
// Temporal client (client.Options.MetricsHandler) before dialling.
func NewRegistry(log *zap.Logger) (*Registry, error) {
	if log == nil {
		log = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: register Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: register process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: bridge the SDK's metrics: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	sdk := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: provider.Meter("temporal-sdk-go"),
		// The contrib handler panics on a meter error by default; a metric
		// must never take a worker down.
		OnError: func(err error) { log.Warn("metrics: SDK metric", zap.Error(err)) },
		// The SDK's counters only grow: exported as Prometheus counters
		// (name_total), so rate() works on them.
		UseMonotonicCounters: true,
	})
	return &Registry{reg: reg, provider: provider, sdk: sdk, log: log}, nil
}

// SDKHandler is the metrics handler for client.Options.MetricsHandler.
func (r *Registry) SDKHandler() client.MetricsHandler { return r.sdk }

// Register adds drover's collector.
func (r *Registry) Register(c *Collector) error {
	if err := r.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: register drover collector: %w", err)
	}
	return nil
}

// Handler serves the registry in the Prometheus exposition formats.
func (r *Registry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(r.log), Registry: r.reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write([]byte("drover worker: metrics at /metrics\n"))
	})
	return mux
}

// Serve listens on address and serves Handler until ctx ends. It returns
// once the listener is bound (with its address, useful for port 0) and
// reports a later serving error on the returned channel.
func (r *Registry) Serve(ctx context.Context, address string) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-address %s: %w", address, err)
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
		_ = r.provider.Shutdown(shut)
	}()
	return ln.Addr(), done, nil
}
