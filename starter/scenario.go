package starter

import (
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labplan"
	"github.com/drover-dr/drover/plan"
)

// The functions here expose what the end-to-end tests (package tests) need
// to drive the same scenarios as `drover demo` and `drover lab up`, without
// copying the rules they encode.

// LabTopology is the lab topology `drover lab up` builds from a plan;
// basePort > 0 and timeScale >= 0 override the plan's.
func LabTopology(p *plan.Plan, basePort int, timeScale float64) (*lab.Topology, error) {
	t, _, err := labplan.Topology(p, basePort, timeScale)
	return t, err
}
