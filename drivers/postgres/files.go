package postgres

import (
	"os"
	"syscall"
)

// chownLike gives path the owner of st (a data directory written by the
// worker as root must stay readable by the server's OS user).
func chownLike(path string, st os.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(sys.Uid), int(sys.Gid))
}

// touchOwned creates an empty file in dir, owned like dir.
func touchOwned(dir, name string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	p := dir + "/" + name
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return err
	}
	return chownLike(p, st)
}

// removeIfExists removes a file; a missing file is fine.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
