package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/activities"
	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/builtin"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/plan"
	"github.com/drover-dr/drover/stack"
	"github.com/drover-dr/drover/workflows"
)

// The goals of the RTO benchmark.
const (
	rtoOverheadGoalPercent = 5.0
	// rtoFlatGrowth is how much the failover may grow from the smallest to
	// the largest N and still count as flat.
	rtoFlatGrowth = 1.10
	// rtoGrowsGrowth is how much the sequential runbook must grow to count
	// as growing with N.
	rtoGrowsGrowth = 1.5
	// RTOMaxN bounds N: 2N app servers plus eight others, one port and one
	// process each, on one machine.
	RTOMaxN = 200
)

// ParseCounts reads "1,8,32": distinct counts from 1 to max, sorted.
func ParseCounts(s string, max int) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 || n > max {
			return nil, fmt.Errorf("%q is not a count from 1 to %d", part, max)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d is listed twice", n)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

// rtoSpan is one activity attempt as the worker ran it.
type rtoSpan struct {
	Workflow string
	Activity string
	// Key is the component, check or group the activity worked on.
	Key   string
	Level string
	// Scheduled is when the workflow scheduled the activity (server clock,
	// same machine); Begin and End bracket its execution in the worker.
	Scheduled  time.Time
	Begin, End time.Time
	Attempt    int32
	Failed     bool
}

func (s rtoSpan) took() time.Duration { return s.End.Sub(s.Begin) }

// rtoRecorder is a worker interceptor that records every activity
// execution, so the critical path comes from the same run it is compared
// with, measured inside the worker rather than guessed.
type rtoRecorder struct {
	interceptor.WorkerInterceptorBase
	mu    sync.Mutex
	spans []rtoSpan
}

func (r *rtoRecorder) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &rtoActivityRecorder{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, rec: r}
}

// take returns and forgets the spans of one run tree (the workflow and its
// children, whose ids extend the parent's).
func (r *rtoRecorder) take(workflowID string) []rtoSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out, rest []rtoSpan
	for _, s := range r.spans {
		if s.Workflow == workflowID || strings.HasPrefix(s.Workflow, workflowID+"/") {
			out = append(out, s)
		} else {
			rest = append(rest, s)
		}
	}
	r.spans = rest
	return out
}

func (r *rtoRecorder) reset() {
	r.mu.Lock()
	r.spans = nil
	r.mu.Unlock()
}

type rtoActivityRecorder struct {
	interceptor.ActivityInboundInterceptorBase
	rec *rtoRecorder
}

func (a *rtoActivityRecorder) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	begin := time.Now()
	res, err := a.Next.ExecuteActivity(ctx, in)
	end := time.Now()
	info := activity.GetInfo(ctx)
	s := rtoSpan{Workflow: info.WorkflowExecution.ID, Activity: info.ActivityType.Name, Scheduled: info.ScheduledTime,
		Begin: begin, End: end, Attempt: info.Attempt, Failed: err != nil}
	if len(in.Args) > 0 {
		switch arg := in.Args[0].(type) {
		case contract.ComponentInput:
			s.Key = arg.Component.Name
		case contract.ReadyInput:
			s.Key = arg.Component.Name
		case contract.CheckInput:
			s.Key, s.Level = arg.Check.Name, string(arg.Level)
		case contract.RestoreInput:
			s.Key = arg.Group.Name
		}
	}
	a.rec.mu.Lock()
	a.rec.spans = append(a.rec.spans, s)
	a.rec.mu.Unlock()
	return res, err
}

// rtoWork is the work of one failover, split as the issue names it.
type rtoWork struct {
	// Restore: every group restored (in parallel in the workflow: the
	// slowest counts), then the environment rewrite.
	Restore time.Duration
	// Start: per tier, the slowest member's start plus readiness wait.
	Start time.Duration
	// Verify: per level, the slowest check.
	Verify time.Duration
	// Other: preflight, recovery point choice, in-flight recovery,
	// redirect, report.
	Other time.Duration
	Tiers []rtoTier
	// OtherParts is Other by activity.
	OtherParts map[string]time.Duration
}

func (w rtoWork) critical() time.Duration { return w.Restore + w.Start + w.Verify }

type rtoTier struct {
	Index   int
	Members int
	Slowest string
	Took    time.Duration
}

// rtoOverhead splits the time a failover spends outside its activities'
// work.
type rtoOverhead struct {
	// RunStart: from the start request to the first activity.
	RunStart time.Duration
	// Reactions: from an activity's end to the next one's scheduling while
	// nothing runs (workflow tasks, child workflow starts and ends).
	Reactions time.Duration
	// Dispatch: from scheduling to execution while nothing else runs
	// (matching, polling, retry backoff).
	Dispatch time.Duration
	// Tail: from the last activity's end to the result at the client.
	Tail time.Duration
	// Skew: time activities ran beyond the stage maxima: parallel members
	// not starting together, the gap between a member's start and its
	// readiness wait.
	Skew time.Duration
	// Schedule-to-start of every first attempt, mean and max.
	DispatchMean, DispatchMax time.Duration
	Activities                int
	Retries                   int
	// ReactionCount is how many stretches with nothing running the run had
	// after its first activity (each a workflow reaction and a dispatch).
	ReactionCount int
	// Gaps are the longest stretches with nothing running, longest first.
	Gaps []rtoGap
	// SlowestDispatch are the first attempts that waited longest between
	// scheduling and execution.
	SlowestDispatch []rtoDispatch
}

