package starter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/workflows"
)

// completionTimeout bounds what a completion may spend asking Temporal: a
// shell must not hang on a tab.
const completionTimeout = 2 * time.Second

// addCompletions wires dynamic completion through the tree: plan files for
// --plan (and plan names from Temporal where a name will do), workflow IDs
// of runs, point IDs from the plan's store, and the gates waiting in a run.
func addCompletions(root *cobra.Command, g *Globals) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		switch path {
		case "status", "runs describe":
			c.ValidArgsFunction = runsCompletion(g, false)
		case "approve", "gates approve":
			c.ValidArgsFunction = runsCompletion(g, true)
		case "report", "runs report":
			c.ValidArgsFunction = runsCompletion(g, false)
		case "points describe", "points validate", "points invalidate":
			c.ValidArgsFunction = pointsCompletion
		case "plan validate", "plan show", "plan apply", "plan disable", "plan status":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return planFiles(toComplete), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if f := c.Flags().Lookup("plan"); f != nil {
			byName := strings.Contains(f.Usage, "plan name")
			_ = c.RegisterFlagCompletionFunc("plan", func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				out := planFiles(toComplete)
				if byName {
					out = append(out, planNames(g, toComplete)...)
				}
				return out, cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("gate") != nil {
			_ = c.RegisterFlagCompletionFunc("gate", func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return pendingGates(g, args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// planFiles completes YAML files that are drover plans (and directories to
// descend into) under the directory being typed.
func planFiles(toComplete string) []string {
	dir, prefix := filepath.Split(toComplete)
	readDir := dir
	if readDir == "" {
		readDir = "."
	}
	entries, err := os.ReadDir(readDir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || strings.HasPrefix(name, ".") && !strings.HasPrefix(prefix, ".") {
			continue
		}
		full := dir + name
		if e.IsDir() {
			out = append(out, full+"/")
			continue
		}
		if ext := filepath.Ext(name); (ext == ".yaml" || ext == ".yml") && isPlanFile(filepath.Join(readDir, name)) {
			out = append(out, full)
		}
	}
	return out
}

// isPlanFile reads the head of a file for drover's apiVersion.
func isPlanFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := f.Read(head)
	return bytes.Contains(head[:n], []byte("drover/v1"))
}

// planNames completes plan names Temporal knows (RPO monitors, schedules).
func planNames(g *Globals, toComplete string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	c, err := g.Dial()
	if err != nil {
		return nil
	}
	defer c.Close()
	rows, err := knownPlans(ctx, c)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range rows {
		if strings.HasPrefix(r.Plan, toComplete) {
			out = append(out, r.Plan)
		}
	}
	return out
}

// runsCompletion completes the workflow IDs of drover's runs, running ones
// first; open limits them to running runs (approve).
func runsCompletion(g *Globals, open bool) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		c, err := g.Dial()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		rows, err := listRuns(ctx, c, "", "", open, 200)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		slices.SortStableFunc(rows, func(a, b RunRow) int {
			return boolOrder(b.Status == "running", a.Status == "running")
		})
		var out []string
		for _, r := range rows {
			if strings.HasPrefix(r.WorkflowID, toComplete) && !slices.Contains(out, r.WorkflowID) {
				out = append(out, r.WorkflowID+"\t"+r.Kind+" of "+r.Plan+", "+r.Status)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// pointsCompletion completes point IDs from the store of the plan --plan
// names, newest first, with their validity as the description.
func pointsCompletion(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	file, _ := cmd.Flags().GetString("plan")
	if file == "" {
		return cobra.AppendActiveHelp(nil, "give --plan FILE first: the points are read from its store"), cobra.ShellCompDirectiveNoFileComp
	}
	p, err := plan.Load(file)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	st, _, err := catalog.OpenFromSettings(p.Storage.Store)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	pts, err := st.List(p.Name)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, pt := range slices.Backward(pts) {
		if strings.HasPrefix(pt.ID, toComplete) {
			out = append(out, pt.ID+"\t"+string(pt.Mode)+", "+string(pt.Validity.State))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// pendingGates completes the gates waiting in a run or its child.
func pendingGates(g *Globals, id, toComplete string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	c, err := g.Dial()
	if err != nil {
		return nil
	}
	defer c.Close()
	st, _, err := statusTree(ctx, c, id)
	if err != nil {
		return nil
	}
	var out []string
	for _, gt := range st.Gates {
		if gt.Outcome == workflows.OutcomePending && strings.HasPrefix(gt.Name, toComplete) {
			out = append(out, gt.Name+"\t"+gt.Detail)
		}
	}
	return out
}
