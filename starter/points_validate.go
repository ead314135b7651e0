package starter

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/workflows"
)

func init() { pointsSubcommands = append(pointsSubcommands, newPointsValidateCmd) }

func newPointsValidateCmd(g *Globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "validate ID --plan F",
		Short: "Restore a point into the sandbox, start and verify the cell, and record it valid or invalid",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			point := args[0]
			var res workflows.ValidateResult
			err := runFromPlan(cmd.Context(), g, f, runSpec{
				kind: contract.KindValidate,
				id:   func(p *plan.Plan) string { return contract.ValidateID(p.Name, point) },
				wf:   workflows.ValidateWorkflow,
				input: func(p *plan.Plan) (any, error) {
					if p.Sites.Sandbox == nil {
						return nil, BadInputf("%s: sites.sandbox: validation restores into an isolated sandbox site; the plan has none", f.plan)
					}
					return workflows.ValidateInput{Plan: *p, PointID: point}, nil
				},
				result: &res,
			})
			if err != nil {
				return err
			}
			if f.watch && !g.Structured() {
				verdict := "valid"
				if !res.Valid {
					verdict = "INVALID: " + res.Reason
				}
				fmt.Fprintf(g.Stdout, "point %s: %s (report %s)\n", point, verdict, res.Report.Markdown)
			}
			return nil
		},
	}
	// Not runFlags.add: validation waits for its verdict unless told not to.
	cmd.Flags().StringVar(&f.plan, "plan", "", "the plan file (required)")
	cmd.Flags().BoolVar(&f.watch, "watch", true, "wait for the verdict")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}
