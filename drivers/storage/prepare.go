package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/drover-dr/drover/catalog"
)

// Target is what a group's request resolves to before a driver acts on it.
type Target struct {
	// Members are the group's members, sorted (Members).
	Members []string
	// Root is the site's data root (DataRoot).
	Root  string
	Store *catalog.Store
}

// Prepare checks a request's names, decodes the group's settings with the
// driver's decode, and resolves the members (the settings' list, or the
// group's components), the site's data root and the store: the first steps
// of every storage driver's calls.
func Prepare[S any](req Request, decode func(map[string]any) (S, error), members func(S) []string) (S, Target, error) {
	var t Target
	if err := CheckRequest(req); err != nil {
		var zero S
		return zero, t, err
	}
	s, err := decode(req.Group.Settings)
	if err != nil {
		return s, t, fmt.Errorf("group %s: %w", req.Group.Name, err)
	}
	if t.Members, err = Members(req.Group, members(s)); err != nil {
		return s, t, err
	}
	if t.Root, err = DataRoot(req.Site); err != nil {
		return s, t, err
	}
	t.Store, err = OpenStore(req.Store, req.StoreSettings)
	return s, t, err
}

// BeginCapture starts a capture of the request's group: done when the
// point is committed already (nothing to do), else whatever an earlier
// attempt staged for the group is dropped, as the new capture makes it
// stale.
func BeginCapture(store *catalog.Store, req Request) (done bool, err error) {
	if done, err := store.Exists(req.Plan, req.PointID); err != nil || done {
		return done, err
	}
	gdir, err := store.ResetGroup(req.Plan, req.PointID, req.Group.Name)
	if err != nil {
		return false, err
	}
	if err := os.Remove(gdir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("drop the staged group %s: %w", req.Group.Name, err)
	}
	return false, nil
}

// Shipped reports whether the request's group is in the store already
// (staged or committed), filling res with what it holds and marking it
// AlreadyDone.
func Shipped(store *catalog.Store, req Request, res *Result) (bool, error) {
	loc, err := store.LocateGroup(req.Plan, req.PointID, req.Group.Name)
	if errors.Is(err, catalog.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	res.Evidence.AlreadyDone = true
	res.Stored, res.Bytes = loc.Group.Size, loc.Group.DataSize
	return true, nil
}

// BaseGroup loads the request's group from its base full point; nil for a
// full point. A base that is gone, not full or without the group is
// ErrBaseUnavailable: the caller takes a full point instead.
func BaseGroup(store *catalog.Store, req Request) (*catalog.Group, error) {
	if req.Mode != catalog.ModeCumulative {
		return nil, nil
	}
	m, err := store.Load(req.Plan, req.BaseID)
	if err != nil {
		return nil, fmt.Errorf("group %s: base point %s: %w: %w", req.Group.Name, req.BaseID, ErrBaseUnavailable, err)
	}
	if m.Mode != catalog.ModeFull {
		return nil, fmt.Errorf("group %s: base point %s is %s: %w", req.Group.Name, req.BaseID, m.Mode, ErrBaseUnavailable)
	}
	g := m.GroupByName(req.Group.Name)
	if g == nil {
		return nil, fmt.Errorf("group %s: base point %s does not hold it: %w", req.Group.Name, req.BaseID, ErrBaseUnavailable)
	}
	return g, nil
}

// EmptyOrMissing reports whether dir is missing or an empty directory: a
// restore target it may fill without replacing anything.
func EmptyOrMissing(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", dir, err)
	}
	return len(names) == 0, nil
}

// SyncFS flushes the file system holding dir once, instead of an fsync per
// restored file.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
