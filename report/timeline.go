package report

import (
	"fmt"
	"sort"
	"time"
)

// Timeline geometry, in SVG user units.
const (
	tlWidth      = 1100.0
	tlLabelWidth = 170.0
	tlLaneHeight = 22.0
	tlBarHeight  = 16.0
	tlTop        = 34.0
	tlPhaseGap   = 8.0
)

// tlBar is one step drawn as a bar.
type tlBar struct {
	Step     string
	Phase    string
	Lane     int
	X, Y, W  float64
	Outcome  string
	Attempts int
	Title    string
	// Label is the step's name when it fits inside the bar.
	Label string
}

// tlBand is a gate's waiting time, drawn across every lane.
type tlBand struct {
	Gate    string
	X, W    float64
	Outcome string
	Title   string
}

// tlPhase is a phase's label and the lanes it spans.
type tlPhase struct {
	Name string
	Y, H float64
}

// tlTick is a time-axis mark.
type tlTick struct {
	X     float64
	Label string
}

// tlMark is an instant worth a vertical line (declared, redirected).
type tlMark struct {
	X     float64
	Label string
}

// timeline is the laid-out Gantt chart of a run.
type timeline struct {
	Width, Height float64
	Left, Right   float64
	Start, End    time.Time
	Phases        []tlPhase
	Bars          []tlBar
	Bands         []tlBand
	Ticks         []tlTick
	Marks         []tlMark
}

// layoutTimeline places steps in lanes per phase (phases in the order they
// first ran; a step goes to the first lane of its phase that is free when
// it starts, so steps that ran in parallel sit side by side), gates as
// bands over every lane, and a time axis.
func layoutTimeline(r Report) timeline {
	start, end := r.Started, r.Ended
	for _, s := range r.Steps {
		if start.IsZero() || (!s.Started.IsZero() && s.Started.Before(start)) {
			start = s.Started
		}
		if s.Ended.After(end) {
			end = s.Ended
		}
	}
	for _, g := range r.Gates {
		if g.Closed.After(end) {
			end = g.Closed
		}
	}
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	t := timeline{Width: tlWidth, Left: tlLabelWidth, Right: tlWidth - 24, Start: start, End: end}
	x := func(at time.Time) float64 {
		if at.IsZero() || at.After(end) {
			at = end
		}
		if at.Before(start) {
			at = start
		}
		return t.Left + (t.Right-t.Left)*float64(at.Sub(start))/float64(end.Sub(start))
	}

	var order []string
	byPhase := map[string][]Step{}
	for _, s := range r.Steps {
		if _, ok := byPhase[s.Phase]; !ok {
			order = append(order, s.Phase)
		}
		byPhase[s.Phase] = append(byPhase[s.Phase], s)
	}
	y := tlTop
	for _, ph := range order {
		steps := byPhase[ph]
		sort.SliceStable(steps, func(i, j int) bool { return steps[i].Started.Before(steps[j].Started) })
		var laneEnds []time.Time
		for _, s := range steps {
			stepEnd := s.Ended
			if stepEnd.IsZero() {
				stepEnd = end // still running when the report was written
			}
			lane := -1
			for i, le := range laneEnds {
				if !s.Started.Before(le) {
					lane = i
					break
				}
			}
			if lane < 0 {
				lane = len(laneEnds)
				laneEnds = append(laneEnds, time.Time{})
			}
			laneEnds[lane] = stepEnd
			bx := x(s.Started)
			w := max(x(stepEnd)-bx, 2) // an instant step stays visible
			title := fmt.Sprintf("%s (%s): %s, %s", s.Name, ph, s.Outcome, stepEnd.Sub(s.Started).Round(time.Millisecond))
			if s.Attempts > 1 {
				title += fmt.Sprintf(", %d attempts", s.Attempts)
			}
			if s.Detail != "" {
				title += ": " + s.Detail
			}
			label := ""
			if w >= 6.2*float64(len(s.Name))+10 {
				label = s.Name
			}
			t.Bars = append(t.Bars, tlBar{Label: label, Step: s.Name, Phase: ph, Lane: lane, X: bx, W: w,
				Y: y + float64(lane)*tlLaneHeight + (tlLaneHeight-tlBarHeight)/2, Outcome: s.Outcome, Attempts: s.Attempts, Title: title})
		}
		h := float64(max(len(laneEnds), 1)) * tlLaneHeight
		t.Phases = append(t.Phases, tlPhase{Name: ph, Y: y, H: h})
		y += h + tlPhaseGap
	}
	if len(order) == 0 {
		y += tlLaneHeight
	}
	for _, g := range r.Gates {
		if g.Opened.IsZero() {
			continue
		}
		closed := g.Closed
		if closed.IsZero() {
			closed = end
		}
		bx := x(g.Opened)
		t.Bands = append(t.Bands, tlBand{Gate: g.Name, X: bx, W: max(x(closed)-bx, 2), Outcome: g.Outcome,
			Title: fmt.Sprintf("gate %s waited %s: %s", g.Name, closed.Sub(g.Opened).Round(time.Second), g.Outcome)})
	}
	for _, m := range []struct {
		at    time.Time
		label string
	}{{r.Declared, "declared"}, {r.Redirected, "redirected"}} {
		if !m.at.IsZero() && !m.at.Before(start) && !m.at.After(end) {
			t.Marks = append(t.Marks, tlMark{X: x(m.at), Label: m.label})
		}
	}
	span := end.Sub(start)
	step := tickStep(span)
	for d := time.Duration(0); d <= span; d += step {
		t.Ticks = append(t.Ticks, tlTick{X: x(start.Add(d)), Label: shortDuration(d)})
	}
	t.Height = y + 24
	return t
}

// tickStep picks a round interval giving at most about ten ticks.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if span/s <= 10 {
			return s
		}
	}
	return span / 10
}

func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.Round(time.Second).String()
}
