package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Dir is a Bucket in a folder: each key is a file under Root.
type Dir struct {
	Root string
}

// NewDir returns the bucket in root, which must exist: a store on a mount
// that is not mounted fails instead of filling the local disk.
func NewDir(root string) (*Dir, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("store %s: not a directory", root)
	}
	return &Dir{Root: root}, nil
}

func (d *Dir) String() string { return d.Root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || strings.HasPrefix(key, "../") || key == ".." {
		return "", fmt.Errorf("object key %q: not a clean relative path", key)
	}
	return filepath.Join(d.Root, filepath.FromSlash(key)), nil
}

// Check stats the root.
func (d *Dir) Check(ctx context.Context) error {
	if _, err := os.Stat(d.Root); err != nil {
		return fmt.Errorf("store %s: %w", d.Root, err)
	}
	return nil
}

// Put writes a temp file, syncs it and renames it into place.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := d.Check(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("got %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	if df, err := os.Open(filepath.Dir(p)); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// PutResumable writes the file in one go: a local write that was cut
// leaves only a temp file, and rewriting costs a local copy, not a WAN
// transfer.
func (d *Dir) PutResumable(ctx context.Context, key string, src Source, size int64, progress func(int64)) (Upload, error) {
	r, err := src()
	if err != nil {
		return Upload{}, err
	}
	defer r.Close()
	return Upload{Parts: 1}, d.Put(ctx, key, &progressReader{r: r, report: progress}, size)
}

// Get opens the file.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return f, nil
}

// Stat stats the file.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	p, err := d.path(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	if st.IsDir() {
		return Info{}, fmt.Errorf("stat %s: a folder: %w", key, ErrNotExist)
	}
	return Info{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// List walks the folder under prefix, leaving out temp files.
func (d *Dir) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := d.Check(ctx); err != nil {
		return nil, err
	}
	// Walk from the deepest folder the prefix names.
	start := d.Root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.Root, filepath.FromSlash(prefix[:i]))
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		out = append(out, Info{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, d.Root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the file and the folders it leaves empty.
func (d *Dir) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != d.Root && strings.HasPrefix(dir, d.Root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// Lock is not supported by a folder.
func (d *Dir) Lock(ctx context.Context, key string, until time.Time) (bool, error) { return false, nil }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type progressReader struct {
	r      io.Reader
	done   int64
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.report != nil {
		p.done += int64(n)
		p.report(p.done)
	}
	return n, err
}
