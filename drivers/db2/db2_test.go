package db2

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

// instance is a fake DB2 instance: a db2profile that puts the contract
// fakes on PATH and points them at a state folder.
type instance struct {
	dir, state, profile string
}

func newInstance(t *testing.T, databases ...string) *instance {
	t.Helper()
	fake, err := filepath.Abs("testdata/fakedb2.sh")
	require.NoError(t, err)
	in := &instance{dir: t.TempDir()}
	in.state = filepath.Join(in.dir, "state")
	bin := filepath.Join(in.dir, "bin")
	require.NoError(t, os.MkdirAll(in.state, 0o755))
	require.NoError(t, os.MkdirAll(bin, 0o755))
	for _, tool := range []string{"db2start", "db2stop", "db2", "db2pd", "db2inidb"} {
		require.NoError(t, os.Symlink(fake, filepath.Join(bin, tool)))
	}
	in.profile = filepath.Join(in.dir, "db2profile")
	require.NoError(t, os.WriteFile(in.profile, []byte("PATH="+bin+":$PATH; export PATH\nFAKE_DB2_STATE="+in.state+"; export FAKE_DB2_STATE\n"), 0o644))
	in.write(t, "databases", strings.Join(databases, "\n")+"\n")
	return in
}

func (in *instance) write(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(in.state, name), []byte(content), 0o644))
}

func (in *instance) exists(name string) bool {
	_, err := os.Stat(filepath.Join(in.state, name))
	return err == nil
}

