package drivers

import (
	"context"
	"strings"
	"testing"
)

type settingsStorage struct {
	Storage
	checked map[string]any
}

func (s *settingsStorage) CheckSettings(settings map[string]any) error {
	s.checked = settings
	if _, ok := settings["bad"]; ok {
		return BadSettingsf("settings: unknown field %q", "bad")
	}
	return nil
}

type onlyProbe struct{}

func (onlyProbe) Check(context.Context, CheckRequest) (CheckResult, error) { return CheckResult{}, nil }

func TestRegistryResolvesEachKindByItsOwnInterface(t *testing.T) {
	r := NewRegistry()
	st := &settingsStorage{}
	r.RegisterStorage("archive", st)
	r.RegisterProbe("tcp", onlyProbe{})

	got, err := r.Storage("archive")
	if err != nil || got != Storage(st) {
		t.Fatalf("Storage(archive) = %v, %v", got, err)
	}
	if _, err := r.Storage("tcp"); err == nil || !strings.Contains(err.Error(), `unknown storage driver "tcp" (known: archive)`) {
		t.Fatalf("a probe name must not resolve as storage: %v", err)
	}
	if err := r.CheckDriver("storage", "archive", map[string]any{"bad": 1}); !Permanent(err) || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("CheckDriver must pass the storage driver's settings check through: %v", err)
	}
	if err := r.CheckDriver("probe", "tcp", nil); err != nil {
		t.Fatalf("a probe without a settings checker is accepted: %v", err)
	}
	if err := r.CheckDriver("redirect", "tcp", nil); err == nil || !strings.Contains(err.Error(), "none registered") {
		t.Fatalf("unknown redirect: %v", err)
	}
	if err := r.CheckDriver("gadget", "x", nil); err == nil {
		t.Fatal("unknown kind must fail")
	}
}
