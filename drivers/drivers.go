// Package drivers defines the small interfaces through which drover touches a
// real cell, and the registry that resolves a driver by the name a plan uses.
//
// Drivers do one thing each and return evidence of what they did. They never
// import workflows or activities; product knowledge (WebSphere commands, DB2
// output formats) lives in the driver for that product and nowhere else.
package drivers

import (
	"context"
	"time"
)

// Kind is the kind of a driver.
type Kind string

const (
	KindMiddleware Kind = "middleware"
	KindStorage    Kind = "storage"
	KindProbe      Kind = "probe"
	KindRedirect   Kind = "redirect"
	// KindNotify is the notifications' settings check (the plan's notify).
	KindNotify Kind = "notify"
	// KindReplicator names the middleware drivers that replicate (a plan's
	// replicated component needs one); it is checked, never registered.
	KindReplicator Kind = "replicator"
)

// Site is the part of a plan site a driver reads.
type Site struct {
	Name string `json:"name"`
	// Role is primary, secondary or sandbox.
	Role     string         `json:"role"`
	Settings map[string]any `json:"settings,omitempty"`
}

// Component is the part of a plan component a middleware driver reads.
type Component struct {
	Name     string         `json:"name"`
	Role     string         `json:"role"`
	Product  string         `json:"product,omitempty"`
	Settings map[string]any `json:"settings,omitempty"`
}

// Host is the machine of a site a step acts on. A host with SSH settings has
// no drover worker of its own: drivers that run commands reach it over SSH
// from the site's worker. A host without them is the machine the worker
// runs on.
type Host struct {
	Name    string         `json:"name,omitempty"`
	Address string         `json:"address,omitempty"`
	SSH     map[string]any `json:"ssh,omitempty"`
}

// Remote reports whether the host is reached over SSH.
func (h Host) Remote() bool { return len(h.SSH) > 0 }

// Target is one component at one site, on one of its hosts.
type Target struct {
	Plan      string    `json:"plan"`
	Site      Site      `json:"site"`
	Host      Host      `json:"host,omitzero"`
	Component Component `json:"component"`
}

// StopMode says how a server is stopped.
type StopMode string

const (
	StopGraceful  StopMode = "graceful"
	StopImmediate StopMode = "immediate"
)

// State is what a middleware driver reports about a server.
type State string

const (
	StateRunning  State = "running"
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateFailed   State = "failed"
	StateUnknown  State = "unknown"
)

