package starter

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/worker"
)

func init() { register(newWorkerCmd) }

func newWorkerCmd(g *Globals) *cobra.Command {
	var sites []string
	var host, planFile string
	var orchestrator bool
	var freshness time.Duration
	var mf metricsFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a drover worker: the orchestrator, or the worker of a site",
		Long: "Connects to the Temporal frontend (--address, --namespace, TLS flags) and polls until SIGINT or SIGTERM.\n\n" +
			"Without --site it is the orchestrator: it runs drover's workflows, which decide, and asks Temporal\n" +
			"whether each site has workers. With --site NAME it is that site's worker: it runs every step placed\n" +
			"at the site (start, stop, capture, restore, verify) and nothing else; run it at the site, on a host\n" +
			"that reaches the site's servers and data. --host NAME serves one host of the site that runs its own\n" +
			"worker (worker: true in the plan). A site worker needs no plan: each step carries what it needs.\n\n" +
			"One-machine installs can run everything in one process: --orchestrator --site dc1 --site dc2, or\n" +
			"--plan FILE for the orchestrator and every site (and host worker) of a plan.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			places, err := workerPlaces(sites, host, planFile)
			if err != nil {
				return BadInput(err)
			}
			if len(places) == 0 || planFile != "" {
				orchestrator = true
			}
			log := g.Logger()
			mf.workerPlan = planFile
			mf.freshness = freshness
			c, err := mf.dialAndServe(cmd.Context(), g, log)
			if err != nil {
				return err
			}
			defer c.Close()
			grp, err := worker.New(c, worker.Options{Orchestrator: orchestrator, Sites: places, Registry: builtin.Registry(log), Logger: log,
				PollerFreshness: freshness})
			if err != nil {
				return err
			}
			for queue, id := range grp.Identities {
				log.Info("worker polling", zap.String("address", g.Address), zap.String("namespace", g.Namespace),
					zap.String("taskQueue", queue), zap.String("identity", id))
			}
			// Run stops on the interrupt channel; the command context is
			// cancelled on SIGINT/SIGTERM by Main.
			stop := make(chan any)
			go func() { <-cmd.Context().Done(); close(stop) }()
			if err := grp.Run(stop); err != nil {
				return err
			}
			log.Info("worker stopped")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sites, "site", nil, "serve the steps placed at this site (repeat for several)")
	cmd.Flags().StringVar(&host, "host", "", "with one --site: serve the steps placed on this host of the site")
	cmd.Flags().StringVar(&planFile, "plan", "", "serve the orchestrator and every site of this plan in one process")
	cmd.Flags().BoolVar(&orchestrator, "orchestrator", false, "also run the orchestrator (implied without --site)")
	cmd.Flags().DurationVar(&freshness, "poller-freshness", activities.DefaultPollerFreshness,
		"a site's worker counts as alive (for the orchestrator and drover_site_workers) if it polled within this (keep it above the server's long poll, matching.longPollExpirationInterval)")
	cmd.Flags().StringVar(&mf.address, "metrics-address", "", "serve Prometheus metrics (the SDK's and drover's) at HOST:PORT/metrics")
	cmd.Flags().StringArrayVar(&mf.plans, "metrics-plan", nil, "plan file whose points, RPO target and gate reminders are exported (repeatable)")
	cmd.Flags().StringArrayVar(&mf.stores, "metrics-store", nil, "recovery point store whose plans are exported by name (repeatable)")
	cmd.Flags().StringArrayVar(&mf.sites, "metrics-site", nil, "SITE=TASK_QUEUE: export drover_site_workers for a site's queue (repeatable; default: the sites of --plan and --metrics-plan)")
	return cmd
}

// workerPlaces turns the worker's flags into the queues it polls.
func workerPlaces(sites []string, host, planFile string) ([]contract.Placement, error) {
	if host != "" && len(sites) != 1 {
		return nil, fmt.Errorf("--host names a host of one site: give exactly one --site with it")
	}
	var out []contract.Placement
	for _, s := range sites {
		if s == "" || strings.ContainsAny(s, " /") {
			return nil, fmt.Errorf("--site %q: want a site name as the plan writes it", s)
		}
		out = append(out, contract.Placement{Site: s, Host: host, HostWorker: host != ""})
	}
	if planFile != "" {
		p, err := plan.LoadAndValidate(planFile, builtin.Registry(nil))
		if err != nil {
			return nil, err
		}
		out = append(out, PlanPlaces(p)...)
	}
	return out, nil
}

// PlanPlaces are the queues of every site of a plan and of its hosts that
// run their own workers: what a one-machine install serves.
func PlanPlaces(p *plan.Plan) []contract.Placement {
	var out []contract.Placement
	for _, s := range []*plan.Site{p.Sites.Primary, p.Sites.Secondary, p.Sites.Sandbox} {
		if s == nil {
			continue
		}
		out = append(out, contract.Placement{Site: s.Name})
		for _, name := range sortedHostNames(s) {
			if s.Hosts[name].Worker {
				out = append(out, contract.Placement{Site: s.Name, Host: name, HostWorker: true})
			}
		}
	}
	if at := p.Storage.StoreAt; at.Site != "" && !hasSite(out, at.Site) {
		out = append(out, contract.Placement{Site: at.Site})
	}
	return out
}

func hasSite(ps []contract.Placement, site string) bool {
	for _, p := range ps {
		if p.Site == site && p.Host == "" {
			return true
		}
	}
	return false
}

func sortedHostNames(s *plan.Site) []string {
	names := make([]string, 0, len(s.Hosts))
	for n := range s.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// siteWorkerArgv is the command line of a separate worker process for site
// that reaches the same Temporal as this process.
func siteWorkerArgv(g *Globals, site string) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the drover executable for the site workers: %w", err)
	}
	argv := []string{exe, "worker", "--site", site, "--address", g.Address, "--namespace", g.Namespace, "--log-level", g.LogLevel}
	if g.EncryptionKeyFile != "" {
		argv = append(argv, "--encryption-key-file", g.EncryptionKeyFile)
	}
	t := g.TLS
	for _, f := range []struct{ name, value string }{{"--tls-ca", t.CACert}, {"--tls-cert", t.ClientCert}, {"--tls-key", t.ClientKey}, {"--tls-server-name", t.ServerName}} {
		if f.value != "" {
			argv = append(argv, f.name, f.value)
		}
	}
	if t.Enabled {
		argv = append(argv, "--tls")
	}
	if t.DisableHostVerification {
		argv = append(argv, "--tls-disable-host-verification")
	}
	// An API key reaches the site workers through their inherited
	// environment (TEMPORAL_API_KEY), never on a command line ps shows.
	return argv, nil
}
