package starter

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
)

func init() { pointsSubcommands = append(pointsSubcommands, newPointsDescribeCmd) }

// describedPoint is a point as `points describe --output json` prints it:
// its manifest without the file lists, and its validity.
type describedPoint struct {
	catalog.Point
	Groups []describedGroup `json:"groups"`
}

type describedGroup struct {
	Name        string              `json:"name"`
	Driver      string              `json:"driver"`
	Method      string              `json:"method"`
	Consistency catalog.Consistency `json:"consistency"`
	Instant     time.Time           `json:"instant"`
	Members     []string            `json:"members"`
	Files       int                 `json:"files"`
	Artifacts   int                 `json:"artifacts"`
	Size        int64               `json:"size"`
	DataSize    int64               `json:"dataSize"`
	Warnings    []string            `json:"warnings,omitempty"`
}

// newPointsDescribeCmd prints one point's manifest as an operator reads it:
// when it was captured, how long writes were paused for it, its groups.
// It reads the store only.
func newPointsDescribeCmd(g *Globals) *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "describe ID --plan FILE",
		Short: "One recovery point: capture instant, how long writes were paused, groups, validity (no Temporal needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := catalog.CheckName("point", id); err != nil {
				return BadInputf("ID: %v", err)
			}
			if planFile == "" {
				return BadInputf("--plan: required: the plan file whose store holds the point")
			}
			p, err := plan.Load(planFile)
			if err != nil {
				return BadInput(err)
			}
			st, err := openPlanStore(p)
			if err != nil {
				return err
			}
			m, err := st.Load(p.Name, id)
			if errors.Is(err, catalog.ErrNotFound) {
				return BadInputf("point %s: no such recovery point of plan %s in %s (drover points list --plan %s)", id, p.Name, st.Root, planFile)
			}
			if err != nil {
				return fmt.Errorf("point %s: %w", id, err)
			}
			v, err := st.Validity(p.Name, id)
			if err != nil {
				return fmt.Errorf("point %s: %w", id, err)
			}
			d := describedPoint{Point: m.Summary(), Groups: []describedGroup{}}
			d.Validity, d.Dir = v, st.PointDir(p.Name, id)
			for _, grp := range m.Groups {
				dg := describedGroup{Name: grp.Name, Driver: grp.Driver, Method: grp.Method, Consistency: grp.Consistency,
					Instant: grp.Instant, Artifacts: len(grp.Artifacts), Size: grp.Size, DataSize: grp.DataSize, Warnings: grp.Warnings}
				for _, mem := range grp.Members {
					dg.Members = append(dg.Members, mem.Name)
					dg.Files += len(mem.Files)
				}
				d.Groups = append(d.Groups, dg)
			}
			return g.Print(d, func(io.Writer) error {
				writePointDescription(g, d)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (its storage.store names the store)")
	return cmd
}

func writePointDescription(g *Globals, d describedPoint) {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	mode := string(d.Mode)
	if d.BaseID != "" {
		mode += " of " + d.BaseID
	}
	fmt.Fprintf(tw, "point\t%s (plan %s)\n", d.ID, d.Plan)
	fmt.Fprintf(tw, "mode\t%s\n", mode)
	fmt.Fprintf(tw, "captured\t%s\n", stamp(d.Instant))
	fmt.Fprintf(tw, "backup run\t%s to %s (%s)\n", stamp(d.Started), stamp(d.Ended), d.Ended.Sub(d.Started).Round(time.Millisecond))
	fmt.Fprintf(tw, "writes paused\t%s\n", pausedText(d.Quiesce, true))
	fmt.Fprintf(tw, "consistency\t%s\n", d.Consistency)
	// Only on the points that have them: a cold backup, a plan that
	// watches its configuration.
	if d.Cold {
		fmt.Fprintf(tw, "cold\tyes: captured with the whole scope stopped\n")
	}
	if c := d.Configuration; c != nil {
		fmt.Fprintf(tw, "configuration\t%s (first seen %s)\n", c.Fingerprint, stamp(c.FirstSeen))
	}
	validity := string(d.Validity.State)
	if d.Validity.Reason != "" {
		validity += ": " + d.Validity.Reason
	}
	if d.Validity.Run != "" {
		validity += " (by " + d.Validity.Run + ")"
	}
	fmt.Fprintf(tw, "validity\t%s\n", validity)
	fmt.Fprintf(tw, "size\t%s stored, %s of data\n", catalog.HumanBytes(d.Size), catalog.HumanBytes(d.DataSize))
	fmt.Fprintf(tw, "where\t%s\n", d.Dir)
	_ = tw.Flush()
	fmt.Fprintln(g.Stdout)
	tw = tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tDRIVER\tMETHOD\tCONSISTENCY\tMEMBERS\tFILES\tSIZE")
	for _, grp := range d.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", grp.Name, grp.Driver, grp.Method, grp.Consistency,
			strings.Join(grp.Members, ","), grp.Files, catalog.HumanBytes(grp.Size))
	}
	_ = tw.Flush()
	for _, grp := range d.Groups {
		for _, w := range grp.Warnings {
			fmt.Fprintf(g.Stdout, "  group %s: %s\n", grp.Name, w)
		}
	}
}

// pausedText says how long a point's capture paused writes: "1.234s", or
// with long the components and times too; "-" for a point that paused
// none (a cold backup, groups that do not quiesce, or a point from before
// windows were recorded).
func pausedText(q *catalog.QuiesceWindow, long bool) string {
	if q == nil {
		if long {
			return "none recorded (a cold backup, no group that quiesces, or a point older than the record)"
		}
		return "-"
	}
	s := q.Duration.Round(time.Millisecond).String()
	if long {
		s += fmt.Sprintf(" (%s), %s to %s", strings.Join(q.Components, ", "),
			q.Start.UTC().Format("15:04:05.000"), q.End.UTC().Format("15:04:05.000Z"))
	}
	return s
}
