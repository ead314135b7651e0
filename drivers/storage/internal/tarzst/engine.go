// Package tarzst is the tar+zstd engine the storage drivers that write
// member archives share (archive, lvm on its snapshot mount, btrfs for its
// send streams): a member's tree as a tar stream cut into independent zstd
// frames compressed on every core, with a checksum of every file and of every
// archive, and the extraction that checks them all before anything is moved
// into place.
package tarzst

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

	// compressors, when set, compress this archive's chunks together with
	// those of the other members of a group (Workers is then unused).
	compressors *compressors
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

	comp := opts.compressors
	if comp == nil {
		comp = startCompressors(opts.Workers)
		defer comp.stop()
	}
	var files []catalog.File
	var dataBytes int64
	art, err := writeArchive(ctx, dst, opts.ChunkSize, comp, func(ctx context.Context, cw *chunkWriter) error {
		var err error
		files, dataBytes, err = produce(ctx, cw, entries, opts.Progress, &res.Warnings)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("member %s: %w", name, catalog.StoreError(err))
	}
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

// pipeline holds the buffers of one archive's goroutines.
type pipeline struct {
	chunk   int
	inPool  *sync.Pool
	outPool *sync.Pool
}

func newPipeline(chunk int) *pipeline {
	return &pipeline{chunk: chunk, inPool: chunkPool(&inPools, chunk), outPool: chunkPool(&outPools, chunk)}
}

// Chunk buffers by chunk size, shared by every archive: the members of a
// group, and the next capture, take the buffers the last one gave back
// rather than allocating megabytes the runtime must zero first (a tenth
// of a capture's CPU when every member had its own).
var inPools, outPools sync.Map // chunk size -> *sync.Pool

func chunkPool(pools *sync.Map, chunk int) *sync.Pool {
	if p, ok := pools.Load(chunk); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(chunk, &sync.Pool{})
	return p.(*sync.Pool)
}

type job struct {
	p   *pipeline
	in  []byte
	out []byte
	// spans are the chunk's frames in order, as ranges of out (headers,
	// compressed blocks) and of in (the contents of raw blocks, written
	// from where they were read rather than copied into out).
	spans []span
	done  chan struct{}
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

// compressors are a fixed number of goroutines, each with its encoder,
// compressing the chunks of every archive written at once: the members of a
// group share one per core, rather than each member bringing as many, which
// would time-slice more encoders (and their tables) than there are cores.
type compressors struct {
	workers int
	work    chan *job
	wg      sync.WaitGroup
}

func startCompressors(workers int) *compressors {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c := &compressors{workers: workers, work: make(chan *job, workers)}
	c.wg.Add(workers)
	for range workers {
		go func() {
			defer c.wg.Done()
			enc := encoders.Get().(*zstd.Encoder)
			defer encoders.Put(enc)
			for j := range c.work {
				j.p.compress(enc, j)
			}
		}()
	}
	return c
}

// stop ends the goroutines once the chunks handed to them are done. No
// archive may hand more.
func (c *compressors) stop() {
	close(c.work)
	c.wg.Wait()
}

func (p *pipeline) compress(enc *zstd.Encoder, j *job) {
	var dst []byte
	if b, ok := p.outPool.Get().(*[]byte); ok {
		dst = (*b)[:0]
	} else {
		dst = make([]byte, 0, enc.MaxEncodedSize(p.chunk))
	}
	j.out, j.spans = encodeChunk(enc, j.in, dst, j.spans[:0])
	close(j.done)
}

// segSize is the unit encodeChunk classifies: zstd's largest block.
const segSize = 128 << 10

// span is a range of a job's out (or, fromIn, of its in).
type span struct {
	fromIn     bool
	start, end int
}

func addSpan(spans []span, fromIn bool, start, end int) []span {
	if n := len(spans); n > 0 && spans[n-1].fromIn == fromIn && spans[n-1].end == start {
		spans[n-1].end = end
		return spans
	}
	return append(spans, span{fromIn: fromIn, start: start, end: end})
}

// encodeChunk encodes the chunk as zstd frames: runs of segments that look
// incompressible (random, already compressed) become raw frames at memory
// speed, the rest goes through the encoder. zstd itself stores such blocks
// raw too, but only after trying to compress them. Headers and compressed
// frames are appended to dst; the spans say how dst and in interleave.
func encodeChunk(enc *zstd.Encoder, in, dst []byte, spans []span) ([]byte, []span) {
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
			dst, spans = appendRawFrame(dst, spans, start, end)
		} else {
			k := len(dst)
			dst = enc.EncodeAll(in[start:end], dst)
			spans = addSpan(spans, false, k, len(dst))
		}
		start = end
	}
	return dst, spans
}

// gather resolves spans into the byte slices they name, appended to bufs.
func gather(bufs [][]byte, spans []span, in, out []byte) [][]byte {
	for _, s := range spans {
		if s.fromIn {
			bufs = append(bufs, in[s.start:s.end])
		} else {
			bufs = append(bufs, out[s.start:s.end])
		}
	}
	return bufs
}

// Entropy sampling: 64 bytes every 2 KiB of a segment.
const (
	sampleLen    = 64
	sampleStride = 2048
	maxSamples   = segSize / sampleStride * sampleLen
)

