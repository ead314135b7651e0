package tests

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/devserver/pgtest"
	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/workflows"
)

// pg is this package's throwaway PostgreSQL cluster (TestMain stops it).
var pg pgtest.Shared

// TestFailoverOnPostgresSurvivesAServerRestart runs a lab failover on
// Temporal kept in PostgreSQL, the production shape, and stops and starts
// the Temporal server in the middle of it: the run goes on where it was and
// loses nothing.
func TestFailoverOnPostgresSurvivesAServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	c := pg.Get(t)
	t.Setenv("DROVER_TEST_PGPASSWORD", c.Password)
	e := newLabEnv(t, envOptions{name: "pgfail", postgres: &devserver.Postgres{URL: c.URL("pgfail"), Password: "env:DROVER_TEST_PGPASSWORD"}})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	pt := e.backup(ctx, e.p, contract.ModeFull, "before")
	v := e.validate(ctx, e.p, pt.ID)
	require.True(t, v.Valid, "point %s: %s", pt.ID, v.Reason)
	_, err := e.l.Disaster("dc1")
	require.NoError(t, err)

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p})
	require.NoError(t, err)
	// Stopped while the failover waits at its first gate, and started again.
	waitGate(t, ctx, e.c, id, contract.GateStartSecondary, 2*time.Minute)
	began := time.Now()
	e.restartServer()
	t.Logf("Temporal on PostgreSQL stopped and started again in %s", time.Since(began).Round(time.Millisecond))

	actx, stopApprover := context.WithCancel(ctx)
	approved := e.autoApprove(actx, id)
	var res workflows.FailoverResult
	err = run.Get(ctx, &res)
	stopApprover()
	t.Logf("gates approved: %v", <-approved)
	require.NoError(t, err, "the failover goes on after the server restart")
	assert.Equal(t, pt.ID, res.Point.ID)
	route, err := e.l.CurrentRoute(ctx)
	require.NoError(t, err)
	assert.Equal(t, "dc2", route)
	ledger, err := lab.CheckLedger(e.labDir, "dc2", pt.Instant)
	require.NoError(t, err)
	assert.Zero(t, ledger.MissingCount, "steps committed before the point lost: %v", ledger.Missing)
}
