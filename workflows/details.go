package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
)

// showGate puts an open gate on the run's page in the Web UI (the run's
// current details), so a person sees what waits for them without a query:
// the gate, who may decide and how many have, the checklist, and both ways
// to decide.
func (g *gateKeeper) showGate(ctx workflow.Context, i int) {
	if !g.r.safe {
		return
	}
	rec := g.r.status.Gates[i]
	info := workflow.GetInfo(ctx).WorkflowExecution
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**Waiting at gate `%s`**", rec.Name))
	if rec.Detail != "" {
		b.WriteString(fmt.Sprintf(": %s", rec.Detail))
	}
	var who []string
	for _, a := range rec.Approvals {
		who = append(who, a.Approver+" ("+a.Decision+")")
	}
	b.WriteString(fmt.Sprintf("\n\nApprovers: %s. Quorum: %d of %d so far", strings.Join(rec.Approvers, ", "), len(rec.Approvals), rec.Quorum))
	if len(who) > 0 {
		b.WriteString(fmt.Sprintf(": %s", strings.Join(who, ", ")))
	}
	b.WriteString(fmt.Sprintf(". Decisions: %s.\n", strings.Join(rec.Options, ", ")))
	if len(rec.Checklist) > 0 {
		b.WriteString("\nChecklist:\n")
		for _, item := range rec.Checklist {
			b.WriteString(fmt.Sprintf("- [ ] %s\n", item))
		}
	}
	decision := rec.Options[0]
	b.WriteString(fmt.Sprintf("\nDecide from a shell: `drover approve %s --gate %s --as NAME --decision %s`\n", info.ID, rec.Name, decision))
	if g.signed {
		b.WriteString("\nThis plan requires signed approvals: use `drover approve --key FILE`.\n")
	} else {
		b.WriteString(fmt.Sprintf("\nOr here: Send a Signal, name `%s`, input `{\"gate\":\"%s\",\"approver\":\"NAME\",\"decision\":\"%s\"}`\n",
			contract.SignalApprove, rec.Name, decision))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// clearGate says the run no longer waits.
func (g *gateKeeper) clearGate(ctx workflow.Context) {
	if g.r.safe {
		workflow.SetCurrentDetails(ctx, "")
	}
}
