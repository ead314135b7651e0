package catalog

// The object layout: a store kept in a blob.Bucket (an S3 bucket, or a
// folder when the store is encrypted), with the keys of the folder layout:
//
//	<plan>/points/<id>/manifest.json   the point: written last, so a point is complete exactly when it exists
//	<plan>/points/<id>/validity.json   replaced whole (a put is atomic)
//	<plan>/points/<id>/<group>/...     artifacts, uploaded by Ship
//	<plan>/staging/<id>/<group>.json   a group shipped, until Commit
//	<plan>/lifecycle.json
//
// An object store has no rename, so artifacts are uploaded to their final
// keys and a point without its manifest is not a point (List and Load never
// see it; CollectGarbage removes it). Captures are staged in a local folder
// at the capturing worker (Store.staging) and uploaded by ShipGroup. With a
// seal.Ring every object is sealed before it leaves the worker.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/seal"
)

// metaTimeout bounds one call for a small object (a manifest, a listing).
const metaTimeout = 2 * time.Minute

// ErrNotStaged: Ship found no local capture of a group at this worker (it
// was captured elsewhere, or the staging folder was cleared).
var ErrNotStaged = errors.New("the group's capture is not staged at this worker")

// ErrNotSealed: an encrypted store holds an object in clear (or the
// reverse); nothing is trusted from it.
var ErrNotSealed = errors.New("object not sealed as the store's encryption settings say")

// OpenObjects returns a store in the object layout. staging is the local
// folder captures wait in before Ship; ring seals everything when set;
// lockFor > 0 locks every object of a committed point for that long.
func OpenObjects(b blob.Bucket, ring *seal.Ring, staging string, lockFor time.Duration) *Store {
	return &Store{Root: b.String(), objects: b, ring: ring, staging: staging, lockFor: lockFor}
}

// ObjectLayout reports whether the store is in the object layout (a bucket,
// or an encrypted folder): captures are staged locally and shipped.
func (s *Store) ObjectLayout() bool { return s.objects != nil }

// Encrypted reports whether the store seals what it writes.
func (s *Store) Encrypted() bool { return s.ring != nil }

// Bucket is the store's blob.Bucket (nil in the folder layout).
func (s *Store) Bucket() blob.Bucket { return s.objects }

func metaCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), metaTimeout)
}

func pointKey(plan, id string) string    { return path.Join(plan, pointsDir, id) }
func manifestKey(plan, id string) string { return path.Join(plan, pointsDir, id, ManifestFile) }
func validityKey(plan, id string) string { return path.Join(plan, pointsDir, id, ValidityFile) }
func stagedKey(plan, id, group string) string {
	return path.Join(plan, stagingDir, id, group+".json")
}
func artifactKey(plan, id, name string) string { return path.Join(plan, pointsDir, id, name) }

// ArtifactKey is where an artifact of a point lives in the object layout,
// relative to the store (for messages naming a bad file).
func ArtifactKey(plan, id, name string) string { return artifactKey(plan, id, name) }

// putMeta seals (when encrypted) and stores a small object.
func (s *Store) putMeta(key string, data []byte) error {
	if s.ring != nil {
		sealed, err := s.ring.SealBytes(data)
		if err != nil {
			return fmt.Errorf("seal %s: %w", key, err)
		}
		data = sealed
	}
	ctx, cancel := metaCtx()
	defer cancel()
	return s.objects.Put(ctx, key, strings.NewReader(string(data)), int64(len(data)))
}

// getMeta reads and opens a small object; ErrNotExist when missing.
func (s *Store) getMeta(key string) ([]byte, error) {
	ctx, cancel := metaCtx()
	defer cancel()
	data, err := blob.ReadAll(ctx, s.objects, key)
	if err != nil {
		return nil, err
	}
	return s.open(key, data)
}

func (s *Store) open(key string, data []byte) ([]byte, error) {
	switch {
	case s.ring == nil && seal.IsSealed(data):
		return nil, fmt.Errorf("%s: %w: it is encrypted; list the keys in storage.store.encryption", key, ErrNotSealed)
	case s.ring == nil:
		return data, nil
	case !seal.IsSealed(data):
		return nil, fmt.Errorf("%s: %w: it is in clear in an encrypted store", key, ErrNotSealed)
	}
	plain, err := s.ring.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return plain, nil
}

func (s *Store) objExists(plan, id string) (bool, error) {
	ctx, cancel := metaCtx()
	defer cancel()
	_, err := s.objects.Stat(ctx, manifestKey(plan, id))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, blob.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("point %s: %w", id, err)
}

