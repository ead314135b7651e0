package starter

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/workflows"
)

// watchInterval is how often a watch reads the run again.
const watchInterval = 500 * time.Millisecond

// isTerminal reports whether w is a terminal a watch may redraw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// watchRun follows run id until it ends (or done delivers, for a command
// that started the run and waits for its result; the error is put back).
// On a terminal it redraws the phase and tiers in place with a progress bar
// per transfer; elsewhere it prints plain lines when something changed.
func watchRun(ctx context.Context, g *Globals, c client.Client, id string, done chan error) error {
	var view watchView = &plainView{out: g.Stdout, seen: map[string]bool{}}
	if isTerminal(g.Stdout) {
		view = newTTYView(ctx, g.Stdout)
	}
	return follow(ctx, g, c, id, done, view)
}

// watchStatus tells a narrative (drover demo) how a run moves: its phases,
// tiers and gates as plain lines, whatever out is.
func watchStatus(ctx context.Context, out io.Writer, c client.Client, id string, done chan error) {
	view := &plainView{out: out, seen: map[string]bool{}, keep: func(l string) bool {
		return strings.HasPrefix(l, "  phase") || strings.HasPrefix(l, "  tier") || strings.HasPrefix(l, "  GATE") || strings.HasPrefix(l, "    ")
	}}
	_ = follow(ctx, &Globals{Stdout: out}, c, id, done, view)
}

func follow(ctx context.Context, g *Globals, c client.Client, id string, done chan error, view watchView) error {
	s, err := newSnapshotter(g, c)
	if err != nil {
		return err
	}
	defer view.close()
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		snap, err := s.snapshot(ctx, id)
		if err == nil {
			view.show(snap, time.Now())
			if done == nil && snap.Status != "running" {
				return nil
			}
		}
		select {
		case err := <-done:
			if snap, serr := s.snapshot(ctx, id); serr == nil {
				view.show(snap, time.Now())
			}
			done <- err
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

type watchView interface {
	show(s RunSnapshot, now time.Time)
	close()
}

// plainView prints each line of the status that it has not printed before,
// stamped with the time: a log of changes for a file or a pipe.
type plainView struct {
	out  io.Writer
	seen map[string]bool
	// keep, when set, picks the lines worth printing.
	keep func(line string) bool
}

func (v *plainView) show(s RunSnapshot, now time.Time) {
	for _, l := range plainLines(s) {
		if v.seen[l] || (v.keep != nil && !v.keep(l)) {
			continue
		}
		v.seen[l] = true
		fmt.Fprintf(v.out, "%s %s\n", now.Format("15:04:05"), strings.TrimSpace(l))
	}
}

func (v *plainView) close() {}

// plainLines are the lines of a snapshot that change only when the run
// moves: no elapsed times, and transfers in tenths of their total.
func plainLines(s RunSnapshot) []string {
	s.Started = time.Time{}
	s.Transfers = slices.Clone(s.Transfers)
	for i, t := range s.Transfers {
		if t.Total > 0 {
			t.Done = t.Total * min(10, t.Done*10/t.Total) / 10
		} else {
			t.Done = 0
		}
		t.Started = time.Time{}
		s.Transfers[i] = t
	}
	gates := make([]GateView, len(s.Gates))
	for i, g := range s.Gates {
		g.Opened = time.Time{}
		gates[i] = g
	}
	s.Gates = gates
	var out []string
	for _, l := range snapshotLines(s, time.Time{}, true) {
		if strings.HasPrefix(l, "  started ") {
			continue
		}
		out = append(out, strings.Replace(l, " since 0s", "", 1))
	}
	return out
}

// ttyView redraws in place with mpb: a headline bar whose extension lines
// are the tiers, a bar per transfer (bytes, rate, ETA), and gates printed
// above once when they open, so their approve command stays on screen.
type ttyView struct {
	p *mpb.Progress

	mu        sync.Mutex
	snap      RunSnapshot
	header    *mpb.Bar
	tierLines int
	bars      map[string]*transferBar
	gates     map[string]bool
}

type transferBar struct {
	bar  *mpb.Bar
	last time.Time
}

func newTTYView(ctx context.Context, out io.Writer) *ttyView {
	return &ttyView{
		p:     mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond)),
		bars:  map[string]*transferBar{},
		gates: map[string]bool{},
	}
}

