package sshrun

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
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
	"golang.org/x/crypto/ssh"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/cmdrun"
	"github.com/drover-dr/drover/drivers/internal/sshrun/sshdtest"
)

var sshd sshdtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	sshd.Stop()
	os.Exit(code)
}

func newPool(t *testing.T) *Pool {
	t.Helper()
	p := NewPool(nil, time.Minute)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestParseStrict(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"user": "deploy", "key": "env:DROVER_SSH_KEY", "knownHosts": "/etc/drover/known_hosts"}
	}
	c, err := Parse(drivers.Host{Name: "app1", Address: "10.0.0.5", SSH: base()})
	require.NoError(t, err)
	assert.Equal(t, 22, c.Port)
	assert.Equal(t, DefaultConnectTimeout, c.ConnectTimeout)
	assert.Equal(t, "deploy@10.0.0.5:22", c.Endpoint())
	assert.Equal(t, "app1 (ssh deploy@10.0.0.5:22)", c.Where())

	s := base()
	s["passwd"] = "x"
	_, err = Parse(drivers.Host{Name: "app1", Address: "10.0.0.5", SSH: s})
	require.ErrorContains(t, err, `host app1: ssh unknown field "passwd"`)
	assert.True(t, drivers.Permanent(err))

	for name, tc := range map[string]struct {
		addr string
		edit func(map[string]any)
		want string
	}{
		"no user":      {"10.0.0.5", func(m map[string]any) { delete(m, "user") }, "user: required"},
		"no key":       {"10.0.0.5", func(m map[string]any) { delete(m, "key") }, "key: required"},
		"key value":    {"10.0.0.5", func(m map[string]any) { m["key"] = "-----BEGIN OPENSSH PRIVATE KEY-----" }, "key: not a secret reference"},
		"bad port":     {"10.0.0.5", func(m map[string]any) { m["port"] = 70000 }, "port: 70000 is not a TCP port"},
		"port in addr": {"10.0.0.5:2222", func(map[string]any) {}, "give the host alone and the port as ssh.port"},
		"no address":   {"", func(map[string]any) {}, "address: required"},
		"bad timeout":  {"10.0.0.5", func(m map[string]any) { m["connectTimeout"] = "soon" }, "invalid duration"},
	} {
		t.Run(name, func(t *testing.T) {
			s := base()
			tc.edit(s)
			_, err := Parse(drivers.Host{Name: "app1", Address: tc.addr, SSH: s})
			require.ErrorContains(t, err, tc.want)
			assert.True(t, drivers.Permanent(err))
			assert.NotContains(t, err.Error(), "BEGIN OPENSSH", "a key pasted in the plan is never echoed")
		})
	}
}

func TestRunWithOutput(t *testing.T) {
	srv := sshd.Get(t)
	p := newPool(t)
	dir := t.TempDir()
	res, err := p.Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{
		Argv: []string{"/bin/sh", "-c", `echo "out in $(pwd)"; echo "err $1" >&2; exit 3`, "sh", "it's quoted"},
		Dir:  dir,
	})
	require.NoError(t, err)
	assert.Equal(t, 3, res.ExitCode)
	assert.Contains(t, res.Output, "out in "+dir)
	assert.Contains(t, res.Output, "err it's quoted")
	assert.NotContains(t, res.Output, "drover-", "the wrapper's reports are not output")
	assert.Equal(t, "app1 (ssh "+srv.User+"@127.0.0.1:"+strconv.Itoa(srv.Port)+")", Where(srv.Host("app1", nil)))

	res, err = p.Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{Argv: []string{"drover-no-such-program"}})
	require.NoError(t, err, "a program that is not found exits 127, as locally")
	assert.Equal(t, 127, res.ExitCode)

	res, err = p.Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{Argv: []string{"true"}, Dir: "/nonexistent/drover"})
	require.NoError(t, err)
	assert.Equal(t, 126, res.ExitCode)
	assert.Contains(t, res.Output, "/nonexistent/drover")
}

