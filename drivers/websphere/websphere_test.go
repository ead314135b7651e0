package websphere

import (
	"context"
	"errors"
	"os"
	"os/exec"
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

var scripts = []string{"startServer.sh", "stopServer.sh", "serverStatus.sh", "startManager.sh", "stopManager.sh",
	"startNode.sh", "stopNode.sh", "wsadmin.sh"}

// profile is a fake profile: bin/ holds the contract fake under each
// script's name, state/ what it remembers.
type profile struct {
	dir, state string
}

func newProfile(t *testing.T, servers ...string) *profile {
	t.Helper()
	fake, err := filepath.Abs("testdata/fakewas.sh")
	require.NoError(t, err)
	p := &profile{dir: t.TempDir()}
	p.state = filepath.Join(p.dir, "state")
	require.NoError(t, os.MkdirAll(filepath.Join(p.dir, "bin"), 0o755))
	require.NoError(t, os.MkdirAll(p.state, 0o755))
	for _, s := range scripts {
		require.NoError(t, os.Symlink(fake, filepath.Join(p.dir, "bin", s)))
	}
	p.write(t, "servers", strings.Join(servers, "\n")+"\n")
	return p
}

func (p *profile) write(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(p.state, name), []byte(content), 0o644))
}

// calls counts the fake's invocations of one script.
func (p *profile) calls(t *testing.T, script string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.state, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, script+" ") || l == script {
			n++
		}
	}
	return n
}

func target(settings map[string]any) drivers.Target {
	return drivers.Target{Plan: "bpm", Site: drivers.Site{Name: "dc2", Role: "secondary"},
		Component: drivers.Component{Name: "c", Role: "app", Product: "websphere", Settings: settings}}
}

func TestParseServerStatus(t *testing.T) {
	started := "ADMU0116I: Tool information is being logged in file /opt/IBM/WebSphere/AppServer/profiles/AppSrv01/logs/server1/serverStatus.log\n" +
		"ADMU0128I: Starting tool with the AppSrv01 profile\nADMU0500I: Retrieving server status for server1\n" +
		"ADMU0508I: The Application Server \"server1\" is STARTED\n"
	s, err := ParseServerStatus(started, "server1")
	require.NoError(t, err)
	assert.Equal(t, ServerState{ProcessType: "Application Server", Server: "server1", Status: "STARTED"}, s)
	assert.Equal(t, drivers.StateRunning, s.state())

	s, err = ParseServerStatus("ADMU0509I: The Node Agent \"nodeagent\" cannot be reached. It appears to be stopped.\n", "nodeagent")
	require.NoError(t, err)
	assert.Equal(t, "Node Agent", s.ProcessType)
	assert.Equal(t, drivers.StateStopped, s.state())

	s, err = ParseServerStatus("ADMU0508I: The Deployment Manager \"dmgr\" is STARTING\n", "dmgr")
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStarting, s.state())

	// Another server's line does not answer for ours.
	_, err = ParseServerStatus("ADMU0508I: The Application Server \"server2\" is STARTED\n", "server1")
	require.Error(t, err)
	assert.False(t, drivers.Permanent(err))

	_, err = ParseServerStatus("ADMU0500I: Retrieving server status for server9\nADMU0522E: No server by this name in the configuration: server9\n", "server9")
	require.ErrorIs(t, err, ErrServerNotFound)
	assert.True(t, drivers.Permanent(err))

	_, err = ParseServerStatus("ADMU0111E: Program exiting with error: javax.management.JMRuntimeException: ADMN0022E: Access is denied for the getState operation on Server MBean because of insufficient or empty credentials.\n", "server1")
	require.ErrorIs(t, err, ErrAccessDenied)
	assert.True(t, drivers.Permanent(err))
}

