package contract

import (
	"fmt"
	"time"

	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// Activity names. Each is the name of a method of the activities struct that
// the worker registers; a test checks every name here is registered.
const (
	// Site activities: they run at the site (or host) they act on.
	StartComponent      = "StartComponent"
	StopComponent       = "StopComponent"
	ComponentStatus     = "ComponentStatus"
	StartAndWaitReady   = "StartAndWaitReady"
	WaitReady           = "WaitReady"
	RunCheck            = "RunCheck"
	WaitChecks          = "WaitChecks"
	QuiesceComponent    = "QuiesceComponent"
	AfterRestore        = "AfterRestore"
	ResumeComponent     = "ResumeComponent"
	CaptureGroup        = "CaptureGroup"
	ShipGroup           = "ShipGroup"
	VerifyGroup         = "VerifyGroup"
	RestoreGroup        = "RestoreGroup"
	ApplyEnvironment    = "ApplyEnvironment"
	WipeSite            = "WipeSite"
	ReadInstallation    = "ReadInstallation"
	CompareInstallation = "CompareInstallation"
	RecordInstallation  = "RecordInstallation"
	// ConfigurationFingerprint fingerprints the cell's configuration
	// where it is (seed 000 §4.1).
	ConfigurationFingerprint = "ConfigurationFingerprint"
	// CheckSite checks the prerequisites of a restore at a site (seed 000 §3).
	CheckSite    = "CheckSite"
	Redirect     = "Redirect"
	DrainTraffic = "DrainTraffic"
	// Store activities: they run where the store is.
	PreflightBackup = "PreflightBackup"
	CommitPoint     = "CommitPoint"
	AbandonPoint    = "AbandonPoint"
	ApplyRetention  = "ApplyRetention"
	ChoosePoint     = "ChoosePoint"
	SetValidity     = "SetValidity"
	PointStats      = "PointStats"
	PlanLifecycle   = "PlanLifecycle"
	WriteReport     = "WriteReport"
	RecordPrimary   = "RecordPrimary"
	// Orchestrator activities: they touch no site.
	SiteWorkers       = "SiteWorkers"
	SetBackupSchedule = "SetBackupSchedule"
	Notify            = "Notify"
)

// SiteActivities are the activities a site's worker registers: everything
// that acts at a site or on the store.
var SiteActivities = []string{
	StartComponent, StopComponent, ComponentStatus, StartAndWaitReady, WaitReady, RunCheck, WaitChecks,
	QuiesceComponent, ResumeComponent, AfterRestore, CaptureGroup, ShipGroup, VerifyGroup, RestoreGroup, ApplyEnvironment,
	WipeSite, ReadInstallation, CompareInstallation, RecordInstallation, ConfigurationFingerprint, CheckSite, Redirect, DrainTraffic,
	PreflightBackup, CommitPoint, AbandonPoint, ApplyRetention, ChoosePoint, SetValidity, PointStats,
	PlanLifecycle, WriteReport, RecordPrimary,
	ReplicaSeed, ReplicaLag, ReplicaPromote, ReplicaFence, ReplicaReseed, ReplicaSwitchover,
}

// OrchestratorActivities are the activities of the orchestrator's queue.
var OrchestratorActivities = []string{SiteWorkers, SetBackupSchedule, Notify}

// NotifyInput tells the plan's receivers of one event.
type NotifyInput struct {
	Settings plan.Settings `json:"settings"`
	Event    NotifyEvent   `json:"event"`
}

// NotifyEvent is one thing people are told: a gate waiting or decided, a
// run started or ended, the RPO breached or recovered. ID is the same for
// every retry of one event, so a receiver hears it once.
type NotifyEvent struct {
	ID             string        `json:"id"`
	Type           string        `json:"type"`
	At             time.Time     `json:"at"`
	Plan           string        `json:"plan"`
	Kind           string        `json:"kind,omitempty"`
	WorkflowID     string        `json:"workflowId,omitempty"`
	RunID          string        `json:"runId,omitempty"`
	Site           string        `json:"site,omitempty"`
	Gate           string        `json:"gate,omitempty"`
	Approvers      []string      `json:"approvers,omitempty"`
	Quorum         int           `json:"quorum,omitempty"`
	Approved       []string      `json:"approved,omitempty"`
	Checklist      []string      `json:"checklist,omitempty"`
	ApproveCommand string        `json:"approveCommand,omitempty"`
	Reminder       int           `json:"reminder,omitempty"`
	RPOAge         time.Duration `json:"rpoAge,omitempty"`
	RPOTarget      time.Duration `json:"rpoTarget,omitempty"`
	Message        string        `json:"message,omitempty"`
	Error          string        `json:"error,omitempty"`
}

// Placement is where a step runs: a site, and a host of it when the plan
// names one. HostWorker says a drover worker runs on that host itself;
// otherwise the site's worker acts on the host (locally or over SSH).
type Placement struct {
	Site       string `json:"site"`
	Host       string `json:"host,omitempty"`
	HostWorker bool   `json:"hostWorker,omitempty"`
}

func (p Placement) String() string {
	if p.Host == "" {
		return p.Site
	}
	return p.Site + "/" + p.Host
}

// Ran says which worker ran a step, for the report.
type Ran struct {
	Site   string `json:"site,omitempty"`
	Host   string `json:"host,omitempty"`
	Worker string `json:"worker,omitempty"`
}

// SiteRef is a plan site together with the role it plays in this run.
type SiteRef struct {
	Role string    `json:"role"`
	Site plan.Site `json:"site"`
}

// ComponentInput names one component at one site, on its host.
type ComponentInput struct {
	Plan      string         `json:"plan"`
	Site      SiteRef        `json:"site"`
	Host      plan.Host      `json:"host,omitzero"`
	Component plan.Component `json:"component"`
	// Immediate asks a stop to kill rather than drain.
	Immediate bool `json:"immediate,omitempty"`
}

// Evidence records what a driver did, kept short enough for history.
type Evidence = report.Evidence

// StepResult is the evidence of one driver call.
type StepResult struct {
	Component string   `json:"component,omitempty"`
	Evidence  Evidence `json:"evidence"`
	// Started and Ended are when the driver call began and returned, on
	// the worker's clock (quiesce and resume: the window writes were
	// paused).
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Attempt is the activity attempt that succeeded, for the report.
	Attempt int `json:"attempt"`
	Ran     Ran `json:"ran,omitzero"`
}

// Status is a server's state as its driver reports it.
type Status struct {
	State    string   `json:"state"`
	PID      int      `json:"pid,omitempty"`
	Detail   string   `json:"detail,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// StateRunning is the state of a server that runs.
const StateRunning = "running"

// ReadyInput asks to wait until a component answers its readiness check.
type ReadyInput struct {
	ComponentInput
	// Interval between readiness attempts.
	Interval time.Duration `json:"interval"`
}

// ReadyResult says how the component became ready.
type ReadyResult struct {
	Component    string      `json:"component"`
	Start        *StepResult `json:"start,omitempty"`
	StartAttempt int         `json:"startAttempt,omitempty"`
	Attempts     int         `json:"attempts"`
	Check        CheckResult `json:"check"`
	Status       *Status     `json:"status,omitempty"`
	Ran          Ran         `json:"ran,omitzero"`
}

// CheckResult is the outcome of one check.
type CheckResult = report.CheckResult

// CheckInput is one verification check at one site.
type CheckInput struct {
	Plan  string           `json:"plan"`
	Site  SiteRef          `json:"site"`
	Level plan.Level       `json:"level"`
	Check plan.DriverCheck `json:"check"`
	// Host is the machine the check runs on (a user step's host: locally,
	// or over the host's SSH settings); zero for the site's own.
	Host plan.Host `json:"host,omitzero"`
}

// CheckOutput is one check's result, named for the report.
type CheckOutput = report.Check

// FailedCheck is the result recorded for a check that could not run at all.
func FailedCheck(level plan.Level, name, summary string) CheckOutput {
	return CheckOutput{Level: level, Name: name, Result: CheckResult{Passed: false, Summary: summary}}
}

// ChecksInput asks to wait until every check passes.
type ChecksInput struct {
	Plan     string             `json:"plan"`
	Site     SiteRef            `json:"site"`
	Checks   []plan.DriverCheck `json:"checks"`
	Interval time.Duration      `json:"interval,omitempty"`
}

// EnvironmentInput asks to apply the plan's environment-specific changes to
// a site's restored data (the seed's step 5).
type EnvironmentInput struct {
	// Plan names the plan, for the drivers' templates.
	Plan     string         `json:"plan,omitempty"`
	Site     SiteRef        `json:"site"`
	FromRole string         `json:"fromRole"`
	Rewrites []plan.Rewrite `json:"rewrites"`
}

// RewriteResult says what one rewrite changed: files, or rows of a
// database (Database is set).
type RewriteResult struct {
	Name    string   `json:"name"`
	Files   int      `json:"files"`
	Changed []string `json:"changed,omitempty"`
	// Database is host:port/database of a rewrite held in a database,
	// and Rows the rows its statement changed.
	Database string    `json:"database,omitempty"`
	Rows     int64     `json:"rows,omitempty"`
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Summary says what the rewrite changed, for the report.
func (r RewriteResult) Summary() string {
	if r.Database != "" {
		return fmt.Sprintf("%s: %d rows changed in %s", r.Name, r.Rows, r.Database)
	}
	return fmt.Sprintf("%s: %d of %d files changed", r.Name, len(r.Changed), r.Files)
}

// StoreRef locates the recovery point store: the plan's storage.store
// settings, opened inside the activity so ${VAR} expands where it runs.
type StoreRef struct {
	Plan     string        `json:"plan"`
	Settings plan.Settings `json:"settings"`
	// At is where the store is: the steps that read or write it run there.
	At Placement `json:"at,omitzero"`
}

// InstallationInput compares the installation manifests of two sites.
type InstallationInput struct {
	Store     StoreRef `json:"store"`
	Reference SiteRef  `json:"reference"`
	Target    SiteRef  `json:"target"`
	// ReferenceManifest is the reference site's manifest as read at that
	// site (ReadInstallation); empty when the site did not answer, and the
	// copy the last backup kept in the store is used.
	ReferenceManifest []byte `json:"referenceManifest,omitempty"`
	// ReferenceFromStore says the reference site did not answer: compare
	// with the copy the last backup kept in the store.
	ReferenceFromStore bool `json:"referenceFromStore,omitempty"`
}

// InstallationResult says whether the installations match and where not.
type InstallationResult struct {
	Match         bool     `json:"match"`
	ReferenceFrom string   `json:"referenceFrom"`
	Differences   []string `json:"differences,omitempty"`
}

// Manifest is one site's installation manifest as ReadInstallation read it.
type Manifest struct {
	Site string `json:"site"`
	Data []byte `json:"data,omitempty"`
	// Configured is false when the site names no manifest.
	Configured bool `json:"configured"`
}

// FingerprintInput asks for the fingerprint of a site's configuration.
type FingerprintInput struct {
	Site  SiteRef          `json:"site"`
	Watch plan.ConfigWatch `json:"watch"`
}

// Configuration is one configuration of the cell: the fingerprint of its
// installation manifest and watched folders, and when drover first saw it.
type Configuration struct {
	Fingerprint string    `json:"fingerprint"`
	FirstSeen   time.Time `json:"firstSeen,omitzero"`
	// Parts say what went into the fingerprint (the manifest, each
	// folder with its file count), for the report.
	Parts []string `json:"parts,omitempty"`
}

// LevelSite is the level of the site checks in results and reports.
const LevelSite plan.Level = "site"

// SiteCheckInput asks a site to check the prerequisites of a restore there.
type SiteCheckInput struct {
	Plan   string          `json:"plan"`
	Site   SiteRef         `json:"site"`
	Checks plan.SiteChecks `json:"checks"`
	// HostsOnly resolves the host names and checks nothing else (at the
	// primary, whose addresses the secondary's must match).
	HostsOnly bool `json:"hostsOnly,omitempty"`
}

// HostAddresses is what a host name resolved to at a site.
type HostAddresses struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses,omitempty"`
}

// SiteCheckResult is every named check with its evidence, and the
// addresses each host name resolved to.
type SiteCheckResult struct {
	Checks []CheckOutput   `json:"checks"`
	Hosts  []HostAddresses `json:"hosts,omitempty"`
}

// RedirectInput points traffic at a site.
type RedirectInput struct {
	Plan     string         `json:"plan"`
	Redirect plan.DriverRef `json:"redirect"`
	Site     SiteRef        `json:"site"`
}

// RedirectResult is where traffic points after the call.
type RedirectResult struct {
	Evidence Evidence `json:"evidence"`
	Current  string   `json:"current"`
	Ran      Ran      `json:"ran,omitzero"`
}

// ReportInput stores a run's report.
type ReportInput struct {
	Store  StoreRef      `json:"store"`
	Report report.Report `json:"report"`
}

// ReportPaths are where a report was written.
type ReportPaths struct {
	JSON     string `json:"json"`
	Markdown string `json:"markdown"`
}

// Mode is how much a point holds: full or cumulative.
type Mode string

const (
	ModeFull       Mode = "full"
	ModeCumulative Mode = "cumulative"
)

// ValidityState is what validation found about a point.
type ValidityState string

const (
	StateUnverified ValidityState = "unverified"
	StateValid      ValidityState = "valid"
	StateInvalid    ValidityState = "invalid"
)

// Validity is a point's validity record.
type Validity struct {
	State    ValidityState `json:"state"`
	Reason   string        `json:"reason,omitempty"`
	Run      string        `json:"run,omitempty"`
	At       time.Time     `json:"at,omitzero"`
	Findings []string      `json:"findings,omitempty"`
}

// Point is a recovery point as the catalog lists it.
type Point struct {
	ID          string         `json:"id"`
	Plan        string         `json:"plan"`
	Mode        Mode           `json:"mode,omitempty"`
	BaseID      string         `json:"baseId,omitempty"`
	Instant     time.Time      `json:"instant,omitzero"`
	Started     time.Time      `json:"started,omitzero"`
	Ended       time.Time      `json:"ended,omitzero"`
	Size        int64          `json:"size"`
	DataSize    int64          `json:"dataSize"`
	Consistency string         `json:"consistency,omitempty"`
	Quiesce     *QuiesceWindow `json:"quiesce,omitempty"`
	Validity    Validity       `json:"validity"`
	// Cold says the point was captured with the whole scope stopped.
	Cold bool `json:"cold,omitempty"`
	// Configuration is the configuration the point holds, when recorded.
	Configuration *Configuration `json:"configuration,omitempty"`
	Dir           string         `json:"dir"`
	Problem       string         `json:"problem,omitempty"`
}

// QuiesceWindow is how long a backup paused writes.
type QuiesceWindow = report.QuiesceWindow

// GroupInput is one consistency group of one point.
type GroupInput struct {
	Store    StoreRef              `json:"store"`
	PointID  string                `json:"pointId"`
	Site     SiteRef               `json:"site"`
	Host     plan.Host             `json:"host,omitzero"`
	Group    plan.ConsistencyGroup `json:"group"`
	Mode     Mode                  `json:"mode"`
	BaseID   string                `json:"baseId,omitempty"`
	Quiesced bool                  `json:"quiesced,omitempty"`
}

// TransferProgress is the heartbeat detail of a capture, ship, verify or
// restore: bytes done so far and, when the activity knows it, in all
// (0 = unknown). drover status reads it from the pending activity.
type TransferProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total,omitempty"`
}