type rtoDispatch struct {
	Activity string  `json:"activity"`
	Ms       float64 `json:"ms"`
}

// rtoGap is a stretch of a run with no activity running: the workflow
// reacting to the end of After, then the dispatch of Before.
type rtoGap struct {
	After     string  `json:"after"`
	Before    string  `json:"before"`
	Reaction  float64 `json:"reactionMs"`
	Dispatch  float64 `json:"dispatchMs"`
	totalTime time.Duration
}

func (s rtoSpan) label() string {
	l := s.Activity
	if s.Key != "" {
		l += " " + s.Key
	}
	return l
}

// rtoAnalyse turns a run's spans into its work and overhead.
func rtoAnalyse(spans []rtoSpan, tiers []plan.Tier, wallBegin, wallEnd time.Time) (rtoWork, rtoOverhead) {
	w := rtoWork{OtherParts: map[string]time.Duration{}}
	groups := map[string]time.Duration{}
	members := map[string]time.Duration{}
	checks := map[string]time.Duration{} // level/check
	var ov rtoOverhead
	var dispatchSum time.Duration
	for _, s := range spans {
		d := s.took()
		switch {
		case s.Activity == "RestoreGroup":
			groups[s.Key] += d
		case s.Activity == "ApplyEnvironment":
			w.Restore += d
		case s.Activity == "StartAndWaitReady" || s.Activity == "StartComponent" || s.Activity == "WaitReady":
			members[s.Key] += d
		case s.Activity == "RunCheck" && strings.HasSuffix(s.Workflow, "/verify"):
			checks[s.Level+"/"+s.Key] += d
		default:
			w.Other += d
			w.OtherParts[s.Activity] += d
		}
		if s.Attempt <= 1 {
			lat := max(s.Begin.Sub(s.Scheduled), 0)
			ov.SlowestDispatch = append(ov.SlowestDispatch, rtoDispatch{Activity: s.label(), Ms: float64(lat.Microseconds()) / 1000})
			dispatchSum += lat
			ov.DispatchMax = max(ov.DispatchMax, lat)
			ov.Activities++
		} else {
			ov.Retries++
		}
	}
	if ov.Activities > 0 {
		ov.DispatchMean = dispatchSum / time.Duration(ov.Activities)
	}
	sort.SliceStable(ov.SlowestDispatch, func(i, j int) bool { return ov.SlowestDispatch[i].Ms > ov.SlowestDispatch[j].Ms })
	ov.SlowestDispatch = ov.SlowestDispatch[:min(len(ov.SlowestDispatch), 5)]
	var slowestGroup time.Duration
	for _, d := range groups {
		slowestGroup = max(slowestGroup, d)
	}
	w.Restore += slowestGroup
	for _, t := range tiers {
		tier := rtoTier{Index: t.Index, Members: len(t.Components)}
		for _, name := range t.Components {
			if d := members[name]; d > tier.Took {
				tier.Took, tier.Slowest = d, name
			}
		}
		w.Start += tier.Took
		w.Tiers = append(w.Tiers, tier)
	}
	levels := map[string]time.Duration{}
	for k, d := range checks {
		level := strings.SplitN(k, "/", 2)[0]
		levels[level] = max(levels[level], d)
	}
	for _, d := range levels {
		w.Verify += d
	}

	// Walk the activities in order of execution; every stretch with
	// nothing running is overhead, split at the moment the next activity
	// was scheduled.
	sorted := slices.Clone(spans)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Begin.Before(sorted[j].Begin) })
	covered := wallBegin
	var busy time.Duration
	var last rtoSpan // the span that ended last so far
	for i, s := range sorted {
		if s.Begin.After(covered) {
			gap := s.Begin.Sub(covered)
			if i == 0 {
				ov.RunStart += gap
			} else {
				react := min(max(s.Scheduled.Sub(covered), 0), gap)
				ov.Reactions += react
				ov.Dispatch += gap - react
				ov.ReactionCount++
				ov.Gaps = append(ov.Gaps, rtoGap{After: last.label(), Before: s.label(), totalTime: gap,
					Reaction: float64(react.Microseconds()) / 1000, Dispatch: float64((gap - react).Microseconds()) / 1000})
			}
			busy += s.End.Sub(s.Begin)
			covered, last = s.End, s
		} else if s.End.After(covered) {
			busy += s.End.Sub(covered)
			covered, last = s.End, s
		}
	}
	if wallEnd.After(covered) {
		ov.Tail = wallEnd.Sub(covered)
	}
	sort.SliceStable(ov.Gaps, func(i, j int) bool { return ov.Gaps[i].totalTime > ov.Gaps[j].totalTime })
	ov.Skew = max(busy-w.critical()-w.Other, 0)
	return w, ov
}

// rtoFailover is one measured failover.
type rtoFailover struct {
	Took     time.Duration
	Work     rtoWork
	Overhead rtoOverhead
	RTO      time.Duration
}

func (f rtoFailover) overhead() time.Duration { return f.Took - f.Work.critical() - f.Work.Other }

// rtoSequential is one measured sequential runbook.
type rtoSequential struct {
	Took                          time.Duration
	Restore, Start, Verify, Other time.Duration
}

