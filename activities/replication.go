package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
)

// replicaHeartbeat is how often a long replication step (a base backup, a
// rewind, a switchover's wait for replay) tells Temporal it is alive.
const replicaHeartbeat = 5 * time.Second

// replicaTarget is one end of a replicated component as its driver sees it.
func replicaTarget(in contract.ReplicaInput, end contract.ReplicaEnd) drivers.Target {
	return Target(contract.ComponentInput{Plan: in.Plan, Site: end.Site, Host: end.Host, Component: in.Component})
}

// replicator resolves the component's driver as a Replicator; a driver that
// does not replicate is the plan's mistake, never retried.
func (a *Activities) replicator(in contract.ReplicaInput) (drivers.Replicator, error) {
	rep, err := a.Registry.Replicator(in.Component.Driver)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("component %s: %v", in.Component.Name, err), contract.ErrTypeBadSettings, err)
	}
	return rep, nil
}

// replicaStep runs one replication call of the driver, heartbeating while it
// runs, and turns its result into the contract's.
func (a *Activities) replicaStep(ctx context.Context, in contract.ReplicaInput, op string, at contract.ReplicaEnd,
	call func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error)) (contract.ReplicaResult, error) {
	rep, err := a.replicator(in)
	if err != nil {
		return contract.ReplicaResult{}, err
	}
	log := a.Logger.With(zap.String("component", in.Component.Name), zap.String("step", op), zap.String("site", at.Site.Site.Name))
	log.Info("replication step", zap.Int32("attempt", activity.GetInfo(ctx).Attempt))
	var res drivers.ReplicationResult
	err = whileHeartbeating(ctx, func(ctx context.Context) error {
		var err error
		res, err = call(ctx, rep)
		return err
	})
	out := replicaResult(in.Component.Name, res)
	if err != nil {
		return out, classify(fmt.Sprintf("%s %s at %s", op, in.Component.Name, at.Site.Site.Name), err)
	}
	log.Info("replication step done", zap.String("method", out.Method), zap.String("role", out.Role),
		zap.String("position", out.Position), zap.Bool("alreadyDone", out.AlreadyDone))
	return out, nil
}

// whileHeartbeating runs fn and records a heartbeat every replicaHeartbeat
// until it returns, so a dead worker is noticed during a long copy.
func whileHeartbeating(ctx context.Context, fn func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	tick := time.NewTicker(replicaHeartbeat)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			activity.RecordHeartbeat(ctx)
		}
	}
}

func replicaResult(component string, r drivers.ReplicationResult) contract.ReplicaResult {
	out := contract.ReplicaResult{Component: component, Action: r.Action, Method: r.Method, Role: r.Role, Position: r.Position,
		Timeline: r.Timeline, LostBytes: r.LostBytes, Detail: r.Detail, AlreadyDone: r.AlreadyDone}
	for _, ev := range r.Steps {
		out.Steps = append(out.Steps, evidence(ev))
	}
	return out
}

// ReplicaSeed makes the standby end a standby of the primary end (a copy
// of its data, then streaming). A standby that already streams is left
// alone, so plan apply may run it every time. It runs at the standby's site.
func (a *Activities) ReplicaSeed(ctx context.Context, in contract.ReplicaInput) (contract.ReplicaResult, error) {
	return a.replicaStep(ctx, in, "seed", in.Standby, func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error) {
		return rep.Seed(ctx, replicaTarget(in, in.Primary), replicaTarget(in, in.Standby))
	})
}

// ReplicaLag measures how far the standby end is behind the primary end,
// from whichever ends answer. It runs at the standby's site.
func (a *Activities) ReplicaLag(ctx context.Context, in contract.ReplicaInput) (contract.LagResult, error) {
	rep, err := a.replicator(in)
	if err != nil {
		return contract.LagResult{}, err
	}
	lag, err := rep.Lag(ctx, replicaTarget(in, in.Primary), replicaTarget(in, in.Standby))
	out := contract.LagResult{
		Component: in.Component.Name, Bytes: lag.Bytes, BytesKnown: lag.BytesKnown, Seconds: lag.Seconds, SecondsKnown: lag.SecondsKnown,
		PrimaryPosition: lag.PrimaryPosition, ReplayedPosition: lag.ReplayedPosition, Streaming: lag.Streaming,
		PrimaryReachable: lag.PrimaryReachable, StandbyReachable: lag.StandbyReachable, MeasuredAt: lag.MeasuredAt,
		Detail: lag.Detail, Evidence: evidence(lag.Evidence),
	}
	if err != nil {
		return out, classify(fmt.Sprintf("lag of %s at %s", in.Component.Name, in.Standby.Site.Site.Name), err)
	}
	return out, nil
}

// ReplicaPromote makes the standby end the primary. It runs at the
// standby's site.
func (a *Activities) ReplicaPromote(ctx context.Context, in contract.ReplicaInput) (contract.ReplicaResult, error) {
	return a.replicaStep(ctx, in, "promote", in.Standby, func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error) {
		return rep.Promote(ctx, replicaTarget(in, in.Standby))
	})
}

// ReplicaFence stops the primary end from taking writes. It runs at the
// old primary's site, and only where that site's workers answer.
func (a *Activities) ReplicaFence(ctx context.Context, in contract.ReplicaInput) (contract.ReplicaResult, error) {
	return a.replicaStep(ctx, in, "fence", in.Primary, func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error) {
		return rep.Fence(ctx, replicaTarget(in, in.Primary))
	})
}

// ReplicaReseed makes the standby end (a former primary) a standby of the
// primary end (the new one). It runs at the former primary's site.
func (a *Activities) ReplicaReseed(ctx context.Context, in contract.ReplicaInput) (contract.ReplicaResult, error) {
	return a.replicaStep(ctx, in, "reseed", in.Standby, func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error) {
		return rep.Reseed(ctx, replicaTarget(in, in.Primary), replicaTarget(in, in.Standby))
	})
}

// ReplicaSwitchover swaps the roles of the primary end and its caught-up
// standby end, losing nothing; the old primary ends a standby. It runs at
// the primary's site: the driver stops that server and rewinds it there.
func (a *Activities) ReplicaSwitchover(ctx context.Context, in contract.ReplicaInput) (contract.ReplicaResult, error) {
	return a.replicaStep(ctx, in, "switchover", in.Primary, func(ctx context.Context, rep drivers.Replicator) (drivers.ReplicationResult, error) {
		return rep.Switchover(ctx, replicaTarget(in, in.Primary), replicaTarget(in, in.Standby))
	})
}
