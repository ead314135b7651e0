// Package pgcluster runs PostgreSQL clusters from the Debian binaries on
// loopback for the lab's estates, the benchmarks and the tests: it finds
// the binaries, runs PostgreSQL's programs as the postgres OS user when
// drover runs as root (PostgreSQL refuses root), initdb's a cluster, starts
// and stops it with pg_ctl, picks a free port and writes connection
// strings. Start is a whole throwaway cluster (the fleet benchmark's
// Temporal persistence, devserver/pgtest's tests).
//
// It is not drover's postgres driver: the driver runs a plan's clusters;
// this sets up the ones around it. It does not import "testing", so the
// drover binary can use it.
package pgcluster

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
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUnavailable marks a machine without the PostgreSQL binaries (or
// without the postgres OS user when running as root).
var ErrUnavailable = errors.New("PostgreSQL is not installed here")

// OSUser is who runs the clusters when drover runs as root.
const OSUser = "postgres"

// BinDir finds PostgreSQL's programs: $PG_BIN_DIR, else pg_ctl's directory
// on PATH (through its symlink into the versioned directory, which holds
// initdb too), else the newest /usr/lib/postgresql/*/bin (Debian keeps
// them off PATH).
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w: PG_BIN_DIR=%s has no initdb", ErrUnavailable, d)
		}
		return d, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVer := "", -1.0
	for _, m := range matches {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(m))), 64)
		if err == nil && v > bestVer {
			best, bestVer = filepath.Dir(m), v
		}
	}
	if best == "" {
		return "", fmt.Errorf("%w: no initdb next to a pg_ctl on PATH nor under /usr/lib/postgresql/*/bin (apt-get install postgresql)", ErrUnavailable)
	}
	return best, nil
}

// Missing says what running clusters needs that this machine lacks, or "".
func Missing() string {
	if _, err := NewTools(); err != nil {
		return err.Error()
	}
	return ""
}

// Tools runs PostgreSQL's programs, as the postgres OS user when drover
// runs as root.
type Tools struct {
	BinDir string
	// OSUser is who the programs run as: "" for drover's own user.
	OSUser string
	// Env is added to the programs' environment (PGPASSWORD=...).
	Env  []string
	cred *syscall.Credential
}

// NewTools finds the binaries and, when running as root, the postgres OS
// user. Its errors wrap ErrUnavailable.
func NewTools() (*Tools, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	t := &Tools{BinDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(OSUser)
		if err != nil {
			return nil, fmt.Errorf("%w: running as root, the clusters run as the %s OS user: %v", ErrUnavailable, OSUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		t.OSUser, t.cred = OSUser, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return t, nil
}

// Chown gives path to the clusters' OS user (nothing when not root).
func (t *Tools) Chown(path string) error {
	if t.cred == nil {
		return nil
	}
	return os.Chown(path, int(t.cred.Uid), int(t.cred.Gid))
}

// Mkdir makes dir (and its parents) and gives it to the clusters' OS user.
func (t *Tools) Mkdir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	return t.Chown(dir)
}

// Command is program name of BinDir run as the clusters' OS user, with a
// plain C locale.
func (t *Tools) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(t.BinDir, name), args...)
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C"}, t.Env...)
	if t.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: t.cred}
	}
	// pg_ctl start leaves the postmaster running with our pipes open
	// otherwise; its output goes to its log file anyway.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs program name and returns its output; an error carries the
// output's tail.
func (t *Tools) Run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := t.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args[:min(len(args), 2)], " "), err, Tail(out.String(), 2000))
	}
	return out.String(), nil
}

// Tail is the last n bytes of s, trimmed.
func Tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// InitOptions say how InitDB makes a cluster.
type InitOptions struct {
	DataDir string
	// User is the superuser, Password its password over TCP
	// (scram-sha-256); the unix socket trusts local users.
	User, Password string
	// Checksums are for pg_rewind.
	Checksums bool
	// NoSync skips initdb's fsync: a throwaway cluster.
	NoSync bool
	// Conf and HBA are lines appended to postgresql.conf and pg_hba.conf.
	Conf, HBA []string
}

