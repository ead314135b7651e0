package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// PlanState is a plan's place in the PureApplication seed's DR profile
// lifecycle: defined → validated → enabled (the secondary role first, then
// the primary); disabled stops the schedule and the monitor.
type PlanState string

const (
	StateDefined   PlanState = "defined"
	StateValidated PlanState = "validated"
	StateEnabled   PlanState = "enabled"
	StateDisabled  PlanState = "disabled"
)

// Lifecycle is kept in the store beside the points, so a fresh orchestrator
// at the secondary knows whether the plan was enabled.
type Lifecycle struct {
	Plan  string    `json:"plan"`
	State PlanState `json:"state"`
	// Roles are enabled one by one: secondary (the RPO monitor) before
	// primary (the backup schedule).
	Roles map[string]bool `json:"roles,omitempty"`
	// Primary is the site the cell runs at now: the plan's primary until a
	// failover makes the secondary primary, and back after the failback.
	Primary string `json:"primary,omitempty"`
	// Digest identifies the plan file that was applied.
	Digest  string           `json:"digest,omitempty"`
	History []LifecycleEvent `json:"history,omitempty"`
}

// LifecycleEvent is one transition.
type LifecycleEvent struct {
	At     time.Time `json:"at"`
	State  PlanState `json:"state"`
	Detail string    `json:"detail,omitempty"`
}

func (s *Store) lifecyclePath(plan string) string {
	return filepath.Join(s.planDir(plan), "lifecycle.json")
}

// ReadLifecycle returns the plan's lifecycle; a plan never applied is
// "defined".
func (s *Store) ReadLifecycle(plan string) (Lifecycle, error) {
	l := Lifecycle{Plan: plan, State: StateDefined}
	if err := CheckName("plan", plan); err != nil {
		return l, err
	}
	var data []byte
	var err error
	if s.objects != nil {
		data, err = s.getMeta(path.Join(plan, "lifecycle.json"))
	} else {
		data, err = os.ReadFile(s.lifecyclePath(plan))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("lifecycle of %s: %w", plan, err)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("lifecycle of %s: %w: %v", plan, ErrCorrupt, err)
	}
	return l, nil
}

// Transition records a new state (and role), atomically.
func (s *Store) Transition(plan string, state PlanState, role string, detail string, now time.Time) (Lifecycle, error) {
	l, err := s.ReadLifecycle(plan)
	if err != nil {
		return l, err
	}
	l.State = state
	if l.Roles == nil {
		l.Roles = map[string]bool{}
	}
	switch {
	case role != "" && state == StateEnabled:
		l.Roles[role] = true
	case state == StateDisabled:
		l.Roles = map[string]bool{}
	}
	return l, s.save(&l, detail, now)
}

// SetPrimary records the site the cell runs at now (a failover or a
// failback completed), keeping the state and roles.
func (s *Store) SetPrimary(plan, site, detail string, now time.Time) (Lifecycle, error) {
	l, err := s.ReadLifecycle(plan)
	if err != nil {
		return l, err
	}
	l.Primary = site
	return l, s.save(&l, detail, now)
}

// save records the lifecycle with an event, atomically.
func (s *Store) save(l *Lifecycle, detail string, now time.Time) error {
	plan := l.Plan
	l.History = append(l.History, LifecycleEvent{At: now.UTC(), State: l.State, Detail: detail})
	if len(l.History) > 50 {
		l.History = l.History[len(l.History)-50:]
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if s.objects != nil {
		return s.putMeta(path.Join(plan, "lifecycle.json"), data)
	}
	if err := s.mkdir(s.planDir(plan)); err != nil {
		return StoreError(err)
	}
	return WriteFileAtomic(s.lifecyclePath(plan), data, 0o640)
}
