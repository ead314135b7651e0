package starter

import (
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/plan"
)

// The functions here expose what the end-to-end tests (package tests) need
// to drive the same scenarios as `drover demo` and `drover lab up`, without
// copying the rules they encode.

// LabTopology is the lab topology `drover lab up` builds from a plan;
// basePort > 0 and timeScale >= 0 override the plan's.
func LabTopology(p *plan.Plan, basePort int, timeScale float64) (*lab.Topology, error) {
	t, _, err := labTopology(p, basePort, timeScale)
	return t, err
}

// BackupScheduleID is the id of a plan's Temporal Schedule of backups.
func BackupScheduleID(planName string) string { return backupScheduleID(planName) }

// SwitchoverID is the workflow id of a plan's failover or failback.
func SwitchoverID(planName string) string { return switchoverID(planName) }

// DrillID is the workflow id of a plan's drill.
func DrillID(planName string) string { return drillID(planName) }
