package starter

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/archive"
	"github.com/drover-dr/drover/drivers/storage/btrfs"
)

func init() {
	register(newBenchCmd)
	benchSubcommands = append(benchSubcommands, newBenchBackupCmd)
}

// benchSubcommands lets other files add `drover bench ...` benchmarks.
var benchSubcommands []commandFactory

func newBenchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that print each figure beside a same-run baseline",
		Args:  cobra.NoArgs,
	}
	for _, f := range benchSubcommands {
		cmd.AddCommand(f(g))
	}
	return cmd
}

// benchFigure is one measured figure, its baseline and their ratio.
type benchFigure struct {
	Name     string  `json:"name"`
	Ours     string  `json:"ours"`
	Baseline string  `json:"baseline"`
	Ratio    float64 `json:"ratio,omitempty"`
	// Meaning says how to read the ratio.
	Meaning string `json:"meaning"`
	Skipped string `json:"skipped,omitempty"`
	// Note explains the figure, where the run measured why.
	Note string `json:"note,omitempty"`
	// Seconds and bytes behind the figure, for scripts.
	OursSeconds     float64 `json:"oursSeconds,omitempty"`
	BaselineSeconds float64 `json:"baselineSeconds,omitempty"`
	// CPU seconds (user+system) of the best run, where measured: a figure
	// that depends less on what else the machine runs.
	OursCPUSeconds     float64 `json:"oursCpuSeconds,omitempty"`
	BaselineCPUSeconds float64 `json:"baselineCpuSeconds,omitempty"`
	Bytes              int64   `json:"bytes,omitempty"`
}

type benchBackupOpts struct {
	size   int64
	dir    string
	keep   bool
	rounds int
	btrfs  bool
	// snapshots of each btrfs subvolume
	snapshots int
}

func newBenchBackupCmd(g *Globals) *cobra.Command {
	var o benchBackupOpts
	var size string
	cmd := &cobra.Command{
		Use:   "backup [--size 1GiB] [--dir D]",
		Short: "Archive backup, cumulative backup, restore and btrfs snapshot figures against tar|zstd on generated data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSize(size)
			if err != nil {
				return BadInputf("--size: %v", err)
			}
			if n < 1<<20 {
				return BadInputf("--size: %s is below 1 MiB", size)
			}
			if o.rounds < 1 {
				return BadInputf("--rounds: %d is below 1", o.rounds)
			}
			if o.snapshots < 1 {
				return BadInputf("--snapshots: %d is below 1", o.snapshots)
			}
			o.size = n
			return benchBackup(cmd.Context(), g, o)
		},
	}
	cmd.Flags().StringVar(&size, "size", "1GiB", "size of the generated data set (half text, half random)")
	cmd.Flags().StringVar(&o.dir, "dir", "", "work folder (default: a new temporary folder, removed afterwards)")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the work folder")
	cmd.Flags().IntVar(&o.rounds, "rounds", 2, "runs of each measurement; the best of each side is kept")
	cmd.Flags().BoolVar(&o.btrfs, "btrfs", true, "measure btrfs snapshot time at size and 4x size (needs root, btrfs-progs, a loop device)")
	cmd.Flags().IntVar(&o.snapshots, "snapshots", 15, "btrfs snapshots of each subvolume (size and 4x size), alternating; the medians are compared")
	return cmd
}

// parseSize reads "1GiB", "512MiB", "64M", "1G" (binary units) or bytes.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "iB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 1GiB, 256MiB)", s)
	}
	return int64(v * float64(mult)), nil
}

func mbps(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/d.Seconds()/1e6)
}

