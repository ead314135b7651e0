package starter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

// scheduleMargin multiplies the longest recent backup: the interval leaves
// room for a backup twice as slow as any seen lately.
const scheduleMargin = 2

// minInterval is the shortest interval drover schedules.
const minInterval = 10 * time.Second

// backupInterval applies the SAN seed's rule: the interval must be shorter
// than the RPO minus the time a backup takes to capture and ship. The time
// is the longest of the recent backups in the catalog, with a margin.
func backupInterval(p *plan.Plan, stats contract.StatsResult) (time.Duration, string, error) {
	var took time.Duration
	for _, d := range stats.RecentDurations {
		took = max(took, d)
	}
	reserve := took * scheduleMargin
	interval := p.RPO.D() - reserve
	why := fmt.Sprintf("RPO %s minus %d × the longest recent backup (%s)", p.RPO, scheduleMargin, took.Round(time.Millisecond))
	if len(stats.RecentDurations) == 0 {
		// No backup yet: keep a quarter of the RPO for the first ones.
		reserve = p.RPO.D() / 4
		interval = p.RPO.D() - reserve
		why = fmt.Sprintf("RPO %s minus a quarter for the first backups (none measured yet)", p.RPO)
	}
	if cap := p.Storage.Schedule.Interval.D(); cap > 0 && cap < interval {
		interval = cap
		why += fmt.Sprintf(", capped by storage.schedule.interval %s", cap)
	}
	if interval < minInterval {
		return 0, why, fmt.Errorf("the RPO of %s cannot be met: %s leaves %s between backups (at least %s needed)",
			p.RPO, why, interval.Round(time.Millisecond), minInterval)
	}
	return interval.Round(time.Second), why, nil
}

// loadPlanAndStore loads and checks a plan file and opens its store: what
// every command that reads the store without a workflow starts with.
func loadPlanAndStore(g *Globals, file string) (*plan.Plan, *catalog.Store, error) {
	p, _, err := loadCheckedPlan(g, file)
	if err != nil {
		return nil, nil, err
	}
	st, err := openPlanStore(p)
	if err != nil {
		return nil, nil, err
	}
	return p, st, nil
}

// planStoreCmd makes a `drover plan` command on one plan FILE: run gets
// the plan loaded and checked and its store opened (loadPlanAndStore).
func planStoreCmd(g *Globals, use, short string, run func(ctx context.Context, file string, p *plan.Plan, st *catalog.Store) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, st, err := loadPlanAndStore(g, args[0])
			if err != nil {
				return err
			}
			return run(cmd.Context(), args[0], p, st)
		},
	}
}

// openPlanStore opens the plan's recovery point store. Settings the plan got
// wrong are bad input naming the file; a store that is not there (an NFS
// mount missing) is a failure of the run.
func openPlanStore(p *plan.Plan) (*catalog.Store, error) {
	if _, err := catalog.DecodeSettings(p.Storage.Store); err != nil {
		return nil, BadInputf("%s: %v", p.Source, err)
	}
	if probs := storeEnvProblems(p); len(probs) > 0 {
		return nil, BadInput(probs)
	}
	st, _, err := catalog.OpenFromSettings(p.Storage.Store)
	if err != nil {
		return nil, fmt.Errorf("plan %s: recovery point store: %w", p.Name, err)
	}
	return st, nil
}

// ensureSchedule creates or updates a schedule so re-applying a plan keeps
// one schedule per plan.
func ensureSchedule(ctx context.Context, c client.Client, opts client.ScheduleOptions) error {
	h := c.ScheduleClient().GetHandle(ctx, opts.ID)
	if _, err := h.Describe(ctx); err == nil {
		return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &opts.Spec
			s.Action = opts.Action
			s.Policy.Overlap = opts.Overlap
			s.State.Paused = false
			// Schedules made before they carried the plan's search
			// attributes get them.
			return &client.ScheduleUpdate{Schedule: &s, TypedSearchAttributes: &opts.TypedSearchAttributes}, nil
		}})
	}
	_, err := c.ScheduleClient().Create(ctx, opts)
	return err
}

