package db2

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

// hadrPair is two fake instances, one per site, whose BPMDB databases are
// an HADR pair.
type hadrPair struct {
	dc1, dc2 *instance
	t1, t2   drivers.Target
}

func newHADRPair(t *testing.T, extra map[string]any) *hadrPair {
	t.Helper()
	p := &hadrPair{dc1: newInstance(t, "BPMDB"), dc2: newInstance(t, "BPMDB")}
	p.dc1.write(t, "BPMDB.partner", p.dc2.state)
	p.dc2.write(t, "BPMDB.partner", p.dc1.state)
	p.dc1.write(t, "BPMDB.role", "PRIMARY\n")
	p.t1, p.t2 = p.dc1.target(t, extra), p.dc2.target(t, extra)
	p.t1.Site = drivers.Site{Name: "dc1", Role: "primary"}
	p.t2.Site = drivers.Site{Name: "dc2", Role: "secondary"}
	return p
}

func role(t *testing.T, in *instance) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.state, "BPMDB.role"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func TestParseLogPositionsAndTimes(t *testing.T) {
	h, err := ParseHADR(primaryPD, "HADRDB")
	require.NoError(t, err)
	secs, ok := h.Pair().LogTimeLag()
	require.True(t, ok)
	assert.Equal(t, int64(0), secs)
	p := HADRPair{PrimaryLogTime: "06/08/2011 13:49:29.000000 (1307566169)", StandbyReplayLogTime: "06/08/2011 13:49:19.000000 (1307566159)"}
	secs, ok = p.LogTimeLag()
	require.True(t, ok)
	assert.Equal(t, int64(10), secs)
	_, ok = HADRPair{PrimaryLogTime: "NULL"}.LogTimeLag()
	assert.False(t, ok)
}

// A failover and a failback through the Replicator calls, as the workflow
// will drive them: seed, lag, planned switchover and back, fence, forced
// promote, reseed (a diverged old primary restored from a backup), lag.
func TestHADRFailoverAndFailback(t *testing.T) {
	images := t.TempDir()
	p := newHADRPair(t, map[string]any{"seedImageDir": images})
	d, ctx := New(nil), context.Background()
	_, err := d.Start(ctx, p.t1)
	require.NoError(t, err)

	res, err := d.Seed(ctx, p.t1, p.t2)
	require.NoError(t, err)
	assert.Equal(t, "backup-restore", res.Method)
	assert.Equal(t, drivers.RoleStandby, res.Role)
	assert.Equal(t, "STANDBY", role(t, p.dc2))
	assert.True(t, p.dc2.exists("BPMDB.peer"))
	res, err = d.Seed(ctx, p.t1, p.t2)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)

	p.dc2.write(t, "BPMDB.gap", "8192\n")
	p.dc1.write(t, "BPMDB.gap", "8192\n")
	p.dc2.write(t, "BPMDB.primarytime", "1796177610\n")
	lag, err := d.Lag(ctx, p.t1, p.t2)
	require.NoError(t, err)
	assert.True(t, lag.BytesKnown)
	assert.Equal(t, int64(8192), lag.Bytes)
	assert.True(t, lag.SecondsKnown)
	assert.Equal(t, 11.0, lag.Seconds)
	assert.True(t, lag.Streaming)
	assert.True(t, lag.PrimaryReachable && lag.StandbyReachable)
	assert.Equal(t, "S0000009.LOG, 1, 49262315", lag.ReplayedPosition)

	// Planned: swap and swap back, no force.
	res, err = d.Switchover(ctx, p.t1, p.t2)
	require.NoError(t, err)
	assert.Equal(t, "PRIMARY", role(t, p.dc2))
	assert.Equal(t, "STANDBY", role(t, p.dc1))
	_, err = d.Switchover(ctx, p.t2, p.t1)
	require.NoError(t, err)
	assert.Equal(t, "PRIMARY", role(t, p.dc1))
	assert.Zero(t, p.dc1.calls(t, "db2 takeover hadr on database BPMDB by force")+p.dc2.calls(t, "db2 takeover hadr on database BPMDB by force"))

	// Unplanned: dc1 is fenced; the standby is promoted by force.
	res, err = d.Fence(ctx, p.t1)
	require.NoError(t, err)
	assert.Equal(t, "db2stop force", res.Method)
	lag, err = d.Lag(ctx, p.t1, p.t2)
	require.NoError(t, err)
	assert.False(t, lag.PrimaryReachable)
	assert.False(t, lag.BytesKnown, "no connected pair, no current gap")
	_, err = d.Switchover(ctx, p.t1, p.t2)
	require.ErrorIs(t, err, ErrNotPeer)

	res, err = d.Promote(ctx, p.t2)
	require.NoError(t, err)
	assert.Equal(t, "takeover hadr by force", res.Method)
	assert.Equal(t, "PRIMARY", role(t, p.dc2))
	res, err = d.Promote(ctx, p.t2)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)

	// Failback: dc1 wrote past dc2 before it died, so it cannot rejoin as
	// is; it is restored from a backup of dc2, then rejoins.
	p.dc1.write(t, "BPMDB.diverged", "")
	res, err = d.Reseed(ctx, p.t2, p.t1)
	require.NoError(t, err)
	assert.Equal(t, "backup-restore", res.Method)
	assert.Equal(t, "STANDBY", role(t, p.dc1))
	assert.True(t, p.dc1.exists("BPMDB.peer"))
	_, err = d.Switchover(ctx, p.t2, p.t1)
	require.NoError(t, err)
	assert.Equal(t, "PRIMARY", role(t, p.dc1))
	assert.Equal(t, "STANDBY", role(t, p.dc2))
}

func TestReseedReintegratesOrSaysWhy(t *testing.T) {
	p := newHADRPair(t, nil)
	d, ctx := New(nil), context.Background()
	p.dc2.write(t, "BPMDB.role", "PRIMARY\n")
	_, err := d.Start(ctx, p.t2)
	require.NoError(t, err)

	// A clean old primary rejoins with start hadr as standby.
	res, err := d.Reseed(ctx, p.t2, p.t1)
	require.NoError(t, err)
	assert.Equal(t, "reintegrate", res.Method)
	assert.Equal(t, "STANDBY", role(t, p.dc1))
	res, err = d.Reseed(ctx, p.t2, p.t1)
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)

	// A diverged one without seedImageDir: the error says why.
	_, err = d.Fence(ctx, p.t1)
	require.NoError(t, err)
	p.dc1.write(t, "BPMDB.role", "PRIMARY\n")
	p.dc1.write(t, "BPMDB.diverged", "")
	_, err = d.Reseed(ctx, p.t2, p.t1)
	require.ErrorContains(t, err, "SQL1767N reason code 99")

	_, err = d.Seed(ctx, p.t2, p.t1)
	assert.True(t, drivers.Permanent(err), "seed needs seedImageDir")
}
