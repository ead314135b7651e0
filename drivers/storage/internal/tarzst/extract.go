package tarzst

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers/storage"
)

// ExtractOptions tune ExtractMember.
type ExtractOptions struct {
	// Workers decompress frames in parallel; GOMAXPROCS when 0.
	Workers int
	// Progress receives archive bytes read so far (deltas).
	Progress func(delta int64)
	// Name is how errors name the archive (its path in the store).
	Name string
}

// ExtractResult is what ExtractMember wrote.
type ExtractResult struct {
	Files     int64
	DataBytes int64
}

// ExtractMember extracts the archive at src into dstDir (an existing
// folder), checking every file against the member's manifest and the whole
// archive against its artifact entry, then removes the member's deleted
// paths. Damage is reported as a *storage.CorruptError naming the archive
// (and the file inside it); dstDir then holds a partial extraction that the
// caller must discard.
func ExtractMember(ctx context.Context, src string, art catalog.Artifact, mem catalog.Member, dstDir string, opts ExtractOptions) (ExtractResult, error) {
	var res ExtractResult
	corrupt := opts.prepare(src)
	want := make(map[string]*catalog.File, len(mem.Files))
	for i := range mem.Files {
		want[mem.Files[i].Path] = &mem.Files[i]
	}
	root, err := os.OpenRoot(dstDir)
	if err != nil {
		return res, fmt.Errorf("restore into %s: %w", dstDir, err)
	}
	defer root.Close()
	err = decodeArtifact(ctx, src, art, opts, corrupt, func(ctx context.Context, stream *frameStream) error {
		var err error
		res, err = untar(ctx, stream, root, want, corrupt)
		if err != nil {
			return err
		}
		// Read to the end so the whole archive is hashed.
		if _, err := io.Copy(io.Discard, stream); err != nil {
			return corrupt("%v", err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for p := range want {
		if want[p] != nil {
			return res, corrupt("%s is in the manifest but not in the archive", p)
		}
	}
	for _, d := range mem.Deleted {
		// A parent that became a file (or went away) took d with it.
		if err := root.RemoveAll(d); err != nil && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("remove %s (deleted since the base point): %w", d, err)
		}
	}
	return res, nil
}

var decoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		panic(err) // fixed, valid options
	}
	return d
}}

// readFrames reads the archive, hashing it, and feeds the decompressed tar
// stream into stream in order: frames in parallel when the manifest lists
// them, one sequential stream otherwise.
func readFrames(ctx context.Context, f *os.File, art catalog.Artifact, workers int, stream *frameStream, progress func(int64)) (uint64, int64, error) {
	h := catalog.NewHash()
	if len(art.Frames) == 0 {
		cr := &countReader{r: io.TeeReader(f, h), progress: progress}
		dec, err := zstd.NewReader(cr, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return 0, 0, err
		}
		defer dec.Close()
		for {
			buf := make([]byte, 1<<20)
			n, err := io.ReadFull(dec, buf)
			if n > 0 {
				if !stream.push(buf[:n]) {
					return 0, 0, ctx.Err()
				}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				return 0, 0, err
			}
		}
		_, _ = io.Copy(io.Discard, cr)
		return h.Sum64(), cr.n, nil
	}

	type djob struct {
		in, out []byte
		err     error
		done    chan struct{}
	}
	work := make(chan *djob, workers)
	order := make(chan *djob, 2*workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec := decoders.Get().(*zstd.Decoder)
			defer decoders.Put(dec)
			for j := range work {
				j.out, j.err = dec.DecodeAll(j.in, getBuf(DefaultChunkSize)[:0])
				putBuf(j.in)
				j.in = nil
				close(j.done)
			}
		}()
	}
	var read int64
	var ferr error
	go func() {
		defer close(order)
		defer close(work)
		for i, size := range art.Frames {
			buf := getBuf(int(size))
			n, err := io.ReadFull(f, buf)
			read += int64(n)
			_, _ = h.Write(buf[:n])
			if progress != nil {
				progress(int64(n))
			}
			if err != nil {
				ferr = fmt.Errorf("frame %d: %w (truncated?)", i, err)
				return
			}
			j := &djob{in: buf, done: make(chan struct{})}
			select {
			case order <- j:
			case <-ctx.Done():
				return
			}
			select {
			case work <- j:
			case <-ctx.Done():
				return
			}
		}
		// Anything after the last frame is damage too; hash it so the
		// checksum check catches it.
		n, _ := io.Copy(h, f)
		read += n
	}()
	var derr error
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			derr = ctx.Err()
		}
		if derr != nil {
			break
		}
		if j.err != nil {
			derr = fmt.Errorf("decompress: %w", j.err)
			break
		}
		if !stream.push(j.out) {
			derr = ctx.Err()
			break
		}
	}
	for range order { // let the reader goroutine finish
	}
	wg.Wait()
	if derr != nil {
		return 0, read, derr
	}
	if ferr != nil {
		return 0, read, ferr
	}
	return h.Sum64(), read, nil
}

type countReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(int64(n))
	}
	return n, err
}

// frameStream hands decompressed chunks from the frame reader to the tar
// reader, in order, as an io.Reader.
type frameStream struct {
	ctx   context.Context
	ch    chan []byte
	cur   []byte
	full  []byte // the buffer cur points into
	mu    sync.Mutex
	err   error
	done  chan struct{}
	quit  chan struct{}
	quitO sync.Once
}

func newFrameStream(ctx context.Context) *frameStream {
	return &frameStream{ctx: ctx, ch: make(chan []byte, 4), done: make(chan struct{}), quit: make(chan struct{})}
}

// push hands a chunk on; false when the reader side gave up.
func (s *frameStream) push(b []byte) bool {
	select {
	case s.ch <- b:
		return true
	case <-s.quit:
		return false
	case <-s.ctx.Done():
		return false
	}
}

// finish closes the stream with err (nil for a clean end).
func (s *frameStream) finish(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.ch)
}

// abandon tells the writer side nobody reads any more.
func (s *frameStream) abandon() { s.quitO.Do(func() { close(s.quit) }) }

func (s *frameStream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		b, ok := <-s.ch
		if !ok {
			s.mu.Lock()
			err := s.err
			s.mu.Unlock()
			if err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		s.cur = b
		s.full = b
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	if len(s.cur) == 0 && s.full != nil {
		putBuf(s.full) // read to the end: the buffer can be reused
		s.full = nil
	}
	return n, nil
}

type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

// untar writes the tar stream into root, checking each file against want
// and setting each found entry of want to nil.
func untar(ctx context.Context, r io.Reader, root *os.Root, want map[string]*catalog.File, corrupt func(string, ...any) error) (ExtractResult, error) {
	var res ExtractResult
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	chown := os.Geteuid() == 0
	var dirs []dirMeta
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, corrupt("tar: %v", err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if err := catalog.CheckRelPath(name); err != nil {
			return res, corrupt("tar entry: %v", err)
		}
		wf, ok := want[name]
		if !ok {
			return res, corrupt("%s is in the archive but not in the manifest", name)
		}
		if wf == nil {
			return res, corrupt("%s is twice in the archive", name)
		}
		want[name] = nil
		mtime := time.Unix(0, wf.MTime)
		if dir := path.Dir(name); dir != "." {
			if err := root.MkdirAll(dir, 0o750); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if wf.Type != catalog.TypeDir {
				return res, corrupt("%s is a folder in the archive, not in the manifest", name)
			}
			if st, err := root.Lstat(name); err == nil && !st.IsDir() {
				if err := root.RemoveAll(name); err != nil {
					return res, fmt.Errorf("restore %s: %w", name, err)
				}
			}
			if err := root.Mkdir(name, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
			dirs = append(dirs, dirMeta{name: name, mode: fs.FileMode(wf.Mode), mtime: mtime})
		case tar.TypeSymlink:
			if wf.Type != catalog.TypeSymlink || wf.Link != hdr.Linkname {
				return res, corrupt("symlink %s does not match the manifest", name)
			}
			if err := root.RemoveAll(name); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
		case tar.TypeReg:
			if wf.Type != catalog.TypeFile || wf.Size != hdr.Size {
				return res, corrupt("%s: %d bytes in the archive, the manifest says %d", name, hdr.Size, wf.Size)
			}
			if st, err := root.Lstat(name); err == nil && !st.Mode().IsRegular() {
				if err := root.RemoveAll(name); err != nil {
					return res, fmt.Errorf("restore %s: %w", name, err)
				}
			}
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
			h := catalog.NewHash()
			kw := &writebackWriter{f: out}
			n, err := io.CopyBuffer(io.MultiWriter(kw, h), tr, buf)
			kw.kick()
			cerr := out.Close()
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					return res, fmt.Errorf("restore %s: %w", name, err)
				}
				return res, corrupt("%s: %v", name, err)
			}
			if cerr != nil {
				return res, fmt.Errorf("restore %s: %w", name, cerr)
			}
			if got := catalog.FormatChecksum(h.Sum64()); got != wf.Checksum {
				return res, corrupt("%s: checksum %s, the manifest says %s", name, got, wf.Checksum)
			}
			if err := root.Chmod(name, fs.FileMode(wf.Mode)); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
			if err := root.Chtimes(name, mtime, mtime); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
			res.DataBytes += n
		default:
			return res, corrupt("%s: unexpected tar entry type %q", name, hdr.Typeflag)
		}
		if chown {
			if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
				return res, fmt.Errorf("restore %s: %w", name, err)
			}
		}
		res.Files++
	}
	// Folders last, deepest first: writing into them changed their mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if err := root.Chmod(d.name, d.mode); err != nil {
			return res, fmt.Errorf("restore %s: %w", d.name, err)
		}
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return res, fmt.Errorf("restore %s: %w", d.name, err)
		}
	}
	return res, nil
}

