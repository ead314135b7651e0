package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
)

func init() { register(newLabCmd) }

// labDirEnv names the lab dir when --dir is not given.
const labDirEnv = "DROVER_LAB_DIR"

func newLabCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run drover's two-site BPM + Monitor test cell on loopback",
		Long: `The lab is a real two-site cell made of OS processes on loopback with real
SQLite data: database, deployment manager, node agents, BPM and Monitor
messaging engines, support and app servers, and a front door. drover drives
it through its lab drivers like any other cell; these commands build it,
load it and break it.

The lab dir comes from --dir, else $DROVER_LAB_DIR.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(
		newLabUpCmd(g), newLabDownCmd(g), newLabStatusCmd(g), newLabLoadCmd(g),
		newLabStartCmd(g), newLabStopCmd(g),
		newLabSignalCmd(g, "kill", "Kill a server (SIGKILL): a crash", syscall.SIGKILL),
		newLabSignalCmd(g, "freeze", "Freeze a server (SIGSTOP): a hang", syscall.SIGSTOP),
		newLabSignalCmd(g, "thaw", "Resume a frozen server (SIGCONT)", syscall.SIGCONT),
		newLabDisasterCmd(g), newLabRestoreSiteCmd(g), newLabRouteCmd(g), newLabProbeCmd(g),
		newLabLedgerCmd(g), newLabBenchCmd(g), newLabServeCmd(),
	)
	return cmd
}

// labDirFlag adds --dir to a command.
func labDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "dir", "", "lab directory (default $"+labDirEnv+")")
}

func resolveLabDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(labDirEnv)
	}
	if dir == "" {
		return "", BadInputf("no lab dir: give --dir or set $%s", labDirEnv)
	}
	return filepath.Abs(dir)
}

func openLab(g *Globals, dir string) (*lab.Lab, error) {
	d, err := resolveLabDir(dir)
	if err != nil {
		return nil, err
	}
	l, err := lab.Open(d, g.Logger())
	if err != nil {
		return nil, BadInput(err)
	}
	return l, nil
}

// labCmd finishes a `drover lab` command that acts on an existing lab: it
// adds --dir and opens the lab (bad input when there is none) before act
// runs. Flag checks that need no lab belong in the command's PreRunE: they
// are then reported before a missing lab is.
func labCmd(g *Globals, cmd *cobra.Command, act func(cmd *cobra.Command, l *lab.Lab, args []string) error) *cobra.Command {
	var dir string
	labDirFlag(cmd, &dir)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := openLab(g, dir)
		if err != nil {
			return err
		}
		return act(cmd, l, args)
	}
	return cmd
}

func labWriteJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// labPrint writes v as JSON under --output json, else has text print it.
func labPrint(g *Globals, v any, text func()) error {
	if g.JSON() {
		return labWriteJSON(g, v)
	}
	text()
	return nil
}

func newLabUpCmd(g *Globals) *cobra.Command {
	var planFile, dir string
	var timeScale float64
	var basePort int
	var timeout time.Duration
	var workers bool
	cmd := &cobra.Command{
		Use:   "up --plan FILE [--dir DIR] [--workers]",
		Short: "Create the lab from a plan and start its primary site in order",
		Long: `Creates the lab dir (topology, every site's installation manifest, the
primary's profiles and databases), starts the front door and every server of
the primary site in start-up order. The secondary and sandbox sites exist but
run nothing and hold no data until drover restores them. Running up again
starts whatever is stopped. With --workers, every site also gets its drover
worker, a process of its own polling the site's queue at the Temporal of
--address (drover lab disaster kills it with the site; restore-site starts it
again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile == "" {
				return BadInputf("--plan is required")
			}
			p, _, err := loadCheckedPlan(g, planFile)
			if err != nil {
				return err
			}
			t, planDir, err := labplan.Topology(p, basePort, timeScale)
			if err != nil {
				return BadInputf("%s: %v", planFile, err)
			}
			if dir == "" && os.Getenv(labDirEnv) == "" && planDir != "" {
				if dir, err = drivers.ExpandPath(planDir); err != nil {
					return BadInputf("%s: primary site labDir: %v", planFile, err)
				}
			}
			d, err := resolveLabDir(dir)
			if err != nil {
				return err
			}
			l, err := lab.Create(d, t, g.Logger())
			if err != nil {
				return BadInput(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			begin := time.Now()
			if err := l.Up(ctx); err != nil {
				return err
			}
			if workers {
				c, err := g.Dial()
				if err != nil {
					return err
				}
				defer c.Close()
				if err := startSiteWorkers(cmd.Context(), g, c, l); err != nil {
					return err
				}
			}
			st, err := l.StatusAll(cmd.Context())
			if err != nil {
				return err
			}
			return labPrint(g, st, func() {
				fmt.Fprintf(g.Stdout, "lab %s is up in %s (%s): site %s, front door %s\n",
					t.Name, l.Dir, time.Since(begin).Round(time.Millisecond), t.Sites[0].Name, t.FrontDoor.Addr())
				printLabStatus(g, st)
				fmt.Fprintf(g.Stdout, "\nexport %s=%s   # then: drover lab load --rate 40 --duration 1m\n", labDirEnv, l.Dir)
			})
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the lab's plan (e.g. examples/plans/lab.yaml)")
	labDirFlag(cmd, &dir)
	cmd.Flags().Float64Var(&timeScale, "time-scale", -1, "scale of realistic start-up times (1 = minutes; default: the plan's timeScale, else 0.05)")
	cmd.Flags().IntVar(&basePort, "base-port", 0, "first port (default: the plan's basePort)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long the start may take")
	cmd.Flags().BoolVar(&workers, "workers", false, "also start one drover worker process per site, against --address")
	return cmd
}

func newLabDownCmd(g *Globals) *cobra.Command {
	var purge bool
	cmd := labCmd(g, &cobra.Command{
		Use:   "down",
		Short: "Kill every lab process (servers of every site, the front door)",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		if err := l.Down(); err != nil {
			return err
		}
		if purge {
			if err := os.RemoveAll(l.Dir); err != nil {
				return err
			}
		}
		return labPrint(g, map[string]any{"dir": l.Dir, "down": true, "purged": purge}, func() {
			fmt.Fprintf(g.Stdout, "lab %s is down%s\n", l.Dir, map[bool]string{true: " and removed", false: ""}[purge])
		})
	})
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the lab dir")
	return cmd
}

func newLabStatusCmd(g *Globals) *cobra.Command {
	return labCmd(g, &cobra.Command{
		Use:   "status",
		Short: "Every server of every site: state, pid, instance and message counts",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		st, err := l.StatusAll(cmd.Context())
		if err != nil {
			return err
		}
		return labPrint(g, st, func() { printLabStatus(g, st) })
	})
}

func printLabStatus(g *Globals, st lab.LabStatus) {
	fmt.Fprintf(g.Stdout, "lab %s (%s); front door %s: %s, routed to %s\n", st.Name, st.Dir, st.FrontDoor.Address, st.FrontDoor.State, st.FrontDoor.Site)
	for _, s := range st.Sites {
		fmt.Fprintf(g.Stdout, "\nsite %s (%s, %s), data: %s\n", s.Name, s.Role, s.Host, s.Data)
		idle := true
		for _, sv := range s.Servers {
			idle = idle && sv.State == lab.StatusStopped && sv.PID == 0
		}
		if idle {
			fmt.Fprintf(g.Stdout, "  no server runs (%d configured)\n", len(s.Servers))
			continue
		}
		tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SERVER\tROLE\tSTATE\tPID\tADDRESS\tWORK")
		for _, sv := range s.Servers {
			role := string(sv.Role)
			if sv.Product != "" {
				role += "/" + sv.Product
			}
			pid := ""
			if sv.PID > 0 {
				pid = strconv.Itoa(sv.PID)
			}
			work := serverWork(sv)
			if sv.State != lab.StatusRunning && sv.Detail != "" && sv.PID > 0 {
				work = sv.Detail
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", sv.Server, role, sv.State, pid, sv.Address, work)
		}
		tw.Flush()
		if c := s.Counts; c != nil {
			fmt.Fprintf(g.Stdout, "  instances: %s; steps %d; monitored %d; messages: %s; in doubt %d\n",
				joinCounts(c.Instances), c.Steps, c.Monitored, joinCounts(c.Messages), c.InDoubt)
		}
	}
}

func serverWork(sv lab.ServerStatus) string {
	if sv.Stats == nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"orders", "processed", "delivered", "commits", "deadLettered"} {
		if v, ok := sv.Stats[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", k, v))
		}
	}
	if tx, ok := sv.Stats["transactions"].(map[string]any); ok {
		if v, ok := tx["inDoubt"]; ok && fmt.Sprint(v) != "0" {
			parts = append(parts, fmt.Sprintf("in doubt %v", v))
		}
		if v, ok := tx["recovered"]; ok && fmt.Sprint(v) != "0" {
			parts = append(parts, fmt.Sprintf("recovered %v", v))
		}
	}
	if q, ok := sv.Stats["quiesced"].(bool); ok && q {
		parts = append(parts, "QUIESCED")
	}
	return strings.Join(parts, ", ")
}

func joinCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func newLabLoadCmd(g *Globals) *cobra.Command {
	var o lab.LoadOptions
	cmd := labCmd(g, &cobra.Command{
		Use:   "load --rate R --duration D",
		Short: "Send OrderHandling orders through the front door at a steady rate",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if o.Rate <= 0 {
				return BadInputf("--rate must be positive")
			}
			if o.Duration <= 0 {
				return BadInputf("--duration must be positive")
			}
			return nil
		},
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		rep, err := l.RunLoad(cmd.Context(), o)
		if err != nil {
			return err
		}
		return labPrint(g, rep, func() {
			fmt.Fprintln(g.Stdout, rep.String())
			for msg, n := range rep.Errors {
				fmt.Fprintf(g.Stdout, "  %d× %s\n", n, msg)
			}
		})
	})
	cmd.Flags().Float64Var(&o.Rate, "rate", 0, "new orders per second")
	cmd.Flags().DurationVar(&o.Duration, "duration", 0, "how long to send orders")
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", 32, "orders in flight at most")
	return cmd
}

// primarySite is the name of the lab's primary site.
func primarySite(l *lab.Lab) string {
	p, _ := l.Topo.SiteByRole(lab.SitePrimary)
	return p.Name
}

// serverSite is the site a command acts on: --site, else where the server
// runs, else the primary.
func serverSite(l *lab.Lab, site, server string) string {
	if site != "" {
		return site
	}
	if s := l.RunningSite(server); s != "" {
		return s
	}
	return primarySite(l)
}

// labTarget is what start and stop act on: with --all every server of the
// site (--site, else the primary) and no server; else the one server named
// and its site as serverSite picks it.
func labTarget(l *lab.Lab, site string, all bool, args []string) (string, string, error) {
	if all {
		if len(args) > 0 {
			return "", "", BadInputf("give a server or --all, not both")
		}
		if site == "" {
			site = primarySite(l)
		}
		return site, "", nil
	}
	if len(args) == 0 {
		return "", "", BadInputf("name a server, or give --all")
	}
	return serverSite(l, site, args[0]), args[0], nil
}

func newLabStartCmd(g *Globals) *cobra.Command {
	var site string
	var all bool
	cmd := labCmd(g, &cobra.Command{
		Use:   "start [SERVER] [--site S] [--all]",
		Short: "Start one server, or with --all every server of a site in order",
		Args:  cobra.MaximumNArgs(1),
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		site, server, err := labTarget(l, site, all, args)
		if err != nil {
			return err
		}
		if all {
			if err := l.StartSite(cmd.Context(), site); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "site %s started\n", site)
			return nil
		}
		res, err := l.Start(cmd.Context(), site, server)
		if err != nil {
			return err
		}
		return labPrint(g, res, func() {
			if res.AlreadyRunning {
				fmt.Fprintf(g.Stdout, "%s is already running at %s (pid %d)\n", server, site, res.PID)
			} else {
				fmt.Fprintf(g.Stdout, "%s started at %s (pid %d) in %s\n", server, site, res.PID, res.Took.Round(time.Millisecond))
			}
		})
	})
	cmd.Flags().StringVar(&site, "site", "", "site (default: where it runs, else the primary)")
	cmd.Flags().BoolVar(&all, "all", false, "start every server of the site in order")
	return cmd
}

func newLabStopCmd(g *Globals) *cobra.Command {
	var site string
	var immediate, all bool
	var timeout time.Duration
	cmd := labCmd(g, &cobra.Command{
		Use:   "stop [SERVER] [--site S] [--immediate] [--all]",
		Short: "Stop one server, or with --all every server of a site in reverse order",
		Args:  cobra.MaximumNArgs(1),
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		site, server, err := labTarget(l, site, all, args)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		if all {
			if err := l.StopSite(ctx, site, immediate); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "site %s stopped\n", site)
			return nil
		}
		res, err := l.Stop(ctx, site, server, immediate)
		if err != nil {
			return err
		}
		return labPrint(g, res, func() {
			if res.AlreadyStopped {
				fmt.Fprintf(g.Stdout, "%s is not running at %s\n", server, site)
			} else {
				fmt.Fprintf(g.Stdout, "%s stopped at %s in %s\n", server, site, res.Took.Round(time.Millisecond))
			}
		})
	})
	cmd.Flags().StringVar(&site, "site", "", "site (default: where it runs, else the primary)")
	cmd.Flags().BoolVar(&immediate, "immediate", false, "SIGKILL instead of a graceful stop")
	cmd.Flags().BoolVar(&all, "all", false, "stop every server of the site")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long a graceful stop may take")
	return cmd
}

