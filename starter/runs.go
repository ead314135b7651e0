package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/approval"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

func init() {
	register(newFailoverCmd)
	register(newFailbackCmd)
	register(newDrillCmd)
	register(newBackupCmd)
	register(newApproveCmd)
	register(newStatusCmd)
}

// runFlags are shared by commands that start a run.
type runFlags struct {
	plan  string
	watch bool
}

func (f *runFlags) add(cmd *cobra.Command) {
	f.addWith(cmd, "the plan file (required)")
	_ = cmd.MarkFlagRequired("plan")
}

// addWith adds the flags with --plan optional, for a command that can take
// many plans instead.
func (f *runFlags) addWith(cmd *cobra.Command, planUsage string) {
	cmd.Flags().StringVar(&f.plan, "plan", "", planUsage)
	cmd.Flags().BoolVar(&f.watch, "watch", false, "follow the run until it ends, printing phases and open gates")
}

// alreadyRunning is the refusal of a run whose workflow id has an open
// run: bad input, and a fleet failover's reason to skip the plan.
type alreadyRunning struct{ kind, plan, id, runID string }

func (e *alreadyRunning) Error() string {
	return fmt.Sprintf("%s of plan %s refused: a run is already in progress: workflow %s (run %s); follow it with drover status %s, or wait for it or cancel it",
		e.kind, e.plan, e.id, e.runID, e.id)
}

// startRun starts a workflow with drover's search attributes. An id that is
// already running is refused with the run that holds it.
func startRun(ctx context.Context, c client.Client, id, planName, kind string, wf, in any) (client.WorkflowRun, error) {
	return startRunWith(ctx, c, stack.StartOptions(id, planName, kind), planName, kind, wf, in)
}

// startRunWith is startRun with the start options given (more search
// attributes).
func startRunWith(ctx context.Context, c client.Client, opts client.StartWorkflowOptions, planName, kind string, wf, in any) (client.WorkflowRun, error) {
	id := opts.ID
	opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	// Without it the SDK hands back the running execution as if this call
	// had started it, and a second failover would silently drop its own
	// flags.
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	run, err := c.ExecuteWorkflow(ctx, opts, wf, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, BadInput(&alreadyRunning{kind: kind, plan: planName, id: id, runID: started.RunId})
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return run, nil
}

// running reports whether a workflow id has an open run.
func running(ctx context.Context, c client.Client, id string) bool {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return false
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// finishRun prints where the run is and, with --watch, follows it to the end.
func finishRun(ctx context.Context, g *Globals, c client.Client, run client.WorkflowRun, watch bool, result any) error {
	ids := runIDs{WorkflowID: run.GetID(), RunID: run.GetRunID()}
	if !watch {
		return g.Print(ids, func(w io.Writer) error {
			fmt.Fprintf(w, "started %s (run %s)\n", ids.WorkflowID, ids.RunID)
			fmt.Fprintf(w, "follow it: drover status %s --watch; approve gates: drover approve %s --gate GATE --as NAME\n", ids.WorkflowID, ids.WorkflowID)
			return nil
		})
	}
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, result) }()
	if g.Structured() {
		// JSON and YAML print the result alone, so the output parses.
		err := <-done
		done <- err
	} else if err := watchRun(ctx, g, c, run.GetID(), done); err != nil {
		return err
	}
	err := <-done
	if g.Structured() {
		_ = g.Print(runResult{runIDs: ids, Result: result}, nil)
	}
	if err != nil {
		if badPlanFailure(err) {
			// The plan could not run as written where it ran (a setting a
			// driver refused, a variable unset at the site worker).
			return BadInputf("%s failed: %w", run.GetID(), err)
		}
		return fmt.Errorf("%s failed: %w", run.GetID(), err)
	}
	return nil
}

// badPlanFailure reports whether a run failed on the plan itself rather
// than on the estate: a BadSettings or BadPlan error anywhere in its chain.
func badPlanFailure(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if app, ok := e.(*temporal.ApplicationError); ok && (app.Type() == contract.ErrTypeBadSettings || app.Type() == contract.ErrTypeBadPlan) {
			return true
		}
	}
	return false
}

// runIDs name one run: the workflow ID and the run ID Temporal gave it.
type runIDs struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// runResult is a finished run's result with its IDs, as -o json|yaml print it.
type runResult struct {
	runIDs
	Result any `json:"result"`
}

func quorumText(q int) string {
	if q <= 1 {
		return "one approval"
	}
	return fmt.Sprintf("%d approvals", q)
}

