package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/archive"
	"github.com/drover-dr/drover/drivers/storage/btrfs"
)

// BackupOptions size and repeat `drover bench backup`.
type BackupOptions struct {
	// Size of the generated data set (half text, half random).
	Size int64
	// Dir is the work folder; empty: a new temporary folder, removed
	// afterwards unless Keep.
	Dir    string
	Keep   bool
	Rounds int
	// Btrfs measures snapshot time at Size and 4x Size (needs root,
	// btrfs-progs, a loop device).
	Btrfs bool
	// Snapshots of each btrfs subvolume.
	Snapshots int
}

// BackupDoc is what `drover bench backup` measured.
type BackupDoc struct {
	Size    int64    `json:"size"`
	Files   int      `json:"files"`
	Dir     string   `json:"dir"`
	Rounds  int      `json:"rounds"`
	Figures []Figure `json:"figures"`
}

// Print writes the figures as text.
func (d BackupDoc) Print(out io.Writer) {
	fmt.Fprintf(out, "drover bench backup: %s in %d files (half log text, half random) under %s, best of %d\n",
		catalog.HumanBytes(d.Size), d.Files, d.Dir, d.Rounds)
	printFigures(out, d.Figures)
}

// Backup measures the archive driver's full and cumulative capture and its
// restore against tar and zstd on generated data, and the btrfs driver's
// snapshot at two data sizes.
func Backup(ctx context.Context, env Env, o BackupOptions) (BackupDoc, error) {
	doc, err := backup(ctx, env, o)
	return doc, err
}

