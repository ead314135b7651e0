package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

// A declaration is one disaster declared for a site: `drover failover
// --site S` starts the failover of every plan whose primary is at S, all
// with the same declaration ID (the DroverDeclaration search attribute)
// and the same declared instant, so their gates are decided together
// (gates approve --declaration) and their state read as one (status
// --declaration).

// manyFlags choose the plans of a declaration.
type manyFlags struct {
	site    string
	plans   []string
	all     bool
	planDir string
}

func (m *manyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.site, "site", "", "the site lost (or left): fail over every given plan whose primary is there, on one declaration")
	cmd.Flags().StringSliceVar(&m.plans, "plans", nil, "with --site: these plan files (comma-separated)")
	cmd.Flags().BoolVar(&m.all, "all", false, "with --site: every plan file in --plan-dir")
	cmd.Flags().StringVar(&m.planDir, "plan-dir", os.Getenv("DROVER_PLAN_DIR"), "with --all: the folder of plan files, *.yaml and *.yml (env DROVER_PLAN_DIR)")
}

func (m manyFlags) many() bool { return m.site != "" || len(m.plans) > 0 || m.all }

// Outcomes of a plan in a declaration.
const (
	declStarted     = "started"
	declSkipped     = "skipped"
	declFailed      = "failed"
	declNotAffected = "not-affected"
)

// Declaration is what `drover failover --site S` did.
type Declaration struct {
	Declaration string         `json:"declaration"`
	Site        string         `json:"site"`
	DeclaredAt  time.Time      `json:"declaredAt"`
	Planned     bool           `json:"planned"`
	Plans       []DeclaredPlan `json:"plans"`
}

// DeclaredPlan is one plan of a declaration: started, skipped (and why),
// failed to start, or not affected (its primary is elsewhere).
type DeclaredPlan struct {
	Plan       string `json:"plan"`
	Outcome    string `json:"outcome"`
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
	Reason     string `json:"reason,omitempty"`
	File       string `json:"file,omitempty"`
}

// declaredPlan is a plan file loaded and checked, where its cell runs now,
// and its outcome so far.
type declaredPlan struct {
	file         string
	p            *plan.Plan
	primary, why string
	row          DeclaredPlan
}

// planFiles are the files --plans names, or every plan file in --plan-dir.
func (m manyFlags) planFiles() ([]string, error) {
	if !m.all {
		var files []string
		for _, f := range m.plans {
			if f = strings.TrimSpace(f); f != "" && !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			return nil, BadInputf("--plans: no plan file given")
		}
		return files, nil
	}
	if st, err := os.Stat(m.planDir); err != nil || !st.IsDir() {
		return nil, BadInputf("--plan-dir %s: not a folder", m.planDir)
	}
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		found, err := filepath.Glob(filepath.Join(m.planDir, pattern))
		if err != nil {
			return nil, BadInputf("--plan-dir %s: %v", m.planDir, err)
		}
		files = append(files, found...)
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, BadInputf("--plan-dir %s: no plan file (*.yaml, *.yml) in it", m.planDir)
	}
	return files, nil
}

// check refuses the flags a declaration cannot take.
func (m manyFlags) check(f runFlags, in workflows.FailoverInput) error {
	switch {
	case f.plan != "" && m.many():
		return BadInputf("failover: give --plan F, or --site S with --plans or --all, not both")
	case !m.many():
		return BadInputf("failover: give --plan F, or --site S with --plans F1,F2 or --all")
	case m.site == "":
		return BadInputf("failover: --plans and --all need --site S, the site lost or left")
	case (len(m.plans) > 0) == m.all:
		return BadInputf("failover --site %s: give exactly one of --plans F1,F2 or --all", m.site)
	case m.all && m.planDir == "":
		return BadInputf("failover --all: give --plan-dir DIR (or set DROVER_PLAN_DIR), the folder of the plan files")
	case in.PointID != "":
		return BadInputf("failover --site: --point names one plan's recovery point; give it with --plan")
	case in.Continue != "":
		return BadInputf("failover --site: --continue follows one run; give it with --plan")
	case f.watch:
		return BadInputf("failover --site: --watch follows one run; follow a declaration with drover status --declaration ID --watch")
	}
	return nil
}