func newLabSignalCmd(g *Globals, name, short string, sig syscall.Signal) *cobra.Command {
	var site string
	cmd := labCmd(g, &cobra.Command{
		Use:   name + " SERVER [--site S]",
		Short: short,
		Args:  cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		server := args[0]
		site := serverSite(l, site, server)
		pid, err := l.Signal(site, server, sig)
		if err != nil {
			return err
		}
		return labPrint(g, map[string]any{"server": server, "site": site, "pid": pid, "signal": sig.String()}, func() {
			fmt.Fprintf(g.Stdout, "%s at %s (pid %d): %s\n", server, site, pid, sig)
		})
	})
	cmd.Flags().StringVar(&site, "site", "", "site (default: where it runs)")
	return cmd
}

func newLabDisasterCmd(g *Globals) *cobra.Command {
	var site string
	cmd := labCmd(g, &cobra.Command{
		Use:   "disaster --site NAME",
		Short: "Destroy a site: kill every server there and its drover worker, and make its data root unreachable",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if site == "" {
				return BadInputf("--site is required")
			}
			return nil
		},
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		at, err := l.Disaster(site)
		if err != nil {
			return err
		}
		return labPrint(g, map[string]any{"site": site, "at": at}, func() {
			fmt.Fprintf(g.Stdout, "site %s destroyed at %s: every server and its worker killed, data root unreachable\n", site, at.Format(time.RFC3339Nano))
		})
	})
	cmd.Flags().StringVar(&site, "site", "", "the site to destroy")
	return cmd
}