func backup(ctx context.Context, env Env, o BackupOptions) (doc BackupDoc, err error) {
	log := env.log()
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "drover-bench-"); err != nil {
			return doc, err
		}
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return doc, err
	}
	data := filepath.Join(dir, "data")
	storeDir := filepath.Join(dir, "store")
	for _, p := range []string{data, storeDir} {
		if err := os.RemoveAll(p); err != nil {
			return doc, err
		}
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return doc, err
	}
	log.Info("generating the data set", zap.String("dir", data), zap.String("size", catalog.HumanBytes(o.Size)))
	t0 := time.Now()
	ds, err := archive.GenerateDataset(data, o.Size, nil, 42)
	if err != nil {
		return doc, fmt.Errorf("generate the data set: %w", err)
	}
	log.Info("data set ready", zap.Int("files", len(ds.Files)), zap.Duration("took", time.Since(t0)))
	_ = exec.Command("sync").Run()

	store, err := catalog.Open(storeDir)
	if err != nil {
		return doc, err
	}
	d := archive.New(log.Named("archive"))
	req := func(id string, mode catalog.Mode, base string) storage.Request {
		return storage.Request{Plan: "bench", PointID: id, Store: storeDir, Mode: mode, BaseID: base, Quiesced: true,
			Site:  drivers.Site{Name: "bench", Settings: map[string]any{"dataRoot": data}},
			Group: storage.Group{Name: "g", Driver: "archive", Components: ds.Members}}
	}
	var figs []Figure
	zstdPath, zerr := exec.LookPath("zstd")

	// Full backup: ours (capture = tar + zstd + checksums + fsync) against
	// tar -cf - | zstd -1 -T0 > FILE on the same data.
	var ours, base, window time.Duration
	var fullID string
	var stored, baseSize int64
	var oursCPU, baseCPU time.Duration
	for r := 0; r < o.Rounds; r++ {
		if zerr == nil {
			out := filepath.Join(dir, "baseline.tar.zst")
			settle()
			c := childCPU()
			t := time.Now()
			if b, err := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("tar -cf - -C %q . | %q -q -1 -T0 > %q", data, zstdPath, out)).CombinedOutput(); err != nil {
				return doc, fmt.Errorf("baseline tar | zstd: %w: %s", err, b)
			}
			if e := time.Since(t); base == 0 || e < base {
				base = e
			}
			if e := childCPU() - c; baseCPU == 0 || e < baseCPU {
				baseCPU = e
			}
			if st, err := os.Stat(out); err == nil {
				baseSize = st.Size()
			}
			_ = os.Remove(out)
		}
		id := fmt.Sprintf("full-%d", r)
		settle()
		c := selfCPU()
		t := time.Now()
		res, err := d.Capture(ctx, req(id, catalog.ModeFull, ""), nil)
		if err != nil {
			return doc, fmt.Errorf("full backup: %w", err)
		}
		// Capture is the only step run with writes paused.
		if e := time.Since(t); window == 0 || e < window {
			window = e
		}
		if _, err := store.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"g"}}); err != nil {
			return doc, err
		}
		if e := time.Since(t); ours == 0 || e < ours {
			ours = e
		}
		if e := selfCPU() - c; oursCPU == 0 || e < oursCPU {
			oursCPU = e
		}
		stored = res.Stored
		if fullID != "" {
			_ = store.Delete("bench", fullID)
		}
		fullID = id
	}
	full := Figure{Name: "archive full backup throughput", Bytes: ds.Bytes, OursSeconds: ours.Seconds(),
		Ours: fmt.Sprintf("%s (%s, %s CPU, %s stored, every file and archive checksummed, fsynced; the baseline is neither)",
			mbps(ds.Bytes, ours), secs(ours), secs(oursCPU), catalog.HumanBytes(stored)),
		Meaning: "throughput ours / baseline (>1 is faster)"}
	if zerr != nil {
		full.Skipped = "baseline needs the zstd CLI (apt-get install zstd)"
	} else {
		full.Baseline = fmt.Sprintf("tar -cf - DIR | zstd -1 -T0 > FILE: %s (%s, %s CPU, %s)", mbps(ds.Bytes, base), secs(base), secs(baseCPU), catalog.HumanBytes(baseSize))
		full.OursCPUSeconds, full.BaselineCPUSeconds = oursCPU.Seconds(), baseCPU.Seconds()
		full.BaselineSeconds = base.Seconds()
		full.Ratio = base.Seconds() / ours.Seconds()
	}
	figs = append(figs, full)

	// The same full backup into an encrypted store: Capture stages the
	// archives (writes paused), Ship seals them into the store after.
	enc, err := encryptedFull(ctx, log, dir, ds, o.Rounds)
	if err != nil {
		return doc, err
	}
	ceiling, err := compressorCeiling(ds, o.Rounds)
	if err != nil {
		return doc, err
	}

	// Cumulative with 1% of the files changed, against the full.
	nChanged, changedBytes, err := archive.ChangeFiles(ds, 0.01, 7)
	if err != nil {
		return doc, err
	}
	var cum time.Duration
	for r := 0; r < o.Rounds; r++ {
		id := fmt.Sprintf("cum-%d", r)
		settle()
		t := time.Now()
		if _, err := d.Capture(ctx, req(id, catalog.ModeCumulative, fullID), nil); err != nil {
			return doc, fmt.Errorf("cumulative backup: %w", err)
		}
		if _, err := store.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeCumulative, BaseID: fullID, Groups: []string{"g"}}); err != nil {
			return doc, err
		}
		if e := time.Since(t); cum == 0 || e < cum {
			cum = e
		}
	}
	figs = append(figs, Figure{Name: fmt.Sprintf("cumulative backup, %d files (%s) of %d changed", nChanged, catalog.HumanBytes(changedBytes), len(ds.Files)),
		Ours: secs(cum), Baseline: "full backup: " + secs(ours), Ratio: ours.Seconds() / cum.Seconds(),
		OursSeconds: cum.Seconds(), BaselineSeconds: ours.Seconds(), Meaning: "times faster than the full (target >= 10)"})

	// Restore of the full point against zstd -d | tar -x of the same
	// archives.
	m, err := store.Load("bench", fullID)
	if err != nil {
		return doc, err
	}
	var rest, rbase, restCPU, rbaseCPU time.Duration
	var archives []string
	for _, mem := range m.Groups[0].Members {
		archives = append(archives, filepath.Join(store.PointDir("bench", fullID), mem.Artifact))
	}
	for r := 0; r < o.Rounds; r++ {
		target := filepath.Join(dir, "restore-ours")
		_ = os.RemoveAll(target)
		settle()
		if err := dropCached(archives); err != nil {
			return doc, err
		}
		c := selfCPU()
		t := time.Now()
		if _, err := d.Restore(ctx, storage.RestoreRequest{Plan: "bench", PointID: fullID, Store: storeDir,
			Site: drivers.Site{Name: "target", Settings: map[string]any{"dataRoot": target}}, Group: storage.Group{Name: "g", Driver: "archive"}, Replace: true}, nil); err != nil {
			return doc, fmt.Errorf("restore: %w", err)
		}
		if e := time.Since(t); rest == 0 || e < rest {
			rest = e
		}
		if e := selfCPU() - c; restCPU == 0 || e < restCPU {
			restCPU = e
		}
		_ = os.RemoveAll(target)
		if zerr == nil {
			target := filepath.Join(dir, "restore-baseline")
			_ = os.RemoveAll(target)
			var script []string
			for _, mem := range m.Groups[0].Members {
				arch := filepath.Join(store.PointDir("bench", fullID), mem.Artifact)
				md := filepath.Join(target, mem.Name)
				script = append(script, fmt.Sprintf("mkdir -p %q && %q -q -d -c %q | tar -xf - -C %q", md, zstdPath, arch, md))
			}
			settle()
			if err := dropCached(archives); err != nil {
				return doc, err
			}
			c := childCPU()
			t := time.Now()
			if b, err := exec.CommandContext(ctx, "sh", "-c", strings.Join(script, " && ")).CombinedOutput(); err != nil {
				return doc, fmt.Errorf("baseline zstd -d | tar -x: %w: %s", err, b)
			}
			if e := time.Since(t); rbase == 0 || e < rbase {
				rbase = e
			}
			if e := childCPU() - c; rbaseCPU == 0 || e < rbaseCPU {
				rbaseCPU = e
			}
			_ = os.RemoveAll(target)
		}
	}
	rf := Figure{Name: "restore throughput", Bytes: ds.Bytes, OursSeconds: rest.Seconds(),
		Ours:    fmt.Sprintf("%s (%s, %s CPU, every file and archive checked, synced to disk; the baseline is neither; both read the archives cold)", mbps(ds.Bytes, rest), secs(rest), secs(restCPU)),
		Meaning: "throughput ours / baseline (>1 is faster)"}
	if zerr != nil {
		rf.Skipped = "baseline needs the zstd CLI (apt-get install zstd)"
	} else {
		rf.Baseline = fmt.Sprintf("zstd -d | tar -x of the same archives: %s (%s, %s CPU)", mbps(ds.Bytes, rbase), secs(rbase), secs(rbaseCPU))
		rf.OursCPUSeconds, rf.BaselineCPUSeconds = restCPU.Seconds(), rbaseCPU.Seconds()
		rf.BaselineSeconds = rbase.Seconds()
		rf.Ratio = rbase.Seconds() / rest.Seconds()
	}
	figs = append(figs, rf)

	var btrfsWindow time.Duration
	bf := Figure{Name: "btrfs snapshot time", Meaning: "median time at 4x the data / median time at 1x (about 1: constant)"}
	if !o.Btrfs {
		bf.Skipped = "--btrfs=false"
	} else if small, large, why, err := benchBtrfsSnapshot(ctx, log, dir, o.Size, o.Snapshots); err != nil {
		return doc, fmt.Errorf("btrfs snapshot benchmark: %w", err)
	} else if why != "" {
		bf.Skipped = why
	} else {
		side := func(s snapStats, size int64) string {
			t := fmt.Sprintf("%s at %s (median of %d captures, of which the btrfs command %s)", secs(s.Capture), catalog.HumanBytes(size), s.N, secs(s.Command))
			if s.RootItems > 0 {
				t += fmt.Sprintf("; tree root: level %d, %d items", s.RootLevel, s.RootItems)
			}
			return t
		}
		bf.Name += ", two subvolumes of one file system, snapshots alternating"
		btrfsWindow = small.Capture
		bf.Ours = side(large, 4*o.Size)
		bf.Baseline = side(small, o.Size)
		bf.OursSeconds, bf.BaselineSeconds = large.Capture.Seconds(), small.Capture.Seconds()
		bf.Ratio = large.Capture.Seconds() / small.Capture.Seconds()
		if small.RootItems > 0 && large.RootItems > 0 {
			bf.Note = fmt.Sprintf("a snapshot copies the subvolume's tree root and takes a reference on each of its items in the "+
				"transaction it commits: %d vs %d items here. That work is bounded by a node's size (about 490 items at 16 KiB; "+
				"a bigger tree grows a level instead), so it follows the root's fill, not the data size", small.RootItems, large.RootItems)
		}
	}
	figs = append(figs, bf)

	figs = append(figs, encryptedFigure(ds.Bytes, enc, base, zerr),
		ceilingFigure(ds.Bytes, ours, ceiling),
		windowFigure("quiesce window, archive capture, storage encryption off", window, base, zerr),
		windowFigure("quiesce window, archive capture, storage encryption on", enc.window, base, zerr),
		btrfsWindowFigure(bf, btrfsWindow, window))
	return BackupDoc{Size: ds.Bytes, Files: len(ds.Files), Dir: dir, Rounds: o.Rounds, Figures: figs}, nil
}

