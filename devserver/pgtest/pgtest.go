// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb and
// pg_ctl from Debian's postgresql package, a temporary data directory, a unix
// socket directory of its own and a free port on 127.0.0.1, password
// authentication over TCP. Run as root, it runs PostgreSQL as the "postgres"
// OS user (initdb refuses root).
//
// One cluster per test package: share it with Shared, stop it in TestMain.
// It does not import devserver, so devserver's own tests can use it; a
// devserver.Postgres for a cluster is {Host, Port, User, Database,
// Password: PasswordEnv(...)}.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultBinDir is where Debian's postgresql-15 puts initdb and pg_ctl.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// ErrUnavailable marks a machine without the PostgreSQL binaries (or the
// postgres OS user when running as root).
var ErrUnavailable = errors.New("pgtest: PostgreSQL is not installed here")

// User is the superuser of a test cluster.
const User = "drover"

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Host     string // 127.0.0.1
	Port     int
	User     string
	Password string // the superuser's password (test-only, random)

	dir     string // holds data/, sock/ and the log
	binDir  string
	cred    *syscall.Credential // non-nil: run as the postgres OS user
	stopped sync.Once
	stopErr error
}

// BinDir is the directory of initdb and pg_ctl: $PG_BIN_DIR, else
// DefaultBinDir, else the newest /usr/lib/postgresql/*/bin (a Debian release
// whose postgresql package is another major version).
func BinDir() string {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		return d
	}
	if _, err := os.Stat(filepath.Join(DefaultBinDir, "initdb")); err == nil {
		return DefaultBinDir
	}
	best, bestVersion := DefaultBinDir, 0
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && v > bestVersion {
			best, bestVersion = d, v
		}
	}
	return best
}

// Start initialises and starts a cluster. ctx bounds the start-up.
func Start(ctx context.Context) (*Cluster, error) {
	bin := BinDir()
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, filepath.Join(bin, tool), err)
		}
	}
	c := &Cluster{Host: "127.0.0.1", User: User, binDir: bin, Password: randomHex(16)}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs the postgres OS user: %v", ErrUnavailable, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	// Under os.TempDir (world-searchable), not a test's 0700 TempDir: the
	// postgres user must reach it.
	dir, err := os.MkdirTemp("", "drover-pgtest-")
	if err != nil {
		return nil, err
	}
	c.dir = dir
	fail := func(err error) (*Cluster, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(c.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		if err := os.Chown(pwFile, uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := c.run(ctx, "initdb", "-D", c.dataDir(), "-U", User, "--pwfile", pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return fail(err)
	}
	_ = os.Remove(pwFile)
	if err := os.Mkdir(c.sockDir(), 0o700); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		if err := os.Chown(c.sockDir(), uid, gid); err != nil {
			return fail(err)
		}
	}

	// A port free now; another process taking it first makes pg_ctl fail,
	// and a retry picks another.
	for attempt := 0; ; attempt++ {
		if c.Port, err = freePort(); err != nil {
			return fail(err)
		}
		// fsync off: a throwaway cluster need not survive an OS crash, and
		// 2 shared cores should not wait on disk flushes. Enough connections
		// for a few servers of 4 services with their pools.
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
			c.Port, c.sockDir())
		err = c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-l", c.LogFile(), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return fail(err)
		}
	}
}

// Stop stops the cluster (fast shutdown) and removes its files. Safe to call
// more than once.
func (c *Cluster) Stop() error {
	c.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.stopErr = c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "stop")
		if c.stopErr == nil {
			c.stopErr = os.RemoveAll(c.dir)
		}
	})
	return c.stopErr
}

// LogFile is the server's log, for a failing test to show.
func (c *Cluster) LogFile() string { return filepath.Join(c.dir, "postgres.log") }

// PasswordEnv sets environment variable name to the password for the
// calling test (so a secret reference env:NAME resolves) and returns the
// reference.
func (c *Cluster) PasswordEnv(t testing.TB, name string) string {
	t.Setenv(name, c.Password)
	return "env:" + name
}

// URL is postgres://USER@127.0.0.1:PORT/DATABASE (no password: pass it as a
// secret reference).
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), database)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) sockDir() string { return filepath.Join(c.dir, "sock") }

func (c *Cluster) run(ctx context.Context, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, tool), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + c.dir}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl start leaves the postmaster running with our pipes open
	// otherwise; its output goes to the log file anyway.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := bytes.TrimSpace(out.Bytes())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		if log, rerr := os.ReadFile(c.LogFile()); rerr == nil && tool == "pg_ctl" {
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			msg = append(msg, "\nserver log:\n"...)
			msg = append(msg, log...)
		}
		return fmt.Errorf("%s %v: %w\n%s", tool, args[0:min(len(args), 2)], err, msg)
	}
	return nil
}

// Shared is one cluster for a test package, started on first use.
//
//	var pg pgtest.Shared
//	func TestMain(m *testing.M) { code := m.Run(); _ = pg.Stop(); os.Exit(code) }
//	func TestX(t *testing.T) { c := pg.Get(t) ... }
type Shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Get returns the package's cluster, starting it on first use. Without the
// PostgreSQL binaries the test is skipped, unless CI is set: then it fails.
func (s *Shared) Get(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		began := time.Now()
		s.c, s.err = Start(ctx)
		if s.err == nil {
			t.Logf("pgtest: PostgreSQL on 127.0.0.1:%d started in %s", s.c.Port, time.Since(began).Round(time.Millisecond))
		}
	})
	if s.err != nil {
		if errors.Is(s.err, ErrUnavailable) && os.Getenv("CI") == "" {
			t.Skipf("%v (CI unset: skipping; CI=true makes this a failure)", s.err)
		}
		t.Fatalf("start throwaway PostgreSQL: %v", s.err)
	}
	return s.c
}

// Stop stops the cluster if one was started.
func (s *Shared) Stop() error {
	if s.c == nil {
		return nil
	}
	return s.c.Stop()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
