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

type plainServer struct{}

func (plainServer) Start(context.Context, Target) (Evidence, error)          { return Evidence{}, nil }
func (plainServer) Stop(context.Context, Target, StopMode) (Evidence, error) { return Evidence{}, nil }
func (plainServer) Status(context.Context, Target) (Status, error)           { return Status{}, nil }

type replicatingServer struct{ plainServer }

func (replicatingServer) Seed(context.Context, Target, Target) (ReplicationResult, error) {
	return ReplicationResult{}, nil
}
func (replicatingServer) Lag(context.Context, Target, Target) (ReplicationLag, error) {
	return ReplicationLag{}, nil
}
func (replicatingServer) Promote(context.Context, Target) (ReplicationResult, error) {
	return ReplicationResult{}, nil
}
func (replicatingServer) Fence(context.Context, Target) (ReplicationResult, error) {
	return ReplicationResult{}, nil
}
func (replicatingServer) Reseed(context.Context, Target, Target) (ReplicationResult, error) {
	return ReplicationResult{}, nil
}
func (replicatingServer) Switchover(context.Context, Target, Target) (ReplicationResult, error) {
	return ReplicationResult{}, nil
}

func TestCheckDriverTellsAReplicatingMiddlewareDriver(t *testing.T) {
	r := NewRegistry()
	r.RegisterMiddleware("exec", plainServer{})
	r.RegisterMiddleware("postgres", replicatingServer{})
	if err := r.CheckDriver(string(KindReplicator), "postgres", nil); err != nil {
		t.Fatalf("postgres replicates: %v", err)
	}
	err := r.CheckDriver(string(KindReplicator), "exec", nil)
	if err == nil || !strings.Contains(err.Error(), `middleware driver "exec" does not replicate (replicating drivers: postgres)`) {
		t.Fatalf("exec does not replicate: %v", err)
	}
	if err := r.CheckDriver(string(KindReplicator), "nope", nil); err == nil || !strings.Contains(err.Error(), `unknown middleware driver "nope"`) {
		t.Fatalf("unknown driver: %v", err)
	}
	if got := r.Names(KindReplicator); len(got) != 1 || got[0] != "postgres" {
		t.Fatalf("Names(replicator) = %v", got)
	}
}