// queryStatus asks a run for its status.
func queryStatus(ctx context.Context, c client.Client, id string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, "", contract.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// statusTree returns the status of the run, or of its active child when
// the child holds the open gate (a restart's start-failed gate), with the
// id that gate belongs to.
func statusTree(ctx context.Context, c client.Client, id string) (workflows.Status, string, error) {
	st, err := queryStatus(ctx, c, id)
	if err != nil {
		return st, id, err
	}
	if st.Child != "" && !hasPendingGate(st) {
		if cst, err := queryStatus(ctx, c, st.Child); err == nil && hasPendingGate(cst) {
			cst.Phase = st.Phase + " > " + cst.Phase
			return cst, st.Child, nil
		}
	}
	return st, id, nil
}

func hasPendingGate(st workflows.Status) bool {
	return slices.ContainsFunc(st.Gates, func(g workflows.GateRecord) bool { return g.Outcome == workflows.OutcomePending })
}

// runSpec is one kind of run a command starts from a plan.
type runSpec struct {
	kind string
	id   func(*plan.Plan) string
	wf   any
	// input builds the workflow input; an error is bad input.
	input func(*plan.Plan) (any, error)
	// before runs with a client before the start (refusals, warnings).
	before func(context.Context, client.Client, *plan.Plan) error
	result any
}

// runFromPlan loads and checks the plan, starts the run and follows it: the
// shape every run command shares.
func runFromPlan(ctx context.Context, g *Globals, f runFlags, spec runSpec) error {
	p, _, err := loadCheckedPlan(g, f.plan)
	if err != nil {
		return err
	}
	// The input is made first so bad input is refused before dialing, and
	// again after before, which may fill what it carries (a follow-up's
	// point).
	in, err := spec.input(p)
	if err != nil {
		return err
	}
	c, err := g.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if spec.before != nil {
		if err := spec.before(ctx, c, p); err != nil {
			return err
		}
		if in, err = spec.input(p); err != nil {
			return err
		}
	}
	run, err := startRun(ctx, c, spec.id(p), p.Name, spec.kind, spec.wf, in)
	if err != nil {
		return err
	}
	return finishRun(ctx, g, c, run, f.watch, spec.result)
}

func switchoverOf(p *plan.Plan) string { return contract.SwitchoverID(p.Name) }

// failoverSpec is the failover run of one plan from in (the flags; the
// plan is filled per plan): the single-plan command and a declaration's
// failovers make their inputs the same way.
func failoverSpec(g *Globals, in workflows.FailoverInput) runSpec {
	return runSpec{
		kind: contract.KindFailover, id: switchoverOf, wf: workflows.FailoverWorkflow,
		input: func(p *plan.Plan) (any, error) {
			in.Plan = *p
			return in, nil
		},
		before: func(ctx context.Context, c client.Client, p *plan.Plan) error {
			if in.Continue != "" {
				// The follow-up restores nothing: it starts the rest
				// from the point the earlier run restored.
				var earlier workflows.FailoverResult
				if err := c.GetWorkflow(ctx, switchoverOf(p), in.Continue).Get(ctx, &earlier); err != nil {
					return BadInputf("failover --continue %s: the earlier failover's result: %v", in.Continue, err)
				}
				in.PointID = earlier.Point.ID
			}
			if running(ctx, c, contract.DrillID(p.Name)) {
				g.Logger().Warn("a drill of this plan is running; it uses the sandbox only and goes on", zap.String("plan", p.Name))
			}
			return nil
		},
		result: &workflows.FailoverResult{},
	}
}

func newFailoverCmd(g *Globals) *cobra.Command {
	var f runFlags
	var m manyFlags
	var planned, unplanned bool
	var point, continueRun string
	var only []string
	cmd := &cobra.Command{
		Use:   "failover --plan F --planned|--unplanned [--only CLASS] | --continue RUN [--only CLASS] | --site S --plans F1,F2|--all --plan-dir DIR --planned|--unplanned",
		Short: "Move the cell to the secondary site (planned or unplanned); --site moves every plan whose primary is there, on one declaration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case continueRun != "" && (planned || unplanned || point != ""):
				return BadInputf("failover: --continue takes the earlier run's point; leave out --planned, --unplanned and --point")
			case continueRun == "" && planned == unplanned:
				return BadInputf("failover: give exactly one of --planned or --unplanned")
			}
			in := workflows.FailoverInput{Planned: planned, PointID: point, Only: only, Continue: continueRun}
			if m.many() || f.plan == "" {
				return failoverMany(cmd.Context(), g, f, m, in)
			}
			return runFromPlan(cmd.Context(), g, f, failoverSpec(g, in))
		},
	}
	f.addWith(cmd, "the plan file (or --site S with --plans or --all)")
	m.add(cmd)
	cmd.Flags().BoolVar(&planned, "planned", false, "leave the primary on purpose: drain, final backup, orderly stop")
	cmd.Flags().BoolVar(&unplanned, "unplanned", false, "the primary is gone")
	cmd.Flags().StringVar(&point, "point", "", "restore this recovery point instead of the newest valid one")
	cmd.Flags().StringSliceVar(&only, "only", nil, "bring up only the components of these priority classes (default: the classes the plan marks first, else all)")
	cmd.Flags().StringVar(&continueRun, "continue", "", "complete the subset failover with this run id: the rest from its point, nothing restored again")
	return cmd
}

