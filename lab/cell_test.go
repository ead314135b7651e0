package lab_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/lab"
	"github.com/drover-dr/drover/lab/labtest"
)

func addr(t *testing.T, l *lab.Lab, site, server string) string {
	t.Helper()
	a, err := l.Address(site, server)
	require.NoError(t, err)
	return a
}

func TestStartOrderIsEnforced(t *testing.T) {
	l := labtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := l.Configure(ctx, "dc1")
	require.NoError(t, err)
	start := func(name string) error {
		_, err := l.Start(ctx, "dc1", name)
		return err
	}
	stop := func(name string) {
		_, err := l.Stop(ctx, "dc1", name, false)
		require.NoError(t, err)
	}
	refused := func(name, want string) {
		t.Helper()
		err := start(name)
		require.Error(t, err, "%s started out of order", name)
		require.Contains(t, err.Error(), want)
		st, serr := l.Status(ctx, "dc1", name)
		require.NoError(t, serr)
		require.Equal(t, lab.StatusStopped, st.State, "a refused server does not stay up")
	}
	a := func(name string) string { return addr(t, l, "dc1", name) }

	refused("dmgr", fmt.Sprintf("dmgr: cannot start: database db at %s is not reachable", a("db")))
	require.NoError(t, start("db"))
	refused("nodeagent1", fmt.Sprintf("nodeagent1: cannot start: deployment manager dmgr at %s is not reachable", a("dmgr")))
	require.NoError(t, start("dmgr"))
	refused("bpm-me1", fmt.Sprintf("bpm-me1: cannot start: node agent nodeagent1 at %s is not reachable", a("nodeagent1")))
	require.NoError(t, start("nodeagent1"))
	refused("bpm-support1", fmt.Sprintf("bpm-support1: cannot start: messaging engine bpm-me1 at %s is not reachable", a("bpm-me1")))
	stop("db")
	refused("bpm-me1", fmt.Sprintf("bpm-me1: cannot start: database db at %s is not reachable", a("db")))
	require.NoError(t, start("db"))
	require.NoError(t, start("bpm-me1"))
	refused("bpm-app1", fmt.Sprintf("bpm-app1: cannot start: support server bpm-support1 at %s is not reachable", a("bpm-support1")))
	require.NoError(t, start("bpm-support1"))
	stop("bpm-me1")
	refused("bpm-app1", fmt.Sprintf("bpm-app1: cannot start: messaging engine bpm-me1 at %s is not reachable", a("bpm-me1")))
	require.NoError(t, start("bpm-me1"))
	require.NoError(t, start("bpm-app1"))

	res, err := l.Start(ctx, "dc1", "bpm-app1")
	require.NoError(t, err)
	require.True(t, res.AlreadyRunning, "a second start of a running server does nothing")
}

