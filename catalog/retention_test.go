package catalog

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// day returns a point taken n days after t0 (t0 is a Monday).
func pt(id string, n int, mode Mode, base string, v ValidityState) Point {
	return Point{ID: id, Mode: mode, BaseID: base, Instant: t0.AddDate(0, 0, n), Validity: Validity{State: v}}
}

func kept(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.ID)
		}
	}
	return out
}

func reasonOf(ds []Decision, id string) string {
	for _, d := range ds {
		if d.ID == id {
			return d.Reason
		}
	}
	return ""
}

func TestRetentionWeeklyFullsAndDailyCumulatives(t *testing.T) {
	// Five weeks: a full each Monday, cumulative points on the other days.
	var pts []Point
	for w := 0; w < 5; w++ {
		full := fmt.Sprintf("f%d", w)
		pts = append(pts, pt(full, 7*w, ModeFull, "", Unverified))
		for d := 1; d < 7; d++ {
			pts = append(pts, pt(fmt.Sprintf("c%d-%d", w, d), 7*w+d, ModeCumulative, full, Unverified))
		}
	}
	ds := SelectRetention(pts, Policy{Cumulative: 3, Weekly: 2, Monthly: 0})
	assert.Len(t, ds, len(pts))
	assert.ElementsMatch(t, []string{"f3", "f4", "c4-4", "c4-5", "c4-6"}, kept(ds))
	assert.Contains(t, reasonOf(ds, "f4"), "weekly full")
	assert.Contains(t, reasonOf(ds, "f4"), "base of kept cumulative point c4-6")
	assert.Equal(t, "beyond the retention policy", reasonOf(ds, "c0-1"))
}

func TestRetentionKeepsBaseOfKeptCumulativeAcrossWeeks(t *testing.T) {
	pts := []Point{
		pt("f0", 0, ModeFull, "", Unverified),
		pt("f1", 7, ModeFull, "", Unverified),
		pt("c1", 8, ModeCumulative, "f0", Unverified), // built on an older full
	}
	ds := SelectRetention(pts, Policy{Cumulative: 1})
	assert.ElementsMatch(t, []string{"f0", "f1", "c1"}, kept(ds))
	assert.Equal(t, "base of kept cumulative point c1", reasonOf(ds, "f0"))
}

func TestRetentionNeverDeletesNewestValid(t *testing.T) {
	pts := []Point{
		pt("f0", 0, ModeFull, "", Unverified),
		pt("c0", 1, ModeCumulative, "f0", Valid),
		pt("f1", 60, ModeFull, "", Unverified),
		pt("c1", 61, ModeCumulative, "f1", Invalid),
	}
	ds := SelectRetention(pts, Policy{})
	assert.ElementsMatch(t, []string{"c0", "f0", "f1"}, kept(ds))
	assert.Equal(t, "newest valid point", reasonOf(ds, "c0"))
	assert.Contains(t, reasonOf(ds, "f0"), "base of the newest valid point c0")
	assert.Contains(t, reasonOf(ds, "f1"), "newest full")
	assert.Equal(t, "invalid", reasonOf(ds, "c1"))
}

func TestRetentionDiscardsInvalidAndOrphans(t *testing.T) {
	pts := []Point{
		pt("f0", 0, ModeFull, "", Invalid),
		pt("c0", 1, ModeCumulative, "f0", Unverified),
		pt("c1", 2, ModeCumulative, "gone", Unverified),
		pt("f1", 3, ModeFull, "", Unverified),
	}
	pts[0].Validity.Reason = "verify: bpm/points/f0/db/db.tar.zst: checksum"
	ds := SelectRetention(pts, Policy{Cumulative: 10, Weekly: 10, Monthly: 10})
	assert.ElementsMatch(t, []string{"f1"}, kept(ds))
	assert.Equal(t, "invalid: verify: bpm/points/f0/db/db.tar.zst: checksum", reasonOf(ds, "f0"))
	assert.Contains(t, reasonOf(ds, "c0"), "base full point f0 is gone or invalid")
	assert.Contains(t, reasonOf(ds, "c1"), "base full point gone is gone or invalid")
}

func TestRetentionMonthlyFulls(t *testing.T) {
	var pts []Point
	for m := 0; m < 6; m++ {
		// Two fulls a month: only the newest of each month counts.
		pts = append(pts, Point{ID: fmt.Sprintf("m%d-a", m), Mode: ModeFull, Instant: t0.AddDate(0, m, 0), Validity: Validity{State: Unverified}})
		pts = append(pts, Point{ID: fmt.Sprintf("m%d-b", m), Mode: ModeFull, Instant: t0.AddDate(0, m, 10), Validity: Validity{State: Unverified}})
	}
	ds := SelectRetention(pts, Policy{Monthly: 3})
	assert.ElementsMatch(t, []string{"m3-b", "m4-b", "m5-b"}, kept(ds))
	assert.Contains(t, reasonOf(ds, "m3-b"), "monthly full of 2026-06")
}

func TestRetentionKeepsUnreadable(t *testing.T) {
	pts := []Point{{ID: "broken", Problem: "corrupt manifest"}, pt("f0", 0, ModeFull, "", Unverified)}
	ds := SelectRetention(pts, Policy{})
	assert.ElementsMatch(t, []string{"broken", "f0"}, kept(ds))
}

func TestRetentionEmptyAndInputUntouched(t *testing.T) {
	assert.Empty(t, SelectRetention(nil, DefaultPolicy))
	pts := []Point{pt("b", 1, ModeFull, "", Unverified), pt("a", 0, ModeFull, "", Unverified)}
	SelectRetention(pts, DefaultPolicy)
	assert.Equal(t, "b", pts[0].ID, "the caller's slice is not reordered")
	_ = time.Second
}
