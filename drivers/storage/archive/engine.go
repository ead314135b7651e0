package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/drover-dr/drover/catalog"
)

// The archive of a member is a tar stream cut into chunks, each compressed
// as an independent zstd frame, the frames concatenated. That is a valid
// .tar.zst (zstd -d | tar -x reads it), and it lets every core compress (and
// on restore decompress) its own chunk: one goroutine walks and reads the
// files straight into chunk buffers, hashing them as they go, workers
// compress, one goroutine writes the frames in order and hashes them.

// DefaultChunkSize is the tar bytes per chunk (one or a few zstd frames):
// big enough that the ratio is close to one long stream, small enough to
// keep every core busy and the encoder's history in cache.
const DefaultChunkSize = 2 << 20

// Compare says how a cumulative capture decides a file changed.
type Compare string

const (
	// CompareMtime: a file changed when its size or modification time
	// differs from the base full point's manifest (cheap: stat only).
	CompareMtime Compare = "mtime"
	// CompareChecksum: a file changed when its checksum differs (reads
	// every file; catches changes that kept size and mtime).
	CompareChecksum Compare = "checksum"
)

// WriteOptions tune WriteMember.
type WriteOptions struct {
	// Workers compress in parallel; GOMAXPROCS when 0.
	Workers int
	// ChunkSize is the tar bytes per frame; DefaultChunkSize when 0.
	ChunkSize int
	// Base is the member in the base full point: only files that changed
	// since are written, and files gone since are listed as deleted.
	Base *catalog.Member
	// Compare is how changes are found against Base (default mtime).
	Compare Compare
	// Progress receives source bytes read so far. It must be safe to call
	// from several goroutines when members are written in parallel.
	Progress func(delta int64)
}

// MemberResult is what WriteMember wrote.
type MemberResult struct {
	Member    catalog.Member
	Artifact  catalog.Artifact
	DataBytes int64
	Warnings  []string
}

const maxWarnings = 50

// entry is one file system object to archive.
type entry struct {
	rel  string
	abs  string
	info fs.FileInfo
	link string
}

// WriteMember archives srcDir into dst (a .tar.zst file), written under a
// temporary name, fsynced and renamed. artifactName is the name recorded in
// the manifest (relative to the point folder).
func WriteMember(ctx context.Context, name, srcDir, dst, artifactName string, opts WriteOptions) (MemberResult, error) {
	res := MemberResult{Member: catalog.Member{Name: name, Artifact: artifactName}}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Compare == "" {
		opts.Compare = CompareMtime
	}
	st, err := os.Stat(srcDir)
	if err != nil {
		return res, fmt.Errorf("member %s: %w", name, err)
	}
	if !st.IsDir() {
		return res, fmt.Errorf("member %s: %s is not a directory", name, srcDir)
	}
	res.Member.Mode = uint32(st.Mode().Perm())
	res.Member.MTime = st.ModTime().UnixNano()
	entries, warns, err := walk(ctx, srcDir)
	if err != nil {
		return res, fmt.Errorf("member %s: %w", name, err)
	}
	res.Warnings = append(res.Warnings, warns...)
	if opts.Base != nil {
		entries, res.Member.Deleted, err = changedSince(ctx, entries, opts.Base, opts.Compare)
		if err != nil {
			return res, fmt.Errorf("member %s: %w", name, err)
		}
	}

	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return res, fmt.Errorf("member %s: %w", name, catalog.StoreError(err))
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()

	p := &pipeline{chunk: opts.ChunkSize, workers: opts.Workers}
	var files []catalog.File
	var dataBytes int64
	var art catalog.Artifact
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *job, opts.Workers)
	order := make(chan *job, 2*opts.Workers)
	g.Go(func() error {
		defer close(work)
		defer close(order)
		cw := &chunkWriter{p: p, ctx: gctx, work: work, order: order}
		var err error
		files, dataBytes, err = produce(gctx, cw, entries, opts.Progress, &res.Warnings)
		return err
	})
	for i := 0; i < opts.Workers; i++ {
		g.Go(func() error { return p.compress(work) })
	}
	g.Go(func() error {
		var err error
		art, err = p.write(gctx, order, out)
		return err
	})
	if err := g.Wait(); err != nil {
		return res, fmt.Errorf("member %s: %w", name, catalog.StoreError(err))
	}
	if err := out.Sync(); err != nil {
		return res, fmt.Errorf("member %s: sync %s: %w", name, tmp, catalog.StoreError(err))
	}
	if err := out.Close(); err != nil {
		return res, fmt.Errorf("member %s: close %s: %w", name, tmp, catalog.StoreError(err))
	}
	if err := os.Rename(tmp, dst); err != nil {
		return res, fmt.Errorf("member %s: %w", name, err)
	}
	ok = true
	art.Name = artifactName
	res.Artifact = art
	res.Member.Files = files
	res.DataBytes = dataBytes
	if len(res.Warnings) > maxWarnings {
		n := len(res.Warnings) - maxWarnings
		res.Warnings = append(res.Warnings[:maxWarnings], fmt.Sprintf("member %s: %d more warnings", name, n))
	}
	return res, nil
}