func TestOutputBounded(t *testing.T) {
	srv := sshd.Get(t)
	p := newPool(t)
	res, err := p.Run(context.Background(), srv.Host("", nil), cmdrun.Spec{
		Argv:      []string{"/bin/sh", "-c", `echo FIRST; head -c 200000 /dev/zero | tr '\0' a; echo; echo LAST`},
		MaxOutput: 1000,
	})
	require.NoError(t, err)
	assert.Equal(t, int64(200000+len("FIRST\n")+len("\nLAST\n")), res.OutputBytes)
	assert.Less(t, len(res.Output), 1100)
	assert.True(t, strings.HasPrefix(res.Output, "FIRST\n"))
	assert.True(t, strings.HasSuffix(res.Output, "LAST\n"))
}

// readPIDs reads the pids a remote command wrote, one per line.
func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// killPIDs leaves nothing running whatever the test found.
func killPIDs(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 800; i++ {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
}

func TestTimeoutKillsRemoteProcessGroup(t *testing.T) {
	srv := sshd.Get(t)
	p := newPool(t)
	for name, script := range map[string]string{
		// A script and its grandchild, both ended by SIGTERM.
		"term": `sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; echo started; wait`,
		// A script that ignores SIGTERM, so only SIGKILL after the grace ends it.
		"kill": `trap '' TERM; sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; echo started; while :; do sleep 1; done`,
	} {
		t.Run(name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "pids")
			t.Cleanup(func() { killPIDs(marker) })
			res, err := p.Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{
				Argv: []string{"/bin/sh", "-c", script, "sh", marker},
				// Long enough for the session to start on a loaded machine.
				Timeout:   3 * time.Second,
				KillGrace: 500 * time.Millisecond,
			})
			require.ErrorIs(t, err, cmdrun.ErrTimeout)
			assert.True(t, res.TimedOut)
			assert.Contains(t, err.Error(), "remote process group")
			assert.Contains(t, res.Output, "started")
			pids := readPIDs(t, marker)
			require.Len(t, pids, 2)
			for _, pid := range pids {
				assert.False(t, cmdrun.Alive(pid), "pid %d (%s) survived the timeout", pid, name)
			}
			if name == "kill" {
				assert.Contains(t, err.Error(), "SIGKILL")
			}
		})
	}
}

