package devserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives/timestamp"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// Note on connections: the server's SQLite plugin keeps one connection per
// DSN for the life of the process (it never closes them, see its connPool).
// So an in-memory database stays in memory after Stop, and a file stays open;
// a second Start on the same file in the same process shares that connection.

// prepareDB returns the server's SQLite store for o.DBFile (one store holds
// both the default and the visibility data), creating the schema in a new
// file and the namespace (with its search attributes) when missing.
func prepareDB(o Options) (stores, error) {
	cfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if o.DBFile == "" {
		// A fresh name per start: the plugin shares in-memory databases by
		// name across the process. mode=memory makes the plugin create the
		// schema on first connect.
		cfg.DatabaseName = "drover-" + randomHex(8)
		cfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		path, err := filepath.Abs(o.DBFile)
		if err != nil {
			return stores{}, fmt.Errorf("db file %s: %w", o.DBFile, err)
		}
		if err := ensureSchema(path); err != nil {
			return stores{}, err
		}
		cfg.DatabaseName = path
		cfg.ConnectAttributes = map[string]string{
			"mode": "rwc",
			// WAL with synchronous=NORMAL: a commit survives the process
			// dying; only an OS crash can lose the last commits. Without WAL
			// every history write waits for fsyncs.
			"journal_mode": "wal",
			"synchronous":  "normal",
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return stores{}, fmt.Errorf("namespace %s: %w", o.Namespace, err)
	}
	ns.Detail.Config.Retention = timestamp.DurationPtr(o.Retention)
	// A no-op when the namespace exists; its search attributes are then
	// checked through the running server (registerSearchAttributes).
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return stores{}, fmt.Errorf("create namespace %s in %s: %w", o.Namespace, dbDescription(o.DBFile), err)
	}
	return stores{defaultStore: cfg, historyShards: 1, description: dbDescription(o.DBFile)}, nil
}

// ensureSchema creates path with the server's schema if it does not exist
// yet. The schema is written to a temporary file beside it and renamed into
// place, so a failed or interrupted set-up never leaves a half-made database
// that a later start would take for a good one.
func ensureSchema(path string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("db file %s: is a directory", path)
	case err == nil && st.Size() > 0:
		return nil // an existing database: reused as it is
	case err == nil:
		// An empty file (e.g. made by touch or mktemp) holds no schema yet.
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("db file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("db file %s: directory: %w", path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("db file %s: %s is not a directory", path, dir)
	}

	tmp := filepath.Join(dir, "."+filepath.Base(path)+".new-"+randomHex(4))
	// The default rollback journal, not WAL, for the set-up: every commit is
	// then in the main file itself when it is renamed.
	cfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      tmp,
		ConnectAttributes: map[string]string{"mode": "rwc", "synchronous": "full"},
	}
	if err := sqliteschema.SetupSchema(cfg); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("db file %s: create schema: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("db file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail on Linux
	return hex.EncodeToString(b)
}