// rtoRow is one N's figures.
type rtoRow struct {
	N       int `json:"n"`
	Servers int `json:"servers"`
	Tiers   int `json:"tiers"`

	FailoverSeconds     float64 `json:"failoverSeconds"`
	CriticalPathSeconds float64 `json:"criticalPathSeconds"`
	RestoreSeconds      float64 `json:"restoreSeconds"`
	StartSeconds        float64 `json:"startSeconds"`
	VerifySeconds       float64 `json:"verifySeconds"`
	OtherWorkSeconds    float64 `json:"otherWorkSeconds"`
	OverheadSeconds     float64 `json:"overheadSeconds"`
	// OverheadPercent is the overhead as a percentage of the critical path.
	OverheadPercent float64            `json:"overheadPercent"`
	OverheadGoalMet bool               `json:"overheadGoalMet"`
	OverheadParts   map[string]float64 `json:"overheadParts"`
	// LargestGaps are the longest stretches of the failover with no
	// activity running.
	LargestGaps     []rtoGap           `json:"largestGaps"`
	SlowestDispatch []rtoDispatch      `json:"slowestDispatch"`
	OtherWorkParts  map[string]float64 `json:"otherWorkParts"`
	TierSeconds     []rtoTierFigure    `json:"tiersSlowest"`
	Activities      int                `json:"activities"`
	IdleStretches   int                `json:"idleStretches"`
	Retries         int                `json:"retries"`
	DispatchMeanMs  float64            `json:"dispatchMeanMs"`
	DispatchMaxMs   float64            `json:"dispatchMaxMs"`
	// RTOSeconds is what the workflow itself reports: declaration (its
	// start) to traffic redirected.
	RTOSeconds float64 `json:"rtoSeconds"`

	SequentialSeconds        float64 `json:"sequentialSeconds"`
	SequentialRestoreSeconds float64 `json:"sequentialRestoreSeconds"`
	SequentialStartSeconds   float64 `json:"sequentialStartSeconds"`
	SequentialVerifySeconds  float64 `json:"sequentialVerifySeconds"`
	SequentialOtherSeconds   float64 `json:"sequentialOtherSeconds"`
	// Ratio is sequential / failover: how many times faster the failover is.
	Ratio float64 `json:"sequentialOverFailover"`
}

type rtoTierFigure struct {
	Tier    int     `json:"tier"`
	Members int     `json:"members"`
	Slowest string  `json:"slowest"`
	Seconds float64 `json:"seconds"`
}

type rtoGoals struct {
	OverheadLimitPercent float64 `json:"overheadLimitPercent"`
	OverheadMet          bool    `json:"overheadMet"`
	// Growth from the smallest to the largest N (1 with one N).
	FailoverGrowth     float64 `json:"failoverGrowth"`
	CriticalPathGrowth float64 `json:"criticalPathGrowth"`
	SequentialGrowth   float64 `json:"sequentialGrowth"`
	FailoverFlat       bool    `json:"failoverFlat"`
	SequentialGrows    bool    `json:"sequentialGrows"`
	// Compared is false with a single N: flatness cannot be judged.
	Compared bool `json:"compared"`
}

// RTOOptions shape `drover bench rto`.
type RTOOptions struct {
	// Counts are the N to measure: app servers per product.
	Counts    []int
	TimeScale float64
	// Dir is the work folder; empty: a new temporary folder, removed
	// afterwards unless Keep.
	Dir    string
	Keep   bool
	Rounds int
	// Timeout bounds one N.
	Timeout time.Duration
	// ActivityPollers of the worker; 0 keeps the SDK's default, as
	// drover's worker does.
	ActivityPollers int
	// LabExe is what runs the lab's servers: "auto", "self" or a path.
	LabExe string
}

// RTODoc is what `drover bench rto` measured.
type RTODoc struct {
	TimeScale float64 `json:"timeScale"`
	Rounds    int     `json:"rounds"`
	// ActivityPollers of the bench's worker; 0 is the SDK's default.
	ActivityPollers int `json:"activityPollers"`
	// LoadBefore and LoadAfter are the machine's 1-minute load averages:
	// other work on the machine slows both sides, and the overhead most.
	LoadBefore     float64            `json:"loadBefore"`
	LoadAfter      float64            `json:"loadAfter"`
	CPUs           int                `json:"cpus"`
	StartupSeconds map[string]float64 `json:"startupSeconds"`
	Rows           []rtoRow           `json:"rows"`
	Goals          rtoGoals           `json:"goals"`
	Notes          []string           `json:"notes"`
}

