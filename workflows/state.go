package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// Status is what the status query answers: where the run stands.
type Status struct {
	Kind        string `json:"kind"`
	Plan        string `json:"plan"`
	Phase       string `json:"phase"`
	CurrentStep string `json:"currentStep,omitempty"`
	// Child is the child workflow running now (a restart whose
	// start-failed gate may need approval there).
	Child string       `json:"child,omitempty"`
	Steps []StepRecord `json:"steps"`
	Gates []GateRecord `json:"gates,omitempty"`
	// Ignored lists signals that were not counted: unauthorized approvers,
	// malformed payloads, approvals for gates that are not open.
	Ignored []IgnoredSignal `json:"ignored,omitempty"`
}

// StepRecord is one step of the runbook as it happened.
type StepRecord = report.Step

// Step outcomes.
const (
	OutcomeRunning = "running"
	OutcomeOK      = "ok"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// run is the bookkeeping every workflow shares: the status the query
// answers and the phase the Web UI shows.
type run struct {
	status   Status
	upsertSA bool
	// placed sends each step to the queue of the site it acts on.
	placed bool
	// safe runs the safe defaults: gates the seeds require are never
	// passed silently, a planned failover asks before touching the
	// primary, an unplanned one fences a primary that still answers.
	safe bool
	// gk asks people at gates; nil in runs that have nobody to ask.
	gk *gateKeeper
	// stepGates asks at the manual user steps of a run that has no gk.
	stepGates *gateKeeper
	// reach holds, per queue, the check that a worker polls it.
	reach map[string]workflow.Future
	// goneAt is when a look at a queue found no worker to pick it up.
	goneAt map[string]time.Time
	// notifyTo are the plan's notify receivers.
	notifyTo plan.Settings
	// siteGates are the open site-unreachable gates, per site.
	siteGates map[string]workflow.Future
	// tells: every run, child runs included, ends on the phase done or
	// failed and names its site, so the Web UI's list tells how it went.
	tells bool
}

// versionTells makes every run end on the phase done or failed and name
// its site (DroverSite).
const versionTells = "child-phase"

// newRun registers the status query. Search attributes are upserted only when
// the starter set DroverPlan: then the namespace has drover's attributes, and a
// cluster without them still runs drover's workflows.
func newRun(ctx workflow.Context, kind, planName string) (*run, error) {
	r := &run{status: Status{Kind: kind, Plan: planName, Phase: "starting", Steps: []StepRecord{}},
		reach: map[string]workflow.Future{}, goneAt: map[string]time.Time{}, siteGates: map[string]workflow.Future{}}
	r.placed = workflow.GetVersion(ctx, versionSites, workflow.DefaultVersion, 1) == 1
	r.safe = workflow.GetVersion(ctx, versionSafe, workflow.DefaultVersion, 1) == 1
	r.tells = workflow.GetVersion(ctx, versionTells, workflow.DefaultVersion, 1) == 1
	_, r.upsertSA = workflow.GetTypedSearchAttributes(ctx).GetKeyword(contract.SAPlan)
	if err := workflow.SetQueryHandler(ctx, contract.QueryStatus, func() (Status, error) { return r.status, nil }); err != nil {
		return nil, fmt.Errorf("register status query: %w", err)
	}
	return r, nil
}

// phase moves the run to a new phase and shows it in the Web UI's list.
func (r *run) phase(ctx workflow.Context, phase string) {
	r.status.Phase = phase
	workflow.GetLogger(ctx).Info("phase", "phase", phase)
	if r.upsertSA {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.SAPhase.ValueSet(phase)); err != nil {
			workflow.GetLogger(ctx).Warn("upsert DroverPhase failed", "error", err)
		}
	}
}

// Phases a run ends on.
const (
	PhaseDone   = "done"
	PhaseFailed = "failed"
)

// finish ends the run on the phase done or failed, whichever err says. A
// run that continues as new has not ended.
func (r *run) finish(ctx workflow.Context, err error) {
	if !r.tells || workflow.IsContinueAsNewError(err) {
		return
	}
	end := PhaseDone
	if err != nil {
		end = PhaseFailed
	}
	if r.status.Phase != end {
		r.phase(ctx, end)
	}
}

// begin records a step as running and returns its index.
func (r *run) begin(ctx workflow.Context, name string) int {
	r.status.CurrentStep = name
	r.status.Steps = append(r.status.Steps, StepRecord{
		Name: name, Phase: r.status.Phase, Started: workflow.Now(ctx), Outcome: OutcomeRunning,
	})
	return len(r.status.Steps) - 1
}

// end closes a step with its outcome.
func (r *run) end(ctx workflow.Context, i int, outcome string, attempts int, detail string) {
	s := &r.status.Steps[i]
	s.Ended = workflow.Now(ctx)
	s.Outcome = outcome
	s.Attempts = attempts
	s.Detail = detail
	if r.status.CurrentStep == s.Name {
		r.status.CurrentStep = ""
	}
}

// childOptions gives a child workflow the parent's search attributes, so a
// filter by plan in the Web UI shows the whole run tree.
func (r *run) childOptions(ctx workflow.Context, id, kind, summary string) workflow.ChildWorkflowOptions {
	// The summary is what the parent's history and the child's page show
	// for the child run.
	opts := workflow.ChildWorkflowOptions{WorkflowID: id, StaticSummary: summary}
	if r.upsertSA {
		opts.TypedSearchAttributes = workflowSearchAttributes(r.status.Plan, kind)
	}
	return opts
}

// setSite shows in the Web UI's list the site a run acts on (DroverSite).
func (r *run) setSite(ctx workflow.Context, site string) {
	if r.upsertSA && r.safe && site != "" {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.SASite.ValueSet(site)); err != nil {
			workflow.GetLogger(ctx).Warn("upsert DroverSite failed", "error", err)
		}
	}
}

// setRPOStatus shows the monitor's verdict in the Web UI's list.
func (r *run) setRPOStatus(ctx workflow.Context, status string) {
	if r.upsertSA {
		if err := workflow.UpsertTypedSearchAttributes(ctx, contract.SARPOStatus.ValueSet(status)); err != nil {
			workflow.GetLogger(ctx).Warn("upsert DroverRPOStatus failed", "error", err)
		}
	}
}
