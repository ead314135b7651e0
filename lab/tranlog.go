package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
)

// The transaction log of an app server's transaction manager
// (runtime/tranlog/log). A commit record is forced to disk before any
// branch commits, so after a crash or a restore the manager knows which
// prepared transactions it decided to commit; prepared branches without a
// commit record are rolled back (presumed abort). An end record follows
// once every branch has committed.

// LedgerStep is one process navigation step a transaction commits.
type LedgerStep struct {
	Instance string `json:"i"`
	Seq      int    `json:"q"`
	Name     string `json:"n"`
	Template string `json:"tpl"`
}

type tlRecord struct {
	Commit string       `json:"c,omitempty"`
	End    string       `json:"e,omitempty"`
	At     int64        `json:"t,omitempty"`
	Steps  []LedgerStep `json:"steps,omitempty"`
}

type tranlog struct {
	path        string
	f           *os.File
	size        int64
	outstanding map[string]tlRecord
	// maxSize is the size at which the log is rewritten with only its
	// outstanding records.
	maxSize int64
	// count mirrors len(outstanding) for readers on other goroutines.
	count atomic.Int64
}

// openTranlog reads the log, keeps the commit records without an end record,
// and rewrites the file with only those.
func openTranlog(dir string) (*tranlog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("transaction log: %w", err)
	}
	t := &tranlog{path: filepath.Join(dir, "log"), outstanding: map[string]tlRecord{}, maxSize: 1 << 20}
	data, err := os.ReadFile(t.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("transaction log: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r tlRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// A torn last record: the write that was cut was never forced,
			// so its transaction never committed anywhere.
			continue
		}
		switch {
		case r.Commit != "":
			t.outstanding[r.Commit] = r
		case r.End != "":
			delete(t.outstanding, r.End)
		}
	}
	if err := t.compact(); err != nil {
		return nil, err
	}
	t.count.Store(int64(len(t.outstanding)))
	return t, nil
}

func (t *tranlog) compact() error {
	var buf bytes.Buffer
	recs := make([]tlRecord, 0, len(t.outstanding))
	for _, r := range t.outstanding {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].At < recs[j].At })
	for _, r := range recs {
		line, _ := json.Marshal(r)
		buf.Write(append(line, '\n'))
	}
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if err := writeFileAtomic(t.path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	t.f = f
	t.size = int64(buf.Len())
	return nil
}

// commit forces commit records for a batch of transactions.
func (t *tranlog) commit(recs []tlRecord) error {
	if len(recs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, r := range recs {
		line, _ := json.Marshal(r)
		buf.Write(append(line, '\n'))
	}
	if _, err := t.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	t.size += int64(buf.Len())
	for _, r := range recs {
		t.outstanding[r.Commit] = r
	}
	t.count.Store(int64(len(t.outstanding)))
	return nil
}

// end records that transactions are finished everywhere.
func (t *tranlog) end(xids []string) error {
	if len(xids) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for _, x := range xids {
		line, _ := json.Marshal(tlRecord{End: x})
		buf.Write(append(line, '\n'))
		delete(t.outstanding, x)
	}
	t.count.Store(int64(len(t.outstanding)))
	if _, err := t.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	t.size += int64(buf.Len())
	if t.size > t.maxSize {
		return t.compact()
	}
	return nil
}

func (t *tranlog) close() {
	if t.f != nil {
		t.f.Close()
	}
}
