package starter

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/contract"
)

// ScheduleView is one of a plan's Temporal Schedules as `drover schedule
// list|describe` print it.
type ScheduleView struct {
	ID       string      `json:"id"`
	Plan     string      `json:"plan"`
	Kind     string      `json:"kind"`
	Paused   bool        `json:"paused"`
	Note     string      `json:"note,omitempty"`
	Every    string      `json:"every,omitempty"`
	NextRuns []time.Time `json:"nextRuns,omitempty"`
	// Recent are the newest runs the schedule started, newest first.
	Recent  []ScheduledRun `json:"recent,omitempty"`
	Running []runIDs       `json:"running,omitempty"`
	Actions int            `json:"actions,omitempty"`
	Skipped int            `json:"skippedOverlap,omitempty"`
}

// ScheduledRun is one run a schedule started.
type ScheduledRun struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Scheduled  time.Time `json:"scheduled"`
	Started    time.Time `json:"started"`
}

// scheduleKinds maps the kinds of schedule a plan has to their IDs.
var scheduleKinds = map[string]func(string) string{
	"backup":   contract.BackupScheduleID,
	"validate": contract.ValidateScheduleID,
}

// parseScheduleID reads plan and kind back from a drover schedule ID.
func parseScheduleID(id string) (planName, kind string, ok bool) {
	rest, found := strings.CutPrefix(id, "drover/")
	if !found {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return "", "", false
	}
	planName, suffix := rest[:i], rest[i+1:]
	kind, found = strings.CutSuffix(suffix, "-schedule")
	if _, known := scheduleKinds[kind]; !found || !known {
		return "", "", false
	}
	return planName, kind, true
}

func everyOf(spec *client.ScheduleSpec) string {
	if spec == nil {
		return ""
	}
	var parts []string
	for _, iv := range spec.Intervals {
		parts = append(parts, humanDuration(iv.Every))
	}
	return strings.Join(parts, ", ")
}

// listSchedules lists drover's schedules, by plan then kind.
func listSchedules(ctx context.Context, c client.Client) ([]ScheduleView, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 200})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := []ScheduleView{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		planName, kind, ok := parseScheduleID(e.ID)
		if !ok {
			continue
		}
		out = append(out, ScheduleView{ID: e.ID, Plan: planName, Kind: kind, Paused: e.Paused, Note: e.Note, Every: everyOf(e.Spec),
			NextRuns: e.NextActionTimes, Recent: scheduledRuns(e.RecentActions)})
	}
	slices.SortFunc(out, func(a, b ScheduleView) int { return strings.Compare(a.Plan+"/"+a.Kind, b.Plan+"/"+b.Kind) })
	return out, nil
}

func scheduledRuns(actions []client.ScheduleActionResult) []ScheduledRun {
	out := make([]ScheduledRun, 0, len(actions))
	for _, a := range slices.Backward(actions) {
		r := ScheduledRun{Scheduled: a.ScheduleTime, Started: a.ActualTime}
		if a.StartWorkflowResult != nil {
			r.WorkflowID, r.RunID = a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID
		}
		out = append(out, r)
	}
	return out
}

func describeSchedule(ctx context.Context, c client.Client, planName, kind string) (ScheduleView, error) {
	id := scheduleKinds[kind](planName)
	d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	if isNotFound(err) {
		return ScheduleView{}, BadInputf("schedule %s: not found (drover plan apply FILE creates it; drover schedule list shows those there are)", id)
	}
	if err != nil {
		return ScheduleView{}, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	v := ScheduleView{ID: id, Plan: planName, Kind: kind, Paused: d.Schedule.State.Paused, Note: d.Schedule.State.Note,
		Every: everyOf(d.Schedule.Spec), NextRuns: d.Info.NextActionTimes, Recent: scheduledRuns(d.Info.RecentActions),
		Actions: d.Info.NumActions, Skipped: d.Info.NumActionsSkippedOverlap}
	for _, r := range d.Info.RunningWorkflows {
		v.Running = append(v.Running, runIDs{WorkflowID: r.WorkflowID, RunID: r.FirstExecutionRunID})
	}
	return v, nil
}

func printSchedule(w io.Writer, v ScheduleView) {
	state := "active"
	if v.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "schedule %s (%s of plan %s): %s", v.ID, v.Kind, v.Plan, state)
	if v.Note != "" {
		fmt.Fprintf(w, " (%s)", v.Note)
	}
	fmt.Fprintln(w)
	if v.Every != "" {
		fmt.Fprintf(w, "  every %s, %d runs started, %d skipped while one still ran\n", v.Every, v.Actions, v.Skipped)
	}
	for i, t := range v.NextRuns {
		if i == 3 {
			break
		}
		fmt.Fprintf(w, "  next: %s\n", humanTime(t))
	}
	for _, r := range v.Running {
		fmt.Fprintf(w, "  running: %s (run %s)\n", r.WorkflowID, r.RunID)
	}
	for _, r := range v.Recent {
		fmt.Fprintf(w, "  started %s: %s (run %s)\n", humanTime(r.Started), r.WorkflowID, r.RunID)
	}
}

