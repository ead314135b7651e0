package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// DefaultTCPTimeout bounds a connect.
const DefaultTCPTimeout = 5 * time.Second

// TCP is the tcp probe: it passes when the address accepts a connection.
//
// Settings:
//
//	address: host:port template (required)
//	timeout: default 5s
//	vars:    free-form values for templates
type TCP struct {
	logger *zap.Logger
}

// NewTCP returns the tcp probe.
func NewTCP(logger *zap.Logger) *TCP {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &TCP{logger: logger}
}

type tcpSettings struct {
	Address string           `json:"address"`
	Timeout drivers.Duration `json:"timeout"`
	Vars    map[string]any   `json:"vars"`
}

type tcpConfig struct {
	address *tmpl.Template
	timeout time.Duration
	vars    map[string]any
}

// CheckSettings parses the settings without connecting.
func (p *TCP) CheckSettings(s map[string]any) error {
	_, err := parseTCP(s)
	return err
}

func parseTCP(raw map[string]any) (*tcpConfig, error) {
	var s tcpSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, badSettings("tcp", err)
	}
	c := &tcpConfig{vars: s.Vars}
	var err error
	if s.Address == "" {
		return nil, badSettings("tcp", errors.New("settings: address: required"))
	}
	if c.address, err = tmpl.Parse("address", s.Address, tmpl.ProbeData{}); err != nil {
		return nil, badSettings("tcp", fmt.Errorf("settings: %w", err))
	}
	if c.timeout, err = timeoutOr(s.Timeout, DefaultTCPTimeout); err != nil {
		return nil, badSettings("tcp", fmt.Errorf("settings: %w", err))
	}
	return c, nil
}

// Check connects to the address and closes the connection.
func (p *TCP) Check(ctx context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	c, err := parseTCP(req.Settings)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	addr, err := c.address.Render(tmpl.ForCheck(req, c.vars))
	if err != nil {
		return drivers.CheckResult{}, badSettings("tcp", err)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return drivers.CheckResult{}, drivers.BadSettingsf("tcp probe: address %q: want host:port", addr)
	}
	res := drivers.CheckResult{
		Details:  map[string]string{"address": addr},
		Evidence: drivers.Evidence{Action: "tcp connect " + addr},
	}
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	res.Evidence.Duration = time.Since(start)
	p.logger.Debug("tcp probe", zap.String("check", req.Name), zap.String("address", addr), zap.Error(err))
	if err != nil {
		if cerr := callerDone(ctx); cerr != nil {
			return res, cerr
		}
		cause := short(err.Error())
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			cause = fmt.Sprintf("no answer within %s", c.timeout)
		} else if errno, ok := errors.AsType[syscall.Errno](err); ok {
			cause = errno.Error() // "connection refused", without the wrapping
		} else if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Err != nil {
			cause = short(oe.Err.Error())
		}
		res.Summary = fmt.Sprintf("connect %s: %s", addr, cause)
		res.Evidence.Output = short(err.Error())
		return res, nil
	}
	res.Details["local"] = conn.LocalAddr().String()
	_ = conn.Close()
	res.Passed = true
	res.Summary = fmt.Sprintf("connected to %s in %s", addr, res.Evidence.Duration.Round(time.Microsecond))
	return res, nil
}
