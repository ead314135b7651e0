package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// versionFailurePolicy marks runs that act on a component's failure policy
// (restart once, re-create from the point, take over the standby) before
// the start-failed gate. Runs from before went to the gate at once.
const versionFailurePolicy = "failure-policy"

// PointSource is the point a run restored, from which a component that
// does not start can be re-created.
type PointSource struct {
	Store   contract.StoreRef `json:"store"`
	PointID string            `json:"pointId"`
	// FromRole is the role of the site the point was captured at: the
	// environment changes rewrite its values into the target's.
	FromRole string `json:"fromRole"`
}

// policyOutcome says what the component's failure policy did.
type policyOutcome int

const (
	// policyPassed: the policy leaves the decision to the gate.
	policyPassed policyOutcome = iota
	// policyActed: the policy acted; start the component once more.
	policyActed
	// policyFailed: the policy's own step failed; the gate decides.
	policyFailed
)

// applyFailurePolicy runs the component's failure policy once, after its
// start failed for good. It records a step named for the policy, so the
// report says which policy acted and what it did.
func applyFailurePolicy(ctx workflow.Context, r *run, in RestartInput, c plan.Component, out *ComponentOutcome, why string) policyOutcome {
	if workflow.GetVersion(ctx, versionFailurePolicy, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return policyPassed
	}
	pol := c.FailurePolicy()
	out.Policy = string(pol)
	if pol == plan.PolicyGate {
		return policyPassed
	}
	step := r.begin(ctx, fmt.Sprintf("failure policy %s: %s", pol, c.Name))
	where, host := componentAt(in.Site, c)
	r.placeStep(step, where)
	cin := contract.ComponentInput{Plan: in.Plan.Name, Site: in.Site, Host: host, Component: c, Immediate: true}
	fail := func(detail string) policyOutcome {
		r.end(ctx, step, OutcomeFailed, 1, detail)
		return policyFailed
	}
	pass := func(detail string) policyOutcome {
		r.end(ctx, step, OutcomeSkipped, 1, detail)
		return policyPassed
	}
	switch pol {
	case plan.PolicyRestart:
		if err := stopForPolicy(ctx, r, where, cin); err != nil {
			return fail("stop before the restart: " + rootMessage(err))
		}
		r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("stopped %s after %s; starting it once more", c.Name, why))
		return policyActed

	case plan.PolicyRecreate:
		if in.Point == nil {
			return pass("this run restored no point to re-create " + c.Name + " from")
		}
		if err := stopForPolicy(ctx, r, where, cin); err != nil {
			return fail("stop before the re-creation: " + rootMessage(err))
		}
		groups := 0
		for _, g := range in.Plan.Storage.Groups {
			if !slices.Contains(g.Components, c.Name) {
				continue
			}
			groups++
			gwhere, ghost := groupAt(in.Site, g)
			err := r.actOwn(storageOptions(ctx), gwhere, contract.RestoreGroup, contract.RestoreInput{
				Store: in.Point.Store, PointID: in.Point.PointID, Site: in.Site, Host: ghost, Group: g, Members: []string{c.Name},
			}).Get(ctx, nil)
			if err != nil {
				return fail(fmt.Sprintf("restore %s from group %s of point %s: %s", c.Name, g.Name, in.Point.PointID, rootMessage(err)))
			}
		}
		if groups == 0 {
			return pass("no storage group holds " + c.Name + "'s data")
		}
		if len(in.Plan.Environment) > 0 {
			err := r.actOwn(shortOptions(ctx, 10*time.Minute, 3), siteAt(in.Site), contract.ApplyEnvironment, contract.EnvironmentInput{
				Site: in.Site, FromRole: in.Point.FromRole, Rewrites: in.Plan.Environment,
			}).Get(ctx, nil)
			if err != nil {
				return fail("environment changes after re-creating " + c.Name + ": " + rootMessage(err))
			}
		}
		r.end(ctx, step, OutcomeOK, 1, fmt.Sprintf("re-created %s from point %s after %s; starting it again", c.Name, in.Point.PointID, why))
		return policyActed

	case plan.PolicyTakeover:
		peer, ok := replicaPeer(&in.Plan, in.Site)
		if !ok {
			return pass(fmt.Sprintf("site %s has no standby of %s to take over", in.Site.Site.Name, c.Name))
		}
		_, peerHost := componentAt(peer, c)
		var res contract.ReplicaResult
		err := r.actOwn(shortOptions(ctx, 10*time.Minute, 3), where, contract.ReplicaPromote, contract.ReplicaInput{
			Plan: in.Plan.Name, Component: c,
			Primary: contract.ReplicaEnd{Site: peer, Host: peerHost},
			Standby: contract.ReplicaEnd{Site: in.Site, Host: host},
		}).Get(ctx, &res)
		if err != nil {
			return fail("promote the standby of " + c.Name + ": " + rootMessage(err))
		}
		detail := fmt.Sprintf("promoted the standby of %s at %s after %s", c.Name, in.Site.Site.Name, why)
		if res.Position != "" {
			detail += " (at " + res.Position + ")"
		}
		if res.Detail != "" {
			detail += ": " + res.Detail
		}
		r.end(ctx, step, OutcomeOK, 1, detail)
		return policyActed
	}
	return pass("unknown failure policy " + string(pol))
}

// stopForPolicy stops a component that did not start, at once, so the
// policy's next start (or restore) begins from a stopped server.
func stopForPolicy(ctx workflow.Context, r *run, where contract.Placement, cin contract.ComponentInput) error {
	return r.actOwn(shortOptions(ctx, 10*time.Minute, 3), where, contract.StopComponent, cin).Get(ctx, nil)
}

// replicaPeer is the site that held the primary copy of a replicated
// component the target takes over: the primary for the secondary and the
// other way round. A sandbox has no standby of its own.
func replicaPeer(p *plan.Plan, target contract.SiteRef) (contract.SiteRef, bool) {
	switch target.Role {
	case plan.SiteSecondary:
		if p.Sites.Primary != nil {
			return siteRef(p, plan.SitePrimary), true
		}
	case plan.SitePrimary:
		if p.Sites.Secondary != nil {
			return siteRef(p, plan.SiteSecondary), true
		}
	}
	return contract.SiteRef{}, false
}
