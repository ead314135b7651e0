// Package pgtest is lab/pgcluster's throwaway PostgreSQL cluster for tests:
// one cluster per test package (Shared, stopped in TestMain), skipped where
// PostgreSQL is not installed unless CI is set, and its password handed to
// a test as a secret reference (PasswordEnv).
//
// It does not import devserver, so devserver's own tests can use it; a
// devserver.Postgres for a cluster is {Host, Port, User, Database,
// Password: PasswordEnv(...)}.
package pgtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/drover-dr/drover/lab/pgcluster"
)

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct{ *pgcluster.Cluster }

// PasswordEnv sets environment variable name to the password for the
// calling test (so a secret reference env:NAME resolves) and returns the
// reference.
func (c *Cluster) PasswordEnv(t testing.TB, name string) string {
	t.Setenv(name, c.Password)
	return "env:" + name
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
		c, err := pgcluster.Start(ctx)
		s.err = err
		if err == nil {
			s.c = &Cluster{c}
			t.Logf("pgtest: PostgreSQL on 127.0.0.1:%d started in %s", c.Port, time.Since(began).Round(time.Millisecond))
		}
	})
	if s.err != nil {
		if errors.Is(s.err, pgcluster.ErrUnavailable) && os.Getenv("CI") == "" {
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
