package exec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
)

// aliveScript exits 0 when the pidfile names a live process and 3 when not.
// It reads /proc because a zombie still answers kill -0, and the test
// container's init does not reap orphans.
const aliveScript = `f=$1
[ -f "$f" ] || { echo "no pidfile"; exit 3; }
pid=$(cat "$f")
state=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -c1)
case "$state" in ""|Z|X) echo "pid $pid not running"; exit 3;; esac
echo "pid $pid running"
`

// fixture is a fake server managed through pidfiles in a temp dir.
type fixture struct {
	dir     string
	pidfile string
	log     string // every start/stop appends a line, to count runs
	alive   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, pidfile: filepath.Join(dir, "server.pid"), log: filepath.Join(dir, "ops.log"), alive: filepath.Join(dir, "alive.sh")}
	require.NoError(t, os.WriteFile(f.alive, []byte(aliveScript), 0o755))
	t.Cleanup(func() {
		// Leave nothing running whatever the test did.
		if pid, err := readPIDFile(f.pidfile); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return f
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return ParsePID(b)
}

// settings returns exec settings that run a sleep as "the server".
func (f *fixture) settings() map[string]any {
	return map[string]any{
		// The server's output goes to a file: a daemon must not hold our pipe.
		"start":  `echo start >> {{shquote .Vars.log}}; sleep 300 > /dev/null 2>&1 & echo $! > {{shquote .Vars.pidfile}}; echo started {{.Component.Name}} on {{.Site.Name}}`,
		"stop":   []any{"/bin/sh", "-c", `echo stop >> "$2"; kill "$(cat "$1")" && rm -f "$1"`, "sh", "{{.Vars.pidfile}}", "{{.Vars.log}}"},
		"status": []any{"/bin/sh", "{{.Vars.alive}}", "{{.Vars.pidfile}}"},
		"vars": map[string]any{
			"pidfile": f.pidfile, "log": f.log, "alive": f.alive,
		},
		"statusStopped": []any{float64(3)},
	}
}

func (f *fixture) ops(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(string(b))
}

func target(settings map[string]any) drivers.Target {
	return drivers.Target{
		Plan: "lab",
		Site: drivers.Site{Name: "dc1", Role: "primary", Settings: map[string]any{"host": "127.0.0.1"}},
		Component: drivers.Component{
			Name: "web", Role: "app", Product: "bpm", Settings: settings,
		},
	}
}

func newDriver() *Driver {
	d := New(nil)
	d.pipeWait = 200 * time.Millisecond
	return d
}

func TestLifecycleIsIdempotent(t *testing.T) {
	f := newFixture(t)
	d := newDriver()
	tg := target(f.settings())
	ctx := context.Background()

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "status exit 3: no pidfile")

	ev, err := d.Start(ctx, tg)
	require.NoError(t, err)
	assert.False(t, ev.AlreadyDone)
	assert.Contains(t, ev.Output, "started web on dc1")
	assert.Contains(t, ev.Action, "/bin/sh -c")
	assert.Contains(t, ev.Action, "sleep 300")
	assert.Equal(t, 0, ev.ExitCode)
	assert.Positive(t, ev.Duration)

	pid, err := readPIDFile(f.pidfile)
	require.NoError(t, err)
	assert.True(t, cmdrun.Alive(pid))

	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	assert.Contains(t, st.Detail, "running")

	// Start of a running server is a no-op that says so.
	ev, err = d.Start(ctx, tg)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Contains(t, ev.Output, "already running")
	assert.Equal(t, []string{"start"}, f.ops(t), "start ran again on a running server")

	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.False(t, ev.AlreadyDone)
	assert.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond)

	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	require.NoError(t, err)
	assert.True(t, ev.AlreadyDone)
	assert.Contains(t, ev.Output, "already stopped")
	assert.Equal(t, []string{"start", "stop"}, f.ops(t), "stop ran again on a stopped server")
}