// GroupResult is what a capture, ship or restore of one group did.
type GroupResult struct {
	Group    string    `json:"group"`
	Instant  time.Time `json:"instant,omitzero"`
	Bytes    int64     `json:"bytes"`
	Stored   int64     `json:"stored"`
	Files    int64     `json:"files"`
	Evidence Evidence  `json:"evidence"`
	Ran      Ran       `json:"ran,omitzero"`
}

// GroupVerify is what verifying one group found.
type GroupVerify struct {
	Group   string `json:"group"`
	OK      bool   `json:"ok"`
	BadFile string `json:"badFile,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Bytes   int64  `json:"bytes"`
}

// PreflightInput asks whether a backup can run and what kind it should be.
type PreflightInput struct {
	Store  StoreRef                `json:"store"`
	Site   SiteRef                 `json:"site"`
	Groups []plan.ConsistencyGroup `json:"groups"`
	// Mode asks for full or cumulative; empty lets the preflight decide.
	Mode Mode `json:"mode,omitempty"`
	// FullEvery forces a full point when the newest usable full is older.
	FullEvery time.Duration `json:"fullEvery,omitempty"`
	// Now is the workflow's time, so the decision does not depend on the
	// worker's clock.
	Now time.Time `json:"now"`
}

// PreflightResult is what the backup will be.
type PreflightResult struct {
	Mode          Mode   `json:"mode"`
	BaseID        string `json:"baseId,omitempty"`
	EstimateBytes int64  `json:"estimateBytes"`
	FreeBytes     uint64 `json:"freeBytes"`
	Reason        string `json:"reason"`
}

// CommitInput records a staged point.
type CommitInput struct {
	Store   StoreRef  `json:"store"`
	PointID string    `json:"pointId"`
	Mode    Mode      `json:"mode"`
	BaseID  string    `json:"baseId,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Groups  []string  `json:"groups"`
	// Quiesce is the window writes were paused, recorded in the manifest.
	Quiesce *QuiesceWindow `json:"quiesce,omitempty"`
	// Cold says the whole scope was stopped while it was captured.
	Cold bool `json:"cold,omitempty"`
	// Configuration is the cell's configuration the point holds; the
	// commit keeps the earliest FirstSeen the store knows for it.
	Configuration *Configuration `json:"configuration,omitempty"`
}

