package workflows

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/plan"
)

// The plan's checks look at the whole cell: with the deferred part down on
// purpose they fail, and a subset run neither marks its point invalid nor
// rolls back from it; the report says so.
func TestASubsetRunDoesNotJudgeItsPointByAPartialCell(t *testing.T) {
	e := newDREnv(t)
	pt := e.backup("").Point
	e.setValidity(pt.ID, catalog.Valid)
	e.plan.Priorities = []plan.PriorityClass{{Name: "critical", First: true}, {Name: "deferred"}}
	e.plan.Components[1].Priority = "deferred"
	e.cell.failCheck["dc2/system"] = true

	env := e.env()
	e.approve(env, time.Minute, contract.GateStartSecondary)
	env.ExecuteWorkflow(FailoverWorkflow, FailoverInput{Plan: e.plan})
	require.NoError(t, env.GetWorkflowError())
	res, rep := failoverReport(t, env)
	require.Equal(t, pt.ID, res.Point.ID)
	require.Equal(t, "dc2", e.cell.pointsAt)
	require.Empty(t, rep.Abandoned, "no rollback from a point verified on a partial cell")
	st, err := catalog.Open(filepath.Join(e.dir, "store"))
	require.NoError(t, err)
	points, err := st.List("cell")
	require.NoError(t, err)
	require.Equal(t, catalog.Valid, points[len(points)-1].Validity.State, "the point stays valid")
	noted := false
	for _, n := range rep.Notes {
		noted = noted || strings.Contains(n, "verification of dc2 failed at the system level while app wait for the follow-up run")
	}
	require.True(t, noted, "notes: %v", rep.Notes)
}
