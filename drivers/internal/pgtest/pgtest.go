// Package pgtest sets up throwaway PostgreSQL clusters for the tests of the
// drivers that talk to PostgreSQL: a temporary base directory owned by the
// server's OS user, initdb with a password for TCP logins, replication
// allowed on loopback, and free loopback ports. The tests start and stop
// the servers themselves (through the driver under test, or Start/Stop).
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-dr/drover/drivers/internal/cmdrun"
)

// PasswordEnv is the environment variable the tests' password reference
// names (env:DROVER_PGTEST_PASSWORD).
const PasswordEnv = "DROVER_PGTEST_PASSWORD"

// Env is a base directory for clusters and how to run PostgreSQL's tools.
type Env struct {
	BinDir   string
	OSUser   string // empty when the tests do not run as root
	Base     string
	Password string
	cred     *syscall.Credential
}

// BinDir finds PostgreSQL's binaries: pg_ctl's directory on PATH, else the
// newest /usr/lib/postgresql/*/bin. It returns "" when there are none.
func BinDir() string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if p, err := filepath.EvalSymlinks(filepath.Join(dir, "pg_ctl")); err == nil {
			return filepath.Dir(p)
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[0])
}

func version(p string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(p))), 64)
	return v
}

// Unavailable says why the tests cannot run here, or "" when they can.
func Unavailable() string {
	if BinDir() == "" {
		return "PostgreSQL binaries not found (pg_ctl on PATH or /usr/lib/postgresql/*/bin); install postgresql"
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return "running as root and there is no postgres OS user to run the server as"
		}
	}
	return ""
}

// New makes a base directory owned by the server's OS user and sets the
// password variable the tests' settings reference.
func New() (*Env, error) {
	e := &Env{BinDir: BinDir(), Password: fmt.Sprintf("pw-%d-secret", time.Now().UnixNano())}
	if e.BinDir == "" {
		return nil, fmt.Errorf("no PostgreSQL binaries")
	}
	base, err := os.MkdirTemp("", "drover-pgtest-")
	if err != nil {
		return nil, err
	}
	e.Base = base
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		e.OSUser, e.cred = "postgres", &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(base, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(e.SocketDir(), 0o700); err != nil {
		return nil, err
	}
	if err := e.Chown(e.SocketDir()); err != nil {
		return nil, err
	}
	os.Setenv(PasswordEnv, e.Password)
	return e, nil
}

// SocketDir is where the servers put their unix sockets.
func (e *Env) SocketDir() string { return filepath.Join(e.Base, "sock") }

// Chown gives path to the server's OS user.
func (e *Env) Chown(path string) error {
	if e.cred == nil {
		return nil
	}
	return os.Chown(path, int(e.cred.Uid), int(e.cred.Gid))
}

// Close removes the base directory.
func (e *Env) Close() { _ = os.RemoveAll(e.Base) }

// Run runs one of PostgreSQL's programs as the server's OS user.
func (e *Env) Run(timeout time.Duration, name string, args ...string) (string, error) {
	res, err := cmdrun.Run(context.Background(), cmdrun.Spec{
		Argv: append([]string{filepath.Join(e.BinDir, name)}, args...), Dir: "/",
		Env: []string{"LC_ALL=C", "PGPASSWORD=" + e.Password}, Timeout: timeout, Credential: e.cred,
	})
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("%s: %s", name, res.ExitSummary())
	}
	if err != nil {
		return res.Output, fmt.Errorf("%w: %s", err, res.Output)
	}
	return res.Output, nil
}

// InitDB creates a cluster in Base/name ready for streaming replication and
// pg_rewind (checksums on): superuser postgres with the test password over
// TCP, trust on the unix socket, port given in postgresql.conf.
func (e *Env) InitDB(name string, port int) (string, error) {
	dir := filepath.Join(e.Base, name)
	pw := filepath.Join(e.Base, name+".pw")
	if err := os.WriteFile(pw, []byte(e.Password+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := e.Chown(pw); err != nil {
		return "", err
	}
	defer os.Remove(pw)
	if out, err := e.Run(2*time.Minute, "initdb", "-D", dir, "-U", "postgres", "--pwfile="+pw,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--data-checksums", "-E", "UTF8", "--locale=C"); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := strings.Join([]string{
		"",
		"port = " + strconv.Itoa(port),
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + e.SocketDir() + "'",
		"wal_level = replica",
		"max_wal_senders = 10",
		"wal_keep_size = '256MB'",
		"hot_standby = on",
		"fsync = off", // throwaway clusters: speed over durability
		"shared_buffers = '16MB'",
		"max_connections = 30",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.WriteString(conf); err != nil {
		return "", err
	}
	return dir, nil
}

// FreePort returns a loopback TCP port nobody listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the cluster in dir with pg_ctl (for tests that do not test
// the postgres driver itself).
func (e *Env) Start(dir string) error {
	out, err := e.Run(time.Minute, "pg_ctl", "start", "-D", dir, "-l", filepath.Join(dir, "pg_ctl.log"), "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// Stop stops the cluster in dir (immediate; a stopped one is fine).
func (e *Env) Stop(dir string) {
	_, _ = e.Run(time.Minute, "pg_ctl", "stop", "-D", dir, "-m", "immediate", "-w")
}