func TestParseStart(t *testing.T) {
	pid, already, err := ParseStart("ADMU3200I: Server launched. Waiting for initialization status.\nADMU3000I: Server server1 open for e-business; process id is 28700\n", "server1")
	require.NoError(t, err)
	assert.Equal(t, 28700, pid)
	assert.False(t, already)
	_, already, err = ParseStart("ADMU3027E: An instance of the server may already be running: server1\n", "server1")
	require.NoError(t, err)
	assert.True(t, already)
	_, _, err = ParseStart("ADMU3011E: Server launched but failed initialization. startServer.log, SystemOut.log(or job log in zOS) and other log files under /x should contain failure information.\n", "server1")
	require.ErrorContains(t, err, "ADMU3011E")
	_, _, err = ParseStart("", "server1")
	require.Error(t, err)
}

func TestServerStartStopIdempotent(t *testing.T) {
	for _, tc := range []struct{ kind, server, start, stop string }{
		{KindServer, "BPM.AppTarget.member1", "startServer.sh", "stopServer.sh"},
		{KindDmgr, "dmgr", "startManager.sh", "stopManager.sh"},
		{KindNodeAgent, "nodeagent", "startNode.sh", "stopNode.sh"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			p := newProfile(t, tc.server)
			s := map[string]any{"kind": tc.kind, "profilePath": p.dir}
			if tc.kind == KindServer {
				s["server"] = tc.server
			}
			d, ctx, tg := New(nil), context.Background(), target(s)

			st, err := d.Status(ctx, tg)
			require.NoError(t, err)
			assert.Equal(t, drivers.StateStopped, st.State)

			ev, err := d.Start(ctx, tg)
			require.NoError(t, err)
			assert.False(t, ev.AlreadyDone)
			assert.Contains(t, ev.Output, "ADMU3000I")
			st, err = d.Status(ctx, tg)
			require.NoError(t, err)
			assert.Equal(t, drivers.StateRunning, st.State, st.Detail)

			ev, err = d.Start(ctx, tg)
			require.NoError(t, err)
			assert.True(t, ev.AlreadyDone)
			assert.Equal(t, 1, p.calls(t, tc.start), "a started server is not started again")

			ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
			require.NoError(t, err)
			assert.Contains(t, ev.Output, "ADMU4000I")
			ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
			require.NoError(t, err)
			assert.True(t, ev.AlreadyDone)
			assert.Equal(t, 1, p.calls(t, tc.stop), "a stopped server is not stopped again")
		})
	}
}

func TestServerNotFoundIsPermanent(t *testing.T) {
	p := newProfile(t, "server1")
	tg := target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server9"})
	_, err := New(nil).Status(context.Background(), tg)
	require.ErrorIs(t, err, ErrServerNotFound)
	assert.True(t, drivers.Permanent(err))
	_, err = New(nil).Start(context.Background(), tg)
	assert.True(t, drivers.Permanent(err))
}

func TestStartFailureReported(t *testing.T) {
	p := newProfile(t, "server1")
	p.write(t, "fail-server1", "")
	_, err := New(nil).Start(context.Background(), target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1"}))
	require.ErrorContains(t, err, "ADMU3011E")
	assert.False(t, drivers.Permanent(err), "a failed initialization may pass on a retry")
}

func TestCredentialsPassedAndRedacted(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	p := newProfile(t, "server1")
	p.write(t, "secure", "wasadmin:"+pw)
	p.write(t, "server1.started", "")
	t.Setenv("WAS_PW", pw)
	tg := target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1",
		"username": "wasadmin", "password": "env:WAS_PW"})
	d := New(nil)

	st, err := d.Status(context.Background(), tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	assert.NotContains(t, st.Evidence.Action+st.Evidence.Output, pw)
	assert.Contains(t, st.Evidence.Output, "[redacted]", "the fake printed the password and the driver hid it")

	ev, err := d.Stop(context.Background(), tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.NotContains(t, ev.Action+ev.Output, pw)

	// Wrong password: access denied, permanent, and still no password.
	t.Setenv("WAS_PW", "wrong-password")
	p.write(t, "server1.started", "")
	_, err = d.Stop(context.Background(), tg, drivers.StopGraceful)
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err), err)
	assert.NotContains(t, err.Error(), "wrong-password")

	// Without credentials the secured cell refuses.
	_, err = d.Status(context.Background(), target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1"}))
	require.ErrorIs(t, err, ErrAccessDenied)
}

