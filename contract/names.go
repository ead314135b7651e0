// Package contract is what workflows and activities agree on: activity names,
// their inputs and results, error types, task-queue names, and every name a
// person or another program uses to find a run (workflow and schedule IDs,
// gates, signals, queries, search attributes). It imports only plan, report
// (plain data) and the Temporal SDK, so workflow code that imports it cannot
// reach drivers, the catalog or the lab: what a run decides depends on the
// workflow code and its input alone.
package contract

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// OrchestratorQueue carries drover's workflows and the activities that touch
// no site (asking Temporal whether a site has workers).
const OrchestratorQueue = "drover"

// SiteQueue is the task queue of one site's workers: every step that acts at
// the site goes there, so only a worker placed at that site runs it.
func SiteQueue(site string) string { return "drover-site-" + site }

// HostQueue is the task queue of a worker on one host of a site, for plans
// whose hosts run their own workers (drover worker --site S --host H).
func HostQueue(site, host string) string { return SiteQueue(site) + "-host-" + host }

// Queue is where a step placed at site (and host, when the host runs its own
// worker) is sent.
func Queue(p Placement) string {
	if p.Host != "" && p.HostWorker {
		return HostQueue(p.Site, p.Host)
	}
	return SiteQueue(p.Site)
}

// Signal and query names.
const (
	// SignalApprove carries an approval for a gate.
	SignalApprove = "approve"
	// QueryStatus answers the run's status.
	QueryStatus = "status"
	// QueryRPO answers the RPO monitor's status.
	QueryRPO = "rpo"
)

// Search attributes drover registers, so runs can be filtered in the Web UI.
var (
	SAPlan      = temporal.NewSearchAttributeKeyKeyword("DroverPlan")
	SAKind      = temporal.NewSearchAttributeKeyKeyword("DroverKind")
	SAPhase     = temporal.NewSearchAttributeKeyKeyword("DroverPhase")
	SASite      = temporal.NewSearchAttributeKeyKeyword("DroverSite")
	SARPOStatus = temporal.NewSearchAttributeKeyKeyword("DroverRPOStatus")
	// SADeclaration is the disaster declaration a run belongs to: every
	// failover one `drover failover --site S` starts carries the same one.
	SADeclaration = temporal.NewSearchAttributeKeyKeyword("DroverDeclaration")
)

// SearchAttributes lists drover's search attributes with their types, for
// registration on a namespace.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SAPlan.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAKind.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAPhase.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SASite.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SARPOStatus.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SADeclaration.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Kinds of run, the value of DroverKind.
const (
	KindBringUp  = "bringup"
	KindRestart  = "restart"
	KindVerify   = "verify"
	KindShutdown = "shutdown"
	KindBackup   = "backup"
	KindValidate = "validate"
	KindFailover = "failover"
	KindFailback = "failback"
	KindDrill    = "drill"
	KindMonitor  = "rpo-monitor"
	// KindColdBackup is a scheduled cold (offline) backup of the whole scope.
	KindColdBackup = "cold-backup"
)

// Gates the runbooks open.
const (
	GateAcceptDataLoss       = "accept-data-loss"
	GateStartSecondary       = "start-secondary"
	GateStartFailed          = "start-failed"
	GateInstallationMismatch = "installation-mismatch"
	GatePlannedPrimary       = "planned-failover-primary"
	GateRollback             = "rollback"
	GateFailback             = "failback"
	GatePlanNotEnabled       = "plan-not-enabled"
	// GateRecoveryStalled opens when the recovery checks still fail after
	// their window: retry (wait another window), skip or abort.
	GateRecoveryStalled = "recovery-stalled"
	// GateSiteUnreachable opens when no worker polls the queue of a site (or
	// host) a step must run at: retry once a worker is back, or abort.
	GateSiteUnreachable = "site-unreachable"
	// GateAcceptUnvalidated opens when the point a failover would restore
	// is intact but was never validated: it says what was not checked.
	GateAcceptUnvalidated = "accept-unvalidated-point"
	// GatePrimaryAlive opens when an unplanned failover finds the primary
	// still answering and cannot stop it: approve once it is fenced.
	GatePrimaryAlive = "primary-alive"
	// GateSiteChecks opens when a prerequisite of a restore at the
	// secondary does not hold (seed 000 §3): approve to go on regardless.
	GateSiteChecks = "site-checks"
	// GateColdBackup opens before a scheduled cold backup stops the cell,
	// when the plan asks for approval (storage.schedule.cold.approve).
	GateColdBackup = "cold-backup"
	// GateStepFailed opens when a step still fails after its retries:
	// retry it, skip it (optional steps only) or abort.
	GateStepFailed = "step-failed"
)

