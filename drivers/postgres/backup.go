package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
)

// BackupLabel is what pg_backup_stop returns for a non-exclusive backup.
// A copy of the data directory taken between Quiesce and Resume restores
// only with these files written into it (backup_label, tablespace_map) and
// with the WAL from StartLSN to StopLSN available (the copy's pg_wal taken
// after Resume, or a WAL archive): recovery replays from the label's
// checkpoint up to the end-of-backup record.
type BackupLabel struct {
	Label         string    `json:"label"`
	StartLSN      string    `json:"startLSN"`
	StopLSN       string    `json:"stopLSN"`
	LabelFile     string    `json:"labelFile"`
	TablespaceMap string    `json:"tablespaceMap,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	StoppedAt     time.Time `json:"stoppedAt"`
}

// WriteFiles writes backup_label (and tablespace_map when there is one)
// into a copy of the data directory, owned like the directory itself.
func (b BackupLabel) WriteFiles(dataDir string) error {
	if b.LabelFile == "" {
		return fmt.Errorf("backup %q has no label file", b.Label)
	}
	files := map[string]string{"backup_label": b.LabelFile}
	if b.TablespaceMap != "" {
		files["tablespace_map"] = b.TablespaceMap
	}
	st, err := os.Stat(dataDir)
	if err != nil {
		return err
	}
	for name, content := range files {
		p := filepath.Join(dataDir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
		if err := chownLike(p, st); err != nil {
			return err
		}
	}
	return nil
}

// heldBackup is the session a non-exclusive backup lives in: PostgreSQL
// aborts the backup when that session ends, so it stays open from Quiesce
// to Resume.
type heldBackup struct {
	conn     *pgx.Conn
	r        *resolved
	label    string
	startLSN string
	started  time.Time
}

func backupKey(t drivers.Target) string {
	return strings.Join([]string{t.Plan, t.Site.Name, t.Host.Name, t.Component.Name}, "\x00")
}

// Quiesce starts a non-exclusive backup (pg_backup_start with a fast
// checkpoint) in a session the driver keeps open until Resume. PostgreSQL
// keeps taking writes: what makes the copy consistent is the label Resume
// returns, not a pause. A second Quiesce while the backup is held is a
// no-op.
func (d *Driver) Quiesce(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	r, err := d.resolve(t)
	if err != nil {
		return drivers.Evidence{}, err
	}
	key := backupKey(t)
	d.mu.Lock()
	defer d.mu.Unlock()
	if b, ok := d.backups[key]; ok {
		pctx, cancel := context.WithTimeout(ctx, r.timeouts.connect)
		err := b.conn.Ping(pctx)
		cancel()
		if err == nil {
			return drivers.Evidence{
				Action:      "pg_backup_start (held)",
				Output:      fmt.Sprintf("backup %s in progress since %s, start LSN %s", b.label, b.started.UTC().Format(time.RFC3339), b.startLSN),
				AlreadyDone: true,
			}, nil
		}
		// The session died, and the server aborted that backup with it.
		_ = b.conn.Close(context.Background())
		delete(d.backups, key)
		d.logger.Warn("postgres backup session lost; starting a new backup", zap.String("component", r.name), zap.Error(err))
	}
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, r.timeouts.backup)
	defer cancel()
	conn, err := r.connect(bctx)
	if err != nil {
		return drivers.Evidence{}, fmt.Errorf("quiesce %s: %w", r.name, err)
	}
	label := fmt.Sprintf("drover %s %s %s", t.Plan, r.name, start.UTC().Format("20060102T150405Z"))
	var lsn string
	err = conn.QueryRow(bctx, "SELECT pg_backup_start($1, true)::text", label).Scan(&lsn)
	ev := drivers.Evidence{
		Action:   fmt.Sprintf("pg_backup_start(%q, fast => true) on %s:%d", label, r.host, r.port),
		Duration: time.Since(start),
	}
	if err != nil {
		_ = conn.Close(context.Background())
		return ev, fmt.Errorf("quiesce %s: pg_backup_start: %s", r.name, r.redact(err.Error()))
	}
	d.backups[key] = &heldBackup{conn: conn, r: r, label: label, startLSN: lsn, started: start}
	ev.Output = "backup started at LSN " + lsn
	d.logger.Info("postgres backup started", zap.String("component", r.name), zap.String("lsn", lsn))
	return ev, nil
}

// Resume ends the backup Quiesce started (pg_backup_stop in the same
// session) and keeps its label: Evidence.Output carries it, and
// BackupLabel returns it typed. Resume with no backup held is a no-op that
// says so: a backup whose session was lost was aborted by the server, and
// a copy taken during it has no label and does not restore.
func (d *Driver) Resume(ctx context.Context, t drivers.Target) (drivers.Evidence, error) {
	lbl, ev, err := d.EndBackup(ctx, t)
	if err != nil || ev.AlreadyDone {
		return ev, err
	}
	ev.Output = drivers.Truncate(fmt.Sprintf("backup stopped at LSN %s\nbackup_label:\n%s", lbl.StopLSN, lbl.LabelFile), EvidenceLimit)
	return ev, nil
}

// EndBackup is Resume with its result typed.
func (d *Driver) EndBackup(ctx context.Context, t drivers.Target) (BackupLabel, drivers.Evidence, error) {
	key := backupKey(t)
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.backups[key]
	if !ok {
		return BackupLabel{}, drivers.Evidence{
			Action:      "pg_backup_stop",
			Output:      "no backup in progress from this worker: nothing to stop (a copy taken without a label does not restore)",
			AlreadyDone: true,
		}, nil
	}
	r := b.r
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, r.timeouts.backup)
	defer cancel()
	var lbl BackupLabel
	// wait_for_archive => false: the driver does not assume archiving; the
	// caller keeps the WAL up to StopLSN with the copy.
	err := b.conn.QueryRow(bctx, "SELECT lsn::text, labelfile, coalesce(spcmapfile, '') FROM pg_backup_stop(false)").
		Scan(&lbl.StopLSN, &lbl.LabelFile, &lbl.TablespaceMap)
	ev := drivers.Evidence{Action: fmt.Sprintf("pg_backup_stop(wait_for_archive => false) on %s:%d", r.host, r.port), Duration: time.Since(start)}
	// Whether it worked or not, this session's backup is over: a failed
	// stop on a broken session leaves nothing to retry in it.
	_ = b.conn.Close(context.Background())
	delete(d.backups, key)
	if err != nil {
		return BackupLabel{}, ev, fmt.Errorf("resume %s: pg_backup_stop: %s (the copy taken since quiesce has no label and does not restore)", r.name, r.redact(err.Error()))
	}
	lbl.Label, lbl.StartLSN, lbl.StartedAt, lbl.StoppedAt = b.label, b.startLSN, b.started, time.Now()
	d.labels[key] = lbl
	ev.Output = "backup stopped at LSN " + lbl.StopLSN
	d.logger.Info("postgres backup stopped", zap.String("component", r.name), zap.String("startLSN", lbl.StartLSN), zap.String("stopLSN", lbl.StopLSN))
	return lbl, ev, nil
}

// BackupLabel returns the label of the last backup Resume ended for t.
func (d *Driver) BackupLabel(t drivers.Target) (BackupLabel, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.labels[backupKey(t)]
	return l, ok
}