func TestCancelKillsRemoteProcessGroup(t *testing.T) {
	srv := sshd.Get(t)
	p := newPool(t)
	marker := filepath.Join(t.TempDir(), "pids")
	t.Cleanup(func() { killPIDs(marker) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitFile(t, marker)
		cancel()
	}()
	res, err := p.Run(ctx, srv.Host("app1", nil), cmdrun.Spec{
		Argv:    []string{"/bin/sh", "-c", `sleep 300 & echo $! >> "$1"; wait`, "sh", marker},
		Timeout: time.Minute,
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, res.Canceled)
	for _, pid := range readPIDs(t, marker) {
		assert.False(t, cmdrun.Alive(pid), "pid %d survived the cancellation", pid)
	}
}

func TestHostKeyChangedRefusedAndNothingRuns(t *testing.T) {
	srv := sshd.Get(t)
	dir := t.TempDir()
	other, err := sshdtest.WriteKey(filepath.Join(dir, "other"))
	require.NoError(t, err)
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(t, sshdtest.WriteKnownHosts(kh, srv.Address, srv.Port, other))
	marker := filepath.Join(dir, "ran")

	_, err = newPool(t).Run(context.Background(), srv.Host("app1", map[string]any{"knownHosts": kh}), cmdrun.Spec{
		Argv: []string{"touch", marker},
	})
	require.ErrorIs(t, err, ErrHostKeyChanged)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "HOST KEY HAS CHANGED")
	assert.Contains(t, err.Error(), "nothing was run")
	assert.NoFileExists(t, marker, "a changed host key must never run the command")
}

// A known_hosts entry of another key type than the server has (an RSA key
// recorded, the server now offering only Ed25519) is a changed key too.
func TestHostKeyOfAnotherTypeRefusedAsChanged(t *testing.T) {
	srv := sshd.Get(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	require.NoError(t, sshdtest.WriteKnownHosts(kh, srv.Address, srv.Port, pub))
	marker := filepath.Join(dir, "ran")
	_, err = newPool(t).Run(context.Background(), srv.Host("app1", map[string]any{"knownHosts": kh}), cmdrun.Spec{Argv: []string{"touch", marker}})
	require.ErrorIs(t, err, ErrHostKeyChanged)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "offers none of the host key types")
	assert.Contains(t, err.Error(), "rsa-sha2-512")
	assert.NoFileExists(t, marker)
}

func TestUnknownHostRefused(t *testing.T) {
	srv := sshd.Get(t)
	dir := t.TempDir()
	other, err := sshdtest.WriteKey(filepath.Join(dir, "other"))
	require.NoError(t, err)
	kh := filepath.Join(dir, "known_hosts")
	// The file knows another host only.
	require.NoError(t, sshdtest.WriteKnownHosts(kh, "127.0.0.9", srv.Port, other))
	marker := filepath.Join(dir, "ran")
	p := newPool(t)

	_, err = p.Run(context.Background(), srv.Host("app1", map[string]any{"knownHosts": kh}), cmdrun.Spec{Argv: []string{"touch", marker}})
	require.ErrorIs(t, err, ErrUnknownHost)
	assert.NotErrorIs(t, err, ErrHostKeyChanged)
	assert.True(t, drivers.Permanent(err))
	assert.Contains(t, err.Error(), "is not in "+kh)
	assert.Contains(t, err.Error(), "SHA256:", "the error shows the fingerprint to check")

	_, err = p.Run(context.Background(), srv.Host("app1", map[string]any{"knownHosts": filepath.Join(dir, "missing")}), cmdrun.Spec{Argv: []string{"touch", marker}})
	require.ErrorIs(t, err, ErrUnknownHost)
	assert.Contains(t, err.Error(), "does not exist")
	assert.NoFileExists(t, marker)
}

func TestWrongUserKeyRefused(t *testing.T) {
	srv := sshd.Get(t)
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong")
	_, err := sshdtest.WriteKey(wrong)
	require.NoError(t, err)
	marker := filepath.Join(dir, "ran")
	_, runErr := newPool(t).Run(context.Background(), srv.Host("app1", map[string]any{"key": "file:" + wrong}), cmdrun.Spec{Argv: []string{"touch", marker}})
	require.ErrorIs(t, runErr, ErrAuth)
	assert.True(t, drivers.Permanent(runErr))
	assert.Contains(t, runErr.Error(), "refused key file:"+wrong)
	assert.NoFileExists(t, marker)

	key, err := os.ReadFile(wrong)
	require.NoError(t, err)
	assert.NotContains(t, runErr.Error(), strings.TrimSpace(string(key))[40:80], "never the key itself")
}

func TestKeyFromEnvReference(t *testing.T) {
	srv := sshd.Get(t)
	key, err := os.ReadFile(srv.UserKeyFile)
	require.NoError(t, err)
	t.Setenv("DROVER_TEST_SSH_KEY", string(key))
	res, err := newPool(t).Run(context.Background(), srv.Host("app1", map[string]any{"key": "env:DROVER_TEST_SSH_KEY"}), cmdrun.Spec{Argv: []string{"echo", "ok"}})
	require.NoError(t, err)
	assert.Equal(t, "ok\n", res.Output)

	_, err = newPool(t).Run(context.Background(), srv.Host("app1", map[string]any{"key": "env:DROVER_TEST_SSH_KEY_UNSET"}), cmdrun.Spec{Argv: []string{"echo", "ok"}})
	require.ErrorContains(t, err, "DROVER_TEST_SSH_KEY_UNSET is not set")
}

// TestSecretEnvNeverOnACommandLine: the value reaches the command's
// environment, and while the command runs no process on the host (sshd's
// children, the wrapper, the command) shows it in its command line.
func TestSecretEnvNeverOnACommandLine(t *testing.T) {
	srv := sshd.Get(t)
	const value = "s3cret-'quoted'\n$(touch /tmp/drover-injected) value"
	dir := t.TempDir()
	got := filepath.Join(dir, "got")
	ready := filepath.Join(dir, "ready")
	done := make(chan struct{})
	var res cmdrun.Result
	var runErr error
	go func() {
		defer close(done)
		res, runErr = newPool(t).Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{
			Argv: []string{"/bin/sh", "-c", `printf '%s' "$DROVER_SECRET" > "$1"; echo x > "$2"; sleep 1; echo plain=$PLAIN`, "sh", got, ready},
			Env:  []string{"DROVER_SECRET=" + value, "PLAIN=visible"},
		})
	}()
	waitFile(t, ready)
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	scanned := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		scanned++
		assert.NotContains(t, string(b), "s3cret", "pid %s shows the secret on its command line: %q", e.Name(), b)
	}
	assert.Greater(t, scanned, 3)
	<-done
	require.NoError(t, runErr)
	b, err := os.ReadFile(got)
	require.NoError(t, err)
	assert.Equal(t, value, string(b), "the command sees the value exactly")
	assert.NoFileExists(t, "/tmp/drover-injected", "a value is data, never evaluated")
	assert.Equal(t, "plain=visible\n", res.Output)
	assert.NotContains(t, srv.Log(), "s3cret")

	_, err = newPool(t).Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{Argv: []string{"true"}, Env: []string{"BAD;NAME=x"}})
	require.ErrorContains(t, err, "not NAME=value with a valid variable name")
}

