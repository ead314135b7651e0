// Package workflows holds drover's runbooks as Temporal workflows. A workflow
// file reads like the runbook it encodes: the steps in order, each a named
// function. Workflows decide; activities act. Nothing here does I/O, reads the
// clock or iterates a map for order. Names (activities, task queues, gates,
// signals, IDs) come from the contract package.
package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/drover-dr/drover/contract"
)

// StartSearchAttributes are the attributes a run starts with, so the Web UI
// can filter by plan and kind from the first moment.
func StartSearchAttributes(planName, kind string) temporal.SearchAttributes {
	return workflowSearchAttributes(planName, kind)
}

// ScheduleSearchAttributes are a plan's schedule's own search attributes,
// so the Web UI's and the CLI's list of schedules filter by plan and kind.
func ScheduleSearchAttributes(planName, kind string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(contract.SAPlan.ValueSet(planName), contract.SAKind.ValueSet(kind))
}

// DeclaredSearchAttributes are StartSearchAttributes with the disaster
// declaration the run belongs to, so the runs one declaration started are
// found together.
func DeclaredSearchAttributes(planName, kind, declaration string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(contract.SAPlan.ValueSet(planName), contract.SAKind.ValueSet(kind), contract.SAPhase.ValueSet("starting"),
		contract.SADeclaration.ValueSet(declaration))
}

func workflowSearchAttributes(planName, kind string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(contract.SAPlan.ValueSet(planName), contract.SAKind.ValueSet(kind), contract.SAPhase.ValueSet("starting"))
}