func (in *instance) calls(t *testing.T, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.state, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (in *instance) target(t *testing.T, extra map[string]any) drivers.Target {
	t.Helper()
	u, err := user.Current()
	require.NoError(t, err)
	s := map[string]any{"instanceOwner": u.Username, "database": "BPMDB", "profile": in.profile}
	for k, v := range extra {
		s[k] = v
	}
	return drivers.Target{Plan: "bpm", Site: drivers.Site{Name: "dc2", Role: "secondary"},
		Component: drivers.Component{Name: "db2", Role: "database", Product: "db2", Settings: s}}
}

const primaryPD = `
Database Member 0 -- Database HADRDB -- Active -- Up 0 days 00:23:17 -- Date 06/08/2011 13:57:23

                            HADR_ROLE = PRIMARY
                          REPLAY_TYPE = PHYSICAL
                        HADR_SYNCMODE = SYNC
                           STANDBY_ID = 1
                        LOG_STREAM_ID = 0
                           HADR_STATE = PEER
                  PRIMARY_MEMBER_HOST = hostP.ibm.com
                     PRIMARY_INSTANCE = db2inst
                       PRIMARY_MEMBER = 0
                  STANDBY_MEMBER_HOST = hostS1.ibm.com
                     STANDBY_INSTANCE = db2inst
                       STANDBY_MEMBER = 0
                  HADR_CONNECT_STATUS = CONNECTED
SOCK_SEND_BUF_REQUESTED,ACTUAL(bytes) = 0, 16384
                  HADR_LOG_GAP(bytes) = 132242668
                     PRIMARY_LOG_TIME = 06/08/2011 13:49:19.000000 (1307566159)
              STANDBY_REPLAY_LOG_TIME = 06/08/2011 13:49:19.000000 (1307566159)

                            HADR_ROLE = PRIMARY
                        HADR_SYNCMODE = SUPERASYNC
                           STANDBY_ID = 2
                           HADR_STATE = REMOTE_CATCHUP
                  STANDBY_MEMBER_HOST = hostS2.ibm.com
                  HADR_CONNECT_STATUS = CONGESTED
                  HADR_LOG_GAP(bytes) = 7
`

func TestParseHADR(t *testing.T) {
	h, err := ParseHADR(primaryPD, "hadrdb")
	require.NoError(t, err)
	assert.True(t, h.InstanceUp)
	assert.True(t, h.Active)
	assert.Equal(t, RolePrimary, h.Role)
	require.Len(t, h.Pairs, 2)
	assert.Equal(t, HADRPair{Role: RolePrimary, SyncMode: "SYNC", StandbyID: 1, State: StatePeer, ConnectStatus: ConnectConnected,
		LogGapBytes: 132242668, PrimaryHost: "hostP.ibm.com", StandbyHost: "hostS1.ibm.com",
		PrimaryLogTime: "06/08/2011 13:49:19.000000 (1307566159)", StandbyReplayLogTime: "06/08/2011 13:49:19.000000 (1307566159)"}, h.Pairs[0])
	assert.Equal(t, "SUPERASYNC", h.Pairs[1].SyncMode)
	assert.Equal(t, ConnectCongested, h.Pairs[1].ConnectStatus)
	assert.Equal(t, int64(7), h.Pairs[1].LogGapBytes)

	h, err = ParseHADR("Unable to attach to database manager on member 0.\nPlease ensure the following are true:\n   - db2start has been run for the member.\n", "HADRDB")
	require.NoError(t, err)
	assert.False(t, h.InstanceUp)
	assert.Equal(t, drivers.StateStopped, statusOf([]HADRStatus{h}, drivers.Evidence{}).State)

	h, err = ParseHADR("Database HADRDB not activated on database member 0 or this database name cannot be found in the local database directory.\n", "HADRDB")
	require.NoError(t, err)
	assert.True(t, h.InstanceUp)
	assert.False(t, h.Active)

	h, err = ParseHADR("\nDatabase Member 0 -- Database SAMPLE -- Active -- Up 0 days 00:01:02 -- Date 2026-12-02-02.13.25.000000\n\n", "SAMPLE")
	require.NoError(t, err)
	assert.Equal(t, RoleStandard, h.Role)
	assert.Equal(t, drivers.StateRunning, statusOf([]HADRStatus{h}, drivers.Evidence{}).State)

	_, err = ParseHADR(primaryPD, "OTHERDB")
	require.ErrorContains(t, err, "HADRDB, not OTHERDB")
	_, err = ParseHADR("db2pd: command not found\n", "HADRDB")
	require.Error(t, err)
	_, err = ParseHADR(strings.Replace(primaryPD, "= 132242668", "= lots", 1), "HADRDB")
	require.ErrorContains(t, err, "HADR_LOG_GAP")
	_, err = ParseHADR(strings.Replace(primaryPD, "HADR_ROLE = PRIMARY", "HADR_ROLE = LEADER", 1), "HADRDB")
	require.ErrorContains(t, err, "LEADER")
}

func TestMessages(t *testing.T) {
	assert.Equal(t, []string{"SQL1063N", "SQL1063N"}, Messages("12/02/2026 02:13:25     0   0   SQL1063N  DB2START processing was successful.\nSQL1063N  DB2START processing was successful.\n"))
	assert.Equal(t, []string{"SQL1032N"}, Messages("SQL1032N  No start database manager command was issued.  SQLSTATE=57019"))
	assert.Equal(t, []string{"DBT1000I"}, Messages("DBT1000I  The tool completed successfully."))
}

func TestStartStopIdempotent(t *testing.T) {
	in := newInstance(t, "BPMDB")
	d, ctx, tg := New(nil), context.Background(), in.target(t, nil)

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "instance not started")

	ev, err := d.Start(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "SQL1063N")
	assert.Contains(t, ev.Output, "DB20000I")
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State, st.Detail)

	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, 1, in.calls(t, "db2start"))

	// Instance up, database deactivated: start activates without db2start.
	require.NoError(t, os.Remove(filepath.Join(in.state, "BPMDB.active")))
	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, 1, in.calls(t, "db2start"))
	assert.Equal(t, 2, in.calls(t, "db2 activate database BPMDB"))

	// Connected applications: a graceful stop is refused, immediate forces.
	in.write(t, "apps", "")
	_, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.ErrorContains(t, err, "SQL1025N")
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Action, "db2stop force")
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, 2, in.calls(t, "db2stop"))
}

func TestUnknownDatabaseIsPermanent(t *testing.T) {
	in := newInstance(t, "BPMDB")
	_, err := New(nil).Start(context.Background(), in.target(t, map[string]any{"database": "NODB"}))
	require.ErrorIs(t, err, ErrDatabaseNotFound)
	assert.True(t, drivers.Permanent(err))
}

