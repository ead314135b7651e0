package workflows

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// Approval is the payload of the approve signal. The same JSON works from
// `drover approve`, the Web UI and `temporal workflow signal`.
type Approval struct {
	Gate     string `json:"gate"`
	Approver string `json:"approver"`
	// Decision is approve or reject; the start-failed gate takes retry, skip
	// or abort.
	Decision string `json:"decision"`
	Comment  string `json:"comment,omitempty"`
	// The signed form (issue 6): when any approver in the plan has a public
	// key, every approval must be signed over the run, the gate, the
	// decision and a nonce, so a signal's approver field alone proves
	// nothing.
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
	Nonce      string `json:"nonce,omitempty"`
	Signature  string `json:"signature,omitempty"`
	// SignalID is the sender's id for this signal, echoed in the status
	// with the approval counted or the reason it was ignored, so `drover
	// approve` reports what happened to its own signal. Not signed: it
	// only names the signal.
	SignalID string `json:"signalId,omitempty"`
}

// Bounds on what one approve signal may carry (issue 11 item 12). A field
// longer than its bound makes the signal malformed; what is kept of any
// signal is cut to these sizes and the list of ignored signals is bounded,
// so no sender can grow the status query, the report or the inputs of later
// steps past what Temporal accepts.
var fieldLimits = map[string]int{
	"gate": 128, "approver": 128, "decision": 32, "comment": 1024,
	"workflowId": 256, "runId": 128, "nonce": 64, "signature": 256, "signalId": 64,
}

const (
	// maxIgnored is how many ignored signals the status keeps: the newest,
	// with the first entry counting the ones dropped.
	maxIgnored = 50
	// maxQuoted bounds a signal's text quoted in a reason or kept in an
	// ignored entry.
	maxQuoted = 64
	// maxReason bounds a whole reason.
	maxReason = 512
)

// clip cuts s to at most n bytes (on a rune boundary) and marks the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// quote is %q of s clipped to maxQuoted bytes, for reasons.
func quote(s string) string { return strconv.Quote(clip(s, maxQuoted)) }

// GateRecord is a gate as the status query and the report show it.
type GateRecord = report.Gate

// ApprovalRecord is one counted approval.
type ApprovalRecord = report.Approval

// IgnoredSignal is a signal that was recorded and not counted.
type IgnoredSignal = report.Ignored

// OutcomePending and OutcomeTimeout are gate outcomes besides the decisions.
const (
	OutcomePending = "pending"
	OutcomeTimeout = "timeout"
)

// defaultGateTimeout bounds a gate the plan does not configure, so no run
// waits forever for a person who is not coming.
const defaultGateTimeout = 24 * time.Hour

// gateKeeper owns the approve signal channel and the open gates.
type gateKeeper struct {
	r    *run
	plan *plan.Plan
	// open holds indexes into r.status.Gates by gate name; looked up, never
	// iterated, so map order cannot leak into the history.
	open map[string]int
	// keys are the approvers' public keys; signed is set when any approver
	// has one, and then every approval must verify against them.
	keys   []approval.Key
	signed bool
	// nonces already counted: a replayed signed approval is refused.
	nonces map[string]bool
	// dropped counts the ignored signals no longer kept in the status.
	dropped int
}

// startGateKeeper starts the coroutine that reads approvals for the whole
// run, so a signal sent while no gate is open is still recorded.
func startGateKeeper(ctx workflow.Context, r *run, p *plan.Plan) *gateKeeper {
	g := listenForApprovals(ctx, r, p)
	r.gk = g
	return g
}

// listenForApprovals starts a gate keeper the run does not ask at its other
// gates (site-unreachable, step-failed): a drill's manual steps ask through
// it and nothing else changes.
func listenForApprovals(ctx workflow.Context, r *run, p *plan.Plan) *gateKeeper {
	g := &gateKeeper{r: r, plan: p, open: map[string]int{}, nonces: map[string]bool{}}
	r.notifyWith(p)
	for _, ap := range p.Approvers {
		g.keys = append(g.keys, approval.Key{Name: ap.Name, PublicKey: ap.PublicKey})
	}
	g.signed = approval.Required(g.keys)
	ch := workflow.GetSignalChannel(ctx, contract.SignalApprove)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var raw any
			if !ch.Receive(ctx, &raw) {
				return
			}
			g.receive(ctx, raw)
		}
	})
	return g
}

