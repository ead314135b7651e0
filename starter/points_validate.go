package starter

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/workflows"
)

func init() { pointsSubcommands = append(pointsSubcommands, newPointsValidateCmd) }

func newPointsValidateCmd(g *Globals) *cobra.Command {
	var planFile string
	var watch bool
	cmd := &cobra.Command{
		Use:   "validate ID --plan F",
		Short: "Restore a point into the sandbox, start and verify the cell, and record it valid or invalid",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := loadCheckedPlan(g, planFile)
			if err != nil {
				return err
			}
			if p.Sites.Sandbox == nil {
				return BadInputf("%s: sites.sandbox: validation restores into an isolated sandbox site; the plan has none", planFile)
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			id := fmt.Sprintf("drover/%s/validate/%s", p.Name, args[0])
			run, err := startRun(cmd.Context(), c, id, p.Name, workflows.KindValidate, workflows.ValidateWorkflow,
				workflows.ValidateInput{Plan: *p, PointID: args[0]})
			if err != nil {
				return err
			}
			var res workflows.ValidateResult
			if err := finishRun(cmd.Context(), g, c, run, watch, &res); err != nil {
				return err
			}
			if watch && !g.JSON() {
				verdict := "valid"
				if !res.Valid {
					verdict = "INVALID: " + res.Reason
				}
				fmt.Fprintf(g.Stdout, "point %s: %s (report %s)\n", args[0], verdict, res.Report.Markdown)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (required)")
	cmd.Flags().BoolVar(&watch, "watch", true, "wait for the verdict")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}
