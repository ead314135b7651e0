package starter

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/stack"
)

// startStack starts the all-in-one stack of `drover dev` and `drover demo`
// with the global flags' namespace, logger and client settings, and points
// the global address at its frontend.
func startStack(ctx context.Context, g *Globals, o stack.Options) (*stack.Stack, error) {
	o.Namespace, o.Logger = g.Namespace, g.Logger()
	o.Dial = func(address string) (client.Client, error) {
		g.Address = address
		return g.Dial()
	}
	return stack.Start(ctx, o)
}

// startSiteWorkers starts one drover worker process per lab site, each
// placed at its site like a real site's worker (the lab kills it with the
// site in a disaster), and waits until each polls its queue, so a run
// started next finds them.
func startSiteWorkers(ctx context.Context, g *Globals, c client.Client, l *lab.Lab) error {
	for _, site := range l.Topo.SiteNames() {
		argv, err := siteWorkerArgv(g, site)
		if err != nil {
			return err
		}
		if _, err := l.StartWorker(site, argv); err != nil {
			return err
		}
	}
	for _, site := range l.Topo.SiteNames() {
		if err := stack.WaitPolling(ctx, c, contract.SiteQueue(site), 30*time.Second); err != nil {
			return fmt.Errorf("the worker of site %s (log %s): %w", site, l.L.WorkerLog(site), err)
		}
	}
	return nil
}