// waitQuiet waits until no order is running and no message is pending.
func waitQuiet(t *testing.T, l *lab.Lab, site string) lab.CellCounts {
	t.Helper()
	var last lab.CellCounts
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := l.StatusAll(context.Background())
		require.NoError(t, err)
		for _, s := range st.Sites {
			if s.Name == site && s.Counts != nil {
				last = *s.Counts
				running := last.Instances["OrderHandling/running"] + last.Instances["CheckCustomerAccountStatus/running"]
				pending := int64(0)
				for _, n := range last.Messages {
					pending += n
				}
				if running == 0 && pending == 0 && last.InDoubt == 0 {
					return last
				}
			}
		}
		if time.Now().After(deadline) {
			labtest.DumpLogs(t, l)
			t.Fatalf("site %s did not settle: %+v", site, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func probeAll(t *testing.T, l *lab.Lab, site string) {
	t.Helper()
	for _, level := range lab.Levels {
		res, err := l.Probe(context.Background(), site, level, lab.ProbeOptions{Timeout: 20 * time.Second})
		require.NoError(t, err, level)
		assert.True(t, res.Passed, "%s level failed: %s %v", level, res.Summary, res.Problems)
		t.Logf("%s: %s", level, res.Summary)
	}
}

func openSiteDB(t *testing.T, l *lab.Lab, site, schema string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", l.L.DatabaseFile(site, "db", schema)+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestProbesPassOnAHealthyCellAndFailWhenTheyShould(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 40, Duration: 1500 * time.Millisecond})
	require.NoError(t, err)
	require.Zero(t, rep.Failed, "%v", rep.Errors)
	waitQuiet(t, l, "dc1")
	probeAll(t, l, "dc1")

	// A messaging engine down: the system level fails and says which.
	_, err = l.Stop(ctx, "dc1", "bpm-me1", false)
	require.NoError(t, err)
	res, err := l.Probe(ctx, "dc1", lab.LevelSystem, lab.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, strings.Join(res.Problems, "\n"), "messaging engine bpm-me1")
	_, err = l.Start(ctx, "dc1", "bpm-me1")
	require.NoError(t, err)
	res, err = l.Probe(ctx, "dc1", lab.LevelSystem, lab.ProbeOptions{})
	require.NoError(t, err)
	require.True(t, res.Passed, "%v", res.Problems)

	// Monitor ahead of BPM (a MONDB from another instant): consistency fails.
	mon := openSiteDB(t, l, "dc1", lab.DBMonitor)
	r, err := mon.Exec("UPDATE monitored SET steps_seen = steps_seen + 1 WHERE instance = (SELECT instance FROM monitored ORDER BY instance LIMIT 1)")
	require.NoError(t, err)
	n, _ := r.RowsAffected()
	require.EqualValues(t, 1, n)
	res, err = l.Probe(ctx, "dc1", lab.LevelConsistency, lab.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, strings.Join(res.Problems, "\n"), "Monitor ahead of BPM")

	// An event lost from the bus: a gap nothing accounts for.
	_, err = mon.Exec("UPDATE monitored SET steps_seen = steps_seen - 2 WHERE instance = (SELECT instance FROM monitored ORDER BY instance LIMIT 1)")
	require.NoError(t, err)
	res, err = l.Probe(ctx, "dc1", lab.LevelConsistency, lab.ProbeOptions{})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, strings.Join(res.Problems, "\n"), "gap not accounted for")

	// A running instance whose pending message vanished is stuck: the
	// instance level reports it (it does not fail the recovery point).
	bpm := openSiteDB(t, l, "dc1", lab.DBBPM)
	_, err = bpm.Exec("INSERT INTO instances(id, template, state, step, created, updated) VALUES ('lost-1', 'OrderHandling', 'running', 'receive', 0, 0)")
	require.NoError(t, err)
	res, err = l.Probe(ctx, "dc1", lab.LevelInstance, lab.ProbeOptions{StuckAfter: time.Second})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.EqualValues(t, 1, res.Counts["stuck"], "%v", res.Problems)
}

func TestKilledAppServerResumesWithoutLossOrDuplicates(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	done := make(chan lab.LoadReport)
	go func() {
		rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 60, Duration: 4 * time.Second})
		assert.NoError(t, err)
		done <- rep
	}()
	time.Sleep(1500 * time.Millisecond)
	_, err := l.Signal("dc1", "bpm-app1", syscall.SIGKILL)
	require.NoError(t, err)
	st, err := l.Status(ctx, "dc1", "bpm-app1")
	require.NoError(t, err)
	require.Equal(t, lab.StatusStopped, st.State)
	time.Sleep(700 * time.Millisecond)
	_, err = l.Start(ctx, "dc1", "bpm-app1")
	require.NoError(t, err)
	rep := <-done
	require.Zero(t, rep.Failed, "the front door moves orders to the surviving member: %v", rep.Errors)
	waitQuiet(t, l, "dc1")

	requireOrdersCompletedOnce(t, l, "dc1", rep.Orders)
	lr, err := lab.CheckLedger(l.Dir, "dc1", time.Now())
	require.NoError(t, err)
	require.True(t, lr.OK(), lr.String())
	require.Positive(t, lr.Expected)
	t.Log(lr.String())
	requireLevels(t, l, "dc1", lab.LevelInstance, lab.LevelConsistency)
}

// requireOrdersCompletedOnce checks that every accepted order completed and
// that the site holds no order instance beyond them (none twice, none the
// client was not told about).
func requireOrdersCompletedOnce(t *testing.T, l *lab.Lab, site string, orders []string) {
	t.Helper()
	bpm := openSiteDB(t, l, site, lab.DBBPM)
	for _, id := range orders {
		var state string
		require.NoError(t, bpm.QueryRow("SELECT state FROM instances WHERE id = ?", id).Scan(&state), "accepted order %s lost", id)
		require.Equal(t, lab.InstanceCompleted, state, "order %s", id)
	}
	var total int
	require.NoError(t, bpm.QueryRow("SELECT count(*) FROM instances WHERE template = 'OrderHandling'").Scan(&total))
	require.Equal(t, len(orders), total, "order instances beyond the accepted orders")
}

