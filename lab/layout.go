package lab

import (
	"fmt"
	"os"
	"path/filepath"
)

// Layout names every file of a lab dir. Per site, data/ is the data root (the
// seed's NFS /home): everything a site needs to come back lives in it, and
// storage drivers capture and restore it whole. Everything outside data/
// (installation manifest, pid files, logs) is re-creatable or checked, never
// copied. The ledger and the front door live at the top: they are outside
// every site, so they survive the loss of one.
type Layout struct{ Dir string }

// TopologyFile is lab.json.
func (l Layout) TopologyFile() string { return filepath.Join(l.Dir, "lab.json") }

// SiteDir is sites/<site>.
func (l Layout) SiteDir(site string) string { return filepath.Join(l.Dir, "sites", site) }

// DataRoot is sites/<site>/data.
func (l Layout) DataRoot(site string) string { return filepath.Join(l.SiteDir(site), "data") }

// LostDataRoot is where a disaster moves a site's data root.
func (l Layout) LostDataRoot(site string) string {
	return filepath.Join(l.SiteDir(site), "data.unreachable")
}

// ServerDir is sites/<site>/data/<server>.
func (l Layout) ServerDir(site, server string) string {
	return filepath.Join(l.DataRoot(site), server)
}

// ConfigDir holds a server's profile: configuration data.
func (l Layout) ConfigDir(site, server string) string {
	return filepath.Join(l.ServerDir(site, server), "config")
}

// RuntimeDir holds a server's runtime data: transaction logs, database files.
func (l Layout) RuntimeDir(site, server string) string {
	return filepath.Join(l.ServerDir(site, server), "runtime")
}

// InstallationFile is the site's installation manifest.
func (l Layout) InstallationFile(site string) string {
	return filepath.Join(l.SiteDir(site), "installation.json")
}

// RunDir holds pid files.
func (l Layout) RunDir(site string) string { return filepath.Join(l.SiteDir(site), "run") }

// PidFile is a server's pid file.
func (l Layout) PidFile(site, server string) string {
	return filepath.Join(l.RunDir(site), server+".pid")
}

// LockFile serializes the starts and stops of a server at a site.
func (l Layout) LockFile(site, server string) string {
	return filepath.Join(l.RunDir(site), server+".lock")
}

// LogFile is a server's log.
func (l Layout) LogFile(site, server string) string {
	return filepath.Join(l.SiteDir(site), "logs", server+".log")
}

// LedgerDir holds the step ledger of every site.
func (l Layout) LedgerDir() string { return filepath.Join(l.Dir, "ledger") }

// LedgerFile is where one server at one site records its committed steps.
func (l Layout) LedgerFile(site, server string) string {
	return filepath.Join(l.LedgerDir(), site+"."+server+".jsonl")
}

// FrontDoorFile holds where the front door points.
func (l Layout) FrontDoorFile() string { return filepath.Join(l.Dir, "frontdoor.json") }

// FrontDoorPid is the front door's pid file.
func (l Layout) FrontDoorPid() string { return filepath.Join(l.Dir, "run", "frontdoor.pid") }

// FrontDoorLog is the front door's log.
func (l Layout) FrontDoorLog() string { return filepath.Join(l.Dir, "logs", "frontdoor.log") }

// Database files, one per product plus the messaging engines' store.
const (
	DBBPM     = "bpm" // BPMDB
	DBMonitor = "mon" // MONDB
	DBME      = "me"  // the ME store
)

// DatabaseNames maps each schema name to its database name.
var DatabaseNames = map[string]string{DBBPM: "BPMDB", DBMonitor: "MONDB", DBME: "MEDB"}

// DatabaseFile is a database's file in the database server's runtime dir.
func (l Layout) DatabaseFile(site, dbServer, schema string) string {
	return filepath.Join(l.RuntimeDir(site, dbServer), DatabaseNames[schema]+".db")
}

// writeFileAtomic writes data to path so a reader sees the old or the new
// content, never half of it: temp file, fsync, rename, fsync the dir.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
