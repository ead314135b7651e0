package starter

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/workflows"
)

// grammar gives the command tree the noun-verb form of the temporal and
// velero CLIs (drover NOUN VERB): runs, points, plan, schedule, gates,
// failover, failback, drill, backup. The verbs drover had before stay
// where they were, as documented aliases, so scripts keep working.
func grammar(root *cobra.Command, g *Globals) {
	sub := func(name string) *cobra.Command {
		for _, c := range root.Commands() {
			if c.Name() == name {
				return c
			}
		}
		return nil
	}
	// failover|failback|drill start: the same command under its verb.
	for _, name := range []string{"failover", "failback", "drill"} {
		top := sub(name)
		if top == nil {
			continue
		}
		start := fresh(root, g, name)
		start.Use = strings.Replace(start.Use, name, "start", 1)
		top.Use = name + " start --plan F … (or the old form: drover " + strings.TrimPrefix(top.Use, name+" ") + ")"
		top.AddCommand(start)
	}
	if backup := sub("backup"); backup != nil {
		for _, c := range backup.Commands() {
			if c.Name() == "run" {
				c.Aliases = append(c.Aliases, "create")
			}
		}
	}
	if p := sub("plan"); p != nil {
		p.AddCommand(newPlanListCmd(g))
	}
	runs := &cobra.Command{Use: "runs", Short: "Runs of drover's workflows: list, describe (status), report", Args: cobra.NoArgs}
	describe := newRunsDescribeCmd(g)
	report := fresh(root, g, "report")
	report.Short = "The report of a finished run (same as drover report)"
	runs.AddCommand(newRunsListCmd(g), describe, report)
	root.AddCommand(runs)

	gates := &cobra.Command{Use: "gates", Short: "Gates waiting for people: list, approve", Args: cobra.NoArgs}
	approve := fresh(root, g, "approve")
	gates.AddCommand(newGatesListCmd(g), approve)
	root.AddCommand(gates)
	root.AddCommand(newScheduleCmd(g, root))

	for name, canonical := range map[string]string{"status": "runs describe", "approve": "gates approve", "report": "runs report"} {
		if c := sub(name); c != nil && !strings.Contains(c.Short, "same as") {
			c.Short += " (same as drover " + canonical + ")"
		}
	}
	addCompletions(root, g)
}

// fresh builds another copy of a top-level command from its factory, to
// serve under a noun with the same flags and behaviour.
func fresh(root *cobra.Command, g *Globals, name string) *cobra.Command {
	for _, f := range factories {
		if c := f(g); c.Name() == name {
			return c
		}
	}
	panic("no command " + name) // a programming error caught by the tests
}

// planNameArg reads --plan as a plan file when one is there, else as a plan
// name: commands that only ask Temporal need no file.
func planNameArg(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if st, err := os.Stat(v); err == nil && !st.IsDir() {
		p, err := plan.Load(v)
		if err != nil {
			return "", BadInput(err)
		}
		return p.Name, nil
	}
	if strings.ContainsAny(v, "/\\'\" ") || strings.HasSuffix(v, ".yaml") || strings.HasSuffix(v, ".yml") {
		return "", BadInputf("--plan %s: no such plan file, and not a plan name", v)
	}
	return v, nil
}