func (s *Store) objStagedGroup(plan, id, group string) (*Group, error) {
	data, err := s.getMeta(stagedKey(plan, id, group))
	if errors.Is(err, blob.ErrNotExist) {
		return nil, fmt.Errorf("group %s of point %s: %w (not shipped)", group, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w", group, id, err)
	}
	var g Group
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w: %v", group, id, ErrCorrupt, err)
	}
	return &g, nil
}

// LocalGroup reads the group's manifest from the local staging folder,
// where Capture left it; ErrNotStaged when there is none.
func (s *Store) LocalGroup(plan, id, group string) (*Group, error) {
	if err := checkPlanID(plan, id); err != nil {
		return nil, err
	}
	if err := CheckName("group", group); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.StagingDir(plan, id), groupsDir, group+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("group %s of point %s: %w", group, id, ErrNotStaged)
	}
	if err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w", group, id, err)
	}
	var g Group
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("group %s of point %s: %w: %v", group, id, ErrCorrupt, err)
	}
	return &g, nil
}

// StoredSize is the bytes an artifact of size plain takes in the store.
func (s *Store) StoredSize(plain int64) int64 {
	if s.ring == nil {
		return plain
	}
	return s.ring.SealedSize(plain)
}

// ShipGroup uploads a group captured into the local staging folder: every
// artifact (sealed when encrypted) through a resumable upload, then the
// group's manifest to the store's staging keys. A worker killed midway
// resumes on the next attempt from the parts already uploaded. The local
// copy is removed once the group is in the store.
func (s *Store) ShipGroup(ctx context.Context, plan, id, group string, progress func(int64)) (g *Group, shipped blob.Upload, err error) {
	if s.objects == nil {
		return nil, shipped, fmt.Errorf("ship group %s: the store %s is a folder; captures are written into it directly", group, s.Root)
	}
	g, err = s.LocalGroup(plan, id, group)
	if err != nil {
		return nil, shipped, err
	}
	stage := s.StagingDir(plan, id)
	var base int64
	for _, a := range g.Artifacts {
		local := filepath.Join(stage, filepath.FromSlash(a.Name))
		st, err := os.Stat(local)
		if err != nil {
			return nil, shipped, fmt.Errorf("ship %s: %w: %v", a.Name, ErrNotStaged, err)
		}
		if st.Size() != a.Size {
			return nil, shipped, fmt.Errorf("ship %s: %w: %d bytes staged, the group recorded %d", a.Name, ErrNotStaged, st.Size(), a.Size)
		}
		src, err := s.sealedSource(local, filepath.Join(stage, filepath.FromSlash(a.Name)+".salt"))
		if err != nil {
			return nil, shipped, err
		}
		done := base
		up, err := s.objects.PutResumable(ctx, artifactKey(plan, id, a.Name), src, s.StoredSize(a.Size), func(n int64) {
			if progress != nil {
				progress(done + n)
			}
		})
		shipped.Parts += up.Parts
		shipped.Reused += up.Reused
		if err != nil {
			return nil, shipped, fmt.Errorf("ship %s of point %s: %w", a.Name, id, StoreError(err))
		}
		base += s.StoredSize(a.Size)
	}
	data, err := json.Marshal(g)
	if err != nil {
		return nil, shipped, err
	}
	if err := s.putMeta(stagedKey(plan, id, group), data); err != nil {
		return nil, shipped, fmt.Errorf("ship group %s of point %s: %w", group, id, err)
	}
	// In the store now: the local copy has done its job.
	_ = os.RemoveAll(filepath.Join(stage, group))
	_ = os.Remove(filepath.Join(stage, groupsDir, group+".json"))
	for _, a := range g.Artifacts {
		_ = os.Remove(filepath.Join(stage, filepath.FromSlash(a.Name)+".salt"))
	}
	return g, shipped, nil
}