// decodeApproval checks a signal payload by hand rather than with
// encoding/json: unknown fields, non-string values, fields longer than their
// bound and missing gate, approver or decision make it malformed. The fields
// it returns with an error are clipped to their bounds, for the record.
// (Reflection-based decoding also trips workflowcheck; this keeps the
// workflow code provably deterministic.)
func decodeApproval(raw any) (Approval, error) {
	var a Approval
	m, ok := raw.(map[string]any)
	if !ok {
		return a, fmt.Errorf("payload is not a JSON object with gate, approver and decision")
	}
	fields := map[string]*string{"gate": &a.Gate, "approver": &a.Approver, "decision": &a.Decision, "comment": &a.Comment,
		"workflowId": &a.WorkflowID, "runId": &a.RunID, "nonce": &a.Nonce, "signature": &a.Signature,
		"signalId": &a.SignalID}
	if len(m) > len(fields) {
		return a, fmt.Errorf("payload: %d fields, at most %d", len(m), len(fields))
	}
	keys := make([]string, 0, len(m))
	// The keys are sorted right after, so map order cannot leak.
	//workflowcheck:ignore
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var tooLong error
	for _, k := range keys {
		dst, known := fields[k]
		if !known {
			return a, fmt.Errorf("payload: unknown field %s", quote(k))
		}
		v, isString := m[k].(string)
		if !isString {
			return a, fmt.Errorf("payload: field %q must be a string", k)
		}
		if limit := fieldLimits[k]; len(v) > limit {
			v = clip(v, limit)
			if tooLong == nil {
				tooLong = fmt.Errorf("payload: field %q is %d bytes, at most %d", k, len(m[k].(string)), limit)
			}
		}
		*dst = v
	}
	if tooLong != nil {
		return a, tooLong
	}
	var missing []string
	if a.Gate == "" {
		missing = append(missing, "gate")
	}
	if a.Approver == "" {
		missing = append(missing, "approver")
	}
	if a.Decision == "" {
		missing = append(missing, "decision")
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("payload: missing %s", strings.Join(missing, ", "))
	}
	return a, nil
}

// ignore records a signal that is not counted, bounded: its fields clipped
// and only the newest maxIgnored entries kept, the first of them counting
// the ones dropped.
func (g *gateKeeper) ignore(ctx workflow.Context, a Approval, reason string) {
	entry := IgnoredSignal{At: workflow.Now(ctx), Gate: clip(a.Gate, maxQuoted), Approver: clip(a.Approver, maxQuoted),
		Reason: clip(reason, maxReason), Signal: clip(a.SignalID, fieldLimits["signalId"])}
	list := g.r.status.Ignored
	if len(list) >= maxIgnored {
		// Entry 0 becomes (or stays) the count; the oldest signal kept,
		// entry 1, goes (and entry 0 too, the first time).
		if g.dropped == 0 {
			g.dropped++
		}
		g.dropped++
		count := IgnoredSignal{At: list[1].At, Dropped: g.dropped,
			Reason: fmt.Sprintf("%d earlier ignored signals not kept (the status keeps the newest %d)", g.dropped, maxIgnored-1)}
		list = append([]IgnoredSignal{count}, list[2:]...)
	}
	g.r.status.Ignored = append(list, entry)
	workflow.GetLogger(ctx).Warn("approval ignored", "gate", entry.Gate, "approver", entry.Approver, "reason", entry.Reason)
}

func (g *gateKeeper) receive(ctx workflow.Context, raw any) {
	a, err := decodeApproval(raw)
	if err != nil {
		g.ignore(ctx, a, "malformed: "+err.Error())
		return
	}
	if g.signed {
		// Verified before anything else, so forged, replayed and wrong-run
		// approvals are named as such even when no gate is open.
		info := workflow.GetInfo(ctx).WorkflowExecution
		st := approval.Statement{WorkflowID: a.WorkflowID, RunID: a.RunID, Gate: a.Gate, Decision: a.Decision,
			Nonce: a.Nonce, Approver: a.Approver, Comment: a.Comment}
		if err := approval.Check(g.keys, approval.Expect{WorkflowID: info.ID, RunID: info.RunID, Gate: a.Gate},
			func(n string) bool { return g.nonces[n] }, approval.Signed{Statement: st, Signature: a.Signature}); err != nil {
			g.ignore(ctx, a, err.Error())
			return
		}
	}
	i, ok := g.open[a.Gate]
	if !ok {
		g.ignore(ctx, a, fmt.Sprintf("gate %s is not open", quote(a.Gate)))
		return
	}
	rec := &g.r.status.Gates[i]
	if !slices.Contains(rec.Approvers, a.Approver) {
		g.ignore(ctx, a, fmt.Sprintf("%s may not approve gate %q (allowed: %s)", quote(a.Approver), a.Gate, strings.Join(rec.Approvers, ", ")))
		return
	}
	if !slices.Contains(rec.Options, a.Decision) {
		g.ignore(ctx, a, fmt.Sprintf("decision %s is not one of %s", quote(a.Decision), strings.Join(rec.Options, ", ")))
		return
	}
	for _, prev := range rec.Approvals {
		if prev.Approver == a.Approver {
			g.ignore(ctx, a, fmt.Sprintf("%q already decided %q at this gate", a.Approver, prev.Decision))
			return
		}
	}
	if g.signed {
		// Spent only when counted, so a valid approval sent early can be
		// sent again once its gate opens.
		g.nonces[a.Nonce] = true
	}
	rec.Approvals = append(rec.Approvals, ApprovalRecord{Approver: a.Approver, Decision: a.Decision, Comment: a.Comment,
		At: workflow.Now(ctx), Signed: g.signed, Signer: g.fingerprint(a.Approver), Signal: a.SignalID})
	workflow.GetLogger(ctx).Info("approval counted", "gate", a.Gate, "approver", a.Approver, "decision", a.Decision)
	rec.Outcome = g.decide(rec)
	g.showGate(ctx, i)
}