func TestHangingCommandIsKilled(t *testing.T) {
	p := newProfile(t, "server1")
	p.write(t, "hang-serverStatus.sh", "")
	tg := target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1",
		"timeouts": map[string]any{"status": "300ms"}, "killGrace": "200ms"})
	start := time.Now()
	_, err := New(nil).Start(context.Background(), tg)
	require.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Less(t, time.Since(start), 30*time.Second)
	assert.Equal(t, 0, p.calls(t, "startServer.sh"), "no start when status cannot tell")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tg.Component.Settings["timeouts"] = map[string]any{"status": "1m"}
	_, err = New(nil).Status(ctx, tg)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestBadSettings(t *testing.T) {
	d := New(nil)
	for name, tc := range map[string]struct {
		settings map[string]any
		field    string
	}{
		"unknown field":    {map[string]any{"kind": "server", "profilePath": "/p", "server": "s", "nodee": "x"}, `"nodee"`},
		"no kind":          {map[string]any{"profilePath": "/p"}, "kind: required"},
		"bad kind":         {map[string]any{"kind": "jvm", "profilePath": "/p"}, "kind:"},
		"relative profile": {map[string]any{"kind": "dmgr", "profilePath": "p"}, "profilePath:"},
		"no server":        {map[string]any{"kind": "server", "profilePath": "/p"}, "server: required"},
		"no cluster":       {map[string]any{"kind": "cluster", "profilePath": "/p"}, "cluster: required"},
		"password literal": {map[string]any{"kind": "dmgr", "profilePath": "/p", "username": "u", "password": "hunter22"}, "password:"},
		"no password":      {map[string]any{"kind": "dmgr", "profilePath": "/p", "username": "u"}, "password: required"},
		"quote in name":    {map[string]any{"kind": "cluster", "profilePath": "/p", "cluster": "a'b"}, "cluster:"},
		"bad timeout op":   {map[string]any{"kind": "dmgr", "profilePath": "/p", "timeouts": map[string]any{"boot": "1s"}}, "timeouts.boot"},
	} {
		t.Run(name, func(t *testing.T) {
			err := d.CheckSettings(tc.settings)
			require.Error(t, err)
			assert.True(t, errors.Is(err, drivers.ErrBadSettings))
			assert.Contains(t, err.Error(), tc.field)
			assert.NotContains(t, err.Error(), "hunter22")
			_, err = d.Start(context.Background(), target(tc.settings))
			assert.True(t, drivers.Permanent(err))
		})
	}
	require.NoError(t, d.CheckSettings(map[string]any{"kind": "dmgr", "profilePath": "/opt/IBM/WebSphere/AppServer/profiles/Dmgr01"}))
}

func TestClusterThroughWsadmin(t *testing.T) {
	p := newProfile(t, "dmgr")
	p.write(t, "dmgr.started", "")
	p.write(t, "cluster-BPM.AppTarget", "websphere.cluster.stopped\n")
	tg := target(map[string]any{"kind": "cluster", "profilePath": p.dir, "cluster": "BPM.AppTarget", "pollInterval": "10ms"})
	d, ctx := New(nil), context.Background()

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)

	ev, err := d.Start(ctx, tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "websphere.cluster.running")
	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)

	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Action, "stopImmediate")
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)

	_, err = d.Status(ctx, target(map[string]any{"kind": "cluster", "profilePath": p.dir, "cluster": "Nope"}))
	assert.True(t, drivers.Permanent(err))

	// The deployment manager down: wsadmin cannot connect, a retry may help.
	require.NoError(t, os.Remove(filepath.Join(p.state, "dmgr.started")))
	_, err = d.Status(ctx, tg)
	require.ErrorContains(t, err, "WASX7023E")
	assert.False(t, drivers.Permanent(err))
}