// dropCached evicts files from the page cache (they must be synced), so
// each side of the restore figure reads the archives from the store, as a
// restore at the secondary site does, rather than one side finding them in
// memory where the other put them.
func dropCached(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			return fmt.Errorf("drop %s from the page cache: %w", p, err)
		}
	}
	return nil
}

// snapStats are the times of one side of the btrfs snapshot experiment.
type snapStats struct {
	// Capture is the median of the driver's Capture calls; Command the
	// median of the btrfs command inside them (the driver's evidence).
	Capture, Command time.Duration
	N                int
	// RootLevel and RootItems describe the subvolume's b-tree root: a
	// snapshot copies the root and takes a reference on each of its
	// children, so its cost follows RootItems, not the data size.
	// RootItems is 0 when they could not be read.
	RootLevel, RootItems int
}

// benchBtrfsSnapshot times the btrfs driver's capture (a read-only
// snapshot) of two subvolumes of one loop-mounted btrfs, one holding size
// bytes and one 4x size, both written and synced before the first
// snapshot. Snapshots of the two alternate, rounds of each, so the file
// system's age, its number of snapshots and the machine's load are the same
// for both sides; the medians are compared. why says why it was skipped.
func benchBtrfsSnapshot(ctx context.Context, log *zap.Logger, dir string, size int64, rounds int) (small, large snapStats, why string, err error) {
	if os.Geteuid() != 0 {
		return small, large, "needs root to mount a loop-device btrfs", nil
	}
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "mount", "umount", "truncate"} {
		if _, err := exec.LookPath(tool); err != nil {
			return small, large, tool + " not found (apt-get install btrfs-progs)", nil
		}
	}
	img := filepath.Join(dir, "btrfs.img")
	mnt := filepath.Join(dir, "btrfs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return small, large, "", err
	}
	imgSize := 5*size + 1<<30
	if out, err := exec.Command("truncate", "-s", strconv.FormatInt(imgSize, 10), img).CombinedOutput(); err != nil {
		return small, large, fmt.Sprintf("truncate: %v: %s", err, out), nil
	}
	defer os.Remove(img)
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		return small, large, fmt.Sprintf("mkfs.btrfs: %v: %s", err, strings.TrimSpace(string(out))), nil
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		return small, large, fmt.Sprintf("cannot mount a loop device: %v: %s", err, strings.TrimSpace(string(out))), nil
	}
	defer func() {
		if out, uerr := exec.Command("umount", mnt).CombinedOutput(); uerr != nil && err == nil {
			err = fmt.Errorf("umount %s: %v: %s", mnt, uerr, out)
		}
	}()
	storeDir := filepath.Join(mnt, "store")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return small, large, "", err
	}
	subs := [2]string{filepath.Join(mnt, "small"), filepath.Join(mnt, "large")}
	for i, sub := range subs {
		if out, err := exec.Command("btrfs", "subvolume", "create", sub).CombinedOutput(); err != nil {
			return small, large, "", fmt.Errorf("btrfs subvolume create: %v: %s", err, out)
		}
		if _, err := archive.GenerateDataset(sub, size<<(2*i), nil, uint64(i+1)); err != nil {
			return small, large, "", fmt.Errorf("fill %s: %w", sub, err)
		}
	}
	settle()
	d := btrfs.New(log.Named("btrfs"))
	var reqs []storage.Request
	// Snapshots are deleted only after the series, so the cleaner's
	// background work does not overlap a measurement.
	defer func() {
		for _, req := range reqs {
			_, _ = d.Release(context.WithoutCancel(ctx), req)
		}
	}()
	var capture, command [2][]time.Duration
	n := 0
	err = alternate(rounds, func(side int) error {
		n++
		req := storage.Request{Plan: "bench", PointID: fmt.Sprintf("s%d", n), Store: storeDir, Mode: catalog.ModeFull,
			Site:  drivers.Site{Settings: map[string]any{"dataRoot": subs[side]}},
			Group: storage.Group{Name: "g", Driver: "btrfs", Components: []string{"db", "dmgr", "node1", "node2"}}}
		settle()
		t := time.Now()
		res, err := d.Capture(ctx, req, nil)
		if err != nil {
			return err
		}
		capture[side] = append(capture[side], time.Since(t))
		command[side] = append(command[side], res.Evidence.Duration)
		reqs = append(reqs, req)
		return nil
	})
	if err != nil {
		return small, large, "", err
	}
	small = snapStats{Capture: median(capture[0]), Command: median(command[0]), N: len(capture[0])}
	large = snapStats{Capture: median(capture[1]), Command: median(command[1]), N: len(capture[1])}
	// Explain the figure: what the kernel has to reference per snapshot.
	settle()
	for i, st := range []*snapStats{&small, &large} {
		lvl, items, err := treeRoot(ctx, img, subs[i])
		if err != nil {
			log.Warn("btrfs snapshot benchmark: cannot read the subvolume's tree root", zap.String("subvolume", subs[i]), zap.Error(err))
			continue
		}
		st.RootLevel, st.RootItems = lvl, items
	}
	return small, large, "", nil
}

