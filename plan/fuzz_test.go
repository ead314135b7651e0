package plan

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds the loader arbitrary bytes. It must never panic, must
// explain every failure, must produce plans that encode to JSON (they travel
// in workflow inputs), and a plan it accepts must have restart tiers.
// Seeds: testdata/fuzz/FuzzParse plus the example plans.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/plans/*.yaml")
	seeds = append(seeds, "../examples/plans/bpm-golden.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	checker := newFakeChecker()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("Parse failed without problems: %T %v", err, err)
			}
			for _, pr := range probs {
				if pr.Message == "" {
					t.Fatalf("problem without a message: %+v", pr)
				}
			}
		}
		if p == nil {
			if err == nil {
				t.Fatal("no plan and no error")
			}
			return
		}
		if _, jerr := json.Marshal(p); jerr != nil {
			t.Fatalf("plan does not encode to JSON: %v", jerr)
		}
		verr := Validate(p, checker)
		if err == nil && verr == nil {
			if _, terr := Tiers(p); terr != nil {
				t.Fatalf("a valid plan has no tiers: %v", terr)
			}
			if _, terr := StopOrder(p); terr != nil {
				t.Fatalf("a valid plan has no stop order: %v", terr)
			}
		}
	})
}