func TestPoolReusesOneConnection(t *testing.T) {
	srv := sshd.Get(t)
	p := NewPool(nil, 300*time.Millisecond)
	t.Cleanup(func() { _ = p.Close() })
	host := srv.Host("app1", nil)
	before := srv.Accepted()
	var seen []string
	for range 3 {
		res, err := p.Run(context.Background(), host, cmdrun.Spec{Argv: []string{"/bin/sh", "-c", `echo "$SSH_CONNECTION"`}})
		require.NoError(t, err)
		seen = append(seen, strings.TrimSpace(res.Output))
	}
	assert.Equal(t, seen[0], seen[1], "same client port: the same connection")
	assert.Equal(t, seen[0], seen[2])
	assert.EqualValues(t, 1, p.Dials())
	assert.Equal(t, before+1, srv.Accepted(), "sshd accepted one login for three commands:\n%s", srv.Log())

	// A connection that died behind the pool's back is noticed before
	// reuse and replaced.
	p.mu.Lock()
	for _, e := range p.conns {
		e.mu.Lock()
		_ = e.client.Close()
		e.mu.Unlock()
	}
	p.mu.Unlock()
	res, err := p.Run(context.Background(), host, cmdrun.Spec{Argv: []string{"echo", "again"}})
	require.NoError(t, err)
	assert.Equal(t, "again\n", res.Output)
	assert.EqualValues(t, 2, p.Dials())

	// Idle past the pool's idle time: the connection is closed, and the
	// next command dials.
	time.Sleep(time.Second)
	p.mu.Lock()
	assert.Empty(t, p.conns, "the idle connection was closed")
	p.mu.Unlock()
	_, err = p.Run(context.Background(), host, cmdrun.Spec{Argv: []string{"true"}})
	require.NoError(t, err)
	assert.EqualValues(t, 3, p.Dials())
}

func TestDaemonHoldingOutputDoesNotHang(t *testing.T) {
	srv := sshd.Get(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	start := time.Now()
	res, err := newPool(t).Run(context.Background(), srv.Host("app1", nil), cmdrun.Spec{
		Argv:     []string{"/bin/sh", "-c", `sleep 30 & echo $! > "$1"; echo started`, "sh", pidFile},
		PipeWait: 300 * time.Millisecond,
	})
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode)
	assert.True(t, res.PipeHeld)
	assert.Contains(t, res.Output, "started")
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestConnectErrorsAreRetryable(t *testing.T) {
	srv := sshd.Get(t)
	// A port nobody listens on: a retry may well succeed later.
	h := srv.Host("app1", map[string]any{"port": 1, "connectTimeout": "2s"})
	_, err := newPool(t).Run(context.Background(), h, cmdrun.Spec{Argv: []string{"true"}})
	require.Error(t, err)
	assert.False(t, drivers.Permanent(err))
	assert.False(t, errors.Is(err, ErrUnknownHost))
}