// sealedSource gives the bytes to upload for a local file: the file, or
// the file sealed with a salt kept beside it, so every attempt gives the
// same bytes and a resumed upload can check the parts it already sent. The
// salt lives in the group's staging folder, which a new capture removes
// (ResetGroup): a salt never seals two different archives.
func (s *Store) sealedSource(local, saltFile string) (blob.Source, error) {
	if s.ring == nil {
		return func() (io.ReadCloser, error) { return os.Open(local) }, nil
	}
	salt, err := os.ReadFile(saltFile)
	if err != nil || len(salt) != 32 {
		if salt, err = seal.NewSalt(); err != nil {
			return nil, err
		}
		if err := WriteFileAtomic(saltFile, salt, 0o600); err != nil {
			return nil, err
		}
	}
	return func() (io.ReadCloser, error) {
		f, err := os.Open(local)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			defer f.Close()
			w, err := s.ring.NewWriterSalt(pw, salt)
			if err == nil {
				_, err = io.Copy(w, f)
			}
			if err == nil {
				err = w.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, nil
}

// OpenArtifact streams an artifact of a point (staged or committed: in the
// object layout both live at the point's keys), opened when sealed.
func (s *Store) OpenArtifact(ctx context.Context, plan, id, name string) (io.ReadCloser, error) {
	if s.objects == nil {
		return os.Open(filepath.Join(s.PointDir(plan, id), filepath.FromSlash(name)))
	}
	r, err := s.objects.Get(ctx, artifactKey(plan, id, name))
	if err != nil {
		return nil, err
	}
	if s.ring == nil {
		return r, nil
	}
	sr, err := s.ring.NewReader(r)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %w", artifactKey(plan, id, name), err)
	}
	return readCloser{sr, r}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func (s *Store) objCommit(plan, id string, c CommitInfo) (*Manifest, error) {
	if m, err := s.Load(plan, id); err == nil {
		return m, s.lockPoint(plan, id, m, true)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	m, err := s.buildManifest(plan, id, c)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	if err := s.lockPoint(plan, id, m, false); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	v, _ := json.Marshal(Validity{State: Unverified})
	if err := s.putMeta(validityKey(plan, id), v); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	// The manifest last: with it the point is complete.
	if err := s.putMeta(manifestKey(plan, id), data); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	if err := s.lockPoint(plan, id, m, true); err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	ctx, cancel := metaCtx()
	defer cancel()
	for _, g := range m.Groups {
		_ = s.objects.Delete(ctx, stagedKey(plan, id, g.Name))
	}
	_ = os.RemoveAll(s.StagingDir(plan, id))
	return m, nil
}

// lockPoint sets object-lock retention on a point's artifacts (before its
// manifest is written, so a complete point is always locked) or on its
// manifest. validity.json stays unlocked: it is replaced when a point is
// validated. A bucket without object lock is an error when a lock was
// asked for: the plan relies on it.
func (s *Store) lockPoint(plan, id string, m *Manifest, manifest bool) error {
	if s.lockFor <= 0 {
		return nil
	}
	until := m.Ended.Add(s.lockFor)
	if until.Before(time.Now()) {
		return nil
	}
	ctx, cancel := metaCtx()
	defer cancel()
	keys := []string{manifestKey(plan, id)}
	if !manifest {
		keys = keys[:0]
		for _, g := range m.Groups {
			for _, a := range g.Artifacts {
				keys = append(keys, artifactKey(plan, id, a.Name))
			}
		}
	}
	for _, k := range keys {
		ok, err := s.objects.Lock(ctx, k, until)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("storage.store.s3.lockDays: %s does not support object lock (make the bucket with object lock enabled, or drop lockDays)", s.Root)
		}
	}
	return nil
}

func (s *Store) objLoad(plan, id string) (*Manifest, error) {
	data, err := s.getMeta(manifestKey(plan, id))
	if errors.Is(err, blob.ErrNotExist) {
		return nil, fmt.Errorf("point %s of plan %s: %w", id, plan, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", id, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("point %s: %s: %w", id, manifestKey(plan, id), err)
	}
	if m.ID != id || m.Plan != plan {
		return nil, fmt.Errorf("point %s: %w: the manifest is of point %s of plan %s", id, ErrCorrupt, m.ID, m.Plan)
	}
	return m, nil
}

func (s *Store) objValidity(plan, id string) (Validity, error) {
	data, err := s.getMeta(validityKey(plan, id))
	if errors.Is(err, blob.ErrNotExist) {
		return Validity{State: Unverified}, nil
	}
	if err != nil {
		return Validity{State: Unverified}, fmt.Errorf("point %s: %w", id, err)
	}
	v, err := ParseValidity(data)
	if err != nil {
		return Validity{State: Unverified}, fmt.Errorf("point %s: %w", id, err)
	}
	return v, nil
}

// objPointIDs lists the plans and point ids that have a manifest.
func (s *Store) objPointIDs(plan string) (map[string][]string, error) {
	ctx, cancel := metaCtx()
	defer cancel()
	prefix := ""
	if plan != "" {
		prefix = plan + "/"
	}
	objs, err := s.objects.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list store %s: %w", s.Root, err)
	}
	out := map[string][]string{}
	for _, o := range objs {
		parts := strings.Split(o.Key, "/")
		if len(parts) != 4 || parts[1] != pointsDir || parts[3] != ManifestFile {
			continue
		}
		if CheckName("plan", parts[0]) != nil || CheckName("point", parts[2]) != nil {
			continue
		}
		out[parts[0]] = append(out[parts[0]], parts[2])
	}
	return out, nil
}

func (s *Store) objList(plan string) ([]Point, error) {
	ids, err := s.objPointIDs(plan)
	if err != nil {
		return nil, err
	}
	plans := make([]string, 0, len(ids))
	for pl := range ids {
		plans = append(plans, pl)
	}
	sort.Strings(plans)
	var out []Point
	for _, pl := range plans {
		for _, id := range ids[pl] {
			p, ok := s.pointSummary(pl, id)
			if !ok {
				continue
			}
			p.Dir = strings.TrimSuffix(s.Root, "/") + "/" + pointKey(pl, id)
			out = append(out, p)
		}
	}
	return out, nil
}

// objDelete deletes the manifest first, so the point disappears in one
// step as the folder layout's rename makes it, then its other objects.
// Object lock refuses the manifest's deletion before anything is gone.
func (s *Store) objDelete(plan, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*metaTimeout)
	defer cancel()
	if err := s.objects.Delete(ctx, manifestKey(plan, id)); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	objs, err := s.objects.List(ctx, pointKey(plan, id)+"/")
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	for _, o := range objs {
		if err := s.objects.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	return nil
}

// objCollectGarbage removes staged groups and manifest-less points of the
// store that are not active and untouched for grace, and the local staging
// folders of such points.
func (s *Store) objCollectGarbage(plan string, active []string, grace time.Duration) ([]string, error) {
	keep := map[string]bool{}
	for _, id := range active {
		keep[id] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*metaTimeout)
	defer cancel()
	objs, err := s.objects.List(ctx, plan+"/")
	if err != nil {
		return nil, fmt.Errorf("collect garbage in %s: %w", s.Root, err)
	}
	type set struct {
		keys   []string
		newest time.Time
		done   bool
	}
	sets := map[string]*set{}
	for _, o := range objs {
		parts := strings.Split(o.Key, "/")
		if len(parts) < 3 || (parts[1] != pointsDir && parts[1] != stagingDir) || keep[parts[2]] {
			continue
		}
		k := parts[1] + "/" + parts[2]
		st := sets[k]
		if st == nil {
			st = &set{}
			sets[k] = st
		}
		st.keys = append(st.keys, o.Key)
		if o.Modified.After(st.newest) {
			st.newest = o.Modified
		}
		if parts[1] == pointsDir && len(parts) == 4 && parts[3] == ManifestFile {
			st.done = true
		}
	}
	now := time.Now()
	var removed []string
	names := make([]string, 0, len(sets))
	for k := range sets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		st := sets[k]
		if st.done || now.Sub(st.newest) < grace {
			continue
		}
		for _, key := range st.keys {
			if err := s.objects.Delete(ctx, key); err != nil {
				return removed, fmt.Errorf("collect garbage: %w", err)
			}
		}
		removed = append(removed, s.Root+"/"+plan+"/"+k)
	}
	// Uploads a killed worker left unfinished hold storage in the bucket
	// until aborted.
	if up, ok := s.objects.(pendingUploads); ok {
		pending, err := up.PendingUploads(ctx, plan+"/"+pointsDir+"/")
		if err != nil {
			return removed, fmt.Errorf("collect garbage in %s: %w", s.Root, err)
		}
		for _, p := range pending {
			parts := strings.Split(p.Key, "/")
			if len(parts) < 3 || keep[parts[2]] || now.Sub(p.Initiated) < grace {
				continue
			}
			if err := up.AbortUploads(ctx, p.Key); err != nil {
				return removed, fmt.Errorf("collect garbage: %w", err)
			}
			removed = append(removed, s.Root+"/"+p.Key+" (unfinished upload)")
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.staging, plan))
	if err == nil {
		for _, e := range ents {
			dir := filepath.Join(s.staging, plan, e.Name())
			if keep[e.Name()] || now.Sub(newestChange(dir)) < grace {
				continue
			}
			if err := os.RemoveAll(dir); err == nil {
				removed = append(removed, dir)
			}
		}
	}
	return removed, nil
}

// pendingUploads is what an S3 bucket adds for garbage collection.
type pendingUploads interface {
	PendingUploads(ctx context.Context, prefix string) ([]blob.Pending, error)
	AbortUploads(ctx context.Context, key string) error
}

func (s *Store) objCheckWritable(plan string) error {
	if err := s.mkdir(filepath.Join(s.staging, plan)); err != nil {
		return fmt.Errorf("staging %s is not writable: %w", s.staging, StoreError(err))
	}
	key := path.Join(plan, ".write-probe")
	ctx, cancel := metaCtx()
	defer cancel()
	if err := s.objects.Put(ctx, key, strings.NewReader("drover\n"), 7); err != nil {
		return fmt.Errorf("store %s is not writable: %w", s.Root, err)
	}
	return s.objects.Delete(ctx, key)
}