// walk lists srcDir in lexical order, without srcDir itself.
func walk(ctx context.Context, srcDir string) ([]entry, []string, error) {
	var out []entry
	var warns []string
	err := filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == srcDir {
			return nil
		}
		if len(out)%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(srcDir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: filepath.ToSlash(rel), abs: path, info: info}
		switch {
		case info.Mode().IsRegular(), info.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(path); err != nil {
				return err
			}
		default:
			warns = append(warns, fmt.Sprintf("skipped %s: a %s is not archived", e.rel, typeName(info.Mode())))
			return nil
		}
		out = append(out, e)
		return nil
	})
	return out, warns, err
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

func fileType(info fs.FileInfo) string {
	switch {
	case info.IsDir():
		return catalog.TypeDir
	case info.Mode()&fs.ModeSymlink != 0:
		return catalog.TypeSymlink
	}
	return catalog.TypeFile
}

// changedSince keeps the entries that differ from base and lists the base's
// paths that are gone.
func changedSince(ctx context.Context, entries []entry, base *catalog.Member, cmp Compare) ([]entry, []string, error) {
	old := make(map[string]*catalog.File, len(base.Files))
	for i := range base.Files {
		old[base.Files[i].Path] = &base.Files[i]
	}
	present := make(map[string]bool, len(entries))
	var out []entry
	for i, e := range entries {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		present[e.rel] = true
		f, ok := old[e.rel]
		if !ok || f.Type != fileType(e.info) || f.Mode != uint32(e.info.Mode().Perm()) || f.Size != sizeOf(e.info) ||
			f.Link != e.link || (f.Type != catalog.TypeDir && f.MTime != e.info.ModTime().UnixNano()) {
			out = append(out, e)
			continue
		}
		if cmp == CompareChecksum && f.Type == catalog.TypeFile {
			sum, err := fileChecksum(e.abs)
			if err != nil {
				return nil, nil, err
			}
			if sum != f.Checksum {
				out = append(out, e)
			}
		}
	}
	var deleted []string
	for _, f := range base.Files {
		if !present[f.Path] {
			deleted = append(deleted, f.Path)
		}
	}
	sort.Strings(deleted)
	return out, deleted, nil
}

func sizeOf(info fs.FileInfo) int64 {
	if info.Mode().IsRegular() {
		return info.Size()
	}
	return 0
}

func fileChecksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := catalog.NewHash()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return catalog.FormatChecksum(h.Sum64()), nil
}

// pipeline holds the buffers and encoders shared by one member's goroutines.
type pipeline struct {
	chunk   int
	workers int
	inPool  sync.Pool
	outPool sync.Pool
}

type job struct {
	in   []byte
	out  []byte
	done chan struct{}
}

func (p *pipeline) getIn() []byte {
	if b, ok := p.inPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.chunk)
}

func (p *pipeline) putIn(b []byte) { p.inPool.Put(&b) }

var encoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false))
	if err != nil {
		panic(err) // fixed, valid options
	}
	return e
}}

func (p *pipeline) compress(work <-chan *job) error {
	enc := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(enc)
	for j := range work {
		var dst []byte
		if b, ok := p.outPool.Get().(*[]byte); ok {
			dst = (*b)[:0]
		} else {
			dst = make([]byte, 0, enc.MaxEncodedSize(p.chunk))
		}
		j.out = encodeChunk(enc, j.in, dst)
		p.putIn(j.in)
		j.in = nil
		close(j.done)
	}
	return nil
}

// segSize is the unit encodeChunk classifies: zstd's largest block.
const segSize = 128 << 10

// encodeChunk appends the chunk to dst as zstd frames: runs of segments
// that look incompressible (random, already compressed) become raw frames
// at memory speed, the rest goes through the encoder. zstd itself stores
// such blocks raw too, but only after trying to compress them.
func encodeChunk(enc *zstd.Encoder, in, dst []byte) []byte {
	start := 0
	for start < len(in) {
		end := min(start+segSize, len(in))
		raw := incompressible(in[start:end])
		for end < len(in) {
			next := min(end+segSize, len(in))
			if incompressible(in[end:next]) != raw {
				break
			}
			end = next
		}
		if raw {
			dst = appendRawFrame(dst, in[start:end])
		} else {
			dst = enc.EncodeAll(in[start:end], dst)
		}
		start = end
	}
	return dst
}