func TestPidfileOnlyStatus(t *testing.T) {
	f := newFixture(t)
	s := f.settings()
	delete(s, "status")
	s["pidfile"] = "{{.Vars.pidfile}}"
	d := newDriver()
	tg := target(s)
	ctx := context.Background()
	require.NoError(t, d.CheckSettings(s))

	st, err := d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "no pidfile")

	_, err = d.Start(ctx, tg)
	require.NoError(t, err)
	pid, err := readPIDFile(f.pidfile)
	require.NoError(t, err)
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateRunning, st.State)
	assert.Equal(t, pid, st.PID)

	// A pidfile whose process is gone means stopped.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond)
	st, err = d.Status(ctx, tg)
	require.NoError(t, err)
	assert.Equal(t, drivers.StateStopped, st.State)
	assert.Contains(t, st.Detail, "is not running")
}

func TestStatusExitCodeMapping(t *testing.T) {
	d := newDriver()
	ctx := context.Background()
	for _, tc := range []struct {
		code    int
		running []any
		stopped []any
		want    drivers.State
	}{
		{0, nil, nil, drivers.StateRunning},
		{1, nil, nil, drivers.StateStopped},
		{7, nil, nil, drivers.StateStopped},
		{4, []any{float64(4)}, nil, drivers.StateRunning},
		{0, []any{float64(4)}, nil, drivers.StateStopped},
		{3, nil, []any{float64(3)}, drivers.StateStopped},
		{4, nil, []any{float64(3)}, drivers.StateUnknown},
	} {
		s := map[string]any{"start": "true", "stop": "true", "status": "echo checking; exit " + strconv.Itoa(tc.code)}
		if tc.running != nil {
			s["statusRunning"] = tc.running
		}
		if tc.stopped != nil {
			s["statusStopped"] = tc.stopped
		}
		st, err := d.Status(ctx, target(s))
		require.NoError(t, err)
		assert.Equal(t, tc.want, st.State, "exit %d running=%v stopped=%v", tc.code, tc.running, tc.stopped)
		assert.Equal(t, tc.code, st.Evidence.ExitCode)
		assert.Contains(t, st.Detail, "checking")
	}
	_, err := New(nil).Status(ctx, target(map[string]any{"start": "true", "stop": "true", "status": "true", "statusRunning": []any{0.0}, "statusStopped": []any{0.0}}))
	assert.ErrorContains(t, err, "statusStopped: exit code 0 is also in statusRunning")
}

func TestStartFailureIsErrorWithShortOutput(t *testing.T) {
	d := newDriver()
	s := map[string]any{
		"start":  `echo "cannot bind port 9080" >&2; i=0; while [ $i -lt 5000 ]; do echo noise; i=$((i+1)); done; exit 4`,
		"stop":   "true",
		"status": "exit 1",
	}
	ev, err := d.Start(context.Background(), target(s))
	require.Error(t, err)
	assert.False(t, drivers.Permanent(err), "a failed start may succeed on retry")
	assert.Contains(t, err.Error(), "exit 4")
	assert.Contains(t, err.Error(), "cannot bind port 9080")
	assert.Less(t, len(err.Error()), 1000)
	assert.Equal(t, 4, ev.ExitCode)
	// drivers.Truncate's marker may overshoot the limit by a few bytes.
	assert.LessOrEqual(t, len(ev.Output), EvidenceLimit+32)
	assert.Contains(t, ev.Output, "truncated")
}

func TestStartTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	gpid := filepath.Join(dir, "grandchild.pid")
	s := map[string]any{
		"start":     `sleep 1000 & echo $! > {{shquote .Vars.gpid}}; echo hanging; wait`,
		"stop":      "true",
		"status":    "exit 1",
		"timeouts":  map[string]any{"start": "300ms"},
		"killGrace": "1s",
		"vars":      map[string]any{"gpid": gpid},
	}
	ev, err := newDriver().Start(context.Background(), target(s))
	require.Error(t, err)
	assert.ErrorIs(t, err, cmdrun.ErrTimeout)
	assert.Contains(t, err.Error(), "timed out after 300ms")
	assert.Contains(t, ev.Output, "hanging")
	pid, perr := readPIDFile(gpid)
	require.NoError(t, perr)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond,
		"grandchild %d outlived the start timeout", pid)
}