// treeRoot reads the level and item count of the root node of the b-tree
// of the subvolume at path, from the file system image img (synced).
func treeRoot(ctx context.Context, img, path string) (level, items int, err error) {
	out, err := exec.CommandContext(ctx, "btrfs", "inspect-internal", "rootid", path).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("btrfs inspect-internal rootid %s: %w", path, err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("btrfs inspect-internal rootid %s: %q is not an id", path, out)
	}
	roots, err := exec.CommandContext(ctx, "btrfs", "inspect-internal", "dump-tree", "-r", "--noscan", img).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("btrfs inspect-internal dump-tree -r %s: %w", img, err)
	}
	bytenr, err := rootBytenr(string(roots), id)
	if err != nil {
		return 0, 0, err
	}
	node, err := exec.CommandContext(ctx, "btrfs", "inspect-internal", "dump-tree", "-b", strconv.FormatUint(bytenr, 10), "--noscan", img).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("btrfs inspect-internal dump-tree -b %d %s: %w", bytenr, img, err)
	}
	return nodeHeader(string(node))
}

// rootBytenr finds the root node's address of tree id in the output of
// `btrfs inspect-internal dump-tree -r`, lines like
// "file tree key (256 ROOT_ITEM 0) 143982592 level 1".
func rootBytenr(out string, id uint64) (uint64, error) {
	prefix := fmt.Sprintf("(%d ROOT_ITEM ", id)
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, prefix)
		if i < 0 {
			continue
		}
		_, rest, ok := strings.Cut(line[i:], ")")
		if !ok {
			break
		}
		f := strings.Fields(rest)
		if len(f) > 0 {
			if v, err := strconv.ParseUint(f[0], 10, 64); err == nil {
				return v, nil
			}
		}
		break
	}
	return 0, fmt.Errorf("dump-tree -r: no root of tree %d", id)
}

