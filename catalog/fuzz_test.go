package catalog

import (
	"testing"
)

// FuzzParseManifest feeds the manifest reader arbitrary bytes: a manifest
// comes from a store anyone with access can damage, so the reader must
// refuse garbage with an error, never panic, and never accept a path that
// escapes the point's folder.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		for _, g := range m.Groups {
			for _, a := range g.Artifacts {
				if checkRelPath(a.Name) != nil {
					t.Fatalf("accepted artifact path %q", a.Name)
				}
			}
			for _, mem := range g.Members {
				for _, fl := range mem.Files {
					if checkRelPath(fl.Path) != nil {
						t.Fatalf("accepted file path %q", fl.Path)
					}
				}
			}
		}
		_ = m.Summary()
	})
}

func FuzzParseValidity(f *testing.F) {
	f.Add([]byte(`{"state":"valid"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseValidity(data)
		if err == nil && v.State != Unverified && v.State != Valid && v.State != Invalid {
			t.Fatalf("accepted state %q", v.State)
		}
	})
}