func TestContextCancellationKills(t *testing.T) {
	dir := t.TempDir()
	gpid := filepath.Join(dir, "grandchild.pid")
	s := map[string]any{
		"start":  `sleep 1000 & echo $! > {{shquote .Vars.gpid}}; wait`,
		"stop":   "true",
		"status": "exit 1",
		"vars":   map[string]any{"gpid": gpid},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; i < 500; i++ {
			if _, err := readPIDFile(gpid); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := newDriver().Start(ctx, target(s))
	require.ErrorIs(t, err, context.Canceled)
	pid, perr := readPIDFile(gpid)
	require.NoError(t, perr)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	assert.Eventually(t, func() bool { return !cmdrun.Alive(pid) }, 5*time.Second, 20*time.Millisecond)
}

func TestDaemonHoldingPipeDoesNotHang(t *testing.T) {
	f := newFixture(t)
	s := f.settings()
	// No redirect: the sleep keeps our output pipe open.
	s["start"] = `sleep 300 & echo $! > {{shquote .Vars.pidfile}}; echo launched`
	done := make(chan struct{})
	var ev drivers.Evidence
	var err error
	go func() {
		defer close(done)
		ev, err = newDriver().Start(context.Background(), target(s))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("start hung on a daemon holding the output pipe")
	}
	require.NoError(t, err)
	assert.Contains(t, ev.Output, "launched")
	assert.Contains(t, ev.Output, "kept the output pipe open")
	pid, err := readPIDFile(f.pidfile)
	require.NoError(t, err)
	assert.True(t, cmdrun.Alive(pid), "the daemon must survive a successful start")
}

func TestUnknownSettingIsBadSettings(t *testing.T) {
	d := New(nil)
	s := map[string]any{"start": "true", "stop": "true", "status": "true", "stpo": "true"}
	err := d.CheckSettings(s)
	require.Error(t, err)
	assert.ErrorIs(t, err, drivers.ErrBadSettings)
	assert.Contains(t, err.Error(), `unknown field "stpo"`)

	_, err = d.Start(context.Background(), target(s))
	assert.True(t, drivers.Permanent(err))

	for s, want := range map[string]map[string]any{
		"start: required":                       {"stop": "true", "status": "true"},
		"status: required unless pidfile":       {"start": "true", "stop": "true"},
		"quiesce and resume: give both":         {"start": "true", "stop": "true", "status": "true", "quiesce": "x"},
		"timeouts.strat: unknown operation":     {"start": "true", "stop": "true", "status": "true", "timeouts": map[string]any{"strat": "1s"}},
		"invalid duration":                      {"start": "true", "stop": "true", "status": "true", "timeout": "soon"},
		"start[1]: want a string, got a number": {"start": []any{"a", 1.0}, "stop": "true", "status": "true"},
		"env.DB2_PASSWORD looks like a secret":  {"start": "true", "stop": "true", "status": "true", "env": map[string]any{"DB2_PASSWORD": "hunter22"}},
	} {
		err := d.CheckSettings(want)
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), s)
		assert.ErrorIs(t, err, drivers.ErrBadSettings)
		assert.NotContains(t, err.Error(), "hunter22")
	}
}