// DecompressStream writes the decompressed content of a stored stream to w,
// checking the artifact's size and checksum. The check completes only at
// the end: a consumer of w must treat what it got as unconfirmed until
// DecompressStream returns nil. Damage is a *storage.CorruptError.
func DecompressStream(ctx context.Context, src string, art catalog.Artifact, w io.Writer, opts ExtractOptions) (int64, error) {
	corrupt := opts.prepare(src)
	var written int64
	err := decodeArtifact(ctx, src, art, opts, corrupt, func(ctx context.Context, stream *frameStream) error {
		var err error
		written, err = io.Copy(writeTagger{w}, stream)
		var we writeError
		if err != nil && !errors.As(err, &we) {
			return corrupt("%v", err)
		}
		return err
	})
	return written, err
}

// prepare fills in the options' defaults and returns how damage to the
// archive at src is reported.
func (o *ExtractOptions) prepare(src string) func(format string, args ...any) error {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Name == "" {
		o.Name = src
	}
	name := o.Name
	return func(format string, args ...any) error {
		return &storage.CorruptError{File: name, Reason: fmt.Sprintf(format, args...)}
	}
}

// decodeArtifact reads the archive at src and decompresses its frames on
// every core into a stream that consume reads (from another goroutine),
// then checks the archive's size and checksum against art: what consume
// got is confirmed only when decodeArtifact returns nil. Damage is reported
// through corrupt.
func decodeArtifact(ctx context.Context, src string, art catalog.Artifact, opts ExtractOptions, corrupt func(string, ...any) error,
	consume func(context.Context, *frameStream) error) error {
	f, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return corrupt("missing")
		}
		return fmt.Errorf("open %s: %w", opts.Name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() != art.Size {
		return corrupt("%d bytes, the manifest says %d (truncated or overwritten)", st.Size(), art.Size)
	}
	g, gctx := errgroup.WithContext(ctx)
	stream := newFrameStream(gctx)
	var sum uint64
	var read int64
	g.Go(func() error {
		var err error
		sum, read, err = readFrames(gctx, f, art, opts.Workers, stream, opts.Progress)
		stream.finish(err)
		if err != nil {
			return corrupt("%v", err)
		}
		return nil
	})
	g.Go(func() error {
		defer stream.abandon()
		return consume(gctx, stream)
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if read != art.Size {
		return corrupt("read %d bytes, the manifest says %d", read, art.Size)
	}
	if got := catalog.FormatChecksum(sum); got != art.Checksum {
		return corrupt("checksum %s, the manifest says %s", got, art.Checksum)
	}
	return nil
}

// writeError marks an error of the consumer, as opposed to damage in the
// stream being read.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

type writeTagger struct{ w io.Writer }

func (t writeTagger) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = writeError{err}
	}
	return n, err
}

// writebackWriter starts the kernel's writeback of what it wrote every few
// megabytes, so the single sync at the end of a restore waits for the tail
// only instead of the whole restore.
type writebackWriter struct {
	f       *os.File
	off     int64
	started int64
}

const writebackEvery = 8 << 20

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.started >= writebackEvery {
		w.kick()
	}
	return n, err
}

func (w *writebackWriter) kick() {
	if w.off > w.started {
		startWriteback(w.f, w.started, w.off-w.started)
		w.started = w.off
	}
}

// bufPool recycles frame and chunk buffers on restore: at hundreds of MB/s,
// fresh 2 MiB buffers for every frame cost more in clearing and garbage
// collection than the copy they hold.
var bufPool sync.Pool

func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n, max(n, DefaultChunkSize+DefaultChunkSize/8))
}

func putBuf(b []byte) {
	if cap(b) >= DefaultChunkSize {
		bufPool.Put(&b)
	}
}
