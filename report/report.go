// Package report holds what a drover run proves: every step with its times
// and attempts, every gate with who decided what and when, the recovery
// point, the RPO and RTO achieved against the plan's targets, and the
// six-level verification table with evidence. Workflows fill a Report as
// they go (it is plain data, safe in workflow code); an activity writes it
// as JSON and Markdown beside the recovery points, where it outlives the
// Temporal server that ran the workflow.
package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/drover-dr/drover/plan"
)

// Step is one step of a runbook as it happened.
type Step struct {
	Name     string    `json:"name"`
	Phase    string    `json:"phase"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	// Outcome is ok, failed, skipped or running.
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
	// Site and Host are where the step acted; Worker is the identity of
	// the worker that ran it.
	Site   string `json:"site,omitempty"`
	Host   string `json:"host,omitempty"`
	Worker string `json:"worker,omitempty"`
	// Run names the child run the step belongs to, when it is not the
	// run the report is about (a restart or verification).
	Run string `json:"run,omitempty"`
	// Output is the head and tail of what the step's command printed.
	Output string `json:"output,omitempty"`
}

// OutputLimit bounds a step's kept output: its head and its tail.
const OutputLimit = 2048

// HeadTail keeps the first and last half of OutputLimit bytes of out.
func HeadTail(out string) string {
	if len(out) <= OutputLimit {
		return out
	}
	half := OutputLimit / 2
	return out[:half] + fmt.Sprintf("\n[... %d bytes left out ...]\n", len(out)-OutputLimit) + out[len(out)-half:]
}

// Gate is a manual step: what it asked, who decided, and when.
type Gate struct {
	Name      string     `json:"name"`
	Detail    string     `json:"detail,omitempty"`
	Checklist []string   `json:"checklist,omitempty"`
	Options   []string   `json:"options"`
	Approvers []string   `json:"approvers"`
	Quorum    int        `json:"quorum"`
	Opened    time.Time  `json:"opened"`
	Closed    time.Time  `json:"closed,omitzero"`
	Outcome   string     `json:"outcome"`
	Approvals []Approval `json:"approvals,omitempty"`
	Reminders int        `json:"reminders,omitempty"`
	// Run names the child run the gate was decided in, when it is not the
	// run the report is about.
	Run string `json:"run,omitempty"`
}

// Approval is one counted decision at a gate.
type Approval struct {
	Approver string    `json:"approver"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
	// Signed is true when the approval carried a signature that verified
	// against the approver's public key in the plan.
	Signed bool `json:"signed,omitempty"`
	// Signer is the fingerprint of the key that signed it.
	Signer string `json:"signer,omitempty"`
	// Signal is the id the sender gave the signal, so it can tell its own
	// approval from an earlier one by the same approver.
	Signal string `json:"signal,omitempty"`
}

// Ignored is a signal that was recorded and not counted.
type Ignored struct {
	At       time.Time `json:"at"`
	Gate     string    `json:"gate,omitempty"`
	Approver string    `json:"approver,omitempty"`
	Reason   string    `json:"reason"`
	// Signal is the id the sender gave the signal (see Approval.Signal).
	Signal string `json:"signal,omitempty"`
	// Dropped, on the first entry only, counts the earlier ignored signals
	// that were not kept: the list is bounded so no sender can grow it.
	Dropped int `json:"dropped,omitempty"`
}

// Check is one verification check's outcome with its evidence.
type Check struct {
	Level  plan.Level  `json:"level"`
	Name   string      `json:"name"`
	Result CheckResult `json:"result"`
	// Worker is the identity of the worker that ran the check.
	Worker string `json:"worker,omitempty"`
}

// CheckResult is what a check found.
type CheckResult struct {
	Passed   bool              `json:"passed"`
	Summary  string            `json:"summary"`
	Details  map[string]string `json:"details,omitempty"`
	Evidence Evidence          `json:"evidence"`
}

// Evidence is what a driver ran and printed, bounded.
type Evidence struct {
	Action      string        `json:"action,omitempty"`
	Output      string        `json:"output,omitempty"`
	ExitCode    int           `json:"exitCode,omitempty"`
	Duration    time.Duration `json:"duration,omitempty"`
	AlreadyDone bool          `json:"alreadyDone,omitempty"`
}

