package starter

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
)

func newPointsDescribeCmd(g *Globals) *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "describe ID --plan FILE",
		Short: "One recovery point: capture instant, age, mode, consistency, validity, groups, sizes (no Temporal needed)",
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
			pts, err := st.List(p.Name)
			if err != nil {
				return err
			}
			for _, pt := range pts {
				if pt.ID == id {
					lp := newListedPoint(pt, time.Now())
					return g.Print(lp, func(w io.Writer) error {
						describePoint(w, lp)
						return nil
					})
				}
			}
			return BadInputf("point %s: no such recovery point of plan %s in %s (drover points list --plan %s)", id, p.Name, st.Root, planFile)
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (its storage.store names the store)")
	return cmd
}

func describePoint(w io.Writer, pt listedPoint) {
	fmt.Fprintf(w, "point %s of plan %s\n", pt.ID, pt.Plan)
	if pt.Problem != "" {
		fmt.Fprintf(w, "  unreadable: %s\n", pt.Problem)
		return
	}
	mode := string(pt.Mode)
	if pt.BaseID != "" {
		mode += " on " + pt.BaseID
	}
	fmt.Fprintf(w, "  captured     %s (age %s)\n", humanTime(pt.Instant), pt.Age)
	fmt.Fprintf(w, "  took         %s (%s to %s)\n", humanDuration(pt.Ended.Sub(pt.Started).Round(time.Millisecond)), humanTime(pt.Started), humanTime(pt.Ended))
	fmt.Fprintf(w, "  mode         %s\n", mode)
	fmt.Fprintf(w, "  consistency  %s\n", pt.Consistency)
	fmt.Fprintf(w, "  size         %s in the store, %s of data\n", humanBytes(pt.Size), humanBytes(pt.DataSize))
	v := pt.Validity
	fmt.Fprintf(w, "  validity     %s", v.State)
	if v.Reason != "" {
		fmt.Fprintf(w, ": %s", v.Reason)
	}
	if v.Run != "" {
		fmt.Fprintf(w, " (by %s, %s)", v.Run, humanTime(v.At))
	}
	fmt.Fprintln(w)
	for _, f := range v.Findings {
		fmt.Fprintf(w, "    finding: %s\n", f)
	}
	for _, gr := range pt.Groups {
		fmt.Fprintf(w, "  group %s: %s by %s, %s, members %s\n", gr.Name, gr.Method, gr.Driver, gr.Consistency, strings.Join(gr.Members, ", "))
	}
	fmt.Fprintf(w, "  folder       %s\n", orDash(pt.Dir))
}