func TestQuiesceResumeShareTheConnection(t *testing.T) {
	in := newInstance(t, "BPMDB")
	d, ctx, tg := New(nil), context.Background(), in.target(t, nil)
	_, err := d.Quiesce(ctx, tg)
	require.ErrorContains(t, err, "SQL1032N", "no instance, no suspend")

	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	ev, err := d.Quiesce(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.True(t, in.exists("BPMDB.suspended"))
	assert.Contains(t, ev.Action, "db2 set write suspend for database")
	ev, err = d.Resume(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.False(t, in.exists("BPMDB.suspended"))
}

func TestAfterRestoreInitializesSnapshot(t *testing.T) {
	in := newInstance(t, "BPMDB")
	in.write(t, "BPMDB.needsinit", "")
	d, ctx, tg := New(nil), context.Background(), in.target(t, nil)
	// The restored copy refuses activation until db2inidb ran.
	_, err := d.Start(ctx, tg)
	require.ErrorContains(t, err, "SQL20153N")

	var pr drivers.PostRestorer = d
	ev, err := pr.AfterRestore(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "DBT1000I")
	assert.Contains(t, ev.Action, "db2inidb BPMDB as snapshot")
	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
}

func TestTakeover(t *testing.T) {
	in := newInstance(t, "BPMDB")
	in.write(t, "BPMDB.role", "STANDBY\n")
	in.write(t, "BPMDB.gap", "4096\n")
	d, ctx, tg := New(nil), context.Background(), in.target(t, nil)
	_, err := d.Start(ctx, tg)
	require.NoError(t, err)

	hs, _, err := d.HADR(ctx, tg)
	require.NoError(t, err)
	require.Len(t, hs, 1)
	h := hs[0]
	assert.Equal(t, RoleStandby, h.Role)
	assert.Equal(t, "Standby", h.Mode)
	assert.Equal(t, "REMOTE_CATCHUP_PENDING", h.Pair().State)
	assert.Equal(t, ConnectDisconnected, h.Pair().ConnectStatus)
	assert.Equal(t, int64(4096), h.Pair().LogGapBytes)
	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	assert.Contains(t, st.Detail, "HADR STANDBY")

	// The primary is gone: a planned takeover fails, by force succeeds.
	_, _, err = d.Takeover(ctx, tg, false)
	require.ErrorContains(t, err, "SQL1770N reason code 8")
	hs, ev, err := d.Takeover(ctx, tg, true)
	require.NoError(t, err, ev.Output)
	assert.Equal(t, RolePrimary, hs[0].Role)
	assert.Contains(t, ev.Action, "by force")
	_, ev, err = d.Takeover(ctx, tg, true)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Equal(t, 2, in.calls(t, "db2 takeover"))

	// A database without HADR cannot be taken over.
	in.write(t, "BPMDB.role", "STANDARD\n")
	_, _, err = d.Takeover(ctx, tg, false)
	require.ErrorContains(t, err, "not an HADR standby")
}

func TestHangingCommandIsKilled(t *testing.T) {
	in := newInstance(t, "BPMDB")
	in.write(t, "hang-db2pd", "")
	tg := in.target(t, map[string]any{"timeouts": map[string]any{"status": "300ms"}, "killGrace": "200ms"})
	start := time.Now()
	_, err := New(nil).Start(context.Background(), tg)
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, 0, in.calls(t, "db2start"))
}

func TestBadSettings(t *testing.T) {
	d := New(nil)
	for name, tc := range map[string]struct {
		settings map[string]any
		want     string
	}{
		"unknown field":     {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "hadrr": true}, `"hadrr"`},
		"no owner":          {map[string]any{"database": "BPMDB"}, "instanceOwner: required"},
		"bad owner":         {map[string]any{"instanceOwner": "db2 inst", "database": "BPMDB"}, "instanceOwner:"},
		"no database":       {map[string]any{"instanceOwner": "db2inst1"}, "database: required"},
		"both":              {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "databases": []any{"CMNDB"}}, "give one of them"},
		"twice":             {map[string]any{"instanceOwner": "db2inst1", "databases": []any{"BPMDB", "bpmdb"}}, "databases[1]: bpmdb is listed twice"},
		"bad in list":       {map[string]any{"instanceOwner": "db2inst1", "databases": []any{"BPMDB", "MON DB"}}, "databases[1]:"},
		"long database":     {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDATABASE"}, "database:"},
		"injected database": {map[string]any{"instanceOwner": "db2inst1", "database": "X;rm"}, "database:"},
		"relative profile":  {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "profile": "sqllib/db2profile"}, "profile:"},
		"seed dir quote":    {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "seedImageDir": "/nfs/it's"}, "seedImageDir:"},
		"bad timeout":       {map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "timeouts": map[string]any{"takeover": "0s"}}, "timeouts.takeover"},
	} {
		t.Run(name, func(t *testing.T) {
			err := d.CheckSettings(tc.settings)
			require.Error(t, err)
			assert.True(t, errors.Is(err, drivers.ErrBadSettings))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRunsAsInstanceOwner(t *testing.T) {
	c, err := parse(map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB", "switchUser": true})
	require.NoError(t, err)
	argv := c.argv("db2start", c.switchFor(drivers.Host{}))
	assert.Equal(t, []string{"su", "-", "db2inst1", "-c"}, argv[:4])
	assert.Equal(t, ". ~db2inst1/sqllib/db2profile || exit 127\ndb2start", argv[4])

	c, err = parse(map[string]any{"instanceOwner": "db2inst1", "database": "BPMDB"})
	require.NoError(t, err)
	assert.False(t, c.switchFor(drivers.Host{Address: "db2b", SSH: map[string]any{"user": "db2inst1"}}), "logged in as the owner")
	assert.True(t, c.switchFor(drivers.Host{Address: "db2b", SSH: map[string]any{"user": "root"}}))
}

// The seed's instance holds three databases: one component handles them
// together, and a failed suspend leaves none of them frozen.
func TestSeveralDatabases(t *testing.T) {
	in := newInstance(t, "BPMDB", "CMNDB", "MONDB")
	d, ctx := New(nil), context.Background()
	tg := in.target(t, map[string]any{"database": nil, "databases": []any{"BPMDB", "CMNDB", "MONDB"}})
	delete(tg.Component.Settings, "database")

	_, err := d.Start(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, 1, in.calls(t, "db2start"))
	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State, st.Detail)

	// One database deactivated: the component is not running, and start
	// activates that one only.
	require.NoError(t, os.Remove(filepath.Join(in.state, "CMNDB.active")))
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "database CMNDB not active")
	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, 2, in.calls(t, "db2 activate database CMNDB"))
	assert.Equal(t, 1, in.calls(t, "db2 activate database BPMDB"))

	ev, err := d.Quiesce(ctx, tg)
	require.NoError(t, err, ev.Output)
	for _, db := range []string{"BPMDB", "CMNDB", "MONDB"} {
		assert.True(t, in.exists(db+".suspended"), db)
	}
	_, err = d.Resume(ctx, tg)
	require.NoError(t, err)
	for _, db := range []string{"BPMDB", "CMNDB", "MONDB"} {
		assert.False(t, in.exists(db+".suspended"), db)
	}

	// MONDB is dropped from the catalog: its suspend fails, and the two
	// suspended before it are resumed.
	in.write(t, "databases", "BPMDB\nCMNDB\n")
	_, err = d.Quiesce(ctx, tg)
	require.ErrorIs(t, err, ErrDatabaseNotFound)
	assert.False(t, in.exists("BPMDB.suspended"))
	assert.False(t, in.exists("CMNDB.suspended"))
}

var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

// Over SSH, logged in as the instance owner: no su.
func TestOverSSH(t *testing.T) {
	in := newInstance(t, "BPMDB")
	in.write(t, "BPMDB.role", "STANDBY\n")
	tg := in.target(t, nil)
	tg.Host = sshd.Get(t).Host("db2b", nil)
	d := New(nil)
	_, err := d.Start(context.Background(), tg)
	require.NoError(t, err)
	hs, ev, err := d.Takeover(context.Background(), tg, true)
	require.NoError(t, err, ev.Output)
	assert.Equal(t, RolePrimary, hs[0].Role)
	assert.Contains(t, ev.Action, "on db2b (ssh ")
}