// RTO measures, for each N, an unplanned failover of the lab with N app
// servers per product against its own critical path and a sequential
// runbook through the same drivers.
func RTO(ctx context.Context, env Env, o RTOOptions) (doc RTODoc, err error) {
	log := env.log()
	dir, cleanup, err := workDir(o.Dir, o.Keep, "drover-bench-rto-")
	if err != nil {
		return doc, err
	}
	defer cleanup()
	// A folder the caller named keeps each N's lab too.
	o.Keep = o.Keep || o.Dir != ""
	exe, labExeNote, err := rtoLabExecutable(ctx, log, dir, o.LabExe)
	if err != nil {
		return doc, err
	}
	// The lab's servers end with this process.
	restoreEnv := setenv(map[string]string{lab.EnvExe: exe, lab.EnvWatchPID: strconv.Itoa(os.Getpid())})
	defer restoreEnv()

	// The worker must stop before the labs go down, or a run still going
	// could start a server after the lab was cleared.
	var st *stack.Stack
	var labs []*lab.Lab
	defer func() {
		if st != nil {
			st.Close()
		}
		for _, l := range labs {
			if derr := l.Down(); derr != nil {
				log.Warn("lab down", zap.String("dir", l.Dir), zap.Error(derr))
			}
		}
	}()
	rec := &rtoRecorder{}
	if st, err = env.startStack(ctx, stack.Options{Interceptors: []interceptor.WorkerInterceptor{rec}, ActivityPollers: o.ActivityPollers}); err != nil {
		return doc, err
	}

	doc = RTODoc{TimeScale: o.TimeScale, Rounds: o.Rounds, ActivityPollers: o.ActivityPollers, StartupSeconds: map[string]float64{},
		LoadBefore: loadAverage(), CPUs: runtime.NumCPU()}
	for _, r := range []lab.Role{lab.RoleDatabase, lab.RoleDmgr, lab.RoleNodeAgent, lab.RoleMessaging, lab.RoleSupport, lab.RoleApp} {
		doc.StartupSeconds[string(r)] = lab.StartupTime(r, o.TimeScale).Seconds()
	}
	for _, n := range o.Counts {
		env.progress("N=%d: lab with %d app servers per product ...", n, n)
		row, err := rtoRunN(ctx, log, st, rec, dir, n, o, &labs)
		if err != nil {
			return doc, fmt.Errorf("bench rto, N=%d: %w", n, err)
		}
		doc.Rows = append(doc.Rows, row)
	}
	doc.LoadAfter = loadAverage()
	doc.Goals = rtoJudge(doc.Rows)
	doc.Notes = []string{
		"failover: FailoverWorkflow (unplanned) on an embedded Temporal server with an in-process worker, from the start request to the result at the client",
		"critical path and other work: activity executions recorded by a worker interceptor in the same run",
		"the bench plan has no start-secondary gate (nobody to wait for); gates that open anyway time out after 1m and abort the run",
		"sequential: the same drivers without Temporal, one step after another; it does no preflight and writes no report",
		"the sequential run follows the failover on the same lab, so it reads a warmer page cache",
		labExeNote,
	}
	return doc, nil
}

// rtoLabExecutable chooses what runs the lab's servers. Both sides of the
// bench launch the same one. drover itself holds the Temporal server and
// the UI: 32 copies started at once on two CPUs spend about half a second
// in program start-up before the first line of the lab runs, and the
// critical path grows with N for that alone. drover-lab holds only the lab.
func rtoLabExecutable(ctx context.Context, log *zap.Logger, dir, choice string) (exe, note string, err error) {
	self, err := os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("find the drover executable for the lab's servers: %w", err)
	}
	switch choice {
	case "self":
		return self, "lab servers: drover itself (--lab-exe self)", nil
	case "auto":
	default:
		if _, err := os.Stat(choice); err != nil {
			return "", "", badInput("--lab-exe: %v", err)
		}
		return choice, "lab servers: " + choice + " (--lab-exe)", nil
	}
	if found, err := lab.ServerExecutable(); err == nil && found != self {
		return found, "lab servers: " + found, nil
	}
	out := filepath.Join(dir, lab.LeanExe)
	build := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/drover-dr/drover/cmd/drover-lab")
	if msg, err := build.CombinedOutput(); err != nil {
		log.Info("cannot build drover-lab here; the lab's servers run as drover", zap.Error(err), zap.String("output", strings.TrimSpace(string(msg))))
		return self, "lab servers: drover itself (drover-lab is not beside drover and could not be built here: " +
			"run the bench from the source tree with go on the PATH, or build ./cmd/drover-lab next to drover)", nil
	}
	return out, "lab servers: drover-lab, built for this bench from the source tree it runs in", nil
}