// incompressible estimates the byte entropy of a segment from 64-byte
// samples every 2 KiB: random or compressed data is close to 8 bits a
// byte, text and most binary data well below.
func incompressible(seg []byte) bool {
	if len(seg) < 16<<10 {
		return false
	}
	var hist [256]uint32
	n := 0
	for off := 0; off+64 <= len(seg); off += 2048 {
		for _, c := range seg[off : off+64] {
			hist[c]++
		}
		n += 64
	}
	h := 0.0
	for _, c := range hist {
		if c > 0 {
			p := float64(c) / float64(n)
			h -= p * math.Log2(p)
		}
	}
	return h > 7.6
}

// appendRawFrame appends data as one zstd frame of raw (stored) blocks.
func appendRawFrame(dst, data []byte) []byte {
	// Magic number, then a frame header: single segment, 4-byte content
	// size, no checksum, no dictionary (RFC 8878, 3.1.1).
	dst = append(dst, 0x28, 0xB5, 0x2F, 0xFD, 0xA0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	for {
		n := min(len(data), segSize)
		last := uint32(0)
		if n == len(data) {
			last = 1
		}
		hdr := uint32(n)<<3 | last // block type 0: raw
		dst = append(dst, byte(hdr), byte(hdr>>8), byte(hdr>>16))
		dst = append(dst, data[:n]...)
		data = data[n:]
		if last == 1 {
			return dst
		}
	}
}

// startWriteback asks the kernel to start writing a range just written to
// disk, so the fsync at the end waits for the last few megabytes only,
// not the whole archive: writeback overlaps compression. Where it is not
// supported (NFS, other systems) the fsync simply does all the work.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// write writes frames in order and hashes them.
func (p *pipeline) write(ctx context.Context, order <-chan *job, out *os.File) (catalog.Artifact, error) {
	var art catalog.Artifact
	var kicked int64
	h := catalog.NewHash()
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return art, ctx.Err()
		}
		if _, err := out.Write(j.out); err != nil {
			return art, err
		}
		if art.Size+int64(len(j.out))-kicked >= writebackEvery {
			startWriteback(out, kicked, art.Size+int64(len(j.out))-kicked)
			kicked = art.Size + int64(len(j.out))
		}
		_, _ = h.Write(j.out)
		art.Size += int64(len(j.out))
		art.Frames = append(art.Frames, int64(len(j.out)))
		b := j.out
		p.outPool.Put(&b)
	}
	if err := ctx.Err(); err != nil {
		return art, err
	}
	art.Checksum = catalog.FormatChecksum(h.Sum64())
	return art, nil
}

// chunkWriter cuts the tar stream into chunks and hands full ones on.
type chunkWriter struct {
	p     *pipeline
	ctx   context.Context
	work  chan<- *job
	order chan<- *job
	buf   []byte
}

func (c *chunkWriter) room() []byte {
	if c.buf == nil {
		c.buf = c.p.getIn()
	}
	return c.buf[len(c.buf):cap(c.buf)]
}

