package starter

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/report"
)

func init() { register(newReportCmd) }

func newReportCmd(g *Globals) *cobra.Command {
	var planFile, format, out, kind string
	cmd := &cobra.Command{
		Use:   "report RUN --plan F [--format markdown|json|html] [--out FILE]",
		Short: "Print the report of a failover, failback, drill or validation (from the store; no Temporal needed)",
		Long: "RUN is a workflow id (drover/PLAN/switchover, drover/PLAN/drill, …), a run id, or a report file name. The newest\n" +
			"report of that run is printed; a failover and the failback after it share the workflow id drover/PLAN/switchover\n" +
			"(so the server runs one at a time) and differ by run id and kind: --kind failover|failback picks one, and\n" +
			"the report says which failover a failback follows. The report is printed\n" +
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
			path, err := findReport(dir, args[0], kind)
			if err != nil {
				return err
			}
			r, err := report.Read(path)
			if err != nil {
				return err
			}
			related := relatedSwitchover(dir, r)
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
				return writeJSON(g.Stdout, reportView{Report: r, Related: related})
			}
			if g.Structured() {
				return g.Print(reportView{Report: r, Related: related}, nil)
			}
			if related != nil {
				fmt.Fprintf(g.Stdout, "> %s\n\n", related.Says)
			}
			fmt.Fprint(g.Stdout, r.Markdown())
			fmt.Fprintf(g.Stdout, "\n(report files: %s and .md)\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan file (required)")
	cmd.Flags().StringVar(&format, "format", "markdown", "markdown, json or html")
	cmd.Flags().StringVar(&out, "out", "", "with --format html: the file to write")
	cmd.Flags().StringVar(&kind, "kind", "", "the newest report of this kind (failover or failback) under a shared workflow id")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}

// reportView is a report with the switchover it pairs with.
type reportView struct {
	report.Report
	Related *relatedRun `json:"related,omitempty"`
}

// relatedRun names the failover a failback follows (or the failback that
// followed a failover).
type relatedRun struct {
	Relation   string    `json:"relation"`
	Kind       string    `json:"kind"`
	Planned    bool      `json:"planned"`
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Ended      time.Time `json:"ended"`
	Says       string    `json:"-"`
}

// relatedSwitchover finds, among the reports in dir of the same workflow
// id, the failover a failback follows (the newest that ended before it
// started) or the failback that followed a failover.
func relatedSwitchover(dir string, r report.Report) *relatedRun {
	if r.Kind != contract.KindFailover && r.Kind != contract.KindFailback {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var best *report.Report
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		o, err := report.Read(filepath.Join(dir, e.Name()))
		if err != nil || o.WorkflowID != r.WorkflowID || o.RunID == r.RunID {
			continue
		}
		switch {
		case r.Kind == contract.KindFailback && o.Kind == contract.KindFailover && !o.Ended.After(r.Started):
			if best == nil || o.Ended.After(best.Ended) {
				best = &o
			}
		case r.Kind == contract.KindFailover && o.Kind == contract.KindFailback && !o.Started.Before(r.Ended):
			if best == nil || o.Started.Before(best.Started) {
				best = &o
			}
		}
	}
	if best == nil {
		return nil
	}
	rel := &relatedRun{Kind: best.Kind, Planned: best.Planned, WorkflowID: best.WorkflowID, RunID: best.RunID, Ended: best.Ended}
	how := map[bool]string{true: "planned", false: "unplanned"}
	if r.Kind == contract.KindFailback {
		rel.Relation = "follows"
		rel.Says = fmt.Sprintf("This failback (run %s) follows the %s failover run %s of %s, which ended %s (%s).",
			r.RunID, how[best.Planned], best.RunID, best.WorkflowID, humanTime(best.Ended), best.Outcome)
	} else {
		rel.Relation = "followedBy"
		rel.Says = fmt.Sprintf("This failover (run %s) was followed by the failback run %s of %s, which ended %s (%s).",
			r.RunID, best.RunID, best.WorkflowID, humanTime(best.Ended), best.Outcome)
	}
	return rel
}

// findReport returns the newest JSON report of a run in dir: RUN is a
// workflow id, a run id or a report file name; kind, when given, keeps
// only reports of that kind.
func findReport(dir, run, kind string) (string, error) {
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
		if strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "_"+run+".json") {
			if kind != "" {
				if r, err := report.Read(filepath.Join(dir, name)); err != nil || r.Kind != kind {
					continue
				}
			}
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