// AbandonInput removes what a failed backup left.
type AbandonInput struct {
	Store   StoreRef                `json:"store"`
	PointID string                  `json:"pointId"`
	Site    SiteRef                 `json:"site"`
	Groups  []plan.ConsistencyGroup `json:"groups"`
}

// RetentionInput applies the store's retention policy.
type RetentionInput struct {
	Store  StoreRef                `json:"store"`
	Site   SiteRef                 `json:"site"`
	Groups []plan.ConsistencyGroup `json:"groups"`
	// Active are points of runs still going, whose staging must be kept.
	Active []string `json:"active,omitempty"`
}

// RetentionDecision says why retention kept or deleted a point.
type RetentionDecision struct {
	ID     string `json:"id"`
	Keep   bool   `json:"keep"`
	Reason string `json:"reason"`
}

// RetentionResult lists what was deleted and why each point was kept.
type RetentionResult struct {
	Deleted   []string            `json:"deleted"`
	Decisions []RetentionDecision `json:"decisions"`
}

// ChooseInput asks for the point a failover or drill restores.
type ChooseInput struct {
	Store StoreRef `json:"store"`
	// PointID names a point; empty picks the newest valid one.
	PointID string `json:"pointId,omitempty"`
	// Exclude lists points already tried and abandoned in this run.
	Exclude []string `json:"exclude,omitempty"`
	// AllowUnverified also accepts unverified points when no valid one
	// exists (a validation run restores unverified points).
	AllowUnverified bool `json:"allowUnverified,omitempty"`
	// PreferValidated takes the newest validated point and, only when there
	// is none, the newest intact one (a failover: it then asks first).
	PreferValidated bool `json:"preferValidated,omitempty"`
}