// loadDeclaredPlans loads and checks every plan file, makes its input and
// reads from its store where its cell runs now (plan status's rule). Any
// bad file is bad input naming it, and nothing is started; a store that
// cannot be read fails that plan alone.
func loadDeclaredPlans(g *Globals, files []string, site string, spec runSpec) ([]*declaredPlan, error) {
	var errs []error
	var plans []*declaredPlan
	byName := map[string]string{}
	siteKnown := false
	for _, file := range files {
		p, _, err := loadCheckedPlan(g, file)
		if err == nil {
			_, err = spec.input(p)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, ok := byName[p.Name]; ok {
			errs = append(errs, BadInputf("%s: name: plan %s is the plan of %s too", file, p.Name, other))
			continue
		}
		byName[p.Name] = file
		siteKnown = siteKnown || siteName(p.Sites.Primary) == site || siteName(p.Sites.Secondary) == site
		dp := &declaredPlan{file: file, p: p, row: DeclaredPlan{Plan: p.Name, File: file}}
		plans = append(plans, dp)
		st, err := openPlanStore(p)
		var bad *BadInputError
		if errors.As(err, &bad) {
			errs = append(errs, err)
			continue
		}
		if err == nil {
			lc, lerr := st.ReadLifecycle(p.Name)
			if err = lerr; err == nil {
				dp.primary, dp.why = currentPrimary(p, lc)
			}
		}
		if err != nil {
			dp.row.Outcome, dp.row.Reason = declFailed, fmt.Sprintf("where its cell runs now is not known: %v", err)
		}
	}
	if len(errs) > 0 {
		return nil, BadInput(fmt.Errorf("nothing started: %w", errors.Join(errs...)))
	}
	if !siteKnown {
		return nil, BadInputf("--site %s: no plan given has a site of that name; nothing started", site)
	}
	return plans, nil
}

// classify says, before anything starts, which plans the declaration
// concerns: those whose cell runs at the site now, at their primary. A plan
// named with --plans that runs elsewhere is skipped; with --all it is only
// not affected.
func (dp *declaredPlan) classify(site string, all bool) {
	if dp.row.Outcome != "" {
		return
	}
	where := fmt.Sprintf("its cell runs at %s (%s)", dp.primary, dp.why)
	switch {
	case dp.primary != site && all:
		dp.row.Outcome, dp.row.Reason = declNotAffected, where
	case dp.primary != site:
		dp.row.Outcome, dp.row.Reason = declSkipped, where+", not at "+site
	case dp.primary != siteName(dp.p.Sites.Primary):
		// A failover restores at the secondary: the cell is there already.
		dp.row.Outcome, dp.row.Reason = declSkipped, fmt.Sprintf("%s, its secondary: a failover would restore there; drover failback --plan %s moves it back to %s",
			where, dp.file, siteName(dp.p.Sites.Primary))
	}
}

// newDeclarationID names a declaration: the site, the instant, and a few
// random characters so two declarations in one second differ.
func newDeclarationID(site string, at time.Time) (string, error) {
	nonce, err := approval.NewNonce()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s-%s-%s", site, at.UTC().Format("20060102T150405Z"), nonce[:6]), nil
}

// failoverMany starts the failover of every plan the declaration concerns,
// each with the same declaration ID and declared instant. A plan with a
// failover or failback running is skipped; the others start. It ends with
// an error (exit 1) when any plan was skipped or failed to start.
func failoverMany(ctx context.Context, g *Globals, f runFlags, m manyFlags, in workflows.FailoverInput) error {
	if err := m.check(f, in); err != nil {
		return err
	}
	files, err := m.planFiles()
	if err != nil {
		return err
	}
	plans, err := loadDeclaredPlans(g, files, m.site, failoverSpec(g, in))
	if err != nil {
		return err
	}
	c, err := g.Dial()
	if err != nil {
		return err
	}
	defer c.Close()

	in.DeclaredAt = time.Now().UTC()
	decl := Declaration{Site: m.site, Planned: in.Planned, DeclaredAt: in.DeclaredAt}
	if decl.Declaration, err = newDeclarationID(m.site, in.DeclaredAt); err != nil {
		return err
	}
	for _, dp := range plans {
		dp.classify(m.site, m.all)
		if dp.row.Outcome == "" {
			dp.start(ctx, c, failoverSpec(g, in), decl.Declaration)
		}
		decl.Plans = append(decl.Plans, dp.row)
	}
	if m.all {
		decl.Plans = append(decl.Plans, unfiledPlans(ctx, g, c, plans, m.planDir)...)
	}
	if err := printDeclaration(g, decl); err != nil {
		return err
	}
	n := declarationCounts(decl)
	switch {
	case n[declStarted] == 0 && n[declSkipped] == 0 && n[declFailed] == 0:
		return BadInputf("declaration %s: no plan runs at %s; nothing started", decl.Declaration, m.site)
	case n[declSkipped] > 0 || n[declFailed] > 0:
		return fmt.Errorf("declaration %s: %d started, %d skipped, %d failed to start", decl.Declaration, n[declStarted], n[declSkipped], n[declFailed])
	}
	return nil
}

// start runs the single failover's before and input, then starts the run
// with the declaration's search attribute.
func (dp *declaredPlan) start(ctx context.Context, c client.Client, spec runSpec, declaration string) {
	fail := func(err error) {
		var ar *alreadyRunning
		if errors.As(err, &ar) {
			dp.row.Outcome, dp.row.Reason = declSkipped, fmt.Sprintf("a failover or failback is already running: workflow %s (run %s)", ar.id, ar.runID)
			dp.row.WorkflowID, dp.row.RunID = ar.id, ar.runID
			return
		}
		dp.row.Outcome, dp.row.Reason = declFailed, err.Error()
	}
	if err := spec.before(ctx, c, dp.p); err != nil {
		fail(err)
		return
	}
	arg, err := spec.input(dp.p)
	if err != nil {
		fail(err)
		return
	}
	id := spec.id(dp.p)
	opts := stack.StartOptions(id, dp.p.Name, spec.kind)
	opts.TypedSearchAttributes = workflows.DeclaredSearchAttributes(dp.p.Name, spec.kind, declaration)
	run, err := startRunWith(ctx, c, opts, dp.p.Name, spec.kind, spec.wf, arg)
	if err != nil {
		fail(err)
		return
	}
	dp.row.Outcome, dp.row.Reason = declStarted, ""
	dp.row.WorkflowID, dp.row.RunID = run.GetID(), run.GetRunID()
}

// unfiledPlans are the plans enabled in Temporal (an RPO monitor or a
// backup schedule) that no file in the plan folder holds: --all cannot tell
// whether they run at the site, so they are reported skipped rather than
// forgotten.
func unfiledPlans(ctx context.Context, g *Globals, c client.Client, plans []*declaredPlan, dir string) []DeclaredPlan {
	known, err := knownPlans(ctx, c)
	if err != nil {
		return []DeclaredPlan{{Plan: "?", Outcome: declFailed, Reason: fmt.Sprintf("list the plans enabled in Temporal: %v", err)}}
	}
	var out []DeclaredPlan
	for _, k := range known {
		if !slices.ContainsFunc(plans, func(dp *declaredPlan) bool { return dp.p.Name == k.Plan }) {
			out = append(out, DeclaredPlan{Plan: k.Plan, Outcome: declSkipped,
				Reason: fmt.Sprintf("enabled in Temporal, but no plan file in %s holds it: give its file with --plans", dir)})
		}
	}
	return out
}

func declarationCounts(d Declaration) map[string]int {
	n := map[string]int{}
	for _, p := range d.Plans {
		n[p.Outcome]++
	}
	return n
}

func printDeclaration(g *Globals, d Declaration) error {
	return g.Print(d, func(w io.Writer) error {
		kind := "unplanned"
		if d.Planned {
			kind = "planned"
		}
		fmt.Fprintf(w, "declaration %s: %s failover of the plans at %s, declared %s\n", d.Declaration, kind, d.Site, humanTime(d.DeclaredAt))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PLAN\tOUTCOME\tWORKFLOW\tRUN\tWHY")
		for _, p := range d.Plans {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Plan, p.Outcome, orDash(p.WorkflowID), orDash(p.RunID), orDash(p.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		n := declarationCounts(d)
		fmt.Fprintf(w, "%d started, %d skipped, %d failed to start, %d not affected\n", n[declStarted], n[declSkipped], n[declFailed], n[declNotAffected])
		if n[declStarted] > 0 {
			fmt.Fprintf(w, "follow them: drover status --declaration %s; gates waiting: drover gates list --declaration %s\n", d.Declaration, d.Declaration)
			fmt.Fprintf(w, "decide a gate in every run that waits there: drover gates approve --declaration %s --gate GATE --as NAME\n", d.Declaration)
		}
		return nil
	})
}

// checkDeclarationID refuses an ID that could not be one (it goes into a
// visibility query).
func checkDeclarationID(d string) error {
	if d == "" || strings.ContainsAny(d, `'"\ `) {
		return BadInputf("--declaration %q: not a declaration ID (drover failover --site prints it)", d)
	}
	return nil
}

// declarationRuns are the runs started by one declaration, newest first.
func declarationRuns(ctx context.Context, c client.Client, declaration string) ([]RunRow, error) {
	rows, err := listRunsWhere(ctx, c, []string{fmt.Sprintf("%s = '%s'", contract.SADeclaration.GetName(), declaration)}, 0)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(rows, func(a, b RunRow) int { return strings.Compare(a.Plan, b.Plan) })
	return rows, nil
}

// declarationGates are the gates waiting in the runs of a declaration (of
// one plan when planName is set).
func declarationGates(ctx context.Context, c client.Client, declaration, planName string) ([]GateView, error) {
	rows, err := declarationRuns(ctx, c, declaration)
	if err != nil {
		return nil, err
	}
	if planName != "" {
		rows = slices.DeleteFunc(rows, func(r RunRow) bool { return r.Plan != planName })
	}
	return openGatesOf(ctx, c, rows), nil
}

// DeclaredApproval is what one run of a declaration did with a shared
// approval: counted (and the gate's outcome), not counted (why), or
// skipped without a signal (not waiting at the gate, or the approver is
// not one of this plan's for it).
type DeclaredApproval struct {
	Plan        string `json:"plan"`
	WorkflowID  string `json:"workflowId"`
	RunID       string `json:"runId"`
	Outcome     string `json:"outcome"`
	GateOutcome string `json:"gateOutcome,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// Target is the run that got the signal (the run's child when the
	// child holds the gate).
	Target string `json:"target,omitempty"`
}

// Outcomes of a shared approval in one run.
const (
	approvalCounted    = "counted"
	approvalNotCounted = "not-counted"
	approvalSkipped    = "skipped"
)

// approveDeclaration decides gate ap.Gate in every run of the declaration
// that waits there and lists ap.Approver as one of its approvers: one
// signal per run, each with its own signal id (and signature), through the
// single approve.
func approveDeclaration(ctx context.Context, g *Globals, c client.Client, declaration string, ap workflows.Approval, key *approval.PrivateKey) error {
	rows, err := declarationRuns(ctx, c, declaration)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return BadInputf("declaration %s: no run carries it (drover failover --site prints the ID)", declaration)
	}
	out := make([]DeclaredApproval, len(rows))
	var wg sync.WaitGroup
	for i, r := range rows {
		out[i] = DeclaredApproval{Plan: r.Plan, WorkflowID: r.WorkflowID, RunID: r.RunID}
		if r.Status != "running" {
			out[i].Outcome, out[i].Reason = approvalSkipped, "the run is "+r.Status
			continue
		}
		st, _, err := statusTree(ctx, c, r.WorkflowID)
		if err != nil {
			out[i].Outcome, out[i].Reason = approvalNotCounted, fmt.Sprintf("cannot read its status: %v", err)
			continue
		}
		gi := slices.IndexFunc(st.Gates, func(gt workflows.GateRecord) bool {
			return gt.Name == ap.Gate && gt.Outcome == workflows.OutcomePending
		})
		switch {
		case gi < 0:
			out[i].Outcome, out[i].Reason = approvalSkipped, "not waiting at "+ap.Gate+waitingAt(st)
			continue
		case !slices.Contains(st.Gates[gi].Approvers, ap.Approver):
			out[i].Outcome, out[i].Reason = approvalSkipped, fmt.Sprintf("%s is not an approver of %s in plan %s (approvers: %s)",
				ap.Approver, ap.Gate, r.Plan, strings.Join(st.Gates[gi].Approvers, ", "))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := approve(ctx, c, r.WorkflowID, ap, key)
			if err != nil {
				out[i].Outcome, out[i].Reason = approvalNotCounted, err.Error()
				return
			}
			out[i].Outcome, out[i].GateOutcome, out[i].Target = approvalCounted, res.outcome, res.target
		}()
	}
	wg.Wait()
	if err := g.Print(out, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PLAN\tWORKFLOW\tSIGNAL\tGATE OUTCOME\tWHY")
		for _, a := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Plan, a.WorkflowID, a.Outcome, orDash(a.GateOutcome), orDash(a.Reason))
		}
		return tw.Flush()
	}); err != nil {
		return err
	}
	counted, notCounted := 0, 0
	for _, a := range out {
		switch a.Outcome {
		case approvalCounted:
			counted++
		case approvalNotCounted:
			notCounted++
		}
	}
	switch {
	case notCounted > 0:
		return fmt.Errorf("declaration %s: %s of %s counted in %d runs, not counted in %d", declaration, ap.Decision, ap.Gate, counted, notCounted)
	case counted == 0:
		return BadInputf("declaration %s: no run waits at gate %s for %s; nothing sent", declaration, ap.Gate, ap.Approver)
	}
	return nil
}

// waitingAt names the gates a run waits at, for a skip's reason.
func waitingAt(st workflows.Status) string {
	var names []string
	for _, gt := range st.Gates {
		if gt.Outcome == workflows.OutcomePending {
			names = append(names, gt.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (waits at " + strings.Join(names, ", ") + ")"
}

// DeclarationStatus is one summary of a declaration's runs.
type DeclarationStatus struct {
	Declaration string            `json:"declaration"`
	DeclaredAt  time.Time         `json:"declaredAt,omitzero"`
	Runs        []DeclaredRun     `json:"runs"`
	Totals      DeclarationTotals `json:"totals"`
}

// DeclaredRun is one plan's run in a declaration's summary. RTO is the
// run's achieved RTO once it completed (RTOFinal), else the time since the
// declaration (so far, or until the run ended without one).
type DeclaredRun struct {
	Plan       string        `json:"plan"`
	WorkflowID string        `json:"workflowId"`
	RunID      string        `json:"runId"`
	Status     string        `json:"status"`
	Phase      string        `json:"phase,omitempty"`
	OpenGates  []OpenGate    `json:"openGates,omitempty"`
	Started    time.Time     `json:"started"`
	Ended      time.Time     `json:"ended,omitzero"`
	RTO        time.Duration `json:"rto"`
	RTOTarget  time.Duration `json:"rtoTarget,omitempty"`
	RTOFinal   bool          `json:"rtoFinal"`
}

// OpenGate is a gate a run of a declaration waits at, and for whom.
type OpenGate struct {
	Name       string   `json:"name"`
	WorkflowID string   `json:"workflowId"`
	Approvers  []string `json:"approvers"`
}

// DeclarationTotals sum a declaration's runs.
type DeclarationTotals struct {
	Plans     int `json:"plans"`
	Running   int `json:"running"`
	Completed int `json:"completed"`
	// Other is failed, cancelled, terminated or timed out.
	Other     int `json:"other"`
	OpenGates int `json:"openGates"`
	// LongestRTO is the longest RTO among the runs, final or so far.
	LongestRTO time.Duration `json:"longestRto"`
}

// declarationStatus reads every run of the declaration: its state from
// Temporal, its open gates from the run, its declared instant and RTO
// target from its input, its achieved RTO from its result.
func declarationStatus(ctx context.Context, g *Globals, c client.Client, declaration string, now time.Time) (DeclarationStatus, error) {
	out := DeclarationStatus{Declaration: declaration, Runs: []DeclaredRun{}}
	rows, err := declarationRuns(ctx, c, declaration)
	if err != nil {
		return out, err
	}
	if len(rows) == 0 {
		return out, BadInputf("declaration %s: no run carries it (drover failover --site prints the ID)", declaration)
	}
	s, err := newSnapshotter(g, c)
	if err != nil {
		return out, err
	}
	for _, r := range rows {
		dr := DeclaredRun{Plan: r.Plan, WorkflowID: r.WorkflowID, RunID: r.RunID, Status: r.Status, Phase: r.Phase, Started: r.Started, Ended: r.Closed}
		var in workflows.FailoverInput
		if startInput(ctx, c, s.dc, r.WorkflowID, r.RunID, &in) {
			if out.DeclaredAt.IsZero() || in.DeclaredAt.Before(out.DeclaredAt) {
				out.DeclaredAt = in.DeclaredAt
			}
			dr.RTOTarget = in.Plan.RTO.D()
		}
		if r.Status == "running" {
			for _, gt := range openGatesOf(ctx, c, []RunRow{r}) {
				dr.OpenGates = append(dr.OpenGates, OpenGate{Name: gt.Name, WorkflowID: gt.WorkflowID, Approvers: gt.Approvers})
			}
			if st, err := queryStatus(ctx, c, r.WorkflowID); err == nil && st.Phase != "" {
				dr.Phase = st.Phase
			}
		}
		if r.Status == "completed" {
			var res workflows.FailoverResult
			if err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res); err == nil && res.RTO.Known {
				dr.RTO, dr.RTOFinal = res.RTO.Achieved, true
			}
		}
		out.Runs = append(out.Runs, dr)
	}
	t := &out.Totals
	for i := range out.Runs {
		dr := &out.Runs[i]
		if !dr.RTOFinal && !out.DeclaredAt.IsZero() {
			end := now
			if !dr.Ended.IsZero() {
				end = dr.Ended
			}
			dr.RTO = end.Sub(out.DeclaredAt).Round(time.Second)
		}
		t.Plans++
		switch dr.Status {
		case "running":
			t.Running++
		case "completed":
			t.Completed++
		default:
			t.Other++
		}
		t.OpenGates += len(dr.OpenGates)
		t.LongestRTO = max(t.LongestRTO, dr.RTO)
	}
	return out, nil
}

// declarationLines are the text of a declaration's summary.
func declarationLines(d DeclarationStatus) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "declaration %s, declared %s\n", d.Declaration, humanTime(d.DeclaredAt))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tWORKFLOW\tSTATUS\tPHASE\tOPEN GATES\tSTARTED\tENDED\tRTO")
	for _, r := range d.Runs {
		var gates []string
		for _, gt := range r.OpenGates {
			gates = append(gates, fmt.Sprintf("%s (%s)", gt.Name, strings.Join(gt.Approvers, ", ")))
		}
		rto := humanDuration(r.RTO)
		switch {
		case r.RTOFinal && r.RTOTarget > 0:
			rto += fmt.Sprintf(" (target %s, %s)", humanDuration(r.RTOTarget), map[bool]string{true: "met", false: "missed"}[r.RTO <= r.RTOTarget])
		case r.Status == "running":
			rto += " so far"
		case !r.RTOFinal:
			rto = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Plan, r.WorkflowID, r.Status, orDash(r.Phase), orDash(strings.Join(gates, "; ")),
			humanTime(r.Started), humanTime(r.Ended), rto)
	}
	_ = tw.Flush()
	t := d.Totals
	fmt.Fprintf(&b, "total: %d plans: %d completed, %d running, %d failed or stopped; %d open gates; longest RTO %s\n",
		t.Plans, t.Completed, t.Running, t.Other, t.OpenGates, humanDuration(t.LongestRTO))
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// showDeclaration prints a declaration's summary; with watch, again each
// time it changes, until no run of it is running.
func showDeclaration(ctx context.Context, g *Globals, c client.Client, declaration string, watch bool) error {
	var last string
	for {
		d, err := declarationStatus(ctx, g, c, declaration, time.Now())
		if err != nil {
			return err
		}
		if !watch || d.Totals.Running == 0 {
			return g.Print(d, func(w io.Writer) error {
				for _, l := range declarationLines(d) {
					fmt.Fprintln(w, l)
				}
				return nil
			})
		}
		// Text: print again when more than the running RTOs changed.
		if !g.Structured() {
			still := d
			still.Runs = slices.Clone(d.Runs)
			for i := range still.Runs {
				if !still.Runs[i].RTOFinal {
					still.Runs[i].RTO = 0
				}
			}
			still.Totals.LongestRTO = 0
			if key := strings.Join(declarationLines(still), "\n"); key != last {
				fmt.Fprintln(g.Stdout, strings.Join(declarationLines(d), "\n"))
				last = key
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(watchInterval):
		}
	}
}