func (v *ttyView) show(s RunSnapshot, now time.Time) {
	v.mu.Lock()
	v.snap = s
	v.mu.Unlock()
	if v.header == nil || v.tierLines != len(s.Tiers) {
		v.newHeader(len(s.Tiers))
	}
	for _, g := range s.Gates {
		key := g.WorkflowID + "/" + g.Name + "/" + g.Opened.String()
		if g.Outcome != workflows.OutcomePending || v.gates[key] {
			continue
		}
		v.gates[key] = true
		var b strings.Builder
		for _, l := range gateLines(g, now) {
			b.WriteString(l + "\n")
		}
		_, _ = v.p.Write([]byte(b.String()))
	}
	live := map[string]bool{}
	for _, t := range s.Transfers {
		key := t.WorkflowID + "/" + t.Activity + "/" + t.Started.String()
		live[key] = true
		tb, ok := v.bars[key]
		if !ok {
			name := strings.ToLower(strings.TrimSuffix(t.Activity, "Group"))
			bar := v.p.AddBar(t.Total,
				mpb.PrependDecorators(decor.Name("  "+name, decor.WC{W: 12, C: decor.DindentRight})),
				mpb.AppendDecorators(
					decor.CountersKibiByte("% .1f / % .1f"),
					decor.Name("  "),
					decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30),
					decor.Name("  ETA "),
					decor.EwmaETA(decor.ET_STYLE_MMSS, 30),
				),
				mpb.BarRemoveOnComplete())
			tb = &transferBar{bar: bar, last: now}
			v.bars[key] = tb
		}
		if t.Total > 0 {
			tb.bar.SetTotal(t.Total, false)
		}
		tb.bar.EwmaSetCurrent(t.Done, now.Sub(tb.last))
		tb.last = now
	}
	for key, tb := range v.bars {
		if !live[key] {
			tb.bar.SetTotal(-1, true)
			delete(v.bars, key)
		}
	}
}

// newHeader (re)creates the headline bar with one extension line per tier.
func (v *ttyView) newHeader(tiers int) {
	if v.header != nil {
		v.header.Abort(true)
	}
	v.tierLines = tiers
	lines := make([]mpb.BarFiller, tiers)
	for i := range lines {
		lines[i] = mpb.BarFillerFunc(func(w io.Writer, _ decor.Statistics) error {
			v.mu.Lock()
			defer v.mu.Unlock()
			line := ""
			if i < len(v.snap.Tiers) {
				line = tierLine(v.snap.Tiers[i])
			}
			_, err := io.WriteString(w, line+"\n")
			return err
		})
	}
	v.header = v.p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			v.mu.Lock()
			defer v.mu.Unlock()
			return headline(v.snap, time.Now())
		})),
		mpb.BarPriority(-1),
		mpb.BarBtmExtender(lines...))
}

// headline is the redrawn first line: run, phase, current step, elapsed.
func headline(s RunSnapshot, now time.Time) string {
	phase := orDash(s.Phase)
	if s.Child != nil && s.Child.Phase != "" {
		phase += " > " + s.Child.Phase
	}
	line := fmt.Sprintf("%s %s: %s, phase %s", s.WorkflowID, orDash(s.Kind), s.Status, phase)
	if s.CurrentStep != "" {
		line += ", step " + s.CurrentStep
	}
	if !s.Started.IsZero() {
		line += " (" + humanDuration(now.Sub(s.Started).Round(time.Second)) + ")"
	}
	return line
}

func tierLine(t TierProgress) string {
	line := fmt.Sprintf("  tier %d: %d/%d started, %d/%d ready", t.Index, t.Started, len(t.Members), t.Ready, len(t.Members))
	if t.Failed > 0 {
		line += fmt.Sprintf(", %d failed", t.Failed)
	}
	return line + " (" + strings.Join(t.Members, ", ") + ")"
}

func (v *ttyView) close() {
	if v.header != nil {
		v.header.SetTotal(-1, true)
	}
	for _, tb := range v.bars {
		tb.bar.SetTotal(-1, true)
	}
	v.p.Wait()
}