// setenv sets variables and returns a function putting the old values back.
func setenv(vars map[string]string) func() {
	old := map[string]*string{}
	for k, v := range vars {
		if prev, ok := os.LookupEnv(k); ok {
			old[k] = &prev
		} else {
			old[k] = nil
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, v := range old {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}
}

// rtoRunN builds the lab for one N, takes a point, destroys the primary and
// measures the failover and the sequential runbook.
func rtoRunN(ctx context.Context, log *zap.Logger, st *stack.Stack, rec *rtoRecorder, dir string, n int, o RTOOptions, labs *[]*lab.Lab) (row rtoRow, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	labDir := filepath.Join(dir, fmt.Sprintf("n%d", n))
	if err := rtoClearLabDir(labDir, log); err != nil {
		return row, err
	}
	if err := os.MkdirAll(filepath.Join(labDir, "store"), 0o755); err != nil {
		return row, err
	}
	components := 2*n + 8
	base, err := lab.FreeBasePort(components + 1)
	if err != nil {
		return row, err
	}
	planPath := filepath.Join(labDir, "plan.yaml")
	if err := os.WriteFile(planPath, []byte(rtoPlanText(fmt.Sprintf("rto-n%d", n), labDir, n, base, o.TimeScale)), 0o644); err != nil {
		return row, err
	}
	reg := builtin.Registry(log)
	p, err := plan.LoadAndValidate(planPath, reg)
	if err != nil {
		return row, fmt.Errorf("the benchmark's own plan does not validate (a bug): %w", err)
	}
	tiers, err := plan.Tiers(p)
	if err != nil {
		return row, err
	}
	topo, _, err := labplan.Topology(p, base, o.TimeScale)
	if err != nil {
		return row, err
	}
	l, err := lab.Create(labDir, topo, log)
	if err != nil {
		return row, err
	}
	*labs = append(*labs, l)
	defer func() {
		// A failed N is left to the caller, which stops the worker first.
		if err == nil {
			if derr := l.Down(); derr != nil {
				err = derr
			}
			if !o.Keep {
				_ = os.RemoveAll(labDir)
			}
		}
	}()
	if err := l.Up(ctx); err != nil {
		return row, fmt.Errorf("lab up: %w", err)
	}
	store, _, err := catalog.OpenFromSettings(p.Storage.Store)
	if err != nil {
		return row, fmt.Errorf("the benchmark's recovery point store: %w", err)
	}
	if _, err := store.Transition(p.Name, catalog.StateEnabled, "secondary", "drover bench rto", time.Now()); err != nil {
		return row, fmt.Errorf("enable plan %s: %w", p.Name, err)
	}
	var backup workflows.BackupResult
	if err := stack.RunWorkflow(ctx, st.Client, fmt.Sprintf("drover/%s/backup/bench", p.Name), p.Name, contract.KindBackup,
		workflows.BackupWorkflow, workflows.BackupInput{Plan: *p, Reason: "bench", Mode: contract.ModeFull}, &backup); err != nil {
		return row, fmt.Errorf("backup: %w", err)
	}
	if _, err := l.Disaster(p.Sites.Primary.Name); err != nil {
		return row, err
	}

	var best rtoFailover
	var bestSeq rtoSequential
	for round := 1; round <= o.Rounds; round++ {
		if err := rtoResetSecondary(ctx, l, p); err != nil {
			return row, err
		}
		f, err := rtoRunFailover(ctx, st, rec, p, tiers, backup.Point.ID)
		if err != nil {
			return row, err
		}
		if round == 1 || f.Took < best.Took {
			best = f
		}
		if err := rtoResetSecondary(ctx, l, p); err != nil {
			return row, err
		}
		s, err := rtoRunSequential(ctx, reg, activities.New(reg, log), p, tiers, store, backup.Point.ID)
		if err != nil {
			return row, err
		}
		if round == 1 || s.Took < bestSeq.Took {
			bestSeq = s
		}
		log.Info("bench rto round", zap.Int("n", n), zap.Int("round", round),
			zap.Duration("failover", f.Took), zap.Duration("critical", f.Work.critical()), zap.Duration("sequential", s.Took))
	}
	return rtoMakeRow(n, len(p.Components), best, bestSeq), nil
}

// rtoClearLabDir stops and removes a lab an earlier run left in dir; a
// folder holding something else is refused.
func rtoClearLabDir(dir string, log *zap.Logger) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := lab.Open(dir, log)
	if err != nil {
		return badInput("%s holds something that is not a lab of drover bench rto; give another --dir", dir)
	}
	if err := old.Down(); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// rtoResetSecondary puts dc2 back to nothing: every server stopped, its
// data root emptied, the front door pointing at the (lost) primary.
func rtoResetSecondary(ctx context.Context, l *lab.Lab, p *plan.Plan) error {
	site := p.Sites.Secondary.Name
	if err := l.StopSite(ctx, site, true); err != nil {
		return fmt.Errorf("reset %s: %w", site, err)
	}
	root := l.L.DataRoot(site)
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reset %s: %w", site, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("reset %s: %w", site, err)
		}
	}
	if _, err := l.Route(ctx, p.Sites.Primary.Name); err != nil {
		return fmt.Errorf("reset the front door: %w", err)
	}
	return nil
}

func rtoRunFailover(ctx context.Context, st *stack.Stack, rec *rtoRecorder, p *plan.Plan, tiers []plan.Tier, pointID string) (rtoFailover, error) {
	id := contract.SwitchoverID(p.Name)
	rec.take(id) // spans of an earlier round
	begin := time.Now()
	run, err := st.Client.ExecuteWorkflow(ctx, stack.StartOptions(id, p.Name, contract.KindFailover), workflows.FailoverWorkflow,
		workflows.FailoverInput{Plan: *p, PointID: pointID})
	if err != nil {
		return rtoFailover{}, fmt.Errorf("start %s: %w", id, err)
	}
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	end := time.Now()
	if err != nil {
		return rtoFailover{}, fmt.Errorf("failover %s: %w", id, err)
	}
	if !res.Verify.Valid || res.Redirected.IsZero() {
		return rtoFailover{}, fmt.Errorf("failover %s ended without a verified, redirected secondary (valid=%v, failed level %q)",
			id, res.Verify.Valid, res.Verify.FailedLevel)
	}
	spans := rec.take(id)
	f := rtoFailover{Took: end.Sub(begin), RTO: res.RTO.Achieved}
	f.Work, f.Overhead = rtoAnalyse(spans, tiers, begin, end)
	return f, nil
}