// nodeHeader reads the block header that `btrfs inspect-internal dump-tree
// -b` prints after its version line: "node 30687232 level 1 items 48 free
// space 445 ..." or, for a root that is a leaf, "leaf 30621696 items 2 free
// space 16061 ...".
func nodeHeader(out string) (level, items int, err error) {
	first := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "node ") || strings.HasPrefix(line, "leaf ") {
			first = line
			break
		}
	}
	f := strings.Fields(first)
	switch {
	case len(f) >= 6 && f[0] == "node" && f[2] == "level" && f[4] == "items":
		if level, err = strconv.Atoi(f[3]); err == nil {
			items, err = strconv.Atoi(f[5])
		}
	case len(f) >= 4 && f[0] == "leaf" && f[2] == "items":
		items, err = strconv.Atoi(f[3])
	default:
		return 0, 0, fmt.Errorf("dump-tree -b: no node or leaf header in %q", drivers.Truncate(out, 200))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("dump-tree -b: header %q: %w", first, err)
	}
	return level, items, nil
}

// encryptedRun is the best full backup into an encrypted store.
type encryptedRun struct {
	// total: capture, ship (seal and write) and commit; window: capture.
	total, window, cpu time.Duration
	stored             int64
}

// encryptedFull takes full backups of the data set into a folder store with
// storage.store.encryption (a fresh AES key by secret reference), through
// the archive driver's Capture, Ship and the catalog's Commit, as a backup
// run does.
func encryptedFull(ctx context.Context, log *zap.Logger, dir string, ds *archive.Dataset, rounds int) (encryptedRun, error) {
	var best encryptedRun
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return best, err
	}
	const keyEnv = "DROVER_BENCH_STORE_KEY"
	restore := setenv(map[string]string{keyEnv: hex.EncodeToString(key)})
	defer restore()
	storeDir := filepath.Join(dir, "store-encrypted")
	if err := os.RemoveAll(storeDir); err != nil {
		return best, err
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return best, err
	}
	settings := map[string]any{"path": storeDir, "staging": filepath.Join(dir, "staging"),
		"encryption": map[string]any{"keys": []any{map[string]any{"id": "bench", "key": "env:" + keyEnv}}}}
	store, _, err := catalog.OpenFromSettings(settings)
	if err != nil {
		return best, fmt.Errorf("encrypted store: %w", err)
	}
	d := archive.New(log.Named("archive"))
	prev := ""
	for r := 0; r < rounds; r++ {
		id := fmt.Sprintf("enc-%d", r)
		req := storage.Request{Plan: "bench", PointID: id, Store: store.Root, StoreSettings: settings, Mode: catalog.ModeFull, Quiesced: true,
			Site:  drivers.Site{Name: "bench", Settings: map[string]any{"dataRoot": ds.Root}},
			Group: storage.Group{Name: "g", Driver: "archive", Components: ds.Members}}
		settle()
		c := selfCPU()
		t := time.Now()
		if _, err := d.Capture(ctx, req, nil); err != nil {
			return best, fmt.Errorf("encrypted full backup: capture: %w", err)
		}
		w := time.Since(t)
		res, err := d.Ship(ctx, req, nil)
		if err != nil {
			return best, fmt.Errorf("encrypted full backup: ship: %w", err)
		}
		if _, err := store.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"g"}}); err != nil {
			return best, fmt.Errorf("encrypted full backup: commit: %w", err)
		}
		run := encryptedRun{total: time.Since(t), window: w, cpu: selfCPU() - c, stored: res.Stored}
		if r == 0 || run.total < best.total {
			best.total, best.cpu, best.stored = run.total, run.cpu, run.stored
		}
		if r == 0 || run.window < best.window {
			best.window = run.window
		}
		if prev != "" {
			_ = store.Delete("bench", prev)
		}
		prev = id
	}
	return best, nil
}

