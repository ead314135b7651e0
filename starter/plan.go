package starter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/plan"
)

func init() { register(newPlanCmd) }

// planChecker returns what plan commands check driver names and settings
// against: the built-in registry, the same one the worker resolves drivers
// from. Tests replace it with a fake.
var planChecker = func(g *Globals) plan.DriverChecker { return builtin.Registry(g.Logger()) }

func newPlanCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Check and inspect DR plans",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPlanValidateCmd(g), newPlanShowCmd(g), newPlanApplyCmd(g), newPlanDisableCmd(g), newPlanStatusCmd(g))
	return cmd
}

func newPlanValidateCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a plan and print every problem (exit 2 if there is any)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			p, tiers, err := loadCheckedPlan(g, file)
			if err != nil {
				return err
			}
			if err := checkLocalEnv(g, p, file); err != nil {
				return err
			}
			checks := 0
			for _, l := range plan.Levels {
				checks += len(p.Verification.Checks(l))
			}
			if g.Structured() {
				return planWriteJSON(g, map[string]any{
					"file":       file,
					"valid":      true,
					"plan":       p.Name,
					"components": len(p.Components),
					"tiers":      len(tiers),
					"groups":     len(p.Storage.Groups),
					"checks":     checks,
					"gates":      len(p.Gates),
				})
			}
			fmt.Fprintf(g.Stdout, "%s: OK: plan %s, %s in %s, %s, %s, %s\n", file, p.Name,
				count(len(p.Components), "component"), count(len(tiers), "tier"),
				count(len(p.Storage.Groups), "consistency group"), count(checks, "verification check"),
				count(len(p.Gates), "gate"))
			return nil
		},
	}
}

// tierMember is one component of a tier as plan show prints it.
type tierMember struct {
	Name     string    `json:"name"`
	Role     plan.Role `json:"role"`
	Product  string    `json:"product,omitempty"`
	Optional bool      `json:"optional,omitempty"`
	Host     string    `json:"host,omitempty"`
}

type shownTier struct {
	Index      int          `json:"index"`
	Components []tierMember `json:"components"`
}

func newPlanShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Print a plan's restart tiers (members of a tier start in parallel)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			p, tiers, err := loadCheckedPlan(g, file)
			if err != nil {
				return err
			}
			stop, err := plan.StopOrder(p)
			if err != nil {
				return BadInput(err)
			}
			start := describePlanTiers(p, tiers)
			if g.Structured() {
				return planWriteJSON(g, map[string]any{
					"file":      file,
					"plan":      p.Name,
					"rpo":       p.RPO,
					"rto":       p.RTO,
					"products":  p.Products,
					"tiers":     start,
					"stopOrder": describePlanTiers(p, stop),
				})
			}
			fmt.Fprintf(g.Stdout, "plan %s (%s): rpo %s, rto %s, products %s\n",
				p.Name, file, humanDuration(p.RPO.D()), humanDuration(p.RTO.D()), strings.Join(p.Products, ", "))
			for _, t := range start {
				parts := make([]string, len(t.Components))
				for i, m := range t.Components {
					what := string(m.Role)
					if m.Product != "" {
						what += "/" + m.Product
					}
					if m.Optional {
						what += ", optional"
					}
					if m.Host != "" {
						what += ", on " + m.Host
					}
					parts[i] = fmt.Sprintf("%s (%s)", m.Name, what)
				}
				fmt.Fprintf(g.Stdout, "tier %d: %s\n", t.Index, strings.Join(parts, ", "))
			}
			return nil
		},
	}
}

// loadCheckedPlan loads and validates a plan file. Problems are printed one per
// line (or as JSON on stdout) and the command fails as bad input.
func loadCheckedPlan(g *Globals, file string) (*plan.Plan, []plan.Tier, error) {
	p, err := plan.LoadAndValidate(file, planChecker(g))
	if err != nil {
		var probs plan.Problems
		if !errors.As(err, &probs) {
			return nil, nil, BadInput(err)
		}
		if g.Structured() {
			if jerr := planWriteJSON(g, map[string]any{"file": file, "valid": false, "problems": probs}); jerr != nil {
				return nil, nil, jerr
			}
		} else {
			for _, pr := range probs {
				fmt.Fprintln(g.Stderr, pr.String())
			}
		}
		return nil, nil, BadInputf("%s: %s", file, count(len(probs), "problem"))
	}
	tiers, err := plan.Tiers(p)
	if err != nil {
		// Validation rejects cycles, so this is a bug worth showing as is.
		return nil, nil, BadInput(err)
	}
	return p, tiers, nil
}

func describePlanTiers(p *plan.Plan, tiers []plan.Tier) []shownTier {
	out := make([]shownTier, len(tiers))
	for i, t := range tiers {
		out[i] = shownTier{Index: t.Index}
		for _, name := range t.Components {
			c, _ := p.Component(name)
			out[i].Components = append(out[i].Components, tierMember{Name: name, Role: c.Role, Product: c.Product, Optional: c.Optional, Host: c.Host})
		}
	}
	return out
}

// planWriteJSON prints v as -o asks (JSON, or YAML made from the JSON).
func planWriteJSON(g *Globals, v any) error {
	if g.Output == OutputYAML {
		return writeYAML(g.Stdout, v)
	}
	return writeJSON(g.Stdout, v)
}

// count writes "1 gate" or "4 gates".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