// Level is one verification level.
type Level struct {
	Level  plan.Level `json:"level"`
	Fatal  bool       `json:"fatal"`
	Passed bool       `json:"passed"`
	Ran    bool       `json:"ran"`
	Checks []Check    `json:"checks,omitempty"`
	// Started and Ended time the level: its checks run in parallel.
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Verification is the six-level table.
type Verification struct {
	Site   string  `json:"site,omitempty"`
	Levels []Level `json:"levels"`
	// Valid is false when a system- or application-level check failed.
	Valid       bool       `json:"valid"`
	FailedLevel plan.Level `json:"failedLevel,omitempty"`
	// Findings are non-fatal failures, reported as the seed tolerates them.
	Findings []string  `json:"findings,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
}

// Point names the recovery point a run used.
type Point struct {
	ID          string    `json:"id"`
	Mode        string    `json:"mode,omitempty"`
	BaseID      string    `json:"baseId,omitempty"`
	Captured    time.Time `json:"captured"`
	Consistency string    `json:"consistency,omitempty"`
	Validity    string    `json:"validity,omitempty"`
	Bytes       int64     `json:"bytes,omitempty"`
	// Quiesce is how long the point's capture paused writes; nil when it
	// paused none (a cold backup, or groups that do not quiesce).
	Quiesce *QuiesceWindow `json:"quiesce,omitempty"`
	// Cold says the point was captured with the whole scope stopped.
	Cold bool `json:"cold,omitempty"`
	// Configuration is the fingerprint of the cell's configuration the
	// point holds, and ConfigurationSince when drover first saw it.
	Configuration      string    `json:"configuration,omitempty"`
	ConfigurationSince time.Time `json:"configurationSince,omitzero"`
}

// QuiesceWindow is how long writes were paused for a point: from the
// first component's quiesce call to the last one's resume returning, as
// the workers that ran them measured it, so the window is never shorter
// than the pause was.
type QuiesceWindow struct {
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Duration time.Duration `json:"duration"`
	// Components are the components whose writes were paused.
	Components []string `json:"components,omitempty"`
}

// String reads as "1.234s (db, dmgr) from 12:00:01.000 to 12:00:02.234 UTC".
func (q QuiesceWindow) String() string {
	s := q.Duration.Round(time.Millisecond).String()
	if len(q.Components) > 0 {
		s += " (" + strings.Join(q.Components, ", ") + ")"
	}
	return s + " from " + q.Start.UTC().Format("15:04:05.000") + " to " + q.End.UTC().Format("15:04:05.000 MST")
}

// Objective is an achieved RPO or RTO against the plan's target.
type Objective struct {
	Target   time.Duration `json:"target"`
	Achieved time.Duration `json:"achieved"`
	// Known is false when the run ended before the objective could be
	// measured (a failed failover has no RTO).
	Known bool `json:"known"`
	Met   bool `json:"met"`
}

// Measure fills an objective.
func Measure(target, achieved time.Duration) Objective {
	return Objective{Target: target, Achieved: achieved, Known: true, Met: achieved <= target}
}

// SiteState says in what state a run left a site.
type SiteState struct {
	Role  string `json:"role"`
	Site  string `json:"site"`
	State string `json:"state"`
}

// Report is the record of one run.
type Report struct {
	Kind       string `json:"kind"`
	Plan       string `json:"plan"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// Outcome is completed, failed or cancelled.
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
	Planned bool      `json:"planned,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	// Declared is when the disaster was declared (the run's start unless
	// given): the origin of both RPO and RTO.
	Declared time.Time `json:"declared,omitzero"`
	// Redirected is when traffic reached the restored site.
	Redirected time.Time `json:"redirected,omitzero"`
	Point      *Point    `json:"point,omitempty"`
	// Abandoned are points that failed verification during this run and
	// were rolled back from.
	Abandoned    []Point       `json:"abandoned,omitempty"`
	RPO          Objective     `json:"rpo"`
	RTO          Objective     `json:"rto"`
	Steps        []Step        `json:"steps"`
	Gates        []Gate        `json:"gates,omitempty"`
	Ignored      []Ignored     `json:"ignored,omitempty"`
	Verification *Verification `json:"verification,omitempty"`
	// SiteChecks are the prerequisites of the restore checked at the
	// secondary before it (seed 000 §3), each with its evidence.
	SiteChecks []Check     `json:"siteChecks,omitempty"`
	Sites      []SiteState `json:"sites,omitempty"`
	// Replicas are the components protected by replication: their lag
	// when the disaster was declared and each replication step taken.
	Replicas []Replica `json:"replicas,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// Replica is what a run measured and did to one replicated component.
type Replica struct {
	Component string `json:"component"`
	// LagAtDeclaration is how far the standby was behind when the disaster
	// was declared (or the switch began): the data a failover may lose.
	LagAtDeclaration *Lag          `json:"lagAtDeclaration,omitempty"`
	Steps            []ReplicaStep `json:"steps,omitempty"`
}

// Lag is a standby's distance behind its primary; the Known flags say which
// figures were measured (a lost primary leaves the bytes unknown).
type Lag struct {
	Bytes            int64     `json:"bytes"`
	BytesKnown       bool      `json:"bytesKnown"`
	Seconds          float64   `json:"seconds"`
	SecondsKnown     bool      `json:"secondsKnown"`
	PrimaryPosition  string    `json:"primaryPosition,omitempty"`
	ReplayedPosition string    `json:"replayedPosition,omitempty"`
	Streaming        bool      `json:"streaming"`
	PrimaryReachable bool      `json:"primaryReachable"`
	MeasuredAt       time.Time `json:"measuredAt,omitzero"`
	Detail           string    `json:"detail,omitempty"`
}

// String reads the lag as a person would say it.
func (l Lag) String() string {
	var parts []string
	if l.BytesKnown {
		parts = append(parts, fmt.Sprintf("%d bytes", l.Bytes))
	} else {
		parts = append(parts, "bytes unknown (primary unreachable)")
	}
	if l.SecondsKnown {
		parts = append(parts, fmt.Sprintf("%.3f s", l.Seconds))
	}
	if l.ReplayedPosition != "" {
		parts = append(parts, "standby replayed "+l.ReplayedPosition)
	}
	if l.PrimaryPosition != "" {
		parts = append(parts, "primary at "+l.PrimaryPosition)
	}
	return strings.Join(parts, ", ")
}

// ReplicaStep is one replication step (fence, promote, reseed, switchover).
type ReplicaStep struct {
	Action    string `json:"action"`
	Site      string `json:"site"`
	Method    string `json:"method,omitempty"`
	Position  string `json:"position,omitempty"`
	Timeline  int    `json:"timeline,omitempty"`
	LostBytes int64  `json:"lostBytes,omitempty"`
	Detail    string `json:"detail,omitempty"`
}