func encryptedFigure(bytes int64, e encryptedRun, base time.Duration, zerr error) Figure {
	f := Figure{Name: "archive full backup throughput, storage encryption on (AES-256-GCM, catalog/seal)", Bytes: bytes, OursSeconds: e.total.Seconds(),
		Ours: fmt.Sprintf("%s (%s: capture to staging %s, then sealed into the store and committed; %s CPU, %s stored)",
			mbps(bytes, e.total), secs(e.total), secs(e.window), secs(e.cpu), catalog.HumanBytes(e.stored)),
		OursCPUSeconds: e.cpu.Seconds(), Meaning: "throughput ours / baseline (>1 is faster)"}
	if zerr != nil {
		f.Skipped = "baseline needs the zstd CLI (apt-get install zstd)"
		return f
	}
	f.Baseline = fmt.Sprintf("tar -cf - DIR | zstd -1 -T0 > FILE, unencrypted: %s (%s)", mbps(bytes, base), secs(base))
	f.BaselineSeconds = base.Seconds()
	f.Ratio = base.Seconds() / e.total.Seconds()
	return f
}

// ceiling is the capture's compression stage on one core.
type ceiling struct {
	perCore    float64 // bytes per second
	cores      int
	sample     int64
	compressed int64
}

// compressorCeiling times the capture's compression stage (the archive
// driver's encoder, chunk by chunk) on one goroutine over up to 256 MiB of
// the data set read into memory, best of rounds: one core's rate. No
// capture on this machine compresses faster than that rate times its cores.
func compressorCeiling(ds *archive.Dataset, rounds int) (ceiling, error) {
	const most = 256 << 20
	var sample []byte
	for _, f := range ds.Files {
		if len(sample) >= most {
			break
		}
		b, err := os.ReadFile(filepath.Join(ds.Root, f))
		if err != nil {
			return ceiling{}, fmt.Errorf("compressor ceiling: %w", err)
		}
		sample = append(sample, b[:min(len(b), most-len(sample))]...)
	}
	c := ceiling{cores: runtime.GOMAXPROCS(0), sample: int64(len(sample))}
	var best time.Duration
	for r := 0; r < max(rounds, 2); r++ {
		t := time.Now()
		c.compressed = archive.EncodeOneCore(sample)
		if e := time.Since(t); best == 0 || e < best {
			best = e
		}
	}
	if best > 0 {
		c.perCore = float64(len(sample)) / best.Seconds()
	}
	return c, nil
}

