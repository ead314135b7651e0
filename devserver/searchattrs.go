package devserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// startupTimeout bounds each start-up step when ctx has no earlier deadline.
const startupTimeout = 30 * time.Second

// dial opens an SDK client to this server's namespace.
func (s *Server) dial(ctx context.Context, o Options, dialHost string) (client.Client, error) {
	copts := client.Options{
		HostPort:  s.frontend,
		Namespace: s.namespace,
		Logger:    sdkLogger{s.logger.Named("devserver-client").WithOptions(zap.IncreaseLevel(zap.WarnLevel)).Sugar()},
	}
	if o.TLS != nil {
		tc, err := o.TLS.clientConfig(dialHost)
		if err != nil {
			return nil, err
		}
		copts.ConnectionOptions.TLS = tc
	}
	c, err := client.DialContext(ctx, copts)
	if err != nil {
		return nil, fmt.Errorf("dial embedded frontend %s: %w", s.frontend, err)
	}
	return c, nil
}

// registerSearchAttributes makes sure every wanted search attribute is
// registered in the namespace with its type, and waits until the frontend
// reports all of them. A new namespace got them when it was created; an
// existing one (a reused DB file) may lack ones added to drover since.
func (s *Server) registerSearchAttributes(ctx context.Context, o Options, dialHost string) error {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()
	c, err := s.dial(ctx, o, dialHost)
	if err != nil {
		return err
	}
	defer c.Close()
	ops := c.OperatorService()

	list := func() (map[string]enumspb.IndexedValueType, error) {
		var got map[string]enumspb.IndexedValueType
		err := retryUnavailable(ctx, func() error {
			resp, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
			if err != nil {
				return err
			}
			got = resp.GetCustomAttributes()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list search attributes of namespace %s: %w", s.namespace, err)
		}
		return got, nil
	}

	have, err := list()
	if err != nil {
		return err
	}
	missing, err := missingSearchAttributes(o.SearchAttributes, have)
	if err != nil || len(missing) == 0 {
		return err
	}
	s.logger.Info("registering search attributes", zap.String("namespace", s.namespace),
		zap.Strings("names", slices.Sorted(maps.Keys(missing))))
	err = retryUnavailable(ctx, func() error {
		_, err := ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: s.namespace, SearchAttributes: missing,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("add search attributes %s to namespace %s: %w",
			strings.Join(slices.Sorted(maps.Keys(missing)), ", "), s.namespace, err)
	}
	// The frontend reads namespaces from a cache refreshed every few seconds.
	for {
		have, err := list()
		if err != nil {
			return err
		}
		if m, err := missingSearchAttributes(o.SearchAttributes, have); err != nil || len(m) == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for search attributes in namespace %s: %w", s.namespace, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// missingSearchAttributes returns the wanted attributes not in have, or an
// error when one is there with another type.
func missingSearchAttributes(want, have map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	missing := map[string]enumspb.IndexedValueType{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		t, ok := have[name]
		switch {
		case !ok:
			missing[name] = want[name]
		case t != want[name]:
			errs = append(errs, fmt.Errorf("search attribute %s is registered as %s, drover needs %s", name, t, want[name]))
		}
	}
	return missing, errors.Join(errs...)
}

// retryUnavailable retries f while the just-started server is still warming
// up (its namespace cache or a service not ready yet).
func retryUnavailable(ctx context.Context, f func() error) error {
	delay := 20 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var unavailable *serviceerror.Unavailable
		var nsNotFound *serviceerror.NamespaceNotFound
		if !errors.As(err, &unavailable) && !errors.As(err, &nsNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// sdkLogger passes the SDK client's logs to zap.
type sdkLogger struct{ l *zap.SugaredLogger }

func (z sdkLogger) Debug(msg string, keyvals ...any) { z.l.Debugw(msg, keyvals...) }
func (z sdkLogger) Info(msg string, keyvals ...any)  { z.l.Infow(msg, keyvals...) }
func (z sdkLogger) Warn(msg string, keyvals ...any)  { z.l.Warnw(msg, keyvals...) }
func (z sdkLogger) Error(msg string, keyvals ...any) { z.l.Errorw(msg, keyvals...) }