// scheduleBackups creates or updates the plan's backup schedule (and the
// daily validation when the plan asks for it).
func scheduleBackups(ctx context.Context, g *Globals, c client.Client, p *plan.Plan, st *catalog.Store) (time.Duration, string, error) {
	stats, err := activities.Stats(st, p.Name)
	if err != nil {
		return 0, "", err
	}
	interval, why, err := backupInterval(p, stats)
	if err != nil {
		return 0, why, err
	}
	in := workflows.BackupInput{Plan: *p, Reason: "scheduled", Validate: p.Storage.Schedule.Validate == "every"}
	err = ensureSchedule(ctx, c, client.ScheduleOptions{
		ID:                    contract.BackupScheduleID(p.Name),
		TypedSearchAttributes: workflows.ScheduleSearchAttributes(p.Name, contract.KindBackup),
		Spec:                  client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: interval}}},
		Action: &client.ScheduleWorkflowAction{
			ID: contract.BackupScheduleRunID(p.Name), Workflow: workflows.BackupWorkflow, Args: []any{in},
			TaskQueue: contract.OrchestratorQueue, TypedSearchAttributes: workflows.StartSearchAttributes(p.Name, contract.KindBackup),
		},
		// A backup still running when the next is due is not doubled up.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err != nil {
		return 0, why, fmt.Errorf("backup schedule of %s: %w", p.Name, err)
	}
	if p.Storage.Schedule.Validate == "daily" && p.Sites.Sandbox != nil {
		err = ensureSchedule(ctx, c, client.ScheduleOptions{
			ID:                    contract.ValidateScheduleID(p.Name),
			TypedSearchAttributes: workflows.ScheduleSearchAttributes(p.Name, contract.KindValidate),
			Spec:                  client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
			Action: &client.ScheduleWorkflowAction{
				ID: contract.ValidateScheduleRunID(p.Name), Workflow: workflows.ValidateWorkflow, Args: []any{workflows.ValidateInput{Plan: *p}},
				TaskQueue: contract.OrchestratorQueue, TypedSearchAttributes: workflows.StartSearchAttributes(p.Name, contract.KindValidate),
			},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		})
		if err != nil {
			return 0, why, fmt.Errorf("validation schedule of %s: %w", p.Name, err)
		}
	}
	if err := scheduleColdBackups(ctx, g, c, p); err != nil {
		return 0, why, err
	}
	g.Logger().Info("backup schedule set", zap.String("plan", p.Name), zap.Duration("every", interval), zap.String("why", why))
	return interval, why, nil
}

// scheduleColdBackups creates or updates the plan's schedule of cold
// (offline) backups, or removes it when the plan no longer asks for one.
func scheduleColdBackups(ctx context.Context, g *Globals, c client.Client, p *plan.Plan) error {
	id := contract.ColdScheduleID(p.Name)
	cold := p.Storage.Schedule.Cold
	if cold == nil {
		if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove the cold backup schedule of %s: %w", p.Name, err)
		}
		return nil
	}
	err := ensureSchedule(ctx, c, client.ScheduleOptions{
		ID:   id,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cold.Every.D()}}},
		Action: &client.ScheduleWorkflowAction{
			ID: contract.ColdScheduleRunID(p.Name), Workflow: workflows.ColdBackupWorkflow, Args: []any{workflows.ColdBackupInput{Plan: *p}},
			TaskQueue: contract.OrchestratorQueue, TypedSearchAttributes: workflows.StartSearchAttributes(p.Name, contract.KindColdBackup),
		},
		// A cold backup still waiting at its gate is not doubled up.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err != nil {
		return fmt.Errorf("cold backup schedule of %s: %w", p.Name, err)
	}
	g.Logger().Info("cold backup schedule set", zap.String("plan", p.Name), zap.Duration("every", cold.Every.D()), zap.Bool("approve", cold.Approve))
	return nil
}

func fileDigest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// validateForEnable is the lifecycle's "validated" step: the sites' data
// roots (or the folders they go in) found from where drover runs (a local
// os.Stat: it says nothing of a remote site's worker), installation
// manifests matching, the store writable. The drivers' settings were
// accepted when the plan loaded. Each site check is passed to seen (when
// not nil), passed or failed, with its evidence.
func validateForEnable(ctx context.Context, g *Globals, p *plan.Plan, st *catalog.Store, seen func(contract.CheckOutput)) []string {
	var problems []string
	if err := st.CheckWritable(p.Name); err != nil {
		problems = append(problems, fmt.Sprintf("storage.store: %v", err))
	}
	for _, role := range []string{"primary", "secondary"} {
		s, ok := p.Site(role)
		if !ok {
			continue
		}
		// The data root itself may not exist yet at a secondary that holds
		// nothing until a restore; the folder (mount) it goes in must.
		if raw, ok := s.Settings["dataRoot"].(string); ok {
			if _, err := expandAndStat(raw); err != nil {
				if _, perr := expandAndStat(filepath.Dir(raw)); perr != nil {
					problems = append(problems, fmt.Sprintf("sites.%s (%s): data root not reachable: %v", role, s.Name, err))
				}
			}
		}
	}
	acts := activities.New(builtin.Registry(g.Logger()), g.Logger())
	ref := contract.StoreRef{Plan: p.Name, Settings: p.Storage.Store}
	primary := contract.SiteRef{Role: "primary", Site: *p.Sites.Primary}
	secondary := contract.SiteRef{Role: "secondary", Site: *p.Sites.Secondary}
	if p.SiteChecks != nil {
		// Seed 000 §3, checked from this host as the secondary would be.
		res, err := acts.CheckSite(ctx, contract.SiteCheckInput{Plan: p.Name, Site: secondary, Checks: *p.SiteChecks})
		if err != nil {
			problems = append(problems, fmt.Sprintf("siteChecks: %v", err))
		}
		for _, c := range res.Checks {
			if seen != nil {
				seen(c)
			}
			if !c.Result.Passed {
				problems = append(problems, fmt.Sprintf("siteChecks: %s at %s: %s", c.Name, secondary.Site.Name, c.Result.Summary))
			}
		}
	}
	res, err := acts.CompareInstallation(ctx, contract.InstallationInput{Store: ref, Reference: primary, Target: secondary})
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("installation manifests: %v", err))
	case !res.Match:
		for _, d := range res.Differences {
			problems = append(problems, "installation manifests differ: "+d)
		}
	default:
		// Keep the primary's manifest in the store: a failover after the
		// primary is lost compares against this copy.
		if err := acts.RecordInstallation(ctx, contract.InstallationInput{Store: ref, Reference: primary}); err != nil {
			problems = append(problems, fmt.Sprintf("record the primary's installation manifest: %v", err))
		}
	}
	return problems
}