// RunRow is one run as `drover runs list` prints it.
type RunRow struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Plan       string    `json:"plan"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Phase      string    `json:"phase,omitempty"`
	Started    time.Time `json:"started"`
	Closed     time.Time `json:"closed,omitzero"`
	Duration   string    `json:"duration,omitempty"`
}

// listRuns lists drover's runs (those with a DroverPlan), newest first,
// then by workflow ID, in every output format alike.
func listRuns(ctx context.Context, c client.Client, planName, kind string, open bool, limit int) ([]RunRow, error) {
	var conds []string
	if planName != "" {
		conds = append(conds, fmt.Sprintf("%s = '%s'", contract.SAPlan.GetName(), planName))
	}
	if kind != "" {
		conds = append(conds, fmt.Sprintf("%s = '%s'", contract.SAKind.GetName(), kind))
	}
	if open {
		conds = append(conds, "ExecutionStatus = 'Running'")
	}
	return listRunsWhere(ctx, c, conds, limit)
}

// listRunsWhere lists drover's runs that meet every condition (visibility
// query terms), newest first, then by workflow ID.
func listRunsWhere(ctx context.Context, c client.Client, conds []string, limit int) ([]RunRow, error) {
	var rows []RunRow
	var token []byte
	dc := converter.GetDefaultDataConverter()
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(conds, " AND "), NextPageToken: token, PageSize: 200})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			sa := e.GetSearchAttributes().GetIndexedFields()
			row := RunRow{
				WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
				Plan: keywordAttr(dc, sa, contract.SAPlan.GetName()), Kind: keywordAttr(dc, sa, contract.SAKind.GetName()),
				Phase: keywordAttr(dc, sa, contract.SAPhase.GetName()), Status: executionStatus(e.GetStatus()),
				Started: e.GetStartTime().AsTime(),
			}
			if row.Plan == "" {
				continue // not a drover run
			}
			if e.GetCloseTime() != nil {
				row.Closed = e.GetCloseTime().AsTime()
				row.Duration = humanDuration(row.Closed.Sub(row.Started).Round(time.Second))
			}
			rows = append(rows, row)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 || (limit > 0 && len(rows) >= limit) {
			break
		}
	}
	slices.SortStableFunc(rows, func(a, b RunRow) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(a.WorkflowID, b.WorkflowID)
	})
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return rows, nil
}

// keywordAttr reads one keyword search attribute, "" when absent.
func keywordAttr(dc converter.DataConverter, fields map[string]*commonpb.Payload, name string) string {
	p, ok := fields[name]
	if !ok {
		return ""
	}
	var s string
	if err := dc.FromPayload(p, &s); err != nil {
		var list []string
		if dc.FromPayload(p, &list) == nil && len(list) > 0 {
			return list[0]
		}
		return ""
	}
	return s
}

func newRunsListCmd(g *Globals) *cobra.Command {
	var planArg, kind string
	var open bool
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--plan P] [--kind K] [--open]",
		Short: "List drover's runs, newest first: workflow and run IDs, kind, status, phase",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := planNameArg(planArg)
			if err != nil {
				return err
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := listRuns(cmd.Context(), c, name, kind, open, limit)
			if err != nil {
				return err
			}
			if rows == nil {
				rows = []RunRow{}
			}
			return g.Print(rows, func(w io.Writer) error {
				if len(rows) == 0 {
					fmt.Fprintln(w, "no runs")
					return nil
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "WORKFLOW ID\tRUN ID\tKIND\tSTATUS\tPHASE\tSTARTED\tTOOK")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.RunID, r.Kind, r.Status, orDash(r.Phase), humanTime(r.Started), orDash(r.Duration))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&planArg, "plan", "", "only runs of this plan (a plan file or a plan name)")
	cmd.Flags().StringVar(&kind, "kind", "", "only runs of this kind (failover, failback, drill, backup, validate, rpo-monitor, …)")
	cmd.Flags().BoolVar(&open, "open", false, "only runs still running")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs (0: all)")
	return cmd
}

func newRunsDescribeCmd(g *Globals) *cobra.Command {
	var watch bool
	var declaration string
	cmd := &cobra.Command{
		Use:   "describe RUN|--declaration D [--watch]",
		Short: "Where a run stands: phase, tiers, transfers, open gates with their checklists and approve commands, steps",
		Long: "RUN is a workflow ID (drover runs list shows them). --watch redraws until the run ends; on a terminal\n" +
			"long captures and restores show bytes, rate and ETA; elsewhere a line is printed when something changes.\n" +
			"--declaration D summarises every run of a declaration (drover failover --site): per plan the run, phase,\n" +
			"open gates, start and end and the RTO so far, with totals.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case declaration != "" && len(args) > 0:
				return BadInputf("give a RUN or --declaration D, not both")
			case declaration == "" && len(args) == 0:
				return BadInputf("give the RUN to describe (drover runs list shows them), or --declaration D")
			case declaration != "":
				if err := checkDeclarationID(declaration); err != nil {
					return err
				}
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			if declaration != "" {
				return showDeclaration(cmd.Context(), g, c, declaration, watch)
			}
			if watch && !g.Structured() {
				return watchRun(cmd.Context(), g, c, args[0], nil)
			}
			s, err := newSnapshotter(g, c)
			if err != nil {
				return err
			}
			snap, err := s.snapshot(cmd.Context(), args[0])
			for watch && err == nil && snap.Status == "running" {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(watchInterval):
				}
				snap, err = s.snapshot(cmd.Context(), args[0])
			}
			if isNotFound(err) {
				return BadInputf("run %s: not found in namespace %s (drover runs list shows the runs)", args[0], g.Namespace)
			}
			if err != nil {
				return fmt.Errorf("status of %s: %w", args[0], err)
			}
			return g.Print(snap, func(w io.Writer) error {
				renderSnapshot(w, snap, time.Now(), false)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw until the run ends")
	cmd.Flags().StringVar(&declaration, "declaration", "", "summarise every run of this declaration (drover failover --site prints its ID)")
	return cmd
}

func newGatesListCmd(g *Globals) *cobra.Command {
	var planArg, declaration string
	cmd := &cobra.Command{
		Use:   "list [--plan P] [--declaration D]",
		Short: "Gates waiting now in running runs, oldest first, with their checklists and approve commands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := planNameArg(planArg)
			if err != nil {
				return err
			}
			if declaration != "" {
				if err := checkDeclarationID(declaration); err != nil {
					return err
				}
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			var gates []GateView
			if declaration == "" {
				gates, err = openGates(cmd.Context(), c, name)
			} else {
				gates, err = declarationGates(cmd.Context(), c, declaration, name)
			}
			if err != nil {
				return err
			}
			return g.Print(gates, func(w io.Writer) error {
				if len(gates) == 0 {
					fmt.Fprintln(w, "no gate is waiting")
					return nil
				}
				now := time.Now()
				var names []string
				for _, gt := range gates {
					fmt.Fprintf(w, "%s:\n", gt.WorkflowID)
					for _, l := range gateLines(gt, now) {
						fmt.Fprintln(w, l)
					}
					if !slices.Contains(names, gt.Name) {
						names = append(names, gt.Name)
					}
				}
				if declaration != "" {
					for _, n := range names {
						fmt.Fprintf(w, "decide %s in every run of the declaration that waits there: drover gates approve --declaration %s --gate %s --as NAME\n", n, declaration, n)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&planArg, "plan", "", "only gates of this plan's runs (a plan file or a plan name)")
	cmd.Flags().StringVar(&declaration, "declaration", "", "only gates of the runs of this declaration (drover failover --site prints its ID)")
	return cmd
}

// openGates asks every running run (and its child) for its pending gates.
func openGates(ctx context.Context, c client.Client, planName string) ([]GateView, error) {
	rows, err := listRuns(ctx, c, planName, "", true, 0)
	if err != nil {
		return nil, err
	}
	return openGatesOf(ctx, c, rows), nil
}

// openGatesOf asks each of the runs still running (and its child) for its
// pending gates, oldest first.
func openGatesOf(ctx context.Context, c client.Client, rows []RunRow) []GateView {
	gates := []GateView{}
	for _, r := range rows {
		if r.Kind == contract.KindMonitor || r.Status != "running" {
			continue
		}
		st, err := queryStatus(ctx, c, r.WorkflowID)
		if err != nil {
			continue
		}
		views := gateViews(r.WorkflowID, st.Gates)
		if st.Child != "" {
			if cst, err := queryStatus(ctx, c, st.Child); err == nil {
				views = append(views, gateViews(st.Child, cst.Gates)...)
			}
		}
		for _, gt := range views {
			if gt.Outcome == workflows.OutcomePending {
				gates = append(gates, gt)
			}
		}
	}
	slices.SortStableFunc(gates, func(a, b GateView) int {
		if c := a.Opened.Compare(b.Opened); c != 0 {
			return c
		}
		return strings.Compare(a.WorkflowID+"/"+a.Name, b.WorkflowID+"/"+b.Name)
	})
	return gates
}

// planRow is one plan known to Temporal, as `drover plan list` prints it.
type planRow struct {
	Plan       string    `json:"plan"`
	Monitor    string    `json:"monitor,omitempty"`
	RPOStatus  string    `json:"rpoStatus,omitempty"`
	Schedule   string    `json:"schedule,omitempty"`
	Paused     bool      `json:"paused"`
	NextBackup time.Time `json:"nextBackup,omitzero"`
}

func newPlanListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Plans enabled in Temporal: RPO monitor, its RPO status, backup schedule (paused or not), next backup",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			rows, err := knownPlans(cmd.Context(), c)
			if err != nil {
				return err
			}
			return g.Print(rows, func(w io.Writer) error {
				if len(rows) == 0 {
					fmt.Fprintln(w, "no plan is enabled (drover plan apply FILE)")
					return nil
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PLAN\tRPO MONITOR\tRPO\tBACKUP SCHEDULE\tNEXT BACKUP")
				for _, r := range rows {
					sched := orDash(r.Schedule)
					if r.Paused {
						sched += " (paused)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Plan, orDash(r.Monitor), orDash(r.RPOStatus), sched, humanTime(r.NextBackup))
				}
				return tw.Flush()
			})
		},
	}
}

// knownPlans finds plans from their RPO monitors and backup schedules,
// sorted by name.
func knownPlans(ctx context.Context, c client.Client) ([]planRow, error) {
	byName := map[string]*planRow{}
	row := func(name string) *planRow {
		if r, ok := byName[name]; ok {
			return r
		}
		r := &planRow{Plan: name}
		byName[name] = r
		return r
	}
	monitors, err := listRuns(ctx, c, "", contract.KindMonitor, true, 0)
	if err != nil {
		return nil, err
	}
	dc := converter.GetDefaultDataConverter()
	for _, m := range monitors {
		r := row(m.Plan)
		r.Monitor = m.WorkflowID
		if d, err := c.DescribeWorkflowExecution(ctx, m.WorkflowID, ""); err == nil {
			r.RPOStatus = keywordAttr(dc, d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), contract.SARPOStatus.GetName())
		}
	}
	scheds, err := listSchedules(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, s := range scheds {
		if s.Kind != "backup" {
			continue
		}
		r := row(s.Plan)
		r.Schedule, r.Paused = s.ID, s.Paused
		if len(s.NextRuns) > 0 {
			r.NextBackup = s.NextRuns[0]
		}
	}
	out := make([]planRow, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b planRow) int { return strings.Compare(a.Plan, b.Plan) })
	return out, nil
}