// requireLevels runs verification levels at a site; each must pass.
func requireLevels(t *testing.T, l *lab.Lab, site string, levels ...string) {
	t.Helper()
	for _, level := range levels {
		res, err := l.Probe(context.Background(), site, level, lab.ProbeOptions{})
		require.NoError(t, err)
		require.True(t, res.Passed, "%s: %s %v", level, res.Summary, res.Problems)
	}
}

// copyTree copies a data root the way a file-level backup would.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if strings.HasSuffix(path, "-shm") {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		defer out.Close()
		_, err = io.Copy(out, in)
		return err
	}))
}

func TestFailoverToTheSecondary(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	done := make(chan lab.LoadReport)
	go func() {
		rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 40, Duration: 3 * time.Second})
		assert.NoError(t, err)
		done <- rep
	}()
	time.Sleep(1500 * time.Millisecond)

	// A consistent capture with work in flight: quiesce the database, copy
	// the data root, resume.
	_, err := l.Quiesce(ctx, "dc1", "db", time.Minute)
	require.NoError(t, err)
	captured := time.Now()
	copyTree(t, l.L.DataRoot("dc1"), l.L.DataRoot("dc2"))
	_, err = l.Resume(ctx, "dc1", "db")
	require.NoError(t, err)
	<-done

	// A site whose installation differs from the one the profiles were
	// created with (restore step 1 not done right) refuses them.
	instPath := l.L.InstallationFile("dc2")
	orig, err := os.ReadFile(instPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(instPath, bytes.Replace(orig, []byte("CF2017.06"), []byte("CF2016.09"), 1), 0o644))
	_, err = l.Start(ctx, "dc2", "db")
	require.ErrorContains(t, err, `db: cannot start: profile was created with bpm 8.5.7.0 CF2017.06 but site dc2 has "8.5.7.0 CF2016.09" installed`)
	require.NoError(t, os.WriteFile(instPath, orig, 0o644))

	// Restored as is, the configuration still points at dc1.
	_, err = l.Start(ctx, "dc2", "db")
	require.NoError(t, err)
	_, err = l.Start(ctx, "dc2", "dmgr")
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("dmgr: cannot start: database db at %s answers for another site (site dc1, not dc2)", addr(t, l, "dc1", "db")))

	lost, err := l.Disaster("dc1")
	require.NoError(t, err)
	_, err = l.Start(ctx, "dc2", "dmgr")
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("dmgr: cannot start: database db at %s is not reachable", addr(t, l, "dc1", "db")))

	// Step 5, then the restart in order, then traffic.
	n, err := lab.RewriteHosts(l.L.DataRoot("dc2"), lab.HostPrimary, lab.HostSecondary)
	require.NoError(t, err)
	require.Positive(t, n)
	require.NoError(t, l.StartSite(ctx, "dc2"))
	_, err = l.Route(ctx, "dc2")
	require.NoError(t, err)

	lr, err := lab.CheckLedger(l.Dir, "dc2", captured)
	require.NoError(t, err)
	require.True(t, lr.OK(), lr.String())
	require.Positive(t, lr.Expected)
	t.Logf("%s; RPO %s", lr, lr.RPO(lost))
	require.LessOrEqual(t, lr.RPO(lost), lost.Sub(captured)+time.Second)

	// In-flight instances carry on at the secondary; new orders go there.
	waitQuiet(t, l, "dc2")
	rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 20, Duration: time.Second})
	require.NoError(t, err)
	require.Zero(t, rep.Failed, "%v", rep.Errors)
	require.Equal(t, rep.Accepted, rep.BySite["dc2"])
	waitQuiet(t, l, "dc2")
	probeAll(t, l, "dc2")

	// The primary comes back with its old data, unreachable no more.
	require.NoError(t, l.RestoreSite("dc1"))
	require.DirExists(t, l.L.DataRoot("dc1"))
}

