package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/report"
)

// versionReplication marks runs that handle the plan's replicated
// components by their replication: seeded when the plan is enabled, their
// lag as their RPO, promoted (unplanned) or switched over (planned) instead
// of restored from a point. Runs from before restore every component.
const versionReplication = "replication"

// Replication step timeouts. A seed or reseed copies a whole database; a
// promote, fence or switchover waits for the server to answer.
const (
	replicaCopyTimeout   = 6 * time.Hour
	replicaSwitchTimeout = 15 * time.Minute
	replicaHeartbeat     = time.Minute
	// replicaCatchUpWait bounds how long a failback waits for the former
	// primary to catch up before it asks; replicaCatchUpPoll is how often it
	// measures meanwhile.
	replicaCatchUpWait = 30 * time.Minute
	replicaCatchUpPoll = 2 * time.Second
	// replicaCaughtUp is the lag in seconds a standby under load counts as
	// caught up: the drain that follows stops the writes and the switchover
	// waits for the rest before it promotes.
	replicaCaughtUp = 1.0
)

// usesReplication says whether this run handles the plan's replicated
// components by replication. Plans without one never ask the version, so
// their histories are unchanged.
func usesReplication(ctx workflow.Context, p *plan.Plan) bool {
	return len(p.ReplicatedComponents()) > 0 &&
		workflow.GetVersion(ctx, versionReplication, workflow.DefaultVersion, 1) == 1
}

// replicaInput names a replicated component with the site playing
// primaryRole as its primary end and standbyRole's as its standby.
func replicaInput(p *plan.Plan, c plan.Component, primaryRole, standbyRole string) contract.ReplicaInput {
	ps, ss := siteRef(p, primaryRole), siteRef(p, standbyRole)
	_, ph := componentAt(ps, c)
	_, sh := componentAt(ss, c)
	return contract.ReplicaInput{Plan: p.Name, Component: c,
		Primary: contract.ReplicaEnd{Site: ps, Host: ph}, Standby: contract.ReplicaEnd{Site: ss, Host: sh}}
}

// endAt places a step at one end of a replicated component.
func endAt(in contract.ReplicaInput, end contract.ReplicaEnd) contract.Placement {
	where, _ := componentAt(end.Site, in.Component)
	return where
}

func replicaCopyOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: replicaCopyTimeout,
		HeartbeatTimeout:    replicaHeartbeat,
		RetryPolicy:         shortRetry(3),
	})
}

func replicaSwitchOptions(ctx workflow.Context, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: replicaSwitchTimeout,
		HeartbeatTimeout:    replicaHeartbeat,
		RetryPolicy:         shortRetry(attempts),
	})
}