// rtoRunSequential is the shell runbook: the failover's steps at the
// secondary one after another, through the same drivers and activity code,
// without Temporal.
func rtoRunSequential(ctx context.Context, reg *drivers.Registry, acts *activities.Activities, p *plan.Plan, tiers []plan.Tier,
	store *catalog.Store, pointID string) (rtoSequential, error) {
	var s rtoSequential
	sec := contract.SiteRef{Role: plan.SiteSecondary, Site: *p.Sites.Secondary}
	dsite := drivers.Site{Name: sec.Site.Name, Role: sec.Role, Settings: sec.Site.Settings}
	begin := time.Now()
	step := begin
	lap := func() time.Duration {
		now := time.Now()
		d := now.Sub(step)
		step = now
		return d
	}

	for _, grp := range p.Storage.Groups {
		sd, err := reg.Storage(grp.Driver)
		if err != nil {
			return s, err
		}
		if _, err := sd.Restore(ctx, storage.RestoreRequest{
			Plan: p.Name, PointID: pointID, Store: store.Root, Site: dsite, Replace: true,
			Group: storage.Group{Name: grp.Name, Driver: grp.Driver, Components: grp.Components, Settings: grp.Settings},
		}, nil); err != nil {
			return s, fmt.Errorf("sequential: restore group %s: %w", grp.Name, err)
		}
	}
	if len(p.Environment) > 0 {
		if _, err := acts.ApplyEnvironment(ctx, contract.EnvironmentInput{Site: sec, FromRole: plan.SitePrimary, Rewrites: p.Environment}); err != nil {
			return s, fmt.Errorf("sequential: environment: %w", err)
		}
	}
	s.Restore = lap()

	for _, t := range tiers {
		for _, name := range t.Components {
			c, ok := p.Component(name)
			if !ok {
				return s, fmt.Errorf("sequential: tier %d names unknown component %s", t.Index, name)
			}
			m, err := reg.Middleware(c.Driver)
			if err != nil {
				return s, err
			}
			target := activities.Target(contract.ComponentInput{Plan: p.Name, Site: sec, Component: *c})
			if _, err := m.Start(ctx, target); err != nil {
				return s, fmt.Errorf("sequential: start %s: %w", c.Name, err)
			}
			// Readiness as the restart's wait does it: the driver's status
			// until running, every 250ms.
			for {
				st, err := m.Status(ctx, target)
				if err == nil && st.State == drivers.StateRunning {
					break
				}
				select {
				case <-ctx.Done():
					return s, fmt.Errorf("sequential: %s not ready: %w", c.Name, ctx.Err())
				case <-time.After(250 * time.Millisecond):
				}
			}
		}
	}
	s.Start = lap()

	for _, level := range plan.Levels {
		for _, c := range p.Verification.Checks(level) {
			out, err := acts.RunCheck(ctx, contract.CheckInput{Plan: p.Name, Site: sec, Level: level, Check: c})
			if err != nil {
				return s, fmt.Errorf("sequential: check %s: %w", c.Name, err)
			}
			if !out.Result.Passed && level.Fatal() {
				return s, fmt.Errorf("sequential: %s level failed: %s", level, out.Result.Summary)
			}
		}
	}
	s.Verify = lap()

	for _, c := range p.Recovery {
		for {
			out, err := acts.RunCheck(ctx, contract.CheckInput{Plan: p.Name, Site: sec, Check: c})
			if err == nil && out.Result.Passed {
				break
			}
			select {
			case <-ctx.Done():
				return s, fmt.Errorf("sequential: recovery check %s: %w", c.Name, ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if p.Redirect != nil {
		if _, err := acts.Redirect(ctx, contract.RedirectInput{Plan: p.Name, Redirect: *p.Redirect, Site: sec}); err != nil {
			return s, fmt.Errorf("sequential: redirect: %w", err)
		}
	}
	s.Other = lap()
	s.Took = time.Since(begin)
	return s, nil
}

func rtoMakeRow(n, servers int, f rtoFailover, s rtoSequential) rtoRow {
	sec := func(d time.Duration) float64 { return d.Seconds() }
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	crit := f.Work.critical()
	ov := f.overhead()
	row := rtoRow{
		N: n, Servers: servers, Tiers: len(f.Work.Tiers),
		FailoverSeconds: sec(f.Took), CriticalPathSeconds: sec(crit),
		RestoreSeconds: sec(f.Work.Restore), StartSeconds: sec(f.Work.Start), VerifySeconds: sec(f.Work.Verify),
		OtherWorkSeconds: sec(f.Work.Other), OverheadSeconds: sec(ov),
		OverheadParts: map[string]float64{
			"runStart": sec(f.Overhead.RunStart), "reactions": sec(f.Overhead.Reactions), "dispatch": sec(f.Overhead.Dispatch),
			"tail": sec(f.Overhead.Tail), "skew": sec(f.Overhead.Skew),
		},
		OtherWorkParts: map[string]float64{},
		Activities:     f.Overhead.Activities, Retries: f.Overhead.Retries, IdleStretches: f.Overhead.ReactionCount,
		DispatchMeanMs: ms(f.Overhead.DispatchMean), DispatchMaxMs: ms(f.Overhead.DispatchMax),
		RTOSeconds:        sec(f.RTO),
		SequentialSeconds: sec(s.Took), SequentialRestoreSeconds: sec(s.Restore), SequentialStartSeconds: sec(s.Start),
		SequentialVerifySeconds: sec(s.Verify), SequentialOtherSeconds: sec(s.Other),
	}
	if crit > 0 {
		row.OverheadPercent = 100 * ov.Seconds() / crit.Seconds()
	}
	row.OverheadGoalMet = crit > 0 && row.OverheadPercent <= rtoOverheadGoalPercent
	if f.Took > 0 {
		row.Ratio = s.Took.Seconds() / f.Took.Seconds()
	}
	row.LargestGaps = f.Overhead.Gaps[:min(len(f.Overhead.Gaps), 5)]
	row.SlowestDispatch = f.Overhead.SlowestDispatch
	for k, v := range f.Work.OtherParts {
		row.OtherWorkParts[k] = sec(v)
	}
	for _, t := range f.Work.Tiers {
		row.TierSeconds = append(row.TierSeconds, rtoTierFigure{Tier: t.Index, Members: t.Members, Slowest: t.Slowest, Seconds: sec(t.Took)})
	}
	return row
}

func rtoJudge(rows []rtoRow) rtoGoals {
	g := rtoGoals{OverheadLimitPercent: rtoOverheadGoalPercent, OverheadMet: len(rows) > 0,
		FailoverGrowth: 1, CriticalPathGrowth: 1, SequentialGrowth: 1}
	for _, r := range rows {
		g.OverheadMet = g.OverheadMet && r.OverheadGoalMet
	}
	if len(rows) < 2 {
		return g
	}
	lo, hi := rows[0], rows[len(rows)-1]
	ratio := func(a, b float64) float64 {
		if a <= 0 {
			return 0
		}
		return b / a
	}
	g.Compared = true
	g.FailoverGrowth = ratio(lo.FailoverSeconds, hi.FailoverSeconds)
	g.CriticalPathGrowth = ratio(lo.CriticalPathSeconds, hi.CriticalPathSeconds)
	g.SequentialGrowth = ratio(lo.SequentialSeconds, hi.SequentialSeconds)
	g.FailoverFlat = g.FailoverGrowth <= rtoFlatGrowth
	g.SequentialGrows = g.SequentialGrowth >= rtoGrowsGrowth
	return g
}

// Print writes the figures as text.
func (doc RTODoc) Print(out io.Writer) {
	var roles []string
	for _, r := range []lab.Role{lab.RoleDatabase, lab.RoleDmgr, lab.RoleNodeAgent, lab.RoleMessaging, lab.RoleSupport, lab.RoleApp} {
		roles = append(roles, fmt.Sprintf("%s %.2fs", r, doc.StartupSeconds[string(r)]))
	}
	pollers := "SDK default"
	if doc.ActivityPollers > 0 {
		pollers = strconv.Itoa(doc.ActivityPollers)
	}
	fmt.Fprintf(out, "\ndrover bench rto: unplanned failover vs its critical path and a sequential runbook (time scale %g; start-up: %s; best of %d; activity pollers: %s)\n",
		doc.TimeScale, strings.Join(roles, ", "), doc.Rounds, pollers)
	fmt.Fprintf(out, "machine: %d CPUs, load average %.2f before, %.2f after\n\n", doc.CPUs, doc.LoadBefore, doc.LoadAfter)
	fmt.Fprintf(out, "%4s %7s %5s %10s %10s %10s %10s %9s %11s %13s\n",
		"N", "servers", "tiers", "failover", "critical", "other", "overhead", "overhead%", "sequential", "seq/failover")
	for _, r := range doc.Rows {
		fmt.Fprintf(out, "%4d %7d %5d %9.2fs %9.2fs %9.2fs %9.3fs %8.1f%% %10.2fs %12.1fx\n",
			r.N, r.Servers, r.Tiers, r.FailoverSeconds, r.CriticalPathSeconds, r.OtherWorkSeconds, r.OverheadSeconds,
			r.OverheadPercent, r.SequentialSeconds, r.Ratio)
	}
	fmt.Fprintln(out)
	for _, r := range doc.Rows {
		fmt.Fprintf(out, "N=%d: critical %.2fs = restore %.3fs + start %.2fs + verify %.3fs; other work %.3fs (%s)\n",
			r.N, r.CriticalPathSeconds, r.RestoreSeconds, r.StartSeconds, r.VerifySeconds, r.OtherWorkSeconds, rtoParts(r.OtherWorkParts))
		var tiers []string
		for _, t := range r.TierSeconds {
			tiers = append(tiers, fmt.Sprintf("%d×%.2fs", t.Members, t.Seconds))
		}
		fmt.Fprintf(out, "     tiers (members × slowest start): %s\n", strings.Join(tiers, ", "))
		perStretch := 0.0
		if r.IdleStretches > 0 {
			perStretch = 1000 * (r.OverheadParts["reactions"] + r.OverheadParts["dispatch"]) / float64(r.IdleStretches)
		}
		fmt.Fprintf(out, "     overhead %.3fs = run start %.3fs + workflow reactions %.3fs + activity dispatch %.3fs (%d idle stretches, %.1fms each) + parallel skew %.3fs + result %.3fs\n",
			r.OverheadSeconds, r.OverheadParts["runStart"], r.OverheadParts["reactions"], r.OverheadParts["dispatch"],
			r.IdleStretches, perStretch, r.OverheadParts["skew"], r.OverheadParts["tail"])
		if len(r.LargestGaps) > 0 {
			var gaps []string
			for _, g := range r.LargestGaps[:min(len(r.LargestGaps), 3)] {
				gaps = append(gaps, fmt.Sprintf("%s → %s %.0f+%.0fms", g.After, g.Before, g.Reaction, g.Dispatch))
			}
			fmt.Fprintf(out, "     longest idle stretches (reaction+dispatch): %s\n", strings.Join(gaps, "; "))
		}
		slowest := ""
		if len(r.SlowestDispatch) > 0 {
			slowest = fmt.Sprintf(" (%s)", r.SlowestDispatch[0].Activity)
		}
		fmt.Fprintf(out, "     %d activities, %d retries; schedule-to-start mean %.1fms, max %.1fms%s; RTO reported by the run %.2fs\n",
			r.Activities, r.Retries, r.DispatchMeanMs, r.DispatchMaxMs, slowest, r.RTOSeconds)
		fmt.Fprintf(out, "     sequential %.2fs = restore %.3fs + start %.2fs + verify %.3fs + recovery and redirect %.3fs\n",
			r.SequentialSeconds, r.SequentialRestoreSeconds, r.SequentialStartSeconds, r.SequentialVerifySeconds, r.SequentialOtherSeconds)
	}
	fmt.Fprintln(out)
	g := doc.Goals
	var pct []string
	for _, r := range doc.Rows {
		pct = append(pct, fmt.Sprintf("N=%d %.1f%%", r.N, r.OverheadPercent))
	}
	fmt.Fprintf(out, "goal: orchestration overhead ≤ %.0f%% of the critical path: %s (%s)\n", g.OverheadLimitPercent, yesNo(g.OverheadMet), strings.Join(pct, ", "))
	if !g.Compared {
		fmt.Fprintln(out, "goal: failover flat in N while the sequential runbook grows: not judged (one N; give --n with several)")
	} else {
		lo, hi := doc.Rows[0], doc.Rows[len(doc.Rows)-1]
		fmt.Fprintf(out, "goal: failover flat in N (within ×%.2f): %s: %.2fs at N=%d → %.2fs at N=%d (×%.2f; critical path ×%.2f)\n",
			rtoFlatGrowth, yesNo(g.FailoverFlat), lo.FailoverSeconds, lo.N, hi.FailoverSeconds, hi.N, g.FailoverGrowth, g.CriticalPathGrowth)
		fmt.Fprintf(out, "goal: sequential runbook grows with N (×%.1f or more): %s: %.2fs → %.2fs (×%.2f)\n",
			rtoGrowsGrowth, yesNo(g.SequentialGrows), lo.SequentialSeconds, hi.SequentialSeconds, g.SequentialGrowth)
	}
	fmt.Fprintln(out)
	for _, n := range doc.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
}

func rtoParts(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.3fs", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// rtoPlanText is the lab's plan (examples/plans/lab.yaml) with n app
// servers per product, paths and ports of this bench's lab, a long RPO and
// no start-secondary gate: the bench has nobody to wait for. The gates a
// failure would open time out quickly and abort.
func rtoPlanText(name, labDir string, n, basePort int, timeScale float64) string {
	var b strings.Builder
	q := strconv.Quote
	site := func(role, site, host string) {
		// No installation manifest: the lab's manifests name their own
		// site, host and creation time, so two sites never compare equal.
		fmt.Fprintf(&b, "  %s:\n    name: %s\n    settings:\n", role, site)
		fmt.Fprintf(&b, "      labDir: %s\n      dataRoot: %s\n      host: %s\n      basePort: %d\n      timeScale: %g\n",
			q(labDir), q(filepath.Join(labDir, "sites", site, "data")), host, basePort, timeScale)
	}
	fmt.Fprintf(&b, "apiVersion: drover/v1\nname: %s\ndescription: drover bench rto, %d app servers per product\nrpo: 24h\nrto: 1h\nproducts: [bpm, monitor]\nsites:\n", name, n)
	site("primary", "dc1", lab.HostPrimary)
	site("secondary", "dc2", lab.HostSecondary)
	site("sandbox", "sandbox", lab.HostSandbox)
	var names []string
	comp := func(name, role, product, node string) {
		names = append(names, name)
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n    driver: lab\n    startTimeout: 10m\n", name, role)
		if product != "" {
			fmt.Fprintf(&b, "    product: %s\n", product)
		}
		if node != "" {
			fmt.Fprintf(&b, "    settings: {node: %s}\n", node)
		}
	}
	b.WriteString("components:\n")
	comp("db", "database", "", "")
	comp("dmgr", "dmgr", "", "")
	comp("nodeagent1", "nodeagent", "", "node1")
	comp("nodeagent2", "nodeagent", "", "node2")
	for _, prod := range []struct{ name, prefix, home string }{{"bpm", "bpm", "node1"}, {"monitor", "mon", "node2"}} {
		comp(prod.prefix+"-me1", "messaging", prod.name, prod.home)
		comp(prod.prefix+"-support1", "support", prod.name, prod.home)
		for i := 1; i <= n; i++ {
			comp(fmt.Sprintf("%s-app%d", prod.prefix, i), "app", prod.name, fmt.Sprintf("node%d", 2-i%2))
		}
	}
	fmt.Fprintf(&b, `storage:
  store:
    path: %s
  groups:
    - name: cell
      driver: archive
      classes: [configuration, runtime]
      quiesce: true
      components: [db]
      settings:
        members: [%s]
verification:
  system:
    - {name: servers-and-messaging-engines, driver: lab, settings: {check: system}}
  application:
    - {name: applications-and-templates, driver: lab, settings: {check: application}}
  instance:
    - {name: process-instances, driver: lab, settings: {check: instance, stuckAfter: 2m}}
  consistency:
    - {name: bpm-monitor-agree, driver: lab, settings: {check: consistency}}
  sca:
    - {name: sync-and-async-invocation, driver: lab, settings: {check: sca}}
  monitoring:
    - {name: new-instance-on-dashboard, driver: lab, settings: {check: monitoring, timeout: 1m}}
approvers:
  - name: bench
gates:
  - {name: start-secondary, approvers: none}
  - {name: failback, approvers: none}
  - {name: accept-data-loss, approvers: [bench], timeout: 1m, onTimeout: abort}
  - {name: start-failed, approvers: [bench], timeout: 1m, onTimeout: abort}
recovery:
  - {name: inflight-resumed, driver: lab, settings: {check: instance, stuckAfter: 2m}}
environment:
  - name: site-host
    files: ["*/config/*.json"]
    primary: %s
    secondary: %s
    sandbox: %s
redirect:
  driver: lab
`, q(filepath.Join(labDir, "store")), strings.Join(names, ", "), lab.HostPrimary, lab.HostSecondary, lab.HostSandbox)
	return b.String()
}