// decide applies the quorum: a reject or abort from any allowed approver
// ends the gate at once (one "no" is enough to stop a failover); any other
// decision needs quorum distinct approvers agreeing.
func (g *gateKeeper) decide(rec *GateRecord) string {
	counts := map[string]int{}
	for _, ap := range rec.Approvals {
		if ap.Decision == contract.DecisionReject || ap.Decision == contract.DecisionAbort {
			return ap.Decision
		}
		counts[ap.Decision]++
	}
	for _, opt := range rec.Options {
		if counts[opt] >= rec.Quorum {
			return opt
		}
	}
	return OutcomePending
}

// gateRequest is what a runbook step asks of a gate.
type gateRequest struct {
	Name    string
	Detail  string
	Options []string
	// Checklist adds to the gate's own checklist from the plan.
	Checklist []string
}

// wait opens a gate and blocks until it is decided, times out, or ctx is
// cancelled. A gate the plan does not define cannot be approved by anyone,
// so it fails the run with a message saying what to add to the plan.
func (g *gateKeeper) wait(ctx workflow.Context, req gateRequest) (string, error) {
	spec, ok := findGate(g.plan, req.Name)
	if !ok {
		return "", fmt.Errorf("gate %s needs approval but the plan defines no gate %q with approvers", req.Name, req.Name)
	}
	options := req.Options
	if len(options) == 0 {
		options = []string{contract.DecisionApprove, contract.DecisionReject}
	}
	quorum := spec.Quorum
	if quorum < 1 {
		quorum = 1
	}
	g.r.status.Gates = append(g.r.status.Gates, GateRecord{
		Name: req.Name, Detail: req.Detail, Checklist: append(slices.Clone(spec.Checklist), req.Checklist...),
		Options: options, Approvers: slices.Clone(spec.Approvers), Quorum: quorum,
		Opened: workflow.Now(ctx), Outcome: OutcomePending,
	})
	i := len(g.r.status.Gates) - 1
	g.open[req.Name] = i
	defer delete(g.open, req.Name)
	g.showGate(ctx, i)
	defer g.clearGate(ctx)
	g.r.tell(ctx, g.gateEvent(ctx, eventGateOpened, i), false)
	defer func() { g.r.tell(ctx, g.gateEvent(ctx, eventGateClosed, i), false) }()
	prev := g.r.status.Phase
	g.r.phase(ctx, "waiting:"+req.Name)
	defer g.r.phase(ctx, prev)

	timeout := spec.Timeout.D()
	if timeout <= 0 {
		timeout = defaultGateTimeout
	}
	rec := func() *GateRecord { return &g.r.status.Gates[i] }
	for {
		// The timer's summary says in the history what the wait is for.
		decided, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: timeout, TimerOptions: workflow.TimerOptions{
			Summary: fmt.Sprintf("gate %s: %s after %s without a decision", req.Name, gateTimeoutAction(spec.OnTimeout), timeout)},
		}, func() bool { return rec().Outcome != OutcomePending })
		if err != nil {
			rec().Outcome = "cancelled"
			rec().Closed = workflow.Now(ctx)
			return "", err
		}
		if decided {
			rec().Closed = workflow.Now(ctx)
			return rec().Outcome, nil
		}
		if spec.OnTimeout == plan.EscalateRemind {
			rec().Reminders++
			g.r.tell(ctx, g.gateEvent(ctx, eventGateReminder, i), false)
			workflow.GetLogger(ctx).Warn("gate still waiting for approval", "gate", req.Name,
				"approvers", strings.Join(spec.Approvers, ", "), "reminder", rec().Reminders)
			continue
		}
		rec().Outcome = OutcomeTimeout
		rec().Closed = workflow.Now(ctx)
		return OutcomeTimeout, nil
	}
}

// fingerprint names the key an approval was verified with, for the report.
func (g *gateKeeper) fingerprint(approver string) string {
	if !g.signed {
		return ""
	}
	for _, k := range g.keys {
		if k.Name == approver {
			return approval.Fingerprint(k.PublicKey)
		}
	}
	return ""
}

func findGate(p *plan.Plan, name string) (plan.Gate, bool) {
	for _, g := range p.Gates {
		if g.Name == name {
			return g, true
		}
	}
	return plan.Gate{}, false
}

// gateTimeoutAction is what a gate does when its timeout passes.
func gateTimeoutAction(e plan.Escalation) string {
	if e == plan.EscalateRemind {
		return "remind"
	}
	return "time out"
}