// withoutReplicated is the plan the restore and the orderly stops handle:
// the replicated components left out (their data moves by replication, and
// their stop is the switchover's), the restart tiers kept in order.
func withoutReplicated(p *plan.Plan) *plan.Plan {
	rest := *p
	rest.Components = nil
	skip := map[string]bool{}
	for _, c := range p.Components {
		if c.Replicated() {
			skip[c.Name] = true
			continue
		}
		rest.Components = append(rest.Components, c)
	}
	rest.Order = nil
	for _, t := range p.Order {
		var names []string
		for _, n := range t.Components {
			if !skip[n] {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			rest.Order = append(rest.Order, plan.Tier{Index: t.Index, Components: names})
		}
	}
	if len(p.Order) > 0 && len(rest.Order) == 0 {
		// Every component is replicated: no tier is left to stop.
		rest.Order = []plan.Tier{{Index: 0}}
	}
	return &rest
}

// lagRecord is a measured lag as the report keeps it.
func lagRecord(l contract.LagResult) *report.Lag {
	return &report.Lag{Bytes: l.Bytes, BytesKnown: l.BytesKnown, Seconds: l.Seconds, SecondsKnown: l.SecondsKnown,
		PrimaryPosition: l.PrimaryPosition, ReplayedPosition: l.ReplayedPosition, Streaming: l.Streaming,
		PrimaryReachable: l.PrimaryReachable, MeasuredAt: l.MeasuredAt, Detail: l.Detail}
}

// replica returns the report's record of component name, adding it.
func (f *failover) replica(name string) *report.Replica {
	for i := range f.rep.Replicas {
		if f.rep.Replicas[i].Component == name {
			return &f.rep.Replicas[i]
		}
	}
	f.rep.Replicas = append(f.rep.Replicas, report.Replica{Component: name})
	return &f.rep.Replicas[len(f.rep.Replicas)-1]
}

func (f *failover) replicaStep(name, site string, res contract.ReplicaResult) {
	rec := f.replica(name)
	rec.Steps = append(rec.Steps, report.ReplicaStep{Action: res.Action, Site: site, Method: res.Method, Position: res.Position,
		Timeline: res.Timeline, LostBytes: res.LostBytes, Detail: res.Detail})
}

// restPlan is the plan the restore and the orderly stops of this run
// handle: without the replicated components when it replicates them.
func (f *failover) restPlan() *plan.Plan {
	if !f.repl {
		return f.p
	}
	return withoutReplicated(f.p)
}

// pointless says no recovery point is needed: every component with data is
// replicated and the plan has no storage group to restore.
func (f *failover) pointless() bool {
	return f.repl && len(f.p.Storage.Groups) == 0
}

// measureLag is the lag of every replicated component, the standby at
// standbyRole's site: at declaration, the data an unplanned failover may
// lose. A standby that cannot be measured is a note, not a stop: the
// promotion may still be the best there is.
func (f *failover) measureLag(ctx workflow.Context, primaryRole, standbyRole string) []contract.LagResult {
	var out []contract.LagResult
	for _, c := range f.p.ReplicatedComponents() {
		in := replicaInput(f.p, c, primaryRole, standbyRole)
		step := f.r.begin(ctx, "lag of "+c.Name+" at "+in.Standby.Site.Site.Name)
		var lag contract.LagResult
		if err := f.r.actOwn(shortOptions(ctx, time.Minute, 3), endAt(in, in.Standby), contract.ReplicaLag, in).Get(ctx, &lag); err != nil {
			f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			f.rep.Notes = append(f.rep.Notes, fmt.Sprintf("lag of %s at declaration not measured: %s", c.Name, rootMessage(err)))
			continue
		}
		rec := lagRecord(lag)
		f.r.end(ctx, step, OutcomeOK, 1, rec.String())
		f.replica(c.Name).LagAtDeclaration = rec
		out = append(out, lag)
	}
	return out
}

// replicaDataLoss is the largest lag in seconds at declaration, and whether
// every replicated component's lag was measured.
func (f *failover) replicaDataLoss() (time.Duration, bool) {
	var worst time.Duration
	known := true
	for _, c := range f.p.ReplicatedComponents() {
		l := f.replica(c.Name).LagAtDeclaration
		if l == nil || !l.SecondsKnown {
			known = false
			continue
		}
		worst = max(worst, time.Duration(l.Seconds*float64(time.Second)))
	}
	return worst, known
}

// acceptReplicaLoss asks before promoting a standby whose lag at
// declaration is beyond the RPO, or could not be measured.
func (f *failover) acceptReplicaLoss(ctx workflow.Context) error {
	lag, known := f.replicaDataLoss()
	switch {
	case !known:
		return f.gate(ctx, contract.GateAcceptDataLoss, "the lag of a replicated standby could not be measured: "+
			"the data it had not replayed when the disaster was declared is lost; promote it anyway?", true)
	case lag > f.p.RPO.D():
		return f.gate(ctx, contract.GateAcceptDataLoss, fmt.Sprintf("a replicated standby was %s behind at declaration (RPO %s): "+
			"the work of that window is lost", lag.Round(time.Millisecond), f.p.RPO), true)
	}
	return nil
}

// takeover is the unplanned failover of the replicated components: fence
// the old primary where its site's workers answer (a lost site cannot write
// anyway), then promote the standby at the secondary.
func (f *failover) takeover(ctx workflow.Context) error {
	f.r.phase(ctx, "takeover")
	for _, c := range f.p.ReplicatedComponents() {
		in := replicaInput(f.p, c, "primary", "secondary")
		if err := f.fenceReplica(ctx, in); err != nil {
			return err
		}
		step := f.r.begin(ctx, "promote "+c.Name+" at "+in.Standby.Site.Site.Name)
		f.r.placeStep(step, endAt(in, in.Standby))
		var res contract.ReplicaResult
		if err := f.r.act(replicaSwitchOptions(ctx, 3), endAt(in, in.Standby), contract.ReplicaPromote, in).Get(ctx, &res); err != nil {
			f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return fmt.Errorf("promote %s at %s: %w", c.Name, in.Standby.Site.Site.Name, err)
		}
		f.r.end(ctx, step, OutcomeOK, 1, replicaDetail(res))
		f.replicaStep(c.Name, in.Standby.Site.Site.Name, res)
	}
	f.promoted = true
	return nil
}

// fenceReplica fences the old primary of one replicated component. A site
// whose workers do not answer is gone with its server; one that answers
// and cannot fence opens primary-alive.
func (f *failover) fenceReplica(ctx workflow.Context, in contract.ReplicaInput) error {
	site := in.Primary.Site.Site.Name
	step := f.r.begin(ctx, "fence "+in.Component.Name+" at "+site)
	f.r.placeStep(step, endAt(in, in.Primary))
	var res contract.ReplicaResult
	err := f.r.look(replicaSwitchOptions(ctx, 2), endAt(in, in.Primary), contract.ReplicaFence, in).Get(ctx, &res)
	switch {
	case err == nil:
		f.r.end(ctx, step, OutcomeOK, 1, replicaDetail(res))
		f.replicaStep(in.Component.Name, site, res)
		return nil
	case isSiteUnreachable(err):
		f.r.end(ctx, step, OutcomeSkipped, 1, "no worker at "+site+" answers: not fenced, the site is gone")
		f.replicaStep(in.Component.Name, site, contract.ReplicaResult{Action: "fence", Method: "not reached", Detail: rootMessage(err)})
		return nil
	}
	f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
	detail := fmt.Sprintf("%s at %s could not be fenced (%s): stop it or cut it off before its standby is promoted", in.Component.Name, site, rootMessage(err))
	return f.gate(ctx, contract.GatePrimaryAlive, detail, true)
}

// switchover swaps every replicated component's roles from the site
// playing fromRole to toRole, planned: nothing committed may be lost, and
// a switchover that reports lost bytes opens accept-data-loss.
func (f *failover) switchover(ctx workflow.Context, fromRole, toRole string) error {
	f.r.phase(ctx, "switchover")
	for _, c := range f.p.ReplicatedComponents() {
		in := replicaInput(f.p, c, fromRole, toRole)
		from := in.Primary.Site.Site.Name
		step := f.r.begin(ctx, fmt.Sprintf("switchover %s from %s to %s", c.Name, from, in.Standby.Site.Site.Name))
		f.r.placeStep(step, endAt(in, in.Primary))
		var res contract.ReplicaResult
		if err := f.r.act(replicaSwitchOptions(ctx, 1), endAt(in, in.Primary), contract.ReplicaSwitchover, in).Get(ctx, &res); err != nil {
			f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return fmt.Errorf("switchover of %s: %w", c.Name, err)
		}
		f.r.end(ctx, step, OutcomeOK, 1, replicaDetail(res))
		f.replicaStep(c.Name, from, res)
		if res.LostBytes != 0 {
			detail := fmt.Sprintf("switchover of %s lost %d bytes the old primary had written: accept the loss?", c.Name, res.LostBytes)
			if err := f.gate(ctx, contract.GateAcceptDataLoss, detail, true); err != nil {
				return err
			}
		}
	}
	f.promoted = true
	return nil
}

// reseedAndCatchUp makes the former primary (at the site playing
// standbyRole) a standby of the live one again, then waits until it has
// caught up: no lag left, or under a second while writes still arrive.
func (f *failover) reseedAndCatchUp(ctx workflow.Context, primaryRole, standbyRole string) error {
	f.r.phase(ctx, "reseed")
	for _, c := range f.p.ReplicatedComponents() {
		in := replicaInput(f.p, c, primaryRole, standbyRole)
		at := in.Standby.Site.Site.Name
		step := f.r.begin(ctx, fmt.Sprintf("reseed %s at %s from %s", c.Name, at, in.Primary.Site.Site.Name))
		f.r.placeStep(step, endAt(in, in.Standby))
		var res contract.ReplicaResult
		if err := f.r.act(replicaCopyOptions(ctx), endAt(in, in.Standby), contract.ReplicaReseed, in).Get(ctx, &res); err != nil {
			f.r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			return fmt.Errorf("reseed %s at %s: %w", c.Name, at, err)
		}
		f.r.end(ctx, step, OutcomeOK, 1, replicaDetail(res))
		f.replicaStep(c.Name, at, res)
		if err := f.catchUp(ctx, in); err != nil {
			return err
		}
	}
	return nil
}

func (f *failover) catchUp(ctx workflow.Context, in contract.ReplicaInput) error {
	step := f.r.begin(ctx, "wait for "+in.Component.Name+" at "+in.Standby.Site.Site.Name+" to catch up")
	f.r.placeStep(step, endAt(in, in.Standby))
	deadline := workflow.Now(ctx).Add(replicaCatchUpWait)
	for round := 1; ; round++ {
		var lag contract.LagResult
		err := f.r.actOwn(shortOptions(ctx, time.Minute, 3), endAt(in, in.Standby), contract.ReplicaLag, in).Get(ctx, &lag)
		last := ""
		switch {
		case err != nil:
			last = rootMessage(err)
		case lag.Streaming && lag.BytesKnown && lag.Bytes == 0:
			f.r.end(ctx, step, OutcomeOK, round, "caught up: "+lagRecord(lag).String())
			return nil
		case lag.Streaming && lag.SecondsKnown && lag.Seconds < replicaCaughtUp:
			f.r.end(ctx, step, OutcomeOK, round, "within a second under load: "+lagRecord(lag).String())
			return nil
		default:
			last = lagRecord(lag).String()
			if !lag.Streaming {
				last = "not streaming; " + last
			}
		}
		if !workflow.Now(ctx).Before(deadline) {
			detail := fmt.Sprintf("%s at %s has not caught up after %s: %s", in.Component.Name, in.Standby.Site.Site.Name, replicaCatchUpWait, last)
			f.r.end(ctx, step, OutcomeFailed, round, detail)
			return temporal.NewNonRetryableApplicationError(detail, contract.ErrTypeRecoveryStalled, nil)
		}
		if err := workflow.Sleep(ctx, replicaCatchUpPoll); err != nil {
			f.r.end(ctx, step, OutcomeFailed, round, "cancelled")
			return err
		}
	}
}

// replicaDetail is a step's one-line outcome.
func replicaDetail(res contract.ReplicaResult) string {
	parts := []string{res.Method}
	if res.AlreadyDone {
		parts = append(parts, "already done")
	}
	if res.Position != "" {
		parts = append(parts, "position "+res.Position)
	}
	if res.Timeline > 0 {
		parts = append(parts, fmt.Sprintf("timeline %d", res.Timeline))
	}
	if res.Detail != "" {
		parts = append(parts, res.Detail)
	}
	return strings.Join(parts, "; ")
}

// ReplicaStatus is where one replicated component stands for the RPO
// monitor: its lag is its RPO.
type ReplicaStatus struct {
	Component    string        `json:"component"`
	Streaming    bool          `json:"streaming"`
	Bytes        int64         `json:"bytes"`
	BytesKnown   bool          `json:"bytesKnown"`
	Lag          time.Duration `json:"lag"`
	SecondsKnown bool          `json:"secondsKnown"`
	Replayed     string        `json:"replayed,omitempty"`
	Status       string        `json:"status"`
	Error        string        `json:"error,omitempty"`
}

// seedStandbys makes sure every replicated component's standby streams
// when the plan is enabled: one not streaming is seeded (the driver leaves
// a running standby alone, so this is safe to repeat).
func seedStandbys(ctx workflow.Context, r *run, p *plan.Plan) []ReplicaStatus {
	var out []ReplicaStatus
	for _, c := range p.ReplicatedComponents() {
		in := replicaInput(p, c, "primary", "secondary")
		st := ReplicaStatus{Component: c.Name}
		var lag contract.LagResult
		err := r.look(shortOptions(ctx, time.Minute, 2), endAt(in, in.Standby), contract.ReplicaLag, in).Get(ctx, &lag)
		if err == nil && lag.Streaming {
			out = append(out, replicaStatus(p, c.Name, lag, nil))
			continue
		}
		step := r.begin(ctx, "seed "+c.Name+" at "+in.Standby.Site.Site.Name)
		r.placeStep(step, endAt(in, in.Standby))
		var res contract.ReplicaResult
		if err := r.actOwn(replicaCopyOptions(ctx), endAt(in, in.Standby), contract.ReplicaSeed, in).Get(ctx, &res); err != nil {
			r.end(ctx, step, OutcomeFailed, 1, rootMessage(err))
			st.Status, st.Error = contract.RPOUnknown, "seed failed: "+rootMessage(err)
			out = append(out, st)
			continue
		}
		r.end(ctx, step, OutcomeOK, 1, replicaDetail(res))
		st.Status, st.Streaming, st.Replayed = contract.RPOOk, true, res.Position
		out = append(out, st)
	}
	return out
}

// replicaStatus judges one measured lag against the RPO: a standby that
// does not stream falls behind without bound.
func replicaStatus(p *plan.Plan, name string, lag contract.LagResult, err error) ReplicaStatus {
	st := ReplicaStatus{Component: name}
	if err != nil {
		st.Status, st.Error = contract.RPOUnknown, rootMessage(err)
		return st
	}
	st.Streaming, st.Bytes, st.BytesKnown, st.SecondsKnown, st.Replayed = lag.Streaming, lag.Bytes, lag.BytesKnown, lag.SecondsKnown, lag.ReplayedPosition
	st.Lag = time.Duration(lag.Seconds * float64(time.Second))
	switch {
	case !lag.Streaming:
		st.Status, st.Error = contract.RPOBreached, "standby not streaming: "+lag.Detail
	case st.Lag > p.RPO.D():
		st.Status = contract.RPOBreached
	default:
		st.Status = contract.RPOOk
	}
	return st
}

// checkReplicas measures every replicated component's lag for the RPO
// monitor. A site that does not answer is looked at, never waited for.
func checkReplicas(ctx workflow.Context, r *run, p *plan.Plan) []ReplicaStatus {
	comps := p.ReplicatedComponents()
	futures := make([]workflow.Future, len(comps))
	for i, c := range comps {
		in := replicaInput(p, c, "primary", "secondary")
		futures[i] = r.look(shortOptions(ctx, time.Minute, 2), endAt(in, in.Standby), contract.ReplicaLag, in)
	}
	out := make([]ReplicaStatus, len(comps))
	for i, f := range futures {
		var lag contract.LagResult
		err := f.Get(ctx, &lag)
		out[i] = replicaStatus(p, comps[i].Name, lag, err)
	}
	return out
}

// rpoOfReplicas folds the replicas' lags into the monitor's status. With no
// storage group the lag is the whole RPO; with groups too, a replica that
// breaches breaks the RPO of the points.
func rpoOfReplicas(st *RPOStatus, p *plan.Plan) {
	worst := contract.RPOOk
	var age time.Duration
	var errs []string
	for _, rs := range st.Replicas {
		age = max(age, rs.Lag)
		switch rs.Status {
		case contract.RPOBreached:
			worst = contract.RPOBreached
		case contract.RPOUnknown:
			if worst != contract.RPOBreached {
				worst = contract.RPOUnknown
			}
		}
		if rs.Error != "" {
			errs = append(errs, rs.Component+": "+rs.Error)
		}
	}
	if len(p.Storage.Groups) == 0 {
		st.Status, st.Age, st.PointID, st.Captured, st.Trust = worst, age, "", time.Time{}, "replication"
		if len(errs) > 0 {
			st.Error = strings.Join(errs, "; ")
		}
		return
	}
	if worst == contract.RPOBreached && st.Status != contract.RPONoPoint {
		st.Status = contract.RPOBreached
		st.Error = strings.Join(errs, "; ")
	}
}
