package starter

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
)

func init() { register(newPointsCmd) }

// pointsSubcommands lets other files add `drover points ...` commands
// (validate, delete) without editing this one.
var pointsSubcommands []commandFactory

func newPointsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "points",
		Short: "Recovery points in a plan's store",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPointsListCmd(g))
	for _, f := range pointsSubcommands {
		cmd.AddCommand(f(g))
	}
	return cmd
}

// listedPoint is a point as `points list --output json` prints it.
type listedPoint struct {
	catalog.Point
	Age        string  `json:"age"`
	AgeSeconds float64 `json:"ageSeconds"`
}

// pointList is what `points list -o json|yaml` prints.
type pointList struct {
	Plan   string        `json:"plan"`
	Store  string        `json:"store"`
	Points []listedPoint `json:"points"`
}

func newListedPoint(pt catalog.Point, now time.Time) listedPoint {
	age := now.Sub(pt.Instant)
	if pt.Instant.IsZero() {
		age = 0
	}
	return listedPoint{Point: pt, Age: formatAge(age), AgeSeconds: age.Seconds()}
}

func newPointsListCmd(g *Globals) *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "list --plan FILE",
		Short: "List the recovery points with age, mode, consistency and validity (reads the store only: no Temporal needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile == "" {
				return BadInputf("--plan: required: the plan file whose store to list")
			}
			p, err := plan.Load(planFile)
			if err != nil {
				return BadInput(err)
			}
			store, err := openPlanStore(p)
			if err != nil {
				return err
			}
			pts, err := store.List(p.Name)
			if err != nil {
				return err
			}
			now := time.Now()
			// Newest first in every format.
			out := make([]listedPoint, 0, len(pts))
			for _, pt := range slices.Backward(pts) {
				out = append(out, newListedPoint(pt, now))
			}
			view := pointList{Plan: p.Name, Store: store.Root, Points: out}
			return g.Print(view, func(io.Writer) error {
				writePoints(g, store.Root, p.Name, pts, now)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (its storage.store names the store)")
	return cmd
}

func writePoints(g *Globals, root, planName string, pts []catalog.Point, now time.Time) {
	if len(pts) == 0 {
		fmt.Fprintf(g.Stdout, "no recovery points of plan %s in %s\n", planName, root)
		return
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tMODE\tCONSISTENCY\tPAUSED\tVALIDITY\tSIZE")
	var notes []string
	for i := len(pts) - 1; i >= 0; i-- { // newest first
		pt := pts[i]
		age, mode, cons, validity, size := "-", string(pt.Mode), string(pt.Consistency), string(pt.Validity.State), catalog.HumanBytes(pt.Size)
		paused := pausedText(pt.Quiesce, false)
		if !pt.Instant.IsZero() {
			age = formatAge(now.Sub(pt.Instant))
		}
		if pt.Mode == catalog.ModeCumulative {
			mode += " of " + pt.BaseID
		}
		if pt.Problem != "" {
			validity, mode, cons, size = "unreadable", "-", "-", "-"
			notes = append(notes, fmt.Sprintf("%s: %s", pt.ID, pt.Problem))
		} else if pt.Validity.State == catalog.Invalid && pt.Validity.Reason != "" {
			notes = append(notes, fmt.Sprintf("%s: invalid: %s", pt.ID, pt.Validity.Reason))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pt.ID, age, mode, cons, paused, validity, size)
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(g.Stdout, "  "+n)
	}
}

// formatAge prints a duration the way an operator reads an RPO: "42s",
// "17m", "3h05m", "2d04h".
func formatAge(d time.Duration) string {
	if d < 0 {
		return "in " + formatAge(-d)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	days := int(d.Hours()) / 24
	return fmt.Sprintf("%dd%02dh", days, int(d.Hours())%24)
}