// cLog2C[c] is c*log2(c): the entropy of a histogram of n samples is
// log2(n) - sum(cLog2C[count])/n, one table look-up per bin instead of a
// logarithm.
var cLog2C = func() (t [maxSamples + 1]float64) {
	for c := 2; c <= maxSamples; c++ {
		t[c] = float64(c) * math.Log2(float64(c))
	}
	return t
}()

// incompressible estimates the byte entropy of a segment (at most segSize)
// from 64-byte samples every 2 KiB: random or compressed data is close to
// 8 bits a byte, text and most binary data well below.
func incompressible(seg []byte) bool {
	if len(seg) < 16<<10 {
		return false
	}
	seg = seg[:min(len(seg), segSize)]
	// Two histograms, even and odd bytes, so consecutive increments do
	// not wait on each other when a sample repeats a byte.
	var even, odd [256]uint16
	n := 0
	for off := 0; off+sampleLen <= len(seg); off += sampleStride {
		s := seg[off : off+sampleLen : off+sampleLen]
		for i := 0; i < sampleLen; i += 2 {
			even[s[i]]++
			odd[s[i+1]]++
		}
		n += sampleLen
	}
	sum := 0.0
	for i := range even {
		sum += cLog2C[int(even[i])+int(odd[i])]
	}
	return math.Log2(float64(n))-sum/float64(n) > 7.6
}

// appendRawFrame adds in[start:end] as one zstd frame of raw (stored)
// blocks: the frame and block headers go into dst, the contents stay in
// in and are only named by spans.
func appendRawFrame(dst []byte, spans []span, start, end int) ([]byte, []span) {
	// Magic number, then a frame header: single segment, 4-byte content
	// size, no checksum, no dictionary (RFC 8878, 3.1.1).
	k := len(dst)
	dst = append(dst, 0x28, 0xB5, 0x2F, 0xFD, 0xA0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(end-start))
	for {
		n := min(end-start, segSize)
		last := uint32(0)
		if n == end-start {
			last = 1
		}
		hdr := uint32(n)<<3 | last // block type 0: raw
		dst = append(dst, byte(hdr), byte(hdr>>8), byte(hdr>>16))
		spans = addSpan(spans, false, k, len(dst))
		spans = addSpan(spans, true, start, start+n)
		start += n
		k = len(dst)
		if last == 1 {
			return dst, spans
		}
	}
}

// writev writes bufs to f in order, with as few system calls as the
// kernel allows (several when it takes less than all at once). It may
// change bufs.
func writev(f *os.File, bufs [][]byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil
		}
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), bufs)
			// A pollable file (a pipe) that is full: wait, then again.
			return werr != unix.EAGAIN
		}); err != nil {
			return err
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			return &os.PathError{Op: "write", Path: f.Name(), Err: werr}
		}
		if n == 0 {
			return &os.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
		}
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
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

// write writes frames in order and hashes them; the chunks' buffers go
// back to their pools once written.
func (p *pipeline) write(ctx context.Context, order <-chan *job, out *os.File) (catalog.Artifact, error) {
	var art catalog.Artifact
	var kicked int64
	var bufs [][]byte
	h := catalog.NewHash()
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return art, ctx.Err()
		}
		bufs = gather(bufs[:0], j.spans, j.in, j.out)
		var n int64
		for _, b := range bufs {
			_, _ = h.Write(b)
			n += int64(len(b))
		}
		if err := writev(out, bufs); err != nil {
			return art, err
		}
		if art.Size+n-kicked >= writebackEvery {
			startWriteback(out, kicked, art.Size+n-kicked)
			kicked = art.Size + n
		}
		art.Size += n
		art.Frames = append(art.Frames, n)
		p.putIn(j.in)
		b := j.out
		p.outPool.Put(&b)
		j.in, j.out = nil, nil
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
	j := &job{p: c.p, in: c.buf, done: make(chan struct{})}
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
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	comp := startCompressors(opts.Workers)
	defer comp.stop()
	var total int64
	art, err := writeArchive(ctx, dst, opts.ChunkSize, comp, func(ctx context.Context, cw *chunkWriter) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := r.Read(cw.room())
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
	if err != nil {
		return art, total, catalog.StoreError(err)
	}
	art.Name = artifactName
	return art, total, nil
}

// writeArchive writes one archive into dst: produce writes the stream into
// cw (from its own goroutine), comp compresses it in chunks, and the frames
// are written in order under a temporary name, fsynced and renamed into
// place. Nothing is left under either name on failure.
func writeArchive(ctx context.Context, dst string, chunk int, comp *compressors, produce func(context.Context, *chunkWriter) error) (catalog.Artifact, error) {
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return catalog.Artifact{}, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = out.Close()
			_ = os.Remove(tmp)
		}
	}()
	p := newPipeline(chunk)
	var art catalog.Artifact
	g, gctx := errgroup.WithContext(ctx)
	order := make(chan *job, 2*comp.workers)
	g.Go(func() error {
		defer close(order)
		return produce(gctx, &chunkWriter{p: p, ctx: gctx, work: comp.work, order: order})
	})
	g.Go(func() error {
		var err error
		art, err = p.write(gctx, order, out)
		return err
	})
	if err := g.Wait(); err != nil {
		return art, err
	}
	if err := out.Sync(); err != nil {
		return art, fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := out.Close(); err != nil {
		return art, fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		ok = true // closed and removed
		return art, err
	}
	ok = true
	return art, nil
}
