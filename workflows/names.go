// Package workflows holds drover's runbooks as Temporal workflows. A workflow
// file reads like the runbook it encodes: the steps in order, each a named
// function. Workflows decide; activities act. Nothing here does I/O, reads the
// clock or iterates a map for order.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// TaskQueue is where drover's workers poll.
const TaskQueue = "drover"

// Signal and query names.
const (
	// SignalApprove carries an Approval for a gate.
	SignalApprove = "approve"
	// QueryStatus answers the run's Status.
	QueryStatus = "status"
)

// Search attributes drover registers, so runs can be filtered in the Web UI.
var (
	SAPlan      = temporal.NewSearchAttributeKeyKeyword("DroverPlan")
	SAKind      = temporal.NewSearchAttributeKeyKeyword("DroverKind")
	SAPhase     = temporal.NewSearchAttributeKeyKeyword("DroverPhase")
	SASite      = temporal.NewSearchAttributeKeyKeyword("DroverSite")
	SARPOStatus = temporal.NewSearchAttributeKeyKeyword("DroverRPOStatus")
)

// SearchAttributes lists drover's search attributes with their types, for
// registration on a namespace.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SAPlan.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAKind.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SAPhase.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SASite.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SARPOStatus.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// Kinds of run, the value of DroverKind.
const (
	KindBringUp  = "bringup"
	KindRestart  = "restart"
	KindVerify   = "verify"
	KindBackup   = "backup"
	KindValidate = "validate"
	KindFailover = "failover"
	KindFailback = "failback"
	KindDrill    = "drill"
	KindMonitor  = "rpo-monitor"
)

// Gate names the runbook uses.
const (
	GateAcceptDataLoss = "accept-data-loss"
	GateStartSecondary = "start-secondary"
	GateStartFailed    = "start-failed"
)

// Decisions an approval can carry.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
	DecisionRetry   = "retry"
	DecisionSkip    = "skip"
	DecisionAbort   = "abort"
)

// StartSearchAttributes are the attributes a run starts with, so the Web UI
// can filter by plan and kind from the first moment.
func StartSearchAttributes(planName, kind string) temporal.SearchAttributes {
	return workflowSearchAttributes(planName, kind)
}

func workflowSearchAttributes(planName, kind string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(SAPlan.ValueSet(planName), SAKind.ValueSet(kind), SAPhase.ValueSet("starting"))
}
