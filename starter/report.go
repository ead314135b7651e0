package starter

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/report"
)

func init() { register(newReportCmd) }

func newReportCmd(g *Globals) *cobra.Command {
	var planFile string
	cmd := &cobra.Command{
		Use:   "report RUN --plan F",
		Short: "Print the report of a failover, failback, drill or validation (from the store; no Temporal needed)",
		Long: "RUN is a workflow id (drover/PLAN/switchover, drover/PLAN/drill, …) or a report file name. The newest\n" +
			"report of that run is printed as Markdown, or as JSON with --output json. Reports live in the plan's\n" +
			"recovery point store, so they outlive the Temporal server that ran the workflow.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, st, err := loadPlanAndStore(g, planFile)
			if err != nil {
				return err
			}
			dir := activities.ReportDir(st.Root, p.Name)
			path, err := findReport(dir, args[0])
			if err != nil {
				return err
			}
			r, err := report.Read(path)
			if err != nil {
				return err
			}
			if g.JSON() {
				enc := json.NewEncoder(g.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprint(g.Stdout, r.Markdown())
			fmt.Fprintf(g.Stdout, "\n(report files: %s and .md)\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (required)")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}

// findReport returns the newest JSON report of a run in dir.
func findReport(dir, run string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", BadInputf("report %s: no reports in %s: %v", run, dir, err)
	}
	prefix := strings.TrimSuffix(report.FileName(run, ""), ".json")
	type cand struct {
		path string
		mod  int64
	}
	var found []cand
	var all []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		all = append(all, strings.TrimSuffix(name, ".json"))
		if strings.HasPrefix(name, prefix) {
			info, err := e.Info()
			if err != nil {
				continue
			}
			found = append(found, cand{filepath.Join(dir, name), info.ModTime().UnixNano()})
		}
	}
	if len(found) == 0 {
		sort.Strings(all)
		return "", BadInputf("report %s: not found in %s (reports there: %s)", run, dir, strings.Join(all, ", "))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].mod > found[j].mod })
	return found[0].path, nil
}
