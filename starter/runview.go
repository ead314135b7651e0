package starter

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
	"github.com/drover-dr/drover/workflows"
)

// RunSnapshot is everything `drover runs describe` (alias `drover status`)
// shows of one run at one moment: the execution as Temporal knows it, the
// run's own status query, its restart tiers and the transfers under way.
// The watch redraws it; the text rendering is a pure function of it.
type RunSnapshot struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Kind       string    `json:"kind"`
	Plan       string    `json:"plan"`
	Status     string    `json:"status"`
	Started    time.Time `json:"started"`
	Closed     time.Time `json:"closed,omitzero"`
	Phase      string    `json:"phase"`
	// CurrentStep is the step running now, in the run or its child.
	CurrentStep string `json:"currentStep,omitempty"`
	// Child is the child run working now (a restart, a verification).
	Child     *ChildRun        `json:"child,omitempty"`
	Tiers     []TierProgress   `json:"tiers,omitempty"`
	Steps     []report.Step    `json:"steps"`
	Gates     []GateView       `json:"gates,omitempty"`
	Ignored   []report.Ignored `json:"ignored,omitempty"`
	Transfers []Transfer       `json:"transfers,omitempty"`
	// Queried is false when the run did not answer its status query (a run
	// that ended long ago with no worker to replay it): only what Temporal
	// keeps is shown.
	Queried bool `json:"queried"`
}

// ChildRun is the child workflow a run is waiting on.
type ChildRun struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId,omitempty"`
	Phase      string `json:"phase,omitempty"`
}

// TierProgress is one restart tier: members started and ready of its total.
type TierProgress struct {
	Index   int      `json:"index"`
	Members []string `json:"members"`
	Started int      `json:"started"`
	Ready   int      `json:"ready"`
	Failed  int      `json:"failed,omitempty"`
}

// GateView is a gate with the run it belongs to and the exact command that
// decides it.
type GateView struct {
	report.Gate
	WorkflowID     string `json:"workflowId"`
	ApproveCommand string `json:"approveCommand,omitempty"`
}

