package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// WriteFileAtomic writes data to path so that a reader sees either the old
// file or the whole new one: temp name, fsync, rename, fsync of the folder.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, StoreError(err))
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, StoreError(err))
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a folder so a rename or create in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		// Some file systems (and NFS clients) refuse fsync on folders;
		// EINVAL there means "not supported", not "not durable".
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ErrStoreFull marks a write that failed because the store ran out of
// space (or of inodes, or of quota).
var ErrStoreFull = errors.New("the store is full")

// StoreError turns ENOSPC/EDQUOT into ErrStoreFull so the message says what
// happened in words an operator acts on; other errors pass through.
func StoreError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if errors.Is(err, ErrStoreFull) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrStoreFull, err)
	}
	return err
}

// FreeSpace returns the bytes available to an unprivileged writer in the
// file system holding path.
func FreeSpace(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}
