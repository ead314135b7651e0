package postgres

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-dr/drover/drivers"
)

func TestLifecycle(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "life")
	d := newDriver(t)
	tg := target("dc1", dir, port, nil)
	ctx := ctxFor(t, 3*time.Minute)

	st, err := d.Status(ctx, tg)
	if err != nil || st.State != drivers.StateStopped {
		t.Fatalf("status before start = %+v, %v; want stopped", st, err)
	}
	ev, err := d.Start(ctx, tg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if ev.AlreadyDone || !strings.Contains(ev.Output, "ready: connected") {
		t.Fatalf("start evidence = %+v", ev)
	}
	noSecret(t, "start evidence", ev)
	ev, err = d.Start(ctx, tg)
	if err != nil || !ev.AlreadyDone {
		t.Fatalf("second start = %+v, %v; want a no-op", ev, err)
	}
	st, err = d.Status(ctx, tg)
	if err != nil || st.State != drivers.StateRunning || st.PID <= 0 || st.Detail != drivers.RolePrimary {
		t.Fatalf("status = %+v, %v; want running primary with a pid", st, err)
	}
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	if err != nil || ev.AlreadyDone || !strings.Contains(ev.Action, "-m smart") {
		t.Fatalf("stop = %+v, %v", ev, err)
	}
	if strings.Contains(ev.Action, "-m fast") {
		t.Fatalf("an idle server stopped smart should not escalate: %s", ev.Action)
	}
	ev, err = d.Stop(ctx, tg, drivers.StopGraceful)
	if err != nil || !ev.AlreadyDone {
		t.Fatalf("second stop = %+v, %v; want a no-op", ev, err)
	}
	st, err = d.Status(ctx, tg)
	if err != nil || st.State != drivers.StateStopped {
		t.Fatalf("status after stop = %+v, %v", st, err)
	}
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	ev, err = d.Stop(ctx, tg, drivers.StopImmediate)
	if err != nil || !strings.Contains(ev.Action, "-m immediate") || strings.Contains(ev.Action, "-m smart") {
		t.Fatalf("immediate stop = %+v, %v; want straight to immediate", ev, err)
	}
}

// A client in an open transaction holds a smart shutdown; the driver moves
// on to fast when the smart timeout passes.
func TestStopEscalatesFromSmartToFast(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "escalate")
	d := newDriver(t)
	tg := target("dc1", dir, port, map[string]any{"timeouts": map[string]any{"stopSmart": "2s", "stopFast": "30s"}})
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	c := sqlConn(t, port)
	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	ev, err := d.Stop(ctx, tg, drivers.StopGraceful)
	if err != nil {
		t.Fatalf("stop: %v (%+v)", err, ev)
	}
	if !strings.Contains(ev.Action, "-m smart") || !strings.Contains(ev.Action, "-m fast") || strings.Contains(ev.Action, "-m immediate") {
		t.Fatalf("stop ran %q; want smart then fast", ev.Action)
	}
	if st, _ := d.Status(ctx, tg); st.State != drivers.StateStopped {
		t.Fatalf("status after stop = %+v", st)
	}
}

func TestStatusOfMissingDataDirectoryIsStopped(t *testing.T) {
	needPG(t)
	d := newDriver(t)
	tg := target("dc1", filepath.Join(env.Base, "nothing-here"), 1, nil)
	st, err := d.Status(ctxFor(t, time.Minute), tg)
	if err != nil || st.State != drivers.StateStopped || !strings.Contains(st.Detail, "no database cluster") {
		t.Fatalf("status = %+v, %v", st, err)
	}
}

func TestBadSettingsNameTheField(t *testing.T) {
	d := New(nil)
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"unknown field", map[string]any{"dataDir": "/x", "dataDri": "/y"}, `unknown field "dataDri"`},
		{"missing dataDir", map[string]any{}, "dataDir: required"},
		{"bad sslMode", map[string]any{"dataDir": "/x", "sslMode": "sometimes"}, "sslMode"},
		{"port out of range", map[string]any{"dataDir": "/x", "port": 70000}, "port"},
		{"literal password", map[string]any{"dataDir": "/x", "password": "hunter22"}, "password"},
		{"bad timeout", map[string]any{"dataDir": "/x", "timeouts": map[string]any{"stopFast": "soon"}}, "invalid duration"},
		{"unknown timeout", map[string]any{"dataDir": "/x", "timeouts": map[string]any{"stopSlow": "1s"}}, `unknown field "stopSlow"`},
		{"bad template", map[string]any{"dataDir": "{{.Site.Nmae}}"}, "Nmae"},
		{"replication literal password", map[string]any{"dataDir": "/x", "replication": map[string]any{"password": "hunter22"}}, "replication.password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.CheckSettings(tc.settings)
			if err == nil || !errors.Is(err, drivers.ErrBadSettings) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckSettings = %v; want bad settings naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter22") {
				t.Fatalf("error quotes the literal password: %v", err)
			}
		})
	}
	if err := d.CheckSettings(map[string]any{"dataDir": "/x", "port": "{{index .Site.Settings \"p\"}}", "password": "env:PW"}); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	// A key the site does not define fails at call time, marked permanent.
	_, err := d.Status(context.Background(), drivers.Target{Component: drivers.Component{Settings: map[string]any{"dataDir": `{{index .Site.Settings "pgdata"}}`}}})
	if err == nil || !drivers.Permanent(err) || !strings.Contains(err.Error(), "pgdata") {
		t.Fatalf("status with a missing site key = %v; want a permanent error naming pgdata", err)
	}
}

