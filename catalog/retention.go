package catalog

import (
	"fmt"
	"sort"
	"strings"
)

// Policy says which points to keep: the last Cumulative cumulative points
// and the newest full of each of the last Weekly ISO weeks and Monthly
// calendar months that have one (UTC), as the LVLT4i seed keeps weekly and
// monthly full saves with daily cumulative ones between them.
type Policy struct {
	Cumulative int `json:"cumulative"`
	Weekly     int `json:"weekly"`
	Monthly    int `json:"monthly"`
}

// DefaultPolicy is used when a plan names none.
var DefaultPolicy = Policy{Cumulative: 7, Weekly: 4, Monthly: 3}

// Check refuses negative counts.
func (p Policy) Check() error {
	if p.Cumulative < 0 || p.Weekly < 0 || p.Monthly < 0 {
		return fmt.Errorf("retention: counts must not be negative (cumulative %d, weekly %d, monthly %d)", p.Cumulative, p.Weekly, p.Monthly)
	}
	return nil
}

// Decision is what retention decided for one point, and why.
type Decision struct {
	ID     string `json:"id"`
	Keep   bool   `json:"keep"`
	Reason string `json:"reason"`
}

// SelectRetention decides which points to keep and which to delete. It is a
// pure function of the listing and the policy. The rules, strongest first:
//   - a point whose manifest cannot be read is kept (an operator decides);
//   - the newest valid point is never deleted, nor the full it builds on;
//   - the newest full that is not invalid is kept: the next cumulative
//     point builds on it;
//   - the policy's cumulative, weekly and monthly points are kept (invalid
//     points, and cumulative points whose base is gone or invalid, never
//     count: they cannot be restored);
//   - a full that a kept cumulative point needs is kept;
//   - everything else is deleted: invalid points first of all.
//
// The result has one decision per point, in the listing's order (oldest
// first).
func SelectRetention(points []Point, p Policy) []Decision {
	pts := append([]Point(nil), points...)
	sort.SliceStable(pts, func(i, j int) bool {
		if !pts[i].Instant.Equal(pts[j].Instant) {
			return pts[i].Instant.Before(pts[j].Instant)
		}
		return pts[i].ID < pts[j].ID
	})
	byID := ByID(pts)
	reasons := map[string][]string{}
	keep := func(id, why string) { reasons[id] = append(reasons[id], why) }
	restorable := func(pt Point) bool { return Unrestorable(byID, pt) == "" }

	for _, pt := range pts {
		if pt.Problem != "" {
			keep(pt.ID, "manifest unreadable: left for an operator")
		}
	}
	// Newest first from here on.
	for i := len(pts) - 1; i >= 0; i-- {
		pt := pts[i]
		if pt.Problem == "" && pt.Validity.State == Valid {
			keep(pt.ID, "newest valid point")
			if pt.Mode == ModeCumulative && pt.BaseID != "" {
				if _, ok := byID[pt.BaseID]; ok {
					keep(pt.BaseID, "base of the newest valid point "+pt.ID)
				}
			}
			break
		}
	}
	for i := len(pts) - 1; i >= 0; i-- {
		if pt := pts[i]; pt.Mode == ModeFull && pt.Usable() {
			keep(pt.ID, "newest full: the base of the next cumulative point")
			break
		}
	}
	n := 0
	for i := len(pts) - 1; i >= 0 && n < p.Cumulative; i-- {
		if pt := pts[i]; pt.Mode == ModeCumulative && restorable(pt) {
			keep(pt.ID, fmt.Sprintf("cumulative %d of %d", n+1, p.Cumulative))
			n++
		}
	}
	bucketed := func(count int, label string, key func(Point) string) {
		seen := map[string]bool{}
		for i := len(pts) - 1; i >= 0 && len(seen) < count; i-- {
			pt := pts[i]
			if pt.Mode != ModeFull || !pt.Usable() {
				continue
			}
			k := key(pt)
			if seen[k] {
				continue
			}
			seen[k] = true
			keep(pt.ID, fmt.Sprintf("%s full of %s", label, k))
		}
	}
	bucketed(p.Weekly, "weekly", func(pt Point) string {
		y, w := pt.Instant.UTC().ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	})
	bucketed(p.Monthly, "monthly", func(pt Point) string { return pt.Instant.UTC().Format("2006-01") })
	for _, pt := range pts {
		if pt.Mode == ModeCumulative && len(reasons[pt.ID]) > 0 {
			if _, ok := byID[pt.BaseID]; ok {
				keep(pt.BaseID, "base of kept cumulative point "+pt.ID)
			}
		}
	}

	out := make([]Decision, 0, len(pts))
	for _, pt := range pts {
		if r := reasons[pt.ID]; len(r) > 0 {
			out = append(out, Decision{ID: pt.ID, Keep: true, Reason: strings.Join(r, "; ")})
			continue
		}
		why := "beyond the retention policy"
		switch {
		case pt.Validity.State == Invalid:
			why = "invalid"
			if pt.Validity.Reason != "" {
				why += ": " + pt.Validity.Reason
			}
		case pt.Mode == ModeCumulative && !restorable(pt):
			why = "its base full point " + pt.BaseID + " is gone or invalid"
		}
		out = append(out, Decision{ID: pt.ID, Keep: false, Reason: why})
	}
	return out
}
