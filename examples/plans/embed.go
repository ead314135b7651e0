// Package plans holds the example plans, embedded so `drover demo` has the
// lab's plan wherever the binary runs.
package plans

import _ "embed"

// Lab is examples/plans/lab.yaml.
//
//go:embed lab.yaml
var Lab []byte

// BPMGolden is examples/plans/bpm-golden.yaml.
//
//go:embed bpm-golden.yaml
var BPMGolden []byte

// Postgres is examples/plans/postgres.yaml.
//
//go:embed postgres.yaml
var Postgres []byte