func expandAndStat(raw string) (os.FileInfo, error) {
	path, err := drivers.ExpandPath(raw)
	if err != nil {
		return nil, err
	}
	return os.Stat(path)
}

func newPlanApplyCmd(g *Globals) *cobra.Command {
	return planStoreCmd(g, "apply FILE",
		"Register a plan: defined → validated → enabled (RPO monitor, then the backup schedule)",
		func(ctx context.Context, file string, p *plan.Plan, st *catalog.Store) error {
			if err := checkLocalEnv(g, p, file); err != nil {
				return err
			}
			now := time.Now()
			l, err := st.ReadLifecycle(p.Name)
			if err != nil {
				return err
			}
			if l.State == catalog.StateDefined {
				if _, err := st.Transition(p.Name, catalog.StateDefined, "", "applied "+file, now); err != nil {
					return err
				}
			}
			fmt.Fprintf(g.Stdout, "plan %s: defined\n", p.Name)
			// Every site check by name with its evidence, as the seed's
			// checklist would record it.
			printCheck := func(c contract.CheckOutput) {
				outcome := "passed"
				if !c.Result.Passed {
					outcome = "FAILED"
				}
				fmt.Fprintf(g.Stdout, "plan %s: site check %s at %s: %s: %s (%s)\n", p.Name, c.Name, p.Sites.Secondary.Name,
					outcome, c.Result.Summary, c.Result.Evidence.Action)
			}
			if problems := validateForEnable(ctx, g, p, st, printCheck); len(problems) > 0 {
				for _, pr := range problems {
					fmt.Fprintf(g.Stderr, "%s: %s\n", file, pr)
				}
				return fmt.Errorf("plan %s not validated: %d problems", p.Name, len(problems))
			}
			if _, err := st.Transition(p.Name, catalog.StateValidated, "", "data roots found, installations match, store writable (digest "+fileDigest(file)+")", now); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "plan %s: validated (data roots found from this host, installations match, store writable, driver settings accepted)\n", p.Name)

			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			// The secondary role first: the side that watches the points.
			if err := stack.StartMonitor(ctx, c, p); err != nil {
				return fmt.Errorf("start the RPO monitor: %w", err)
			}
			if _, err := st.Transition(p.Name, catalog.StateEnabled, "secondary", "RPO monitor "+contract.MonitorID(p.Name), time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "plan %s: enabled as secondary (RPO monitor %s)\n", p.Name, contract.MonitorID(p.Name))
			interval, why, err := scheduleBackups(ctx, g, c, p, st)
			if err != nil {
				return err
			}
			if _, err := st.Transition(p.Name, catalog.StateEnabled, "primary", fmt.Sprintf("backups every %s", interval), time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "plan %s: enabled as primary (backups every %s: %s)\n", p.Name, interval, why)
			return nil
		})
}