// InitDB creates a cluster in o.DataDir, whose parent must exist and be
// reachable by the clusters' OS user.
func (t *Tools) InitDB(ctx context.Context, o InitOptions) error {
	// The password goes to initdb in a file beside the data directory,
	// not on its command line.
	pw := o.DataDir + ".pw"
	if err := os.WriteFile(pw, []byte(o.Password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pw)
	if err := t.Chown(pw); err != nil {
		return err
	}
	args := []string{"-D", o.DataDir, "-U", o.User, "--pwfile=" + pw, "--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C"}
	if o.Checksums {
		args = append(args, "--data-checksums")
	}
	if o.NoSync {
		args = append(args, "--no-sync")
	}
	if _, err := t.Run(ctx, "initdb", args...); err != nil {
		return err
	}
	if err := appendLines(filepath.Join(o.DataDir, "postgresql.conf"), o.Conf); err != nil {
		return err
	}
	return appendLines(filepath.Join(o.DataDir, "pg_hba.conf"), o.HBA)
}

func appendLines(path string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Start starts the cluster in dataDir with pg_ctl and waits until it
// accepts connections; options are the server's (-o). A failure carries
// the tail of the server's log.
func (t *Tools) Start(ctx context.Context, dataDir, logFile, options string) error {
	args := []string{"start", "-D", dataDir, "-l", logFile, "-w", "-t", "60"}
	if options != "" {
		args = append(args, "-o", options)
	}
	if _, err := t.Run(ctx, "pg_ctl", args...); err != nil {
		if log, rerr := os.ReadFile(logFile); rerr == nil {
			return fmt.Errorf("%w\nserver log:\n%s", err, Tail(string(log), 2000))
		}
		return err
	}
	return nil
}

// Stop stops the cluster in dataDir (mode fast or immediate); one that is
// not running is stopped.
func (t *Tools) Stop(ctx context.Context, dataDir, mode string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	_, err := t.Run(ctx, "pg_ctl", "stop", "-D", dataDir, "-m", mode, "-w", "-t", "60")
	return err
}

// FreePort is a TCP port nobody listens on at host now.
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is a key=value connection string (pgx, libpq).
func DSN(host string, port int, user, password, database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=3", host, port, user, password, database)
}

// URL is postgres://USER@HOST:PORT/DATABASE, without the password (a
// secret reference carries it).
func URL(user, host string, port int, database string) string {
	return fmt.Sprintf("postgres://%s@%s/%s", user, net.JoinHostPort(host, strconv.Itoa(port)), database)
}

// User is the superuser of a throwaway cluster.
const User = "drover"

// Cluster is a running throwaway cluster on 127.0.0.1.
type Cluster struct {
	Host     string // 127.0.0.1
	Port     int
	User     string
	Password string // the superuser's password (random)

	dir     string // holds data/, sock/ and the log
	tools   *Tools
	stopped sync.Once
	stopErr error
}

// Start initialises and starts a throwaway cluster in a new temporary
// directory: password authentication over TCP, a unix socket directory of
// its own, fsync off. ctx bounds the start-up.
func Start(ctx context.Context) (*Cluster, error) {
	t, err := NewTools()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Host: "127.0.0.1", User: User, Password: randomHex(16), tools: t}
	// Under os.TempDir (world-searchable), not a test's 0700 TempDir: the
	// postgres user must reach it.
	if c.dir, err = os.MkdirTemp("", "drover-pgcluster-"); err != nil {
		return nil, err
	}
	fail := func(err error) (*Cluster, error) {
		_ = os.RemoveAll(c.dir)
		return nil, err
	}
	if err := t.Chown(c.dir); err != nil {
		return fail(err)
	}
	if err := t.InitDB(ctx, InitOptions{DataDir: c.dataDir(), User: User, Password: c.Password, NoSync: true}); err != nil {
		return fail(err)
	}
	if err := t.Mkdir(c.sockDir(), 0o700); err != nil {
		return fail(err)
	}
	// A port free now; another process taking it first makes pg_ctl fail,
	// and a retry picks another.
	for attempt := 0; ; attempt++ {
		if c.Port, err = FreePort(c.Host); err != nil {
			return fail(err)
		}
		// fsync off: a throwaway cluster need not survive an OS crash, and
		// 2 shared cores should not wait on disk flushes. Enough connections
		// for a few servers of 4 services with their pools.
		opts := fmt.Sprintf("-c listen_addresses=%s -p %d -k %s -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
			c.Host, c.Port, c.sockDir())
		err = t.Start(ctx, c.dataDir(), c.LogFile(), opts)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return fail(err)
		}
	}
}

// Stop stops the cluster (fast shutdown) and removes its files. Safe to
// call more than once.
func (c *Cluster) Stop() error {
	c.stopped.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.stopErr = c.tools.Stop(ctx, c.dataDir(), "fast")
		if c.stopErr == nil {
			c.stopErr = os.RemoveAll(c.dir)
		}
	})
	return c.stopErr
}

// LogFile is the server's log.
func (c *Cluster) LogFile() string { return filepath.Join(c.dir, "postgres.log") }

// URL is the cluster's URL for database (without the password).
func (c *Cluster) URL(database string) string { return URL(c.User, c.Host, c.Port, database) }

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) sockDir() string { return filepath.Join(c.dir, "sock") }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