func TestWrongPasswordIsPermanentAndNotQuoted(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "wrongpw")
	d := newDriver(t)
	ctx := ctxFor(t, 2*time.Minute)
	good := target("dc1", dir, port, nil)
	if _, err := d.Start(ctx, good); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx, good, drivers.StopImmediate)
	t.Setenv("DROVER_PGTEST_WRONG", "not-the-password-xyz")
	bad := target("dc1", dir, port, map[string]any{"password": "env:DROVER_PGTEST_WRONG"})
	_, err := d.Status(ctx, bad)
	if err == nil || !drivers.Permanent(err) {
		t.Fatalf("status with a wrong password = %v; want a permanent error", err)
	}
	if strings.Contains(err.Error(), "not-the-password-xyz") {
		t.Fatalf("error quotes the password: %v", err)
	}
}

// A copy of the data directory taken between Quiesce and Resume, with the
// label Resume returns written into it and the WAL up to the backup's end,
// starts as a second server holding every row committed before Resume;
// the first server never stopped.
func TestHotCopyRestoresWithTheBackupLabel(t *testing.T) {
	needPG(t)
	dir, port := newCluster(t, "hot")
	d := newDriver(t)
	ctx := ctxFor(t, 3*time.Minute)
	tg := target("dc1", dir, port, nil)
	if _, err := d.Start(ctx, tg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, port, "CREATE TABLE orders (id int PRIMARY KEY, note text)")
	mustExec(t, port, "INSERT INTO orders SELECT g, 'before' FROM generate_series(1, 1000) g")

	if ev, err := d.Resume(ctx, tg); err != nil || !ev.AlreadyDone {
		t.Fatalf("resume with no backup = %+v, %v; want a no-op", ev, err)
	}
	ev, err := d.Quiesce(ctx, tg)
	if err != nil || !strings.Contains(ev.Output, "backup started at LSN") {
		t.Fatalf("quiesce = %+v, %v", ev, err)
	}
	if ev, err := d.Quiesce(ctx, tg); err != nil || !ev.AlreadyDone {
		t.Fatalf("second quiesce = %+v, %v; want a no-op", ev, err)
	}
	// The server keeps taking writes during the copy.
	mustExec(t, port, "INSERT INTO orders SELECT g, 'during' FROM generate_series(1001, 1500) g")
	copyDir := filepath.Join(env.Base, "hot-copy")
	if err := copyTree(dir, copyDir, map[string]bool{"postmaster.pid": true, "postmaster.opts": true, "pg_ctl.log": true}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, port, "INSERT INTO orders SELECT g, 'late' FROM generate_series(1501, 1600) g")
	ev, err = d.Resume(ctx, tg)
	if err != nil || !strings.Contains(ev.Output, "START WAL LOCATION") {
		t.Fatalf("resume = %+v, %v; want the label in the evidence", ev, err)
	}
	lbl, ok := d.BackupLabel(tg)
	if !ok || lbl.StartLSN == "" || lbl.StopLSN == "" || !strings.Contains(lbl.LabelFile, "BACKUP METHOD: streamed") {
		t.Fatalf("backup label = %+v, %v", lbl, ok)
	}
	// The WAL through the end of the backup, taken after Resume (or from an
	// archive), and the label make the copy consistent.
	if err := copyTree(filepath.Join(dir, "pg_wal"), filepath.Join(copyDir, "pg_wal"), nil); err != nil {
		t.Fatal(err)
	}
	// Written after the copy was complete: never in it.
	mustExec(t, port, "INSERT INTO orders SELECT g, 'after' FROM generate_series(1601, 1700) g")
	if err := lbl.WriteFiles(copyDir); err != nil {
		t.Fatal(err)
	}
	track(copyDir)
	port2 := freePort(t)
	tg2 := target("copy", copyDir, port2, nil)
	if _, err := d.Start(ctx, tg2); err != nil {
		t.Fatalf("start the copy: %v", err)
	}
	if st, err := d.Status(ctx, tg); err != nil || st.State != drivers.StateRunning {
		t.Fatalf("the original stopped: %+v, %v", st, err)
	}
	if n := count(t, port2, "orders"); n != 1600 {
		t.Fatalf("the copy holds %d rows; want the 1600 committed before resume", n)
	}
	if n := count(t, port, "orders"); n != 1700 {
		t.Fatalf("the original holds %d rows; want 1700", n)
	}
	for _, tgt := range []drivers.Target{tg2, tg} {
		if _, err := d.Stop(ctx, tgt, drivers.StopGraceful); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies src into dst (files, directories, symlinks), skipping the
// names in skip at the top level and files that vanish meanwhile, owned by
// the server's OS user.
func copyTree(src, dst string, skip map[string]bool) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if skip[rel] {
			return nil
		}
		out := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		switch {
		case e.IsDir():
			if err := os.MkdirAll(out, info.Mode().Perm()); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, out); err != nil {
				return err
			}
		default:
			in, err := os.Open(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			defer in.Close()
			f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, info.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, in); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		return env.Chown(out)
	})
}
