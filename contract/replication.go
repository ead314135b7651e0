package contract

import (
	"time"

	"github.com/drover-dr/drover/plan"
)

// Replication activities: a database kept at the other site by its own
// replication (PostgreSQL streaming replication, DB2 HADR). Each runs at the
// site of the end it changes: Seed, Lag and Promote at the standby's, Fence
// at the old primary's, Reseed at the former primary's (the input's Standby
// end), Switchover at the primary's (the driver stops and rewinds it there).
const (
	ReplicaSeed       = "ReplicaSeed"
	ReplicaLag        = "ReplicaLag"
	ReplicaPromote    = "ReplicaPromote"
	ReplicaFence      = "ReplicaFence"
	ReplicaReseed     = "ReplicaReseed"
	ReplicaSwitchover = "ReplicaSwitchover"
)

// ReplicaEnd is one copy of a replicated component: the site (and host) that
// holds it.
type ReplicaEnd struct {
	Site SiteRef   `json:"site"`
	Host plan.Host `json:"host,omitzero"`
}

// ReplicaInput names a replicated component and its two ends. Primary is the
// end that takes writes before the step, Standby the one that follows it.
type ReplicaInput struct {
	Plan      string         `json:"plan"`
	Component plan.Component `json:"component"`
	Primary   ReplicaEnd     `json:"primary"`
	Standby   ReplicaEnd     `json:"standby"`
}

// LagResult is how far the standby is behind, as the driver measured it.
// Known flags say which figures were measured: a lost primary leaves the
// bytes unknown.
type LagResult struct {
	Component        string    `json:"component"`
	Bytes            int64     `json:"bytes"`
	BytesKnown       bool      `json:"bytesKnown"`
	Seconds          float64   `json:"seconds"`
	SecondsKnown     bool      `json:"secondsKnown"`
	PrimaryPosition  string    `json:"primaryPosition,omitempty"`
	ReplayedPosition string    `json:"replayedPosition,omitempty"`
	Streaming        bool      `json:"streaming"`
	PrimaryReachable bool      `json:"primaryReachable"`
	StandbyReachable bool      `json:"standbyReachable"`
	MeasuredAt       time.Time `json:"measuredAt"`
	Detail           string    `json:"detail,omitempty"`
	Evidence         Evidence  `json:"evidence"`
}

// ReplicaResult is what one replication step did, for the report.
type ReplicaResult struct {
	Component string `json:"component"`
	Action    string `json:"action"`
	Method    string `json:"method,omitempty"`
	Role      string `json:"role,omitempty"`
	Position  string `json:"position,omitempty"`
	Timeline  int    `json:"timeline,omitempty"`
	// LostBytes is what a switchover's old primary had written that the new
	// one had not replayed; a planned failback requires zero.
	LostBytes   int64      `json:"lostBytes,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	Steps       []Evidence `json:"steps,omitempty"`
	AlreadyDone bool       `json:"alreadyDone,omitempty"`
}