// Decisions an approval can carry.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
	DecisionRetry   = "retry"
	DecisionSkip    = "skip"
	DecisionAbort   = "abort"
)

// RPO states, the values of DroverRPOStatus.
const (
	RPOOk       = "ok"
	RPOBreached = "breached"
	RPONoPoint  = "no-valid-point"
	RPOUnknown  = "unknown"
	// RPOWaiting: a plan enabled less than an RPO ago has no point yet;
	// that is not a breach.
	RPOWaiting = "waiting-for-first-point"
)

// Error types: the workflow branches on them, and the retry policies name
// the ones no retry can fix.
const (
	// ErrTypeBadSettings marks a failure no retry can fix: the plan is wrong.
	ErrTypeBadSettings = "BadSettings"
	// ErrTypeNotReady marks a component that started but never became ready.
	ErrTypeNotReady = "NotReady"
	// ErrTypeStoreFull: not enough room in the store; older points are kept.
	ErrTypeStoreFull = "StoreFull"
	// ErrTypeCorrupt: a recovery point's data does not match its checksums.
	ErrTypeCorrupt = "CorruptPoint"
	// ErrTypeNoPoint: there is no usable recovery point.
	ErrTypeNoPoint = "NoRecoveryPoint"
	// ErrTypeQuiesce: a component could not pause its writes.
	ErrTypeQuiesce = "QuiesceFailed"
	// ErrTypeBadPlan: the plan cannot be run as written.
	ErrTypeBadPlan = "BadPlan"
	// ErrTypeGateRefused: a person rejected a gate, or it timed out.
	ErrTypeGateRefused = "GateRefused"
	// ErrTypeStartFailed: a component did not start and nobody retried it.
	ErrTypeStartFailed = "StartFailed"
	// ErrTypeRecoveryStalled: in-flight work did not recover.
	ErrTypeRecoveryStalled = "RecoveryStalled"
	// ErrTypeSiteUnreachable: no worker serves the site a step must run at.
	ErrTypeSiteUnreachable = "SiteUnreachable"
	// ErrTypeTargetRunning: a restore would replace the data of a component
	// that answers as running.
	ErrTypeTargetRunning = "TargetRunning"
	// ErrTypeUserStepFailed: one of the plan's own steps failed and its
	// policy (or a person at step-failed) ended the run.
	ErrTypeUserStepFailed = "UserStepFailed"
)

// Workflow and schedule IDs. One plan has at most one of each singleton run
// at a time (a failover or failback holds the switchover ID).
func SwitchoverID(planName string) string       { return "drover/" + planName + "/switchover" }
func DrillID(planName string) string            { return "drover/" + planName + "/drill" }
func MonitorID(planName string) string          { return "drover/" + planName + "/rpo-monitor" }
func BackupScheduleID(planName string) string   { return "drover/" + planName + "/backup-schedule" }
func ValidateScheduleID(planName string) string { return "drover/" + planName + "/validate-schedule" }
func ColdScheduleID(planName string) string     { return "drover/" + planName + "/cold-backup-schedule" }

// ColdScheduleRunID prefixes the cold backups the cold schedule starts.
func ColdScheduleRunID(planName string) string { return "drover/" + planName + "/cold-backup" }

// ConfigBackupID names the backup taken for one configuration of the cell
// (the first characters of its fingerprint), so a watcher that sees the
// same change twice starts one backup.
func ConfigBackupID(planName, fingerprint string) string {
	if len(fingerprint) > 16 {
		fingerprint = fingerprint[:16]
	}
	return "drover/" + planName + "/backup/config-" + fingerprint
}

// BackupScheduleRunID and ValidateScheduleRunID prefix the runs the
// schedules start (the schedule appends the time).
func BackupScheduleRunID(planName string) string   { return "drover/" + planName + "/backup" }
func ValidateScheduleRunID(planName string) string { return "drover/" + planName + "/validate" }

// BackupID names a manual backup started at stamp.
func BackupID(planName, stamp string) string { return "drover/" + planName + "/backup/" + stamp }

// ValidateID names the validation of one point.
func ValidateID(planName, pointID string) string {
	return "drover/" + planName + "/validate/" + pointID
}

// BringUpID and ShutdownID name a one-off start or stop of a site.
func BringUpID(planName, stamp string) string  { return "drover/" + planName + "/bringup/" + stamp }
func ShutdownID(planName, stamp string) string { return "drover/" + planName + "/shutdown/" + stamp }