func newFailbackCmd(g *Globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "failback --plan F",
		Short: "Return the cell from the secondary to the primary site",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFromPlan(cmd.Context(), g, f, runSpec{
				kind: contract.KindFailback, id: switchoverOf, wf: workflows.FailbackWorkflow,
				input:  func(p *plan.Plan) (any, error) { return workflows.FailbackInput{Plan: *p}, nil },
				result: &workflows.FailbackResult{},
			})
		},
	}
	f.add(cmd)
	return cmd
}

func newDrillCmd(g *Globals) *cobra.Command {
	var f runFlags
	var point string
	cmd := &cobra.Command{
		Use:   "drill --plan F",
		Short: "Restore the newest valid point into the sandbox, verify it, measure the RTO, clean up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runFromPlan(cmd.Context(), g, f, runSpec{
				kind: contract.KindDrill, id: func(p *plan.Plan) string { return contract.DrillID(p.Name) }, wf: workflows.DrillWorkflow,
				input: func(p *plan.Plan) (any, error) {
					if p.Sites.Sandbox == nil {
						return nil, BadInputf("%s: sites.sandbox: a drill needs an isolated sandbox site", f.plan)
					}
					return workflows.DrillInput{Plan: *p, PointID: point}, nil
				},
				before: func(ctx context.Context, c client.Client, p *plan.Plan) error {
					if running(ctx, c, contract.SwitchoverID(p.Name)) {
						return BadInputf("drill of plan %s refused: a failover or failback (%s) is running", p.Name, contract.SwitchoverID(p.Name))
					}
					return nil
				},
				result: &workflows.DrillResult{},
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&point, "point", "", "drill this recovery point instead of the newest valid one")
	return cmd
}

func newBackupCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Take recovery points", Args: cobra.NoArgs}
	var f runFlags
	var full, validate bool
	run := &cobra.Command{
		Use:   "run --plan F [--full]",
		Short: "Take one recovery point now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, _, err := loadCheckedPlan(g, f.plan)
			if err != nil {
				return err
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			in := workflows.BackupInput{Plan: *p, Reason: "manual", Validate: validate}
			if full {
				in.Mode = contract.ModeFull
			}
			id := contract.BackupID(p.Name, time.Now().UTC().Format("20060102T150405.000"))
			r, err := startRun(cmd.Context(), c, id, p.Name, contract.KindBackup, workflows.BackupWorkflow, in)
			if err != nil {
				return err
			}
			var res workflows.BackupResult
			if err := finishRun(cmd.Context(), g, c, r, true, &res); err != nil {
				return err
			}
			if !g.Structured() {
				fmt.Fprintf(g.Stdout, "point %s: %s, %d bytes, consistency %s, validity %s\n", res.Point.ID, res.Point.Mode,
					res.Point.Size, res.Point.Consistency, res.Point.Validity.State)
			}
			return nil
		},
	}
	f.add(run)
	_ = run.Flags().MarkHidden("watch")
	run.Flags().BoolVar(&full, "full", false, "take a full point rather than a cumulative one")
	run.Flags().BoolVar(&validate, "validate", false, "validate the new point in the sandbox afterwards")
	cmd.AddCommand(run, newBackupScheduleCmd(g))
	return cmd
}