// ValidityInput records what validation found.
type ValidityInput struct {
	Store    StoreRef `json:"store"`
	PointID  string   `json:"pointId"`
	Validity Validity `json:"validity"`
}

// RestoreInput restores one group of a point into a site.
type RestoreInput struct {
	Store   StoreRef              `json:"store"`
	PointID string                `json:"pointId"`
	Site    SiteRef               `json:"site"`
	Host    plan.Host             `json:"host,omitzero"`
	Group   plan.ConsistencyGroup `json:"group"`
	// Members limits the restore to these members of the group (one
	// component re-created); empty restores the whole group.
	Members []string `json:"members,omitempty"`
}

// Damage names the point whose stored data a restore found damaged: the
// point restored, or the full point a cumulative one builds on. It rides
// on a CorruptPoint failure as its details.
type Damage struct {
	Point string `json:"point"`
	File  string `json:"file,omitempty"`
}

// Trust says how far a point was checked: validated (restored, started
// and verified at the six levels in the sandbox), intact (every checksum
// verified at the store, never restored), or invalid.
func (p Point) Trust() string {
	switch {
	case p.Validity.State == StateValid:
		return TrustValidated
	case p.Validity.State == StateInvalid || p.Problem != "":
		return TrustInvalid
	}
	return TrustIntact
}