// Transfer is a long storage activity under way with its progress from the
// activity's last heartbeat.
type Transfer struct {
	Activity      string    `json:"activity"`
	WorkflowID    string    `json:"workflowId"`
	Attempt       int32     `json:"attempt"`
	Done          int64     `json:"doneBytes"`
	Total         int64     `json:"totalBytes,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	LastHeartbeat time.Time `json:"lastHeartbeat,omitzero"`
}

// approveCommand is what the operator types to decide gate g of run id.
func approveCommand(id string, g report.Gate) string {
	cmd := fmt.Sprintf("drover approve %s --gate %s --as NAME", id, g.Name)
	if len(g.Options) > 0 && !slices.Contains(g.Options, contract.DecisionApprove) {
		cmd += " --decision " + strings.Join(g.Options, "|")
	}
	return cmd
}

// snapshotter reads snapshots of runs; it keeps the plan tiers of a run so
// a watch reads the run's input once.
type snapshotter struct {
	c     client.Client
	dc    converter.DataConverter
	tiers map[string][]plan.Tier
}

func newSnapshotter(g *Globals, c client.Client) (*snapshotter, error) {
	dc, _, err := EncryptionConverters(g.EncryptionKeyFile)
	if err != nil {
		return nil, err
	}
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	return &snapshotter{c: c, dc: dc, tiers: map[string][]plan.Tier{}}, nil
}

// snapshot describes run id (its latest run) and, while it runs, asks it
// and its active child for their status.
func (s *snapshotter) snapshot(ctx context.Context, id string) (RunSnapshot, error) {
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return RunSnapshot{}, err
	}
	info := d.GetWorkflowExecutionInfo()
	snap := RunSnapshot{
		WorkflowID: id,
		RunID:      info.GetExecution().GetRunId(),
		Status:     executionStatus(info.GetStatus()),
		Started:    info.GetStartTime().AsTime(),
		Phase:      keywordAttr(s.dc, info.GetSearchAttributes().GetIndexedFields(), contract.SAPhase.GetName()),
		Kind:       keywordAttr(s.dc, info.GetSearchAttributes().GetIndexedFields(), contract.SAKind.GetName()),
		Plan:       keywordAttr(s.dc, info.GetSearchAttributes().GetIndexedFields(), contract.SAPlan.GetName()),
	}
	if info.GetCloseTime() != nil {
		snap.Closed = info.GetCloseTime().AsTime()
	}
	snap.Transfers = s.transfers(id, d)
	st, err := queryStatus(ctx, s.c, id)
	if err == nil {
		snap.Queried = true
		snap.Kind, snap.Plan, snap.Phase, snap.CurrentStep = st.Kind, st.Plan, st.Phase, st.CurrentStep
		snap.Steps, snap.Ignored = st.Steps, st.Ignored
		snap.Gates = gateViews(id, st.Gates)
	}
	steps := snap.Steps
	if st.Child != "" && snap.Status == "running" {
		child := &ChildRun{WorkflowID: st.Child}
		if cd, err := s.c.DescribeWorkflowExecution(ctx, st.Child, ""); err == nil {
			child.RunID = cd.GetWorkflowExecutionInfo().GetExecution().GetRunId()
			snap.Transfers = append(snap.Transfers, s.transfers(st.Child, cd)...)
		}
		if cst, err := queryStatus(ctx, s.c, st.Child); err == nil {
			child.Phase = cst.Phase
			if cst.CurrentStep != "" {
				snap.CurrentStep = cst.CurrentStep
			}
			snap.Gates = append(snap.Gates, gateViews(st.Child, cst.Gates)...)
			steps = append(slices.Clone(steps), cst.Steps...)
		}
		snap.Child = child
	}
	if tiers := s.planTiers(ctx, id, snap.RunID); len(tiers) > 0 {
		snap.Tiers = tierProgress(tiers, steps)
	}
	if snap.Steps == nil {
		snap.Steps = []report.Step{}
	}
	return snap, nil
}

func gateViews(id string, gates []report.Gate) []GateView {
	out := make([]GateView, 0, len(gates))
	for _, g := range gates {
		v := GateView{Gate: g, WorkflowID: id}
		if g.Outcome == workflows.OutcomePending {
			v.ApproveCommand = approveCommand(id, g)
		}
		out = append(out, v)
	}
	return out
}

// transfers reads the progress of pending storage activities from their
// heartbeat details (contract.TransferProgress; older workers sent the
// bytes done alone).
func (s *snapshotter) transfers(id string, d *workflowservice.DescribeWorkflowExecutionResponse) []Transfer {
	var out []Transfer
	for _, pa := range d.GetPendingActivities() {
		name := pa.GetActivityType().GetName()
		if !strings.HasSuffix(name, "Group") {
			continue
		}
		t := Transfer{Activity: name, WorkflowID: id, Attempt: pa.GetAttempt()}
		if pa.GetLastStartedTime() != nil {
			t.Started = pa.GetLastStartedTime().AsTime()
		}
		if pa.GetLastHeartbeatTime() != nil {
			t.LastHeartbeat = pa.GetLastHeartbeatTime().AsTime()
		}
		if hb := pa.GetHeartbeatDetails(); hb != nil && len(hb.GetPayloads()) > 0 {
			var p contract.TransferProgress
			if err := s.dc.FromPayload(hb.GetPayloads()[0], &p); err == nil {
				t.Done, t.Total = p.Done, p.Total
			} else {
				var done int64
				if s.dc.FromPayload(hb.GetPayloads()[0], &done) == nil {
					t.Done = done
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// planTiers reads the plan's restart tiers from the run's input (every
// drover run carries its plan), once per run.
func (s *snapshotter) planTiers(ctx context.Context, id, runID string) []plan.Tier {
	key := id + "/" + runID
	if t, ok := s.tiers[key]; ok {
		return t
	}
	var tiers []plan.Tier
	var arg struct {
		Plan plan.Plan `json:"plan"`
	}
	if startInput(ctx, s.c, s.dc, id, runID, &arg) && len(arg.Plan.Components) > 0 {
		tiers = arg.Plan.Order
		if len(tiers) == 0 {
			tiers, _ = plan.Tiers(&arg.Plan)
		}
	}
	s.tiers[key] = tiers
	return tiers
}

// startInput decodes the first argument run runID of id started with into
// v, from the first event of its history; false when it cannot.
func startInput(ctx context.Context, c client.Client, dc converter.DataConverter, id, runID string, v any) bool {
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return false
	}
	ev, err := it.Next()
	if err != nil {
		return false
	}
	in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput()
	if in == nil || len(in.GetPayloads()) == 0 {
		return false
	}
	return dc.FromPayload(in.GetPayloads()[0], v) == nil
}

// tierProgress counts, per tier, the members whose start began and those
// that are ready, from the restart's "start NAME" steps (the newest step of
// a member counts: a rollback restarts members).
func tierProgress(tiers []plan.Tier, steps []report.Step) []TierProgress {
	latest := map[string]string{}
	for _, s := range steps {
		if name, ok := strings.CutPrefix(s.Name, "start "); ok {
			latest[name] = s.Outcome
		}
	}
	if len(latest) == 0 {
		return nil
	}
	out := make([]TierProgress, 0, len(tiers))
	for _, t := range tiers {
		tp := TierProgress{Index: t.Index, Members: t.Components}
		for _, m := range t.Components {
			outcome, ok := latest[m]
			if !ok {
				continue
			}
			tp.Started++
			switch outcome {
			case workflows.OutcomeOK:
				tp.Ready++
			case workflows.OutcomeFailed:
				tp.Failed++
			}
		}
		out = append(out, tp)
	}
	return out
}

func executionStatus(s enumspb.WorkflowExecutionStatus) string {
	name := strings.TrimPrefix(s.String(), "WorkflowExecutionStatus")
	name = strings.TrimPrefix(name, "WORKFLOW_EXECUTION_STATUS_")
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// renderSnapshot is the text of a snapshot: a headline, the tiers, the open
// gates with their checklists and approve commands, the transfers, the
// steps (unless brief) and the ignored signals. now dates the ages.
func renderSnapshot(w io.Writer, s RunSnapshot, now time.Time, brief bool) {
	for _, l := range snapshotLines(s, now, brief) {
		fmt.Fprintln(w, l)
	}
}

func snapshotLines(s RunSnapshot, now time.Time, brief bool) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	kind := orDash(s.Kind)
	if s.Plan != "" {
		kind += " of plan " + s.Plan
	}
	add("%s (run %s): %s, %s", s.WorkflowID, s.RunID, kind, s.Status)
	took := now.Sub(s.Started)
	if !s.Closed.IsZero() {
		took = s.Closed.Sub(s.Started)
	}
	add("  started %s, %s %s", humanTime(s.Started), map[bool]string{true: "took", false: "running for"}[!s.Closed.IsZero()], humanDuration(took))
	phase := orDash(s.Phase)
	if s.Child != nil && s.Child.Phase != "" {
		phase += " > " + s.Child.Phase + " (" + s.Child.WorkflowID + ")"
	}
	add("  phase %s", phase)
	if s.CurrentStep != "" {
		add("  step  %s", s.CurrentStep)
	}
	for _, t := range s.Tiers {
		add("%s", tierLine(t))
	}
	for _, t := range s.Transfers {
		add("  %s", transferLine(t, now))
	}
	for _, g := range s.Gates {
		if g.Outcome == workflows.OutcomePending {
			out = append(out, gateLines(g, now)...)
		}
	}
	if !brief {
		for _, st := range s.Steps {
			took := ""
			if !st.Ended.IsZero() {
				took = humanDuration(st.Ended.Sub(st.Started))
			}
			add("  %-8s %-40s %-8s %s", st.Outcome, st.Name, took, st.Detail)
		}
		for _, g := range s.Gates {
			if g.Outcome == workflows.OutcomePending {
				continue
			}
			add("  gate %s: %s", g.Name, g.Outcome)
		}
	}
	for _, ig := range s.Ignored {
		add("  ignored signal: %s", ig.Reason)
	}
	if !s.Queried && s.Status == "running" {
		add("  (the run did not answer its status query: is a drover worker running?)")
	}
	return out
}

// gateLines are an open gate: who it waits for, the approvals so far, the
// checklist and the command that decides it.
func gateLines(g GateView, now time.Time) []string {
	out := []string{fmt.Sprintf("  GATE %s waits for %s of %s since %s: %s", g.Name, quorumText(g.Quorum), strings.Join(g.Approvers, ", "),
		humanDuration(now.Sub(g.Opened).Round(time.Second)), g.Detail)}
	for _, a := range g.Approvals {
		out = append(out, fmt.Sprintf("    approved by %s at %s", a.Approver, humanTime(a.At)))
	}
	for _, item := range g.Checklist {
		out = append(out, "    [ ] "+item)
	}
	return append(out, "    approve: "+g.ApproveCommand)
}

// transferLine is a transfer in words: what, how far, how fast, how long to
// go (when the total is known).
func transferLine(t Transfer, now time.Time) string {
	what := strings.TrimSuffix(t.Activity, "Group")
	line := fmt.Sprintf("%s: %s", strings.ToLower(what), humanBytes(t.Done))
	if t.Total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", humanBytes(t.Total), min(100, t.Done*100/t.Total))
	}
	if el := now.Sub(t.Started); !t.Started.IsZero() && el > time.Second && t.Done > 0 {
		rate := float64(t.Done) / el.Seconds()
		line += fmt.Sprintf(", %s/s", humanBytes(int64(rate)))
		if t.Total > t.Done && rate > 0 {
			line += ", ETA " + humanDuration(time.Duration(float64(t.Total-t.Done)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	if t.Attempt > 1 {
		line += fmt.Sprintf(" (attempt %d)", t.Attempt)
	}
	return line
}