func newScheduleCmd(g *Globals, root *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "A plan's Temporal Schedules of backups and validations: list, describe, pause, unpause, trigger, apply",
		Args:  cobra.NoArgs,
	}
	apply := freshSub(root, g, "backup", "schedule")
	apply.Use = strings.Replace(apply.Use, "schedule", "apply", 1)
	apply.Short += " (same as drover backup schedule)"
	cmd.AddCommand(apply)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "drover's schedules, by plan: paused or not, interval, next run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := listSchedules(cmd.Context(), c)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) error {
				if len(list) == 0 {
					fmt.Fprintln(w, "no schedules (drover plan apply FILE creates them)")
					return nil
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SCHEDULE\tPLAN\tKIND\tSTATE\tEVERY\tNEXT RUN")
				for _, v := range list {
					state, next := "active", time.Time{}
					if v.Paused {
						state = "paused"
					}
					if len(v.NextRuns) > 0 {
						next = v.NextRuns[0]
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Plan, v.Kind, state, orDash(v.Every), humanTime(next))
				}
				return tw.Flush()
			})
		},
	})
	type verb struct {
		use, short string
		act        func(ctx context.Context, h client.ScheduleHandle, note string) error
		done       string
	}
	verbs := []verb{
		{"describe", "A schedule's state, interval, next runs, the runs it started", nil, ""},
		{"pause", "Pause a plan's schedule (the RPO monitor still watches)", func(ctx context.Context, h client.ScheduleHandle, note string) error {
			return h.Pause(ctx, client.SchedulePauseOptions{Note: note})
		}, "paused"},
		{"unpause", "Resume a paused schedule", func(ctx context.Context, h client.ScheduleHandle, note string) error {
			return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
		}, "unpaused"},
		{"trigger", "Start the schedule's run now (skipped if one still runs)", func(ctx context.Context, h client.ScheduleHandle, _ string) error {
			return h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP})
		}, "triggered"},
	}
	for _, v := range verbs {
		var planArg, kind, note string
		sub := &cobra.Command{
			Use:   v.use + " --plan P [--kind backup|validate]",
			Short: v.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				name, err := planNameArg(planArg)
				if err != nil {
					return err
				}
				if _, ok := scheduleKinds[kind]; !ok {
					return BadInputf("--kind %q: want backup or validate", kind)
				}
				c, err := g.Dial()
				if err != nil {
					return err
				}
				defer c.Close()
				ctx := cmd.Context()
				if v.act != nil {
					// Describe first: a schedule that is not there is bad
					// input, not a failed call.
					if _, err := describeSchedule(ctx, c, name, kind); err != nil {
						return err
					}
					if note == "" {
						note = v.done + " with drover schedule " + v.use
					}
					if err := v.act(ctx, c.ScheduleClient().GetHandle(ctx, scheduleKinds[kind](name)), note); err != nil {
						return fmt.Errorf("%s schedule %s: %w", v.use, scheduleKinds[kind](name), err)
					}
				}
				view, err := describeSchedule(ctx, c, name, kind)
				if err != nil {
					return err
				}
				return g.Print(view, func(w io.Writer) error {
					if v.act != nil {
						fmt.Fprintf(w, "%s %s\n", v.done, view.ID)
					}
					printSchedule(w, view)
					return nil
				})
			},
		}
		sub.Flags().StringVar(&planArg, "plan", "", "the plan (a plan file or a plan name)")
		sub.Flags().StringVar(&kind, "kind", "backup", "which schedule: backup or validate")
		if v.use == "pause" || v.use == "unpause" {
			sub.Flags().StringVar(&note, "note", "", "why (kept on the schedule, shown in the Web UI)")
		}
		_ = sub.MarkFlagRequired("plan")
		cmd.AddCommand(sub)
	}
	return cmd
}

// freshSub builds another copy of a second-level command (backup schedule).
func freshSub(root *cobra.Command, g *Globals, parent, name string) *cobra.Command {
	for _, c := range fresh(root, g, parent).Commands() {
		if c.Name() == name {
			c.Parent().RemoveCommand(c)
			return c
		}
	}
	panic("no command " + parent + " " + name)
}
