// Package builtin assembles the registry of every driver drover ships, so the
// worker and the CLI's plan validation resolve the same names.
package builtin

import (
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
)

// Registry returns a registry holding every built-in driver.
func Registry(logger *zap.Logger) *drivers.Registry {
	if logger == nil {
		logger = zap.NewNop()
	}
	r := drivers.NewRegistry()
	// Each driver package adds its line here.
	_ = logger
	return r
}
