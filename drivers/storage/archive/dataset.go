package archive

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

// Dataset describes generated test data: members (sub-directories) of
// files, half of the bytes log-like text, half random.
type Dataset struct {
	Root    string
	Members []string
	Files   []string // relative to Root, sorted
	Bytes   int64
}

// datasetWords are the vocabulary of generated log lines.
var datasetWords = []string{"BPM", "process", "instance", "started", "completed", "task", "claimed", "by", "user",
	"WSVR0001I:", "Server", "open", "for", "e-business", "DB2", "commit", "rollback", "transaction", "log", "record",
	"messaging", "engine", "SIBus", "queue", "message", "delivered", "Monitor", "event", "received", "for", "model",
	"timer", "fired", "node", "agent", "synchronized", "cell", "configuration", "repository", "checkpoint",
	"ERROR", "WARN", "INFO", "DEBUG", "the", "a", "of", "to", "in", "is", "was", "on", "at", "with"}

// GenerateDataset writes about size bytes into root: members folders, files
// of 4 KiB to 4 MiB, alternating text and random content so each half of
// the bytes is one kind. seed makes it reproducible.
func GenerateDataset(root string, size int64, members []string, seed uint64) (*Dataset, error) {
	if len(members) == 0 {
		members = []string{"db", "dmgr", "node1", "node2"}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ds := &Dataset{Root: root, Members: members}
	var text, random int64
	buf := make([]byte, 4<<20)
	for i := 0; ds.Bytes < size; i++ {
		m := members[i%len(members)]
		// Sizes spread over four decades, like a real cell's data.
		fsize := int64(4<<10) << rng.IntN(11)
		if left := size - ds.Bytes; fsize > left {
			fsize = max(left, 1)
		}
		isText := text <= random
		rel := filepath.Join(m, "d"+strconv.Itoa(i%17), fmt.Sprintf("f%06d.%s", i, map[bool]string{true: "log", false: "bin"}[isText]))
		b := buf[:fsize]
		if isText {
			fillText(rng, b)
			text += fsize
		} else {
			fillRandom(rng, b)
			random += fsize
		}
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		ds.Files = append(ds.Files, rel)
		ds.Bytes += fsize
	}
	for _, m := range members {
		if err := os.MkdirAll(filepath.Join(root, m), 0o755); err != nil {
			return nil, err
		}
	}
	sort.Strings(ds.Files)
	return ds, nil
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// fillText writes log-like lines: a running timestamp, a thread, a level,
// a component and a message of random words with the odd number, so it
// compresses like real server logs (about 3-4x at zstd's fastest level).
func fillText(rng *rand.Rand, b []byte) {
	levels := [...]string{"INFO ", "INFO ", "INFO ", "WARN ", "ERROR", "DEBUG"}
	comps := [...]string{"WebContainer", "SIBMessage", "BPMEngine", "Monitor", "DB2Driver", "NodeAgent", "TxService"}
	ms := rng.Int64N(1 << 40)
	line := make([]byte, 0, 256)
	i := 0
	for i < len(b) {
		ms += int64(rng.IntN(50))
		line = line[:0]
		line = strconv.AppendInt(line, ms, 10)
		line = append(line, " [T-"...)
		line = strconv.AppendInt(line, int64(rng.IntN(64)), 10)
		line = append(line, "] "...)
		line = append(line, levels[rng.IntN(len(levels))]...)
		line = append(line, ' ')
		line = append(line, comps[rng.IntN(len(comps))]...)
		line = append(line, " - "...)
		for w := 4 + rng.IntN(10); w > 0; w-- {
			line = append(line, datasetWords[rng.IntN(len(datasetWords))]...)
			line = append(line, ' ')
		}
		if rng.IntN(3) == 0 {
			line = append(line, "id="...)
			line = strconv.AppendInt(line, int64(rng.IntN(1_000_000)), 10)
		}
		line = append(line, '\n')
		i += copy(b[i:], line)
	}
}

// ChangeFiles rewrites every n-th file of the dataset (a fraction of 1/n)
// with new content of the same kind and a newer mtime, and returns how many
// bytes it changed.
func ChangeFiles(ds *Dataset, fraction float64, seed uint64) (int, int64, error) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	want := int(float64(len(ds.Files))*fraction + 0.5)
	if want < 1 {
		want = 1
	}
	perm := rng.Perm(len(ds.Files))[:want]
	var bytes int64
	later := time.Now().Add(time.Minute)
	for _, i := range perm {
		p := filepath.Join(ds.Root, ds.Files[i])
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, 0, err
		}
		if filepath.Ext(p) == ".log" {
			fillText(rng, b)
		} else {
			fillRandom(rng, b)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return 0, 0, err
		}
		if err := os.Chtimes(p, later, later); err != nil {
			return 0, 0, err
		}
		bytes += int64(len(b))
	}
	return want, bytes, nil
}