func newPlanDisableCmd(g *Globals) *cobra.Command {
	return planStoreCmd(g, "disable FILE",
		"Stop a plan's backup schedule and RPO monitor",
		func(ctx context.Context, _ string, p *plan.Plan, st *catalog.Store) error {
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			var errs []error
			for _, id := range []string{contract.BackupScheduleID(p.Name), contract.ValidateScheduleID(p.Name), contract.ColdScheduleID(p.Name)} {
				if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil && !isNotFound(err) {
					errs = append(errs, fmt.Errorf("delete schedule %s: %w", id, err))
				}
			}
			if err := c.CancelWorkflow(ctx, contract.MonitorID(p.Name), ""); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("stop the RPO monitor: %w", err))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if _, err := st.Transition(p.Name, catalog.StateDisabled, "", "schedule deleted, monitor stopped", time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "plan %s: disabled (no backups scheduled, RPO monitor stopped)\n", p.Name)
			return nil
		})
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// planStatus is what `drover plan status` shows.
type planStatus struct {
	Plan      string               `json:"plan"`
	Lifecycle catalog.Lifecycle    `json:"lifecycle"`
	Schedule  string               `json:"schedule,omitempty"`
	NextRuns  []time.Time          `json:"nextRuns,omitempty"`
	Paused    bool                 `json:"paused,omitempty"`
	RPO       *workflows.RPOStatus `json:"rpo,omitempty"`
}

func newPlanStatusCmd(g *Globals) *cobra.Command {
	return planStoreCmd(g, "status FILE",
		"Show a plan's lifecycle state, its backup schedule and where it stands against its RPO",
		func(ctx context.Context, _ string, p *plan.Plan, st *catalog.Store) error {
			lc, err := st.ReadLifecycle(p.Name)
			if err != nil {
				return err
			}
			out := planStatus{Plan: p.Name, Lifecycle: lc}
			if c, err := g.Dial(); err == nil {
				defer c.Close()
				if d, err := c.ScheduleClient().GetHandle(ctx, contract.BackupScheduleID(p.Name)).Describe(ctx); err == nil {
					out.Schedule = contract.BackupScheduleID(p.Name)
					out.Paused = d.Schedule.State.Paused
					if !out.Paused {
						out.NextRuns = d.Info.NextActionTimes
					}
				}
				if v, err := c.QueryWorkflow(ctx, contract.MonitorID(p.Name), "", contract.QueryRPO); err == nil {
					var rpo workflows.RPOStatus
					if v.Get(&rpo) == nil {
						out.RPO = &rpo
					}
				}
			} else {
				g.Logger().Warn("Temporal not reachable: showing the store only", zap.Error(err))
			}
			if g.Structured() {
				return planWriteJSON(g, out)
			}
			roles := []string{}
			for r, on := range out.Lifecycle.Roles {
				if on {
					roles = append(roles, r)
				}
			}
			slices.Sort(roles)
			fmt.Fprintf(g.Stdout, "plan %s: %s (roles enabled: %s)\n", p.Name, out.Lifecycle.State, orDash(strings.Join(roles, ", ")))
			primary, why := currentPrimary(p, out.Lifecycle)
			fmt.Fprintf(g.Stdout, "primary site: %s (%s)\n", primary, why)
			if out.Schedule != "" {
				state, next := "active", "-"
				if out.Paused {
					state = "paused (drover schedule unpause --plan " + p.Name + ")"
				}
				if len(out.NextRuns) > 0 {
					next = humanTime(out.NextRuns[0])
				}
				fmt.Fprintf(g.Stdout, "backup schedule %s: %s, next backup %s\n", out.Schedule, state, next)
			}
			if r := out.RPO; r != nil {
				fmt.Fprintf(g.Stdout, "RPO %s: %s, the point a failover would use: %s (%s), age %s (breaches %d)\n", r.RPO, r.Status, r.PointID,
					trustOr(r.Trust), humanDuration(r.Age.Round(time.Second)), r.Breaches)
				if r.ValidatedPointID != "" && r.ValidatedPointID != r.PointID {
					fmt.Fprintf(g.Stdout, "newest validated point: %s, age %s\n", r.ValidatedPointID, humanDuration(r.ValidatedAge.Round(time.Second)))
				}
			}
			return nil
		})
}

func newBackupScheduleCmd(g *Globals) *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "schedule --plan F",
		Short: "Create or update the plan's Temporal Schedule of backups (interval derived from the RPO)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, st, err := loadPlanAndStore(g, planFile)
			if err != nil {
				return err
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			interval, why, err := scheduleBackups(cmd.Context(), g, c, p, st)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "schedule %s: a backup every %s (%s), overlapping runs skipped\n", contract.BackupScheduleID(p.Name), interval, why)
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (required)")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}

// currentPrimary is the site the plan's cell runs at now, and why drover
// believes so: what the last failover or failback recorded in the store
// (reprotect), else the plan's primary.
func currentPrimary(p *plan.Plan, lc catalog.Lifecycle) (site, why string) {
	if lc.Primary != "" {
		return lc.Primary, "recorded by the last failover or failback"
	}
	return siteName(p.Sites.Primary), "the plan's primary; no failover recorded"
}

func trustOr(trust string) string {
	if trust == "" {
		return "validated"
	}
	return trust
}

func siteName(s *plan.Site) string {
	if s == nil {
		return "?"
	}
	return s.Name
}
