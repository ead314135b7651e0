package starter

import (
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
	var planFile, format, out string
	cmd := &cobra.Command{
		Use:   "report RUN --plan F [--format markdown|json|html] [--out FILE]",
		Short: "Print the report of a failover, failback, drill or validation (from the store; no Temporal needed)",
		Long: "RUN is a workflow id (drover/PLAN/switchover, drover/PLAN/drill, …) or a report file name. The newest\n" +
			"report of that run is printed as Markdown, as JSON (--format json or --output json), or written as one\n" +
			"self-contained HTML page with a timeline of the run (--format html --out FILE). Reports live in the\n" +
			"plan's recovery point store, so they outlive the Temporal server that ran the workflow.",
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
			switch format {
			case "", "markdown", "md", "json":
			case "html":
				if out == "" {
					return BadInputf("--format html: give --out FILE (one self-contained page)")
				}
				if err := writeHTMLReport(out, r); err != nil {
					return err
				}
				fmt.Fprintf(g.Stdout, "report of %s written to %s\n", r.WorkflowID, out)
				return nil
			default:
				return BadInputf("--format %q: want markdown, json or html", format)
			}
			if format == "json" {
				return writeJSON(g.Stdout, r)
			}
			if g.Structured() {
				return g.Print(r, nil)
			}
			fmt.Fprint(g.Stdout, r.Markdown())
			fmt.Fprintf(g.Stdout, "\n(report files: %s and .md)\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (required)")
	cmd.Flags().StringVar(&format, "format", "markdown", "markdown, json or html")
	cmd.Flags().StringVar(&out, "out", "", "with --format html: the file to write")
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

// writeHTMLReport writes the page next to nothing else: a temp file renamed
// into place, so a failed render leaves no half page.
func writeHTMLReport(path string, r report.Report) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return BadInputf("--out %s: %v", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := report.HTML(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("render the report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