// Evidence records what a driver did, kept short enough for workflow history.
type Evidence struct {
	// Action is what ran: a command line, a URL, a snapshot name.
	Action string `json:"action,omitempty"`
	// Host says where it ran when that was not the worker's own machine:
	// the plan's host name and its SSH endpoint.
	Host     string        `json:"host,omitempty"`
	Output   string        `json:"output,omitempty"`
	ExitCode int           `json:"exitCode,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
	// AlreadyDone is set when the call found the effect already in place
	// (start of a running server), so a retry did nothing.
	AlreadyDone bool `json:"alreadyDone,omitempty"`
}

// Status is a server's state with evidence.
type Status struct {
	State    State    `json:"state"`
	PID      int      `json:"pid,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// Middleware starts, stops and reports on one server.
// Start of a running server and stop of a stopped one are no-ops.
type Middleware interface {
	Start(ctx context.Context, t Target) (Evidence, error)
	Stop(ctx context.Context, t Target, mode StopMode) (Evidence, error)
	Status(ctx context.Context, t Target) (Status, error)
}

// Quiescer is implemented by middleware drivers that can pause and resume
// writes, so a consistency group can be captured at one instant.
type Quiescer interface {
	Quiesce(ctx context.Context, t Target) (Evidence, error)
	Resume(ctx context.Context, t Target) (Evidence, error)
}

// CheckRequest is one verification check.
type CheckRequest struct {
	Plan     string         `json:"plan"`
	Site     Site           `json:"site"`
	Host     Host           `json:"host,omitzero"`
	Level    string         `json:"level,omitempty"`
	Name     string         `json:"name"`
	Settings map[string]any `json:"settings,omitempty"`
}

// CheckResult is the outcome of one check. A check that ran and found a
// problem returns Passed=false with a nil error; an error means the check
// itself could not run (bad settings).
type CheckResult struct {
	Passed   bool              `json:"passed"`
	Summary  string            `json:"summary"`
	Details  map[string]string `json:"details,omitempty"`
	Evidence Evidence          `json:"evidence"`
}

// Probe runs one verification check.
type Probe interface {
	Check(ctx context.Context, req CheckRequest) (CheckResult, error)
}

// RedirectRequest asks to point traffic at a site.
type RedirectRequest struct {
	Plan     string         `json:"plan"`
	Site     Site           `json:"site"`
	Settings map[string]any `json:"settings,omitempty"`
}

// Redirector moves traffic between sites and says where it points.
type Redirector interface {
	PointTo(ctx context.Context, req RedirectRequest) (Evidence, error)
	Current(ctx context.Context, req RedirectRequest) (site string, err error)
}

// SettingsChecker is implemented by drivers that can check their settings
// without doing anything, so a plan is rejected before a workflow starts.
type SettingsChecker interface {
	CheckSettings(settings map[string]any) error
}

// Drainer is implemented by redirect drivers that can stop new work from
// reaching a site while the work already there finishes (a planned
// failover drains the front door before its final backup).
type Drainer interface {
	Drain(ctx context.Context, req RedirectRequest) (Evidence, error)
}

// Replication roles a Replicator reports.
const (
	RolePrimary = "primary"
	RoleStandby = "standby"
)

// ReplicationLag is how far a standby is behind its primary, measured on
// whichever ends answer. Known flags say which figures were measured: a dead
// primary leaves the bytes unknown, an idle primary keeps seconds at zero.
type ReplicationLag struct {
	// Bytes is the primary's current write position minus the standby's
	// replayed position.
	Bytes      int64 `json:"bytes"`
	BytesKnown bool  `json:"bytesKnown"`
	// Seconds is how old the last transaction the standby replayed is,
	// counted only while it has WAL left to replay.
	Seconds      float64 `json:"seconds"`
	SecondsKnown bool    `json:"secondsKnown"`
	// Positions in the product's own notation (PostgreSQL LSNs, DB2 LSOs).
	PrimaryPosition  string `json:"primaryPosition,omitempty"`
	ReceivedPosition string `json:"receivedPosition,omitempty"`
	ReplayedPosition string `json:"replayedPosition,omitempty"`
	// Streaming is set when the primary sees the standby connected.
	Streaming        bool      `json:"streaming"`
	PrimaryReachable bool      `json:"primaryReachable"`
	StandbyReachable bool      `json:"standbyReachable"`
	MeasuredAt       time.Time `json:"measuredAt"`
	Detail           string    `json:"detail,omitempty"`
	Evidence         Evidence  `json:"evidence"`
}

// ReplicationResult is what a replication step did: the method it took
// (a rewind or a fresh copy, a stop or a read-only fence), the positions it
// saw and every command or statement it ran, in order.
type ReplicationResult struct {
	Action string `json:"action"`
	Method string `json:"method,omitempty"`
	// Role is the target's role after the step.
	Role string `json:"role,omitempty"`
	// Position is the target's position when the step ended; Timeline the
	// product's history number where it has one.
	Position string `json:"position,omitempty"`
	Timeline int    `json:"timeline,omitempty"`
	// LostBytes is set by a planned switchover: what the old primary had
	// written that the new one had not replayed (zero when nothing is lost).
	LostBytes int64      `json:"lostBytes,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	Steps     []Evidence `json:"steps,omitempty"`
	// AlreadyDone is set when the effect was already in place.
	AlreadyDone bool `json:"alreadyDone,omitempty"`
}

// Replicator is implemented by middleware drivers whose product keeps a
// standby copy of a database by replication (PostgreSQL streaming
// replication, DB2 HADR). The targets are the same component at two sites.
//
// A failover fences the old primary where it is reachable, then promotes the
// standby; a failback reseeds the old primary as a standby of the new one,
// waits for the lag to close, then switches over, planned and losing nothing.
type Replicator interface {
	// Seed makes standby a new standby of primary from a copy of its data.
	Seed(ctx context.Context, primary, standby Target) (ReplicationResult, error)
	// Lag measures how far standby is behind primary.
	Lag(ctx context.Context, primary, standby Target) (ReplicationLag, error)
	// Promote makes the standby a primary and returns when it takes writes.
	Promote(ctx context.Context, standby Target) (ReplicationResult, error)
	// Fence stops a primary from taking writes (stopped, or read-only).
	Fence(ctx context.Context, oldPrimary Target) (ReplicationResult, error)
	// Reseed makes a former primary a standby of the new primary.
	Reseed(ctx context.Context, newPrimary, oldPrimary Target) (ReplicationResult, error)
	// Switchover swaps the roles of a primary and its caught-up standby
	// without losing a committed transaction; the old primary ends a
	// standby of the new one.
	Switchover(ctx context.Context, primary, standby Target) (ReplicationResult, error)
}