func TestMessagingEngine(t *testing.T) {
	p := newProfile(t, "dmgr")
	p.write(t, "dmgr.started", "")
	tg := target(map[string]any{"kind": "messagingEngine", "profilePath": p.dir,
		"messagingEngine": "BPM.Messaging.000-BPM.Bus", "pollInterval": "10ms"})
	d, ctx := New(nil), context.Background()

	// No hosting server runs: stopped, and start says why it cannot.
	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "no MBean")
	_, err = d.Start(ctx, tg)
	require.ErrorContains(t, err, "no server hosting it runs")

	p.write(t, "me-BPM.Messaging.000-BPM.Bus", "Joined,Joined\n")
	ev, err := d.Start(ctx, tg)
	require.NoError(t, err, ev.Output)
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State, st.Detail)
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err, ev.Output)
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
}

func TestEngineAndClusterStates(t *testing.T) {
	assert.Equal(t, drivers.StateRunning, EngineState("Joined,Started"))
	assert.Equal(t, drivers.StateStopped, EngineState("Joined,Stopped"))
	assert.Equal(t, drivers.StateStarting, EngineState("Starting"))
	assert.Equal(t, drivers.StateUnknown, EngineState("Weird"))
	assert.Equal(t, drivers.StateStarting, ClusterState("websphere.cluster.partial.start"))
	assert.Equal(t, drivers.StateUnknown, ClusterState("websphere.cluster.partial.stop"))
}

var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

// The same driver reaches a host without a drover worker over SSH.
func TestOverSSH(t *testing.T) {
	p := newProfile(t, "server1")
	tg := target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1"})
	tg.Host = sshd.Get(t).Host("machine1", nil)
	d := New(nil)
	ev, err := d.Start(context.Background(), tg)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Action, "on machine1 (ssh ")
	st, err := d.Status(context.Background(), tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	_, err = d.Stop(context.Background(), tg, drivers.StopGraceful)
	require.NoError(t, err)

	// Bad SSH settings are bad settings, before anything runs.
	tg.Host = drivers.Host{Name: "was1", Address: "127.0.0.1", SSH: map[string]any{"user": "wasadmin"}}
	_, err = d.Status(context.Background(), tg)
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
}

// wsadmin -c takes one line; the scripts travel as an exec of a Python
// string literal. Where python3 is installed, the literal is decoded by a
// real Python parser and must give the script back.
func TestExecLine(t *testing.T) {
	for _, script := range []string{clusterScript("BPM.AppTarget", "start"), engineScript("BPM.Messaging.000-BPM.Bus", "stopImmediate")} {
		line := execLine(script)
		assert.NotContains(t, line, "\n")
		require.True(t, strings.HasPrefix(line, "exec '") && strings.HasSuffix(line, "'"), line)
		py, err := exec.LookPath("python3")
		if err != nil {
			continue
		}
		out, err := exec.Command(py, "-c", "import ast,sys; sys.stdout.write(ast.literal_eval(sys.argv[1]))", strings.TrimPrefix(line, "exec ")).Output()
		require.NoError(t, err)
		assert.Equal(t, script, string(out))
	}
}

func TestImmediateStop(t *testing.T) {
	p := newProfile(t, "server1", "nodeagent")
	p.write(t, "server1.started", "")
	d, ctx := New(nil), context.Background()
	tg := target(map[string]any{"kind": "server", "profilePath": p.dir, "server": "server1", "node": "Node01"})

	// The node agent is down: wsadmin cannot connect, the stop script does
	// the work and the evidence says so.
	ev, err := d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "immediate stop through wsadmin failed")
	assert.Equal(t, 1, p.calls(t, "stopServer.sh"))

	// With the node agent up, wsadmin stops it immediately.
	p.write(t, "nodeagent.started", "")
	p.write(t, "server1.started", "")
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err, ev.Output)
	assert.Contains(t, ev.Output, "WASX7264I")
	assert.Equal(t, 1, p.calls(t, "stopServer.sh"), "no stop script this time")
	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)

	// Without a node there is no immediate path: the note says so.
	p.write(t, "server1.started", "")
	tg.Component.Settings["node"] = nil
	delete(tg.Component.Settings, "node")
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	require.NoError(t, err)
	assert.Contains(t, ev.Output, "no immediate stop for server without node")
}
