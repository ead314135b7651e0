package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/seal"
)

// VerifyGroup checks every artifact of one group of a point, staged or
// committed, against its size and checksum. Every driver's Verify is this:
// whatever the method, what the store holds is a set of checksummed files.
func VerifyGroup(ctx context.Context, store *catalog.Store, plan, id, group string, progress Progress) (VerifyResult, error) {
	res := VerifyResult{Group: group}
	loc, err := store.LocateGroup(plan, id, group)
	if err != nil {
		return res, fmt.Errorf("verify group %s of %s: %w", group, id, err)
	}
	if store.ObjectLayout() {
		return verifyObjects(ctx, store, plan, id, loc, progress)
	}
	buf := make([]byte, 1<<20)
	for _, a := range loc.Group.Artifacts {
		full := filepath.Join(loc.Dir, a.Name)
		rel, err := filepath.Rel(store.Root, full)
		if err != nil {
			rel = full
		}
		bad := func(format string, args ...any) (VerifyResult, error) {
			res.OK = false
			res.BadFile = rel
			res.Reason = fmt.Sprintf(format, args...)
			return res, nil
		}
		f, err := os.Open(full)
		if errors.Is(err, fs.ErrNotExist) {
			return bad("missing")
		}
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", rel, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return res, fmt.Errorf("verify %s: %w", rel, err)
		}
		if st.Size() != a.Size {
			f.Close()
			return bad("%d bytes, the manifest says %d (truncated or overwritten)", st.Size(), a.Size)
		}
		h := catalog.NewHash()
		for {
			if err := ctx.Err(); err != nil {
				f.Close()
				return res, err
			}
			n, err := f.Read(buf)
			if n > 0 {
				_, _ = h.Write(buf[:n])
				res.Bytes += int64(n)
				progress.Report(res.Bytes)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return res, fmt.Errorf("verify %s: %w", rel, err)
			}
		}
		f.Close()
		if got := catalog.FormatChecksum(h.Sum64()); got != a.Checksum {
			return bad("checksum %s, the manifest says %s", got, a.Checksum)
		}
	}
	res.OK = true
	return res, nil
}

// VerifyPoint verifies every group of a committed point. When one fails,
// the point is recorded invalid, with the damaged file as the reason and
// run (a workflow id) as the run that found it; a point that passes keeps
// its validity (checksums prove the copy is intact, not that it starts).
func VerifyPoint(ctx context.Context, store *catalog.Store, plan, id, run string, progress Progress) ([]VerifyResult, error) {
	m, err := store.Load(plan, id)
	if err != nil {
		return nil, err
	}
	var out []VerifyResult
	var done int64
	for _, g := range m.Groups {
		base := done
		r, err := VerifyGroup(ctx, store, plan, id, g.Name, func(n int64) { progress.Report(base + n) })
		if err != nil {
			return out, err
		}
		done += r.Bytes
		out = append(out, r)
		if !r.OK {
			v := catalog.Validity{State: catalog.Invalid, Run: run,
				Reason: fmt.Sprintf("verify: %s: %s", r.BadFile, r.Reason)}
			if err := store.SetValidity(plan, id, v); err != nil {
				return out, fmt.Errorf("record point %s invalid: %w", id, err)
			}
			return out, nil
		}
	}
	return out, nil
}

// verifyObjects streams every artifact of a group from an object store,
// opening it when sealed, and checks its size and checksum. Damage (a
// missing object, a chunk that fails authentication, a wrong checksum) is
// a finding; a key that cannot open the data is an error, since the data
// may well be intact.
func verifyObjects(ctx context.Context, store *catalog.Store, plan, id string, loc *catalog.Located, progress Progress) (VerifyResult, error) {
	res := VerifyResult{Group: loc.Group.Name}
	buf := make([]byte, 1<<20)
	for _, a := range loc.Group.Artifacts {
		key := catalog.ArtifactKey(plan, id, a.Name)
		bad := func(format string, args ...any) (VerifyResult, error) {
			res.OK = false
			res.BadFile = key
			res.Reason = fmt.Sprintf(format, args...)
			return res, nil
		}
		r, err := store.OpenArtifact(ctx, plan, id, a.Name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return bad("missing")
		case errors.Is(err, seal.ErrDamaged), errors.Is(err, seal.ErrNotSealed):
			return bad("%v", err)
		case err != nil:
			return res, fmt.Errorf("verify %s: %w", key, err)
		}
		h := catalog.NewHash()
		var n int64
		for {
			k, err := r.Read(buf)
			if k > 0 {
				_, _ = h.Write(buf[:k])
				n += int64(k)
				res.Bytes += int64(k)
				progress.Report(res.Bytes)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				if errors.Is(err, seal.ErrDamaged) {
					return bad("%v", err)
				}
				return res, fmt.Errorf("verify %s: %w", key, err)
			}
			if err := ctx.Err(); err != nil {
				r.Close()
				return res, err
			}
		}
		r.Close()
		if n != a.Size {
			return bad("%d bytes, the manifest says %d (truncated or overwritten)", n, a.Size)
		}
		if got := catalog.FormatChecksum(h.Sum64()); got != a.Checksum {
			return bad("checksum %s, the manifest says %s", got, a.Checksum)
		}
	}
	res.OK = true
	return res, nil
}