// Trust levels of a point.
const (
	TrustValidated = "validated"
	TrustIntact    = "intact"
	TrustInvalid   = "invalid"
)

// StatsResult summarises a plan's points for the RPO monitor.
type StatsResult struct {
	Points          int             `json:"points"`
	NewestValid     *Point          `json:"newestValid,omitempty"`
	NewestUsable    *Point          `json:"newestUsable,omitempty"`
	RecentDurations []time.Duration `json:"recentDurations,omitempty"`
}

// Lifecycle is the part of a plan's lifecycle record a run reads.
type Lifecycle struct {
	Plan  string `json:"plan"`
	State string `json:"state"`
	// Primary is the site the cell runs at now, when a failover or
	// failback recorded it.
	Primary string `json:"primary,omitempty"`
}

// PrimaryInput records the site the cell runs at now.
type PrimaryInput struct {
	Store  StoreRef  `json:"store"`
	Site   string    `json:"site"`
	Detail string    `json:"detail"`
	Now    time.Time `json:"now"`
}

// ScheduleChange pauses a plan's backup schedule, or resumes it, taking
// its backups from a new site into a new store when Backup is set (the
// reprotect after a failover, and back after the failback).
type ScheduleChange struct {
	Plan   string          `json:"plan"`
	Pause  bool            `json:"pause,omitempty"`
	Note   string          `json:"note"`
	Backup *ScheduleBackup `json:"backup,omitempty"`
}

// ScheduleBackup is where a schedule's backups are taken and kept.
type ScheduleBackup struct {
	Site    SiteRef        `json:"site"`
	Store   plan.Settings  `json:"store,omitempty"`
	StoreAt plan.StoreSite `json:"storeAt,omitzero"`
}

// ScheduleResult says what became of the schedule.
type ScheduleResult struct {
	// Found is false when the plan has no backup schedule (never applied).
	Found  bool   `json:"found"`
	Paused bool   `json:"paused"`
	Detail string `json:"detail,omitempty"`
}

// StateEnabled is the lifecycle state a failover expects.
const StateEnabled = "enabled"

// SiteWorkersInput asks whether a worker polls a step's queue.
type SiteWorkersInput struct {
	Placement Placement `json:"placement"`
}

// SiteWorkersResult says who polls the queue and when each was last seen.
type SiteWorkersResult struct {
	Queue   string   `json:"queue"`
	Workers []string `json:"workers,omitempty"`
}