func newApproveCmd(g *Globals) *cobra.Command {
	var gate, as, comment, decision, keyFile, declaration string
	var reject bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "approve WORKFLOW|--declaration D --gate G --as NAME [--reject] [--comment TEXT]",
		Short: "Approve (or reject) a gate of a running workflow (or of every run of a declaration waiting there) and wait until the run counted it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case declaration != "" && len(args) > 0:
				return BadInputf("approve: give a WORKFLOW or --declaration D, not both")
			case declaration == "" && len(args) == 0:
				return BadInputf("approve: give the WORKFLOW whose gate to decide, or --declaration D")
			case declaration != "":
				if err := checkDeclarationID(declaration); err != nil {
					return err
				}
			}
			if gate == "" || as == "" {
				return BadInputf("approve: --gate and --as are required")
			}
			d := contract.DecisionApprove
			switch {
			case reject && decision != "":
				return BadInputf("approve: give --reject or --decision, not both")
			case reject:
				d = contract.DecisionReject
			case decision != "":
				d = decision
			}
			var key *approval.PrivateKey
			if keyFile != "" {
				var err error
				if key, err = approval.LoadPrivateKey(keyFile); err != nil {
					return BadInputf("--key: %v", err)
				}
			}
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			if declaration != "" {
				return approveDeclaration(ctx, g, c, declaration, workflows.Approval{Gate: gate, Approver: as, Decision: d, Comment: comment}, key)
			}
			res, err := approve(ctx, c, args[0], workflows.Approval{Gate: gate, Approver: as, Decision: d, Comment: comment}, key)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "%s: %s counted at gate %s of %s (gate outcome: %s)\n", as, d, gate, res.target, res.outcome)
			return nil
		},
	}
	cmd.Flags().StringVar(&gate, "gate", "", "the gate to decide")
	cmd.Flags().StringVar(&as, "as", "", "the approver's name, as the plan lists it")
	cmd.Flags().BoolVar(&reject, "reject", false, "reject instead of approve")
	cmd.Flags().StringVar(&decision, "decision", "", "another decision the gate offers (retry, skip, abort)")
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the run to count the approval")
	cmd.Flags().StringVar(&keyFile, "key", os.Getenv("DROVER_APPROVER_KEY"), "the approver's private key file: signs the approval (env DROVER_APPROVER_KEY)")
	cmd.Flags().StringVar(&declaration, "declaration", "", "decide the gate in every run of this declaration that waits there and lists NAME as its approver (one signal each)")
	return cmd
}

type approveResult struct{ target, outcome string }

// signedSignal is a signed approval with the signal's id beside the signed
// fields.
type signedSignal struct {
	approval.Signed
	SignalID string `json:"signalId"`
}

// verdict is what a run did with one approve signal, as its status shows.
type verdict struct {
	counted, ignored bool
	outcome, reason  string
}

// signalVerdict finds the signal with this id among the approvals counted
// and the signals ignored; neither means the run has not handled it yet.
func signalVerdict(st workflows.Status, signalID string) verdict {
	for _, gt := range st.Gates {
		for _, rec := range gt.Approvals {
			if rec.Signal == signalID {
				return verdict{counted: true, outcome: gt.Outcome}
			}
		}
	}
	for _, ig := range st.Ignored {
		if ig.Signal == signalID {
			return verdict{ignored: true, reason: ig.Reason}
		}
	}
	return verdict{}
}

// approve signals the run (or its active child) that holds the open gate
// and waits until the status query shows the approval counted, or says why
// it was ignored.
func approve(ctx context.Context, c client.Client, id string, ap workflows.Approval, key *approval.PrivateKey) (approveResult, error) {
	_, target, err := statusTree(ctx, c, id)
	if err != nil {
		return approveResult{}, BadInputf("approve: cannot read the status of %s: %v", id, err)
	}
	// The signal's own id, echoed by the run with the approval it counted
	// or the reason it ignored it: an earlier approval by the same approver
	// in the status says nothing about this signal (issue 11 item 14).
	if ap.SignalID, err = approval.NewNonce(); err != nil {
		return approveResult{}, err
	}
	var payload any = ap
	if key != nil {
		// The signature binds the exact run, so describe it first.
		d, err := c.DescribeWorkflowExecution(ctx, target, "")
		if err != nil {
			return approveResult{}, fmt.Errorf("describe %s: %w", target, err)
		}
		runID := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		signed, err := key.Approve(target, runID, ap.Gate, ap.Decision, ap.Approver, ap.Comment)
		if err != nil {
			return approveResult{}, BadInput(err)
		}
		payload = signedSignal{Signed: signed, SignalID: ap.SignalID}
	}
	if err := c.SignalWorkflow(ctx, target, "", contract.SignalApprove, payload); err != nil {
		return approveResult{}, fmt.Errorf("signal %s: %w", target, err)
	}
	for {
		st, err := queryStatus(ctx, c, target)
		if err == nil {
			switch v := signalVerdict(st, ap.SignalID); {
			case v.counted:
				return approveResult{target: target, outcome: v.outcome}, nil
			case v.ignored:
				return approveResult{}, BadInputf("approval not counted by %s: %s", target, v.reason)
			}
		}
		select {
		case <-ctx.Done():
			return approveResult{}, fmt.Errorf("approval sent to %s but not seen counted in time", target)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func newStatusCmd(g *Globals) *cobra.Command {
	cmd := newRunsDescribeCmd(g)
	cmd.Use = "status RUN [--watch]"
	cmd.Short = "Show where a run stands: phase, tiers, transfers, open gates with their checklists (same as drover runs describe)"
	return cmd
}