func TestInDoubtTransactionsAreResolvedFromTheTransactionLog(t *testing.T) {
	for _, point := range []string{"after-prepare", "after-commit-record"} {
		t.Run(point, func(t *testing.T) {
			l := labtest.Up(t)
			ctx := context.Background()
			// bpm-app1 alone takes orders, armed to crash in the middle of
			// its first two-phase commit.
			for _, s := range []string{"bpm-app2", "bpm-app1"} {
				_, err := l.Stop(ctx, "dc1", s, false)
				require.NoError(t, err)
			}
			t.Setenv(lab.EnvCrash, "bpm-app1:"+point)
			_, err := l.Start(ctx, "dc1", "bpm-app1")
			require.NoError(t, err)
			t.Setenv(lab.EnvCrash, "")
			rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 5, Duration: 500 * time.Millisecond})
			require.NoError(t, err)
			require.Zero(t, rep.Accepted, "the order died with its server")
			require.Eventually(t, func() bool {
				st, err := l.Status(ctx, "dc1", "bpm-app1")
				return err == nil && st.State == lab.StatusStopped
			}, 10*time.Second, 50*time.Millisecond)

			bpm := openSiteDB(t, l, "dc1", lab.DBBPM)
			var inDoubt int
			require.NoError(t, bpm.QueryRow("SELECT count(*) FROM xa_pending WHERE owner = 'bpm-app1'").Scan(&inDoubt))
			require.Positive(t, inDoubt, "the crash left prepared branches in doubt")
			var before int
			require.NoError(t, bpm.QueryRow("SELECT count(*) FROM instances WHERE template = 'OrderHandling'").Scan(&before))
			require.Zero(t, before)

			// The restart resolves them from the transaction log.
			for _, s := range []string{"bpm-app1", "bpm-app2"} {
				_, err := l.Start(ctx, "dc1", s)
				require.NoError(t, err)
			}
			require.NoError(t, bpm.QueryRow("SELECT count(*) FROM xa_pending").Scan(&inDoubt))
			require.Zero(t, inDoubt)
			waitQuiet(t, l, "dc1")
			var after int
			require.NoError(t, bpm.QueryRow("SELECT count(*) FROM instances WHERE template = 'OrderHandling' AND state = 'completed'").Scan(&after))
			if point == "after-prepare" {
				require.Zero(t, after, "undecided: presumed abort rolls the order back")
			} else {
				require.Positive(t, after, "decided: recovery commits the order, which then runs to completion")
			}
			lr, err := lab.CheckLedger(l.Dir, "dc1", time.Now())
			require.NoError(t, err)
			require.True(t, lr.OK(), lr.String())
			for _, level := range []string{lab.LevelInstance, lab.LevelConsistency} {
				res, err := l.Probe(ctx, "dc1", level, lab.ProbeOptions{})
				require.NoError(t, err)
				require.True(t, res.Passed, "%s: %v", level, res.Problems)
			}
		})
	}
}

func TestDatabaseCrashMidLoad(t *testing.T) {
	l := labtest.Up(t)
	ctx := context.Background()
	done := make(chan lab.LoadReport)
	go func() {
		rep, err := l.RunLoad(ctx, lab.LoadOptions{Rate: 40, Duration: 3 * time.Second})
		assert.NoError(t, err)
		done <- rep
	}()
	time.Sleep(time.Second)
	_, err := l.Signal("dc1", "db", syscall.SIGKILL)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	_, err = l.Start(ctx, "dc1", "db")
	require.NoError(t, err)
	rep := <-done
	t.Log(rep.String())
	require.Positive(t, rep.Accepted)
	waitQuiet(t, l, "dc1")

	bpm := openSiteDB(t, l, "dc1", lab.DBBPM)
	for _, id := range rep.Orders {
		var state string
		require.NoError(t, bpm.QueryRow("SELECT state FROM instances WHERE id = ?", id).Scan(&state), "accepted order %s lost", id)
		require.Equal(t, lab.InstanceCompleted, state)
	}
	lr, err := lab.CheckLedger(l.Dir, "dc1", time.Now())
	require.NoError(t, err)
	require.True(t, lr.OK(), lr.String())
	for _, level := range lab.Levels {
		res, err := l.Probe(ctx, "dc1", level, lab.ProbeOptions{})
		require.NoError(t, err)
		require.True(t, res.Passed, "%s: %v", level, res.Problems)
	}
}
