package catalog

import (
	"fmt"

	"github.com/drover-dr/drover/drivers"
)

// Settings are the plan's storage.store settings.
type Settings struct {
	// Path is the store's directory at the secondary site (local disk or an
	// NFS mount); ${VAR} is expanded from the worker's environment.
	Path string `json:"path"`
	// Retention is the policy; DefaultPolicy when left out.
	Retention *Policy `json:"retention,omitempty"`
	// FreeMargin multiplies a backup's estimated size to get the free
	// space the preflight demands (default 1.2: room for the manifest and
	// for data written while the backup runs).
	FreeMargin float64 `json:"freeMargin,omitempty"`
}

// DecodeSettings decodes storage.store strictly and fills defaults. It does
// not touch the file system, so plan validation can call it anywhere.
func DecodeSettings(settings map[string]any) (Settings, error) {
	var s Settings
	if err := drivers.DecodeSettings(settings, &s); err != nil {
		return s, fmt.Errorf("storage.store: %w", err)
	}
	if s.Path == "" {
		return s, fmt.Errorf("storage.store.path: required: the recovery point store's directory at the secondary site")
	}
	if s.Retention == nil {
		p := DefaultPolicy
		s.Retention = &p
	}
	if err := s.Retention.Check(); err != nil {
		return s, fmt.Errorf("storage.store.%w", err)
	}
	if s.FreeMargin == 0 {
		s.FreeMargin = 1.2
	}
	if s.FreeMargin < 1 {
		return s, fmt.Errorf("storage.store.freeMargin: %g is below 1", s.FreeMargin)
	}
	return s, nil
}

// OpenFromSettings decodes storage.store, expands its path and opens the
// store.
func OpenFromSettings(settings map[string]any) (*Store, Settings, error) {
	s, err := DecodeSettings(settings)
	if err != nil {
		return nil, s, err
	}
	path, err := drivers.ExpandPath(s.Path)
	if err != nil {
		return nil, s, fmt.Errorf("storage.store.path: %w", err)
	}
	st, err := Open(path)
	return st, s, err
}