func ceilingFigure(bytes int64, capture time.Duration, c ceiling) Figure {
	limit := c.perCore * float64(c.cores)
	f := Figure{Name: "compressor ceiling: the capture against its encoder's rate on every core", Bytes: bytes, OursSeconds: capture.Seconds(),
		Ours: fmt.Sprintf("full capture %s", mbps(bytes, capture)),
		Baseline: fmt.Sprintf("the capture's encoder on one goroutine: %.0f MB/s per core × %d cores = %.0f MB/s (%s of the data set in memory, %s compressed)",
			c.perCore/1e6, c.cores, limit/1e6, catalog.HumanBytes(c.sample), catalog.HumanBytes(c.compressed)),
		Meaning: "capture throughput / ceiling (1 = the capture compresses as fast as every core can)"}
	if limit > 0 && capture > 0 {
		f.BaselineSeconds = float64(bytes) / limit
		f.Ratio = float64(bytes) / capture.Seconds() / limit
	}
	f.Note = "the ceiling counts compression only, in memory; the capture also reads, tars, checksums, writes and fsyncs, on the same cores"
	return f
}

func windowFigure(name string, window, base time.Duration, zerr error) Figure {
	f := Figure{Name: name + " (measured by the bench: the span of the driver's Capture, the only step run with writes paused)",
		Ours: secs(window), OursSeconds: window.Seconds(), Meaning: "baseline / ours (>1: writes paused for less time than the baseline)"}
	if zerr != nil {
		f.Skipped = "baseline needs the zstd CLI (apt-get install zstd)"
		return f
	}
	f.Baseline = "a shell runbook pauses writes for its whole tar -cf - DIR | zstd -1 -T0 > FILE: " + secs(base)
	f.BaselineSeconds = base.Seconds()
	f.Ratio = base.Seconds() / window.Seconds()
	return f
}

func btrfsWindowFigure(snap Figure, btrfsWindow, archiveWindow time.Duration) Figure {
	f := Figure{Name: "quiesce window, btrfs capture (a read-only snapshot; measured by the bench: the span of the driver's Capture)",
		Meaning: "archive window / btrfs window (>1: writes paused for less time than an archive capture)",
		Note:    "storage encryption on: not applicable, the btrfs driver keeps its snapshots in the file system and refuses an encrypted store"}
	if snap.Skipped != "" || btrfsWindow <= 0 {
		f.Skipped = snap.Skipped
		if f.Skipped == "" {
			f.Skipped = "no btrfs snapshot was measured"
		}
		return f
	}
	f.Ours = secs(btrfsWindow) + " (median, at the data set's size)"
	f.Baseline = "archive capture of the same size, encryption off: " + secs(archiveWindow)
	f.OursSeconds, f.BaselineSeconds = btrfsWindow.Seconds(), archiveWindow.Seconds()
	f.Ratio = archiveWindow.Seconds() / btrfsWindow.Seconds()
	return f
}
