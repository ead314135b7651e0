package starter

import (
	"errors"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
)

func init() { pointsSubcommands = append(pointsSubcommands, newPointsInvalidateCmd) }

// newPointsInvalidateCmd records a point invalid by hand: an operator who
// knows a point is bad (an application bug wrote garbage before it, a
// storage alarm on the store) takes it out of every failover's choice.
// Runs mark points invalid themselves when they find them bad; this is for
// what only a person knows. It reads and writes the store only, so it
// works at the secondary site with Temporal down.
func newPointsInvalidateCmd(g *Globals) *cobra.Command {
	var planFile, reason, who string
	cmd := &cobra.Command{
		Use:   "invalidate ID --plan FILE --reason TEXT [--as NAME]",
		Short: "Record a recovery point invalid, with the reason and who said so (no Temporal needed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := catalog.CheckName("point", id); err != nil {
				return BadInputf("ID: %v", err)
			}
			if planFile == "" {
				return BadInputf("--plan: required: the plan file whose store holds the point")
			}
			if strings.TrimSpace(reason) == "" {
				return BadInputf("--reason: required: why point %s must not be restored (it is kept in the catalog)", id)
			}
			if who == "" {
				if u, err := user.Current(); err == nil {
					who = u.Username
				}
			}
			p, err := plan.Load(planFile)
			if err != nil {
				return BadInput(err)
			}
			st, err := openPlanStore(p)
			if err != nil {
				return err
			}
			v := catalog.Validity{State: catalog.Invalid, Reason: strings.TrimSpace(reason), Run: "manual: " + who, At: time.Now().UTC()}
			if err := st.SetValidity(p.Name, id, v); err != nil {
				if errors.Is(err, catalog.ErrNotFound) {
					return BadInputf("point %s: no such recovery point of plan %s in %s (drover points list --plan %s)", id, p.Name, st.Root, planFile)
				}
				return fmt.Errorf("point %s: %w", id, err)
			}
			g.Logger().Info("point marked invalid", zap.String("plan", p.Name), zap.String("point", id), zap.String("by", who))
			if g.Structured() {
				return planWriteJSON(g, map[string]any{"plan": p.Name, "point": id, "validity": v})
			}
			fmt.Fprintf(g.Stdout, "point %s of plan %s is invalid: %s (%s)\n", id, p.Name, v.Reason, v.Run)
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (its storage.store names the store)")
	cmd.Flags().StringVar(&reason, "reason", "", "why the point must not be restored")
	cmd.Flags().StringVar(&who, "as", "", "who marks it (default: the user running drover)")
	return cmd
}