func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func benchBackup(ctx context.Context, g *Globals, o benchBackupOpts) error {
	log := g.Logger()
	dir := o.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "drover-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	storeDir := filepath.Join(dir, "store")
	for _, p := range []string{data, storeDir} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return err
	}
	log.Info("generating the data set", zap.String("dir", data), zap.String("size", catalog.HumanBytes(o.size)))
	t0 := time.Now()
	ds, err := archive.GenerateDataset(data, o.size, nil, 42)
	if err != nil {
		return fmt.Errorf("generate the data set: %w", err)
	}
	log.Info("data set ready", zap.Int("files", len(ds.Files)), zap.Duration("took", time.Since(t0)))
	_ = exec.Command("sync").Run()

	store, err := catalog.Open(storeDir)
	if err != nil {
		return err
	}
	d := archive.New(log.Named("archive"))
	req := func(id string, mode catalog.Mode, base string) storage.Request {
		return storage.Request{Plan: "bench", PointID: id, Store: storeDir, Mode: mode, BaseID: base, Quiesced: true,
			Site:  drivers.Site{Name: "bench", Settings: map[string]any{"dataRoot": data}},
			Group: storage.Group{Name: "g", Driver: "archive", Components: ds.Members}}
	}
	var figs []benchFigure
	zstdPath, zerr := exec.LookPath("zstd")

	// Full backup: ours (capture = tar + zstd + checksums + fsync) against
	// tar -cf - | zstd -1 -T0 > FILE on the same data.
	var ours, base time.Duration
	var fullID string
	var stored, baseSize int64
	var oursCPU, baseCPU time.Duration
	for r := 0; r < o.rounds; r++ {
		if zerr == nil {
			out := filepath.Join(dir, "baseline.tar.zst")
			settle()
			c := childCPU()
			t := time.Now()
			if b, err := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("tar -cf - -C %q . | %q -q -1 -T0 > %q", data, zstdPath, out)).CombinedOutput(); err != nil {
				return fmt.Errorf("baseline tar | zstd: %w: %s", err, b)
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
			return fmt.Errorf("full backup: %w", err)
		}
		if _, err := store.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeFull, Groups: []string{"g"}}); err != nil {
			return err
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
	full := benchFigure{Name: "archive full backup throughput", Bytes: ds.Bytes, OursSeconds: ours.Seconds(),
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

	// Cumulative with 1% of the files changed, against the full.
	nChanged, changedBytes, err := archive.ChangeFiles(ds, 0.01, 7)
	if err != nil {
		return err
	}
	var cum time.Duration
	for r := 0; r < o.rounds; r++ {
		id := fmt.Sprintf("cum-%d", r)
		settle()
		t := time.Now()
		if _, err := d.Capture(ctx, req(id, catalog.ModeCumulative, fullID), nil); err != nil {
			return fmt.Errorf("cumulative backup: %w", err)
		}
		if _, err := store.Commit("bench", id, catalog.CommitInfo{Mode: catalog.ModeCumulative, BaseID: fullID, Groups: []string{"g"}}); err != nil {
			return err
		}
		if e := time.Since(t); cum == 0 || e < cum {
			cum = e
		}
	}
	figs = append(figs, benchFigure{Name: fmt.Sprintf("cumulative backup, %d files (%s) of %d changed", nChanged, catalog.HumanBytes(changedBytes), len(ds.Files)),
		Ours: secs(cum), Baseline: "full backup: " + secs(ours), Ratio: ours.Seconds() / cum.Seconds(),
		OursSeconds: cum.Seconds(), BaselineSeconds: ours.Seconds(), Meaning: "times faster than the full (target >= 10)"})

	// Restore of the full point against zstd -d | tar -x of the same
	// archives.
	m, err := store.Load("bench", fullID)
	if err != nil {
		return err
	}
	var rest, rbase, restCPU, rbaseCPU time.Duration
	var archives []string
	for _, mem := range m.Groups[0].Members {
		archives = append(archives, filepath.Join(store.PointDir("bench", fullID), mem.Artifact))
	}
	for r := 0; r < o.rounds; r++ {
		target := filepath.Join(dir, "restore-ours")
		_ = os.RemoveAll(target)
		settle()
		if err := dropCached(archives); err != nil {
			return err
		}
		c := selfCPU()
		t := time.Now()
		if _, err := d.Restore(ctx, storage.RestoreRequest{Plan: "bench", PointID: fullID, Store: storeDir,
			Site: drivers.Site{Name: "target", Settings: map[string]any{"dataRoot": target}}, Group: storage.Group{Name: "g", Driver: "archive"}, Replace: true}, nil); err != nil {
			return fmt.Errorf("restore: %w", err)
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
				return err
			}
			c := childCPU()
			t := time.Now()
			if b, err := exec.CommandContext(ctx, "sh", "-c", strings.Join(script, " && ")).CombinedOutput(); err != nil {
				return fmt.Errorf("baseline zstd -d | tar -x: %w: %s", err, b)
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
	rf := benchFigure{Name: "restore throughput", Bytes: ds.Bytes, OursSeconds: rest.Seconds(),
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

	bf := benchFigure{Name: "btrfs snapshot time", Meaning: "median time at 4x the data / median time at 1x (about 1: constant)"}
	if !o.btrfs {
		bf.Skipped = "--btrfs=false"
	} else if small, large, why, err := benchBtrfsSnapshot(ctx, g, dir, o.size, o.snapshots); err != nil {
		return fmt.Errorf("btrfs snapshot benchmark: %w", err)
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
		bf.Ours = side(large, 4*o.size)
		bf.Baseline = side(small, o.size)
		bf.OursSeconds, bf.BaselineSeconds = large.Capture.Seconds(), small.Capture.Seconds()
		bf.Ratio = large.Capture.Seconds() / small.Capture.Seconds()
		if small.RootItems > 0 && large.RootItems > 0 {
			bf.Note = fmt.Sprintf("a snapshot copies the subvolume's tree root and takes a reference on each of its items in the "+
				"transaction it commits: %d vs %d items here. That work is bounded by a node's size (about 490 items at 16 KiB; "+
				"a bigger tree grows a level instead), so it follows the root's fill, not the data size", small.RootItems, large.RootItems)
		}
	}
	figs = append(figs, bf)

	if g.JSON() {
		return planWriteJSON(g, map[string]any{"size": ds.Bytes, "files": len(ds.Files), "dir": dir, "figures": figs})
	}
	fmt.Fprintf(g.Stdout, "drover bench backup: %s in %d files (half log text, half random) under %s, best of %d\n", catalog.HumanBytes(ds.Bytes), len(ds.Files), dir, o.rounds)
	for _, f := range figs {
		fmt.Fprintf(g.Stdout, "\n%s\n", f.Name)
		if f.Ours != "" {
			fmt.Fprintf(g.Stdout, "  drover:   %s\n", f.Ours)
		}
		if f.Baseline != "" {
			fmt.Fprintf(g.Stdout, "  baseline: %s\n", f.Baseline)
		}
		if f.Ratio != 0 {
			fmt.Fprintf(g.Stdout, "  ratio:    %.2fx  (%s)\n", f.Ratio, f.Meaning)
		}
		if f.Skipped != "" {
			fmt.Fprintf(g.Stdout, "  skipped:  %s\n", f.Skipped)
		}
		if f.Note != "" {
			fmt.Fprintf(g.Stdout, "  note:     %s\n", f.Note)
		}
	}
	return nil
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

// selfCPU and childCPU are the user+system time of this process and of
// its waited-for children.
func selfCPU() time.Duration  { return rusage(syscall.RUSAGE_SELF) }
func childCPU() time.Duration { return rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle flushes dirty pages before a timed run, so no run pays for the
// writeback of the one before it (drover fsyncs its archives; the
// baselines do not, and would leave their output for the next run to wait
// behind).
func settle() { _ = exec.Command("sync").Run() }

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

// alternate runs rounds of measure(0) and measure(1), swapping their
// order every round, so neither side always runs first (after the sync,
// on a colder cache) or always second.
func alternate(rounds int, measure func(side int) error) error {
	for r := 0; r < rounds; r++ {
		order := [2]int{0, 1}
		if r%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, side := range order {
			if err := measure(side); err != nil {
				return err
			}
		}
	}
	return nil
}

// median of ds (sorted in place); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if n := len(ds); n%2 == 0 {
		return (ds[n/2-1] + ds[n/2]) / 2
	}
	return ds[len(ds)/2]
}

// benchBtrfsSnapshot times the btrfs driver's capture (a read-only
// snapshot) of two subvolumes of one loop-mounted btrfs, one holding size
// bytes and one 4x size, both written and synced before the first
// snapshot. Snapshots of the two alternate, rounds of each, so the file
// system's age, its number of snapshots and the machine's load are the same
// for both sides; the medians are compared. why says why it was skipped.
func benchBtrfsSnapshot(ctx context.Context, g *Globals, dir string, size int64, rounds int) (small, large snapStats, why string, err error) {
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
	d := btrfs.New(g.Logger().Named("btrfs"))
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
			g.Logger().Warn("btrfs snapshot benchmark: cannot read the subvolume's tree root", zap.String("subvolume", subs[i]), zap.Error(err))
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