func (c *chunkWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		r := c.room()
		k := copy(r, b)
		c.buf = c.buf[:len(c.buf)+k]
		b = b[k:]
		n += k
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// grew records that k bytes were read straight into room().
func (c *chunkWriter) grew(k int) error {
	c.buf = c.buf[:len(c.buf)+k]
	if len(c.buf) == cap(c.buf) {
		return c.flush()
	}
	return nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	j := &job{in: c.buf, done: make(chan struct{})}
	c.buf = nil
	select {
	case c.order <- j:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	select {
	case c.work <- j:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	return nil
}

// produce writes the tar stream of entries into cw and returns the files
// with their checksums.
func produce(ctx context.Context, cw *chunkWriter, entries []entry, progress func(int64), warns *[]string) ([]catalog.File, int64, error) {
	files := make([]catalog.File, 0, len(entries))
	var hb bytes.Buffer
	var total int64
	h := catalog.NewHash()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		f := catalog.File{Path: e.rel, Type: fileType(e.info), Mode: uint32(e.info.Mode().Perm()),
			MTime: e.info.ModTime().UnixNano(), Link: e.link}
		hdr := &tar.Header{Name: e.rel, Mode: int64(e.info.Mode().Perm()), ModTime: e.info.ModTime().Truncate(time.Second)}
		if st, ok := e.info.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		switch f.Type {
		case catalog.TypeDir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case catalog.TypeSymlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.info.Size()
			f.Size = hdr.Size
		}
		// A throwaway tar.Writer renders the header (with PAX records
		// for long names); the content goes straight from the file into
		// the chunk, with no copy through tar.Writer.
		hb.Reset()
		if err := tar.NewWriter(&hb).WriteHeader(hdr); err != nil {
			return nil, 0, fmt.Errorf("tar header of %s: %w", e.rel, err)
		}
		if _, err := cw.Write(hb.Bytes()); err != nil {
			return nil, 0, err
		}
		if f.Type == catalog.TypeFile {
			h.Reset()
			if err := copyFile(ctx, cw, e, hdr.Size, h, progress, warns); err != nil {
				return nil, 0, err
			}
			f.Checksum = catalog.FormatChecksum(h.Sum64())
			total += hdr.Size
			if pad := (512 - hdr.Size%512) % 512; pad > 0 {
				if _, err := cw.Write(zeros[:pad]); err != nil {
					return nil, 0, err
				}
			}
		}
		files = append(files, f)
	}
	if _, err := cw.Write(zeros[:1024]); err != nil { // end of archive
		return nil, 0, err
	}
	if err := cw.flush(); err != nil {
		return nil, 0, err
	}
	return files, total, nil
}

var zeros = make([]byte, 1024)

// copyFile reads exactly size bytes of a file into the chunk stream. A file
// that shrank while read is padded with zeros (the tar header is already
// written) and reported; the checksum is of what was archived.
func copyFile(ctx context.Context, cw *chunkWriter, e entry, size int64, h hash.Hash64, progress func(int64), warns *[]string) error {
	fh, err := os.Open(e.abs)
	if err != nil {
		return fmt.Errorf("open %s: %w", e.abs, err)
	}
	defer fh.Close()
	left := size
	for left > 0 {
		r := cw.room()
		if int64(len(r)) > left {
			r = r[:left]
		}
		k, err := fh.Read(r)
		if k > 0 {
			_, _ = h.Write(r[:k])
			left -= int64(k)
			if progress != nil {
				progress(int64(k))
			}
			if gerr := cw.grew(k); gerr != nil {
				return gerr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", e.abs, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if left > 0 {
		*warns = append(*warns, fmt.Sprintf("%s shrank by %d bytes while being read (padded with zeros): capture it quiesced", e.rel, left))
		for left > 0 {
			n := int64(len(zeros))
			if n > left {
				n = left
			}
			_, _ = h.Write(zeros[:n])
			if _, err := cw.Write(zeros[:n]); err != nil {
				return err
			}
			left -= n
		}
		return nil
	}
	if st, err := fh.Stat(); err == nil && (st.Size() != size || !st.ModTime().Equal(e.info.ModTime())) {
		*warns = append(*warns, fmt.Sprintf("%s changed while being read: capture it quiesced", e.rel))
	}
	return nil
}

// CompressStream compresses everything r yields into dst (temporary name,
// fsync, rename) as independent zstd frames, on every core, and returns the
// artifact entry (named artifactName). It is how streams that are not tar
// (a btrfs send stream) are stored.
func CompressStream(ctx context.Context, r io.Reader, dst, artifactName string, opts WriteOptions) (catalog.Artifact, int64, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return catalog.Artifact{}, 0, catalog.StoreError(err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(tmp)
		}
	}()
	p := &pipeline{chunk: opts.ChunkSize, workers: opts.Workers}
	var art catalog.Artifact
	var total int64
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *job, opts.Workers)
	order := make(chan *job, 2*opts.Workers)
	g.Go(func() error {
		defer close(work)
		defer close(order)
		cw := &chunkWriter{p: p, ctx: gctx, work: work, order: order}
		for {
			if err := gctx.Err(); err != nil {
				return err
			}
			room := cw.room()
			n, err := r.Read(room)
			if n > 0 {
				total += int64(n)
				if opts.Progress != nil {
					opts.Progress(int64(n))
				}
				if gerr := cw.grew(n); gerr != nil {
					return gerr
				}
			}
			if err == io.EOF {
				return cw.flush()
			}
			if err != nil {
				return err
			}
		}
	})
	for i := 0; i < opts.Workers; i++ {
		g.Go(func() error { return p.compress(work) })
	}
	g.Go(func() error {
		var err error
		art, err = p.write(gctx, order, out)
		return err
	})
	if err := g.Wait(); err != nil {
		return art, total, catalog.StoreError(err)
	}
	if err := out.Sync(); err != nil {
		return art, total, catalog.StoreError(err)
	}
	if err := out.Close(); err != nil {
		return art, total, catalog.StoreError(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return art, total, err
	}
	ok = true
	art.Name = artifactName
	return art, total, nil
}
