// Package pgtest sets up throwaway PostgreSQL clusters for the tests of the
// drivers that talk to PostgreSQL, on lab/pgcluster: a temporary base
// directory owned by the server's OS user, initdb with a password for TCP
// logins, replication allowed on loopback, and free loopback ports. The
// tests start and stop the servers themselves (through the driver under
// test, or Start/Stop).
package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/drover-dr/drover/lab/pgcluster"
)

// PasswordEnv is the environment variable the tests' password reference
// names (env:DROVER_PGTEST_PASSWORD).
const PasswordEnv = "DROVER_PGTEST_PASSWORD"

// Env is a base directory for clusters and how to run PostgreSQL's tools
// (BinDir, OSUser, Chown).
type Env struct {
	*pgcluster.Tools
	Base     string
	Password string
}

// Unavailable says why the tests cannot run here, or "" when they can.
func Unavailable() string { return pgcluster.Missing() }

// New makes a base directory owned by the server's OS user and sets the
// password variable the tests' settings reference.
func New() (*Env, error) {
	tools, err := pgcluster.NewTools()
	if err != nil {
		return nil, err
	}
	e := &Env{Tools: tools, Password: fmt.Sprintf("pw-%d-secret", time.Now().UnixNano())}
	if e.Base, err = os.MkdirTemp("", "drover-pgtest-"); err != nil {
		return nil, err
	}
	if err := e.Chown(e.Base); err != nil {
		return nil, err
	}
	if err := e.Mkdir(e.SocketDir(), 0o700); err != nil {
		return nil, err
	}
	os.Setenv(PasswordEnv, e.Password)
	return e, nil
}

// SocketDir is where the servers put their unix sockets.
func (e *Env) SocketDir() string { return filepath.Join(e.Base, "sock") }

// Close removes the base directory.
func (e *Env) Close() { _ = os.RemoveAll(e.Base) }

// InitDB creates a cluster in Base/name ready for streaming replication and
// pg_rewind (checksums on): superuser postgres with the test password over
// TCP, trust on the unix socket, port given in postgresql.conf.
func (e *Env) InitDB(name string, port int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(e.Base, name)
	err := e.Tools.InitDB(ctx, pgcluster.InitOptions{DataDir: dir, User: "postgres", Password: e.Password, Checksums: true,
		Conf: []string{
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
		}})
	if err != nil {
		return "", err
	}
	return dir, nil
}

// FreePort returns a loopback TCP port nobody listens on now.
func FreePort() (int, error) { return pgcluster.FreePort("127.0.0.1") }

// Start starts the cluster in dir with pg_ctl (for tests that do not test
// the postgres driver itself).
func (e *Env) Start(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.Tools.Start(ctx, dir, filepath.Join(dir, "pg_ctl.log"), "")
}

// Stop stops the cluster in dir (immediate; a stopped one is fine).
func (e *Env) Stop(dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.Tools.Stop(ctx, dir, "immediate")
}