func newLabRestoreSiteCmd(g *Globals) *cobra.Command {
	var worker bool
	cmd := labCmd(g, &cobra.Command{
		Use:   "restore-site NAME [--worker]",
		Short: "Bring a destroyed site back with the data it had (no server is started)",
		Args:  cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		if err := l.RestoreSite(args[0]); err != nil {
			return err
		}
		if worker {
			argv, err := siteWorkerArgv(g, args[0])
			if err != nil {
				return err
			}
			if _, err := l.StartWorker(args[0], argv); err != nil {
				return err
			}
		}
		fmt.Fprintf(g.Stdout, "site %s is back (its servers are stopped; its worker runs: %v)\n", args[0], l.WorkerRunning(args[0]))
		return nil
	})
	cmd.Flags().BoolVar(&worker, "worker", false, "start the site's drover worker again, against --address")
	return cmd
}

func newLabRouteCmd(g *Globals) *cobra.Command {
	return labCmd(g, &cobra.Command{
		Use:   "route [SITE]",
		Short: "Show or change the site the front door sends orders to",
		Args:  cobra.MaximumNArgs(1),
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		if len(args) == 0 {
			site, err := l.CurrentRoute(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(g.Stdout, site)
			return nil
		}
		prev, err := l.Route(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "front door: %s → %s\n", prev, args[0])
		return nil
	})
}

func newLabProbeCmd(g *Globals) *cobra.Command {
	var site, server string
	var stuckAfter, timeout time.Duration
	cmd := labCmd(g, &cobra.Command{
		Use:   "probe [LEVEL...] [--site S]",
		Short: "Run verification levels (system application instance consistency sca monitoring)",
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		site := site
		if site == "" {
			var err error
			if site, err = l.CurrentRoute(cmd.Context()); err != nil {
				return err
			}
		}
		levels := args
		if len(levels) == 0 {
			levels = lab.Levels
		}
		for _, level := range levels {
			if !slices.Contains(lab.Levels, level) {
				return BadInputf("no verification level %q (levels: %s)", level, strings.Join(lab.Levels, ", "))
			}
		}
		var results []lab.ProbeResult
		failed := 0
		for _, level := range levels {
			res, err := l.Probe(cmd.Context(), site, level, lab.ProbeOptions{Server: server, StuckAfter: stuckAfter, Timeout: timeout})
			if err != nil {
				res = lab.ProbeResult{Level: level, Summary: err.Error(), Site: site}
			}
			if !res.Passed {
				failed++
			}
			results = append(results, res)
		}
		err := labPrint(g, results, func() {
			for _, r := range results {
				mark := "PASS"
				if !r.Passed {
					mark = "FAIL"
				}
				fmt.Fprintf(g.Stdout, "%s %-12s %s\n", mark, r.Level, r.Summary)
				for _, p := range r.Problems {
					fmt.Fprintf(g.Stdout, "     - %s\n", p)
				}
			}
		})
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d levels failed at site %s", failed, len(results), site)
		}
		return nil
	})
	cmd.Flags().StringVar(&site, "site", "", "site (default: where the front door points)")
	cmd.Flags().StringVar(&server, "server", "", "server that runs the checks (default: the dmgr)")
	cmd.Flags().DurationVar(&stuckAfter, "stuck-after", 0, "instance level: how long without pending work is stuck (default 1m)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "per-level timeout (default 30s)")
	return cmd
}

// newLabLedgerCmd resolves the lab dir but does not open the lab:
// lab.CheckLedger reads the dir itself.
func newLabLedgerCmd(g *Globals) *cobra.Command {
	var dir, site, at string
	cmd := &cobra.Command{
		Use:   "ledger --site S [--at TIME]",
		Short: "Check a site's data against the ledger: every step committed before TIME present, none twice",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if site == "" {
				return BadInputf("--site is required")
			}
			d, err := resolveLabDir(dir)
			if err != nil {
				return err
			}
			instant := time.Now()
			if at != "" {
				if instant, err = time.Parse(time.RFC3339Nano, at); err != nil {
					return BadInputf("--at: %v (want RFC 3339, e.g. 2026-01-02T15:04:05Z)", err)
				}
			}
			rep, err := lab.CheckLedger(d, site, instant)
			if err != nil {
				return err
			}
			err = labPrint(g, rep, func() {
				fmt.Fprintln(g.Stdout, rep.String())
				for _, m := range rep.Missing {
					fmt.Fprintf(g.Stdout, "  missing: %s step %d %s (%s) committed %s at %s\n", m.Instance, m.Seq, m.Name, m.Template, m.At.Format(time.RFC3339Nano), m.Site)
				}
				for _, dup := range rep.Duplicates {
					fmt.Fprintf(g.Stdout, "  duplicate: %s\n", dup)
				}
			})
			if err != nil {
				return err
			}
			if !rep.OK() {
				return fmt.Errorf("site %s does not hold what the ledger says it must", site)
			}
			return nil
		},
	}
	labDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&site, "site", "", "site whose data is checked")
	cmd.Flags().StringVar(&at, "at", "", "capture instant (RFC 3339; default now)")
	return cmd
}

func newLabBenchCmd(g *Globals) *cobra.Command {
	var o lab.BenchOptions
	cmd := labCmd(g, &cobra.Command{
		Use:   "bench",
		Short: "Measure the running lab's sustained process steps per second beside raw SQLite",
		Args:  cobra.NoArgs,
	}, func(cmd *cobra.Command, l *lab.Lab, args []string) error {
		rep, err := l.Bench(cmd.Context(), o)
		if err != nil {
			return err
		}
		return labPrint(g, rep, func() { fmt.Fprintln(g.Stdout, rep.String()) })
	})
	cmd.Flags().Float64Var(&o.Rate, "rate", 100, "orders per second offered")
	cmd.Flags().DurationVar(&o.Warmup, "warmup", 3*time.Second, "load before measuring")
	cmd.Flags().DurationVar(&o.Duration, "duration", 15*time.Second, "measured window")
	return cmd
}

// newLabServeCmd is how the launcher runs a lab server: the drover binary
// re-executed as "drover lab serve ...". Not for people.
func newLabServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "serve",
		Short:              "Run one lab server (used by the lab's launcher)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			os.Exit(lab.ServeMain(args))
			return nil
		},
	}
}