func TestTemplateErrors(t *testing.T) {
	d := newDriver()
	// A field typo is found by CheckSettings, before anything runs.
	err := d.CheckSettings(map[string]any{"start": "echo {{.Site.Nmae}}", "stop": "true", "status": "true"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no field "Nmae"`)
	err = d.CheckSettings(map[string]any{"start": "echo {{.Site.Name", "stop": "true", "status": "true"})
	assert.ErrorContains(t, err, "start:1")

	// A key the site does not define fails at run time, naming the key, and
	// is permanent; nothing runs.
	marker := filepath.Join(t.TempDir(), "ran")
	s := map[string]any{
		"start":  []any{"/bin/sh", "-c", `touch "$1"`, "sh", marker + `{{index .Site.Settings "hots"}}`},
		"stop":   "true",
		"status": "exit 1",
	}
	require.NoError(t, d.CheckSettings(s))
	_, err = d.Start(context.Background(), target(s))
	require.Error(t, err)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), `no entry for key "hots" (have: host)`)
	assert.NoFileExists(t, marker)
}

func TestSecretEnvIsResolvedAndRedacted(t *testing.T) {
	dir := t.TempDir()
	const envSecret, fileSecret = "s3cr3t-from-env", "s3cr3t-from-file"
	t.Setenv("DROVER_EXEC_TEST_PW", envSecret)
	secretFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600))
	seen := filepath.Join(dir, "seen")
	s := map[string]any{
		// The command writes what it saw to a file, then echoes it (as a
		// careless script would) and fails.
		"start":  `printf '%s %s %s' "$DB_PASSWORD" "$API_TOKEN" "$SITE_NAME" > {{shquote .Vars.seen}}; echo "password is $DB_PASSWORD token $API_TOKEN"; exit 1`,
		"stop":   "true",
		"status": "exit 1",
		"env": map[string]any{
			"DB_PASSWORD": "env:DROVER_EXEC_TEST_PW",
			"API_TOKEN":   "file:" + secretFile,
			"SITE_NAME":   "{{.Site.Name}}",
		},
		"vars": map[string]any{"seen": seen},
	}
	ev, err := newDriver().Start(context.Background(), target(s))
	require.Error(t, err)
	b, rerr := os.ReadFile(seen)
	require.NoError(t, rerr)
	assert.Equal(t, envSecret+" "+fileSecret+" dc1", string(b))
	for _, secret := range []string{envSecret, fileSecret} {
		assert.NotContains(t, ev.Output, secret)
		assert.NotContains(t, ev.Action, secret)
		assert.NotContains(t, err.Error(), secret)
	}
	assert.Contains(t, ev.Output, "password is [redacted] token [redacted]")

	// An unset variable is an error naming the reference, not permanent.
	s["env"] = map[string]any{"DB_PASSWORD": "env:DROVER_EXEC_TEST_UNSET"}
	_, err = newDriver().Start(context.Background(), target(s))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env.DB_PASSWORD")
	assert.Contains(t, err.Error(), "DROVER_EXEC_TEST_UNSET is not set")
	assert.False(t, drivers.Permanent(err))
}

func TestStopImmediate(t *testing.T) {
	ctx := context.Background()
	t.Run("command", func(t *testing.T) {
		f := newFixture(t)
		s := f.settings()
		s["stopImmediate"] = []any{"/bin/sh", "-c", `echo kill9 >> "$2"; kill -9 "$(cat "$1")"; rm -f "$1"`, "sh", "{{.Vars.pidfile}}", "{{.Vars.log}}"}
		d := newDriver()
		_, err := d.Start(ctx, target(s))
		require.NoError(t, err)
		_, err = d.Stop(ctx, target(s), drivers.StopImmediate)
		require.NoError(t, err)
		assert.Equal(t, []string{"start", "kill9"}, f.ops(t))
	})
	t.Run("pidfile kills the group", func(t *testing.T) {
		f := newFixture(t)
		s := f.settings()
		s["pidfile"] = "{{.Vars.pidfile}}"
		s["killGrace"] = "2s"
		d := newDriver()
		_, err := d.Start(ctx, target(s))
		require.NoError(t, err)
		pid, err := readPIDFile(f.pidfile)
		require.NoError(t, err)
		ev, err := d.Stop(ctx, target(s), drivers.StopImmediate)
		require.NoError(t, err)
		assert.Contains(t, ev.Action, "kill -TERM -")
		assert.Contains(t, ev.Output, "terminated by SIGTERM")
		assert.False(t, cmdrun.Alive(pid))
		assert.Equal(t, []string{"start"}, f.ops(t), "the graceful stop command must not run")
		st, err := d.Status(ctx, target(s))
		require.NoError(t, err)
		assert.Equal(t, drivers.StateStopped, st.State)
	})
	t.Run("falls back to stop with a note", func(t *testing.T) {
		f := newFixture(t)
		s := f.settings()
		d := newDriver()
		_, err := d.Start(ctx, target(s))
		require.NoError(t, err)
		ev, err := d.Stop(ctx, target(s), drivers.StopImmediate)
		require.NoError(t, err)
		assert.Contains(t, ev.Output, "no stopImmediate command and no pidfile; ran the graceful stop command")
		assert.Equal(t, []string{"start", "stop"}, f.ops(t))
	})
}

func TestStopProceedsWhenStatusHangs(t *testing.T) {
	f := newFixture(t)
	s := f.settings()
	d := newDriver()
	_, err := d.Start(context.Background(), target(s))
	require.NoError(t, err)
	// The server is wedged: its status command never answers.
	s["status"] = "sleep 1000"
	s["timeouts"] = map[string]any{"status": "200ms"}
	s["killGrace"] = "1s"
	ev, err := d.Stop(context.Background(), target(s), drivers.StopGraceful)
	require.NoError(t, err)
	assert.Contains(t, ev.Output, "note: status failed, stopping anyway")
	assert.Equal(t, []string{"start", "stop"}, f.ops(t))

	// Start does not guess: a failed status fails the start.
	_, err = d.Start(context.Background(), target(s))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status before start")
	assert.Equal(t, []string{"start", "stop"}, f.ops(t))
}

func TestQuiesceResume(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "q.log")
	s := map[string]any{
		"start": "true", "stop": "true", "status": "true",
		"quiesce": `echo "set write suspend for {{.Component.Name}}" >> {{shquote .Vars.log}}`,
		"resume":  `echo "set write resume for {{.Component.Name}}" >> {{shquote .Vars.log}}`,
		"vars":    map[string]any{"log": log},
	}
	d := newDriver()
	var q drivers.Quiescer = d
	_, err := q.Quiesce(context.Background(), target(s))
	require.NoError(t, err)
	_, err = q.Resume(context.Background(), target(s))
	require.NoError(t, err)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "set write suspend for web\nset write resume for web\n", string(b))

	_, err = q.Quiesce(context.Background(), target(map[string]any{"start": "true", "stop": "true", "status": "true"}))
	require.Error(t, err)
	assert.ErrorIs(t, err, drivers.ErrUnsupported)
	assert.True(t, drivers.Permanent(err))
}

func TestWorkdir(t *testing.T) {
	dir := t.TempDir()
	s := map[string]any{"start": "pwd", "stop": "true", "status": "exit 1", "workdir": "{{.Vars.dir}}", "vars": map[string]any{"dir": dir}}
	ev, err := newDriver().Start(context.Background(), target(s))
	require.NoError(t, err)
	assert.Contains(t, ev.Output, dir)
}

func TestParsePID(t *testing.T) {
	for in, want := range map[string]int{"123": 123, " 42\n": 42, "7\r\n": 7} {
		got, err := ParsePID([]byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "0", "-1", "+5", "12a", "1 2", "99999999999999999999"} {
		_, err := ParsePID([]byte(in))
		assert.Error(t, err, "%q", in)
	}
}

func FuzzParsePID(f *testing.F) {
	f.Add([]byte("1234\n"))
	f.Add([]byte("  0x10 "))
	f.Fuzz(func(t *testing.T, b []byte) {
		pid, err := ParsePID(b)
		if err == nil && pid <= 0 {
			t.Fatalf("accepted pid %d from %q", pid, b)
		}
	})
}
