package lab

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The ledger is the lab's proof of what was committed and when. App servers
// append every navigation step once its commit is acknowledged, with that
// instant, to files at the top of the lab dir, outside every site, so the
// ledger survives the loss of a site. A test then knows exactly which steps
// a recovery point captured at instant T must hold, and which RPO a recovery
// achieved.

type ledgerEntry struct {
	LedgerStep
	// At is when the commit was acknowledged, in Unix nanoseconds: the step
	// was in the database at this instant.
	At   int64  `json:"t"`
	XID  string `json:"x,omitempty"`
	Site string `json:"site,omitempty"`
	Srv  string `json:"srv,omitempty"`
}

type ledgerWriter struct {
	mu   sync.Mutex
	f    *os.File
	site string
	srv  string
}

func openLedger(path, site, server string) (*ledgerWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &ledgerWriter{f: f, site: site, srv: server}, nil
}

func (w *ledgerWriter) append(entries []ledgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var b strings.Builder
	for _, e := range entries {
		e.Site, e.Srv = w.site, w.srv
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.f.WriteString(b.String())
	return err
}

func (w *ledgerWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Close()
}

// StepRef names one committed step.
type StepRef struct {
	Instance string    `json:"instance"`
	Seq      int       `json:"seq"`
	Name     string    `json:"name"`
	Template string    `json:"template"`
	At       time.Time `json:"at"`
	Site     string    `json:"site"`
}

// ReadLedger returns every step the ledger holds, each once with its
// earliest commit instant (a step redone at another site after a failover
// appears twice in the files), sorted by that instant.
func ReadLedger(dir string) ([]StepRef, error) {
	files, err := filepath.Glob(filepath.Join(Layout{Dir: dir}.LedgerDir(), "*.jsonl"))
	if err != nil {
		return nil, err
	}
	type key struct {
		i string
		q int
	}
	first := map[key]StepRef{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e ledgerEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue // a torn last line of a killed server
			}
			k := key{e.Instance, e.Seq}
			at := time.Unix(0, e.At)
			if old, ok := first[k]; !ok || at.Before(old.At) {
				first[k] = StepRef{Instance: e.Instance, Seq: e.Seq, Name: e.Name, Template: e.Template, At: at, Site: e.Site}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read ledger %s: %w", path, err)
		}
	}
	out := make([]StepRef, 0, len(first))
	for _, s := range first {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		if out[i].Instance != out[j].Instance {
			return out[i].Instance < out[j].Instance
		}
		return out[i].Seq < out[j].Seq
	})
	return out, nil
}

// LedgerReport compares a site's BPM database with the ledger.
type LedgerReport struct {
	Site           string    `json:"site"`
	CaptureInstant time.Time `json:"captureInstant"`
	// LedgerSteps is every distinct step the ledger holds.
	LedgerSteps int `json:"ledgerSteps"`
	// Expected are the steps committed before the capture instant: a
	// recovery point taken then must hold every one of them.
	Expected int `json:"expected"`
	Present  int `json:"present"`
	// Excused are steps in a LostWindow: lost by an earlier failover.
	Excused int `json:"excused,omitempty"`
	// Missing lists (at most 20 of) the expected steps the site lacks.
	Missing      []StepRef `json:"missing,omitempty"`
	MissingCount int       `json:"missingCount"`
	// Duplicates lists work done twice: a step under another sequence, or
	// a process that started the same subprocess twice.
	Duplicates     []string `json:"duplicates,omitempty"`
	DuplicateCount int      `json:"duplicateCount"`
	SiteSteps      int      `json:"siteSteps"`
	// Redone counts ledger steps the site holds from a later commit: work
	// lost with the recovery point and done again after it.
	Redone int `json:"redone"`
	// CapturedThrough is the latest instant such that every ledger step
	// committed up to it is at the site: the recovery point achieved.
	CapturedThrough time.Time `json:"capturedThrough,omitzero"`
}

// OK reports no missing and no duplicated step.
func (r LedgerReport) OK() bool { return r.MissingCount == 0 && r.DuplicateCount == 0 }

// RPO is the data lost by a recovery from this site's data after a failure
// at instant failure: how far the recovery point lags it.
func (r LedgerReport) RPO(failure time.Time) time.Duration {
	if r.CapturedThrough.IsZero() || failure.Before(r.CapturedThrough) {
		return 0
	}
	return failure.Sub(r.CapturedThrough)
}

func (r LedgerReport) String() string {
	s := fmt.Sprintf("site %s at %s: %d of %d expected steps present, %d missing, %d duplicated (site holds %d steps, ledger %d, %d redone after recovery)",
		r.Site, r.CaptureInstant.Format(time.RFC3339Nano), r.Present, r.Expected, r.MissingCount, r.DuplicateCount, r.SiteSteps, r.LedgerSteps, r.Redone)
	if !r.CapturedThrough.IsZero() {
		s += "; captured through " + r.CapturedThrough.Format(time.RFC3339Nano)
	}
	return s
}

// CheckLedger checks a site's data against the ledger: every step committed
// before captureInstant must be in the site's BPMDB, and no work may be
// there twice. It reads the database file directly, so it works whether the
// site's database server runs or not.
func CheckLedger(dir, site string, captureInstant time.Time) (LedgerReport, error) {
	return CheckLedgerExcept(dir, site, captureInstant)
}

// LostWindow is work a past failover lost on purpose: steps committed at
// Site after From (the restored point's capture instant) and up to To (the
// disaster). A later check, after a failback, does not expect them.
type LostWindow struct {
	Site     string
	From, To time.Time
}

func (w LostWindow) holds(s StepRef) bool {
	return s.Site == w.Site && s.At.After(w.From) && !s.At.After(w.To)
}

// CheckLedgerExcept is CheckLedger leaving out the work the given windows
// lost: what a failback must bring home is everything committed before its
// point except what the failover before it already gave up.
func CheckLedgerExcept(dir, site string, captureInstant time.Time, lost ...LostWindow) (LedgerReport, error) {
	rep := LedgerReport{Site: site, CaptureInstant: captureInstant}
	t, err := LoadTopology(dir)
	if err != nil {
		return rep, err
	}
	if _, ok := t.Site(site); !ok {
		return rep, fmt.Errorf("check ledger: no site %q in the lab", site)
	}
	sandboxes := map[string]bool{}
	for _, ss := range t.Sites {
		sandboxes[ss.Name] = ss.Role == SiteSandbox
	}
	ledger, err := ReadLedger(dir)
	if err != nil {
		return rep, err
	}
	rep.LedgerSteps = len(ledger)
	l := Layout{Dir: dir}
	path := l.DatabaseFile(site, t.Database().Name, DBBPM)
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("check ledger: BPMDB of site %s: %w", site, err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		return rep, err
	}
	defer db.Close()
	ctx := context.Background()
	type key struct {
		i string
		q int
	}
	// committed is when the site's row was written; a row written after
	// the ledger's instant is the step redone after a recovery, not the
	// commit the ledger recorded.
	committed := map[key]int64{}
	rows, err := db.QueryContext(ctx, "SELECT instance, seq, name, committed FROM steps")
	if err != nil {
		return rep, fmt.Errorf("check ledger: read steps of site %s: %w", site, err)
	}
	byName := map[string]int{}
	for rows.Next() {
		var i, name string
		var q int
		var at int64
		if err := rows.Scan(&i, &q, &name, &at); err != nil {
			rows.Close()
			return rep, err
		}
		committed[key{i, q}] = at
		byName[i+"\x00"+name]++
		rep.SiteSteps++
	}
	rows.Close()
	for k, n := range byName {
		if n > 1 {
			rep.DuplicateCount++
			if len(rep.Duplicates) < 20 {
				parts := strings.SplitN(k, "\x00", 2)
				rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("instance %s ran step %s %d times", parts[0], parts[1], n))
			}
		}
	}
	dup, err := db.QueryContext(ctx, "SELECT parent, count(*) FROM instances WHERE parent IS NOT NULL GROUP BY parent HAVING count(*) > 1")
	if err != nil {
		return rep, fmt.Errorf("check ledger: read instances of site %s: %w", site, err)
	}
	for dup.Next() {
		var p string
		var n int
		if err := dup.Scan(&p, &n); err != nil {
			dup.Close()
			return rep, err
		}
		rep.DuplicateCount++
		if len(rep.Duplicates) < 20 {
			rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("instance %s started %s %d times", p, TemplateCheckCustomer, n))
		}
	}
	dup.Close()
	gap := false
	for _, s := range ledger {
		at, found := committed[key{s.Instance, s.Seq}]
		ok := found && at <= s.At.UnixNano()
		if found && !ok {
			rep.Redone++
		}
		if !ok {
			gap = true
		} else if !gap {
			rep.CapturedThrough = s.At
		}
		if !s.At.Before(captureInstant) {
			continue
		}
		// Work done in the isolated sandbox (a validation's test
		// instances) is never production data.
		skip := s.Site != site && sandboxes[s.Site]
		for _, w := range lost {
			skip = skip || w.holds(s)
		}
		if skip {
			rep.Excused++
			continue
		}
		rep.Expected++
		if ok {
			rep.Present++
			continue
		}
		rep.MissingCount++
		if len(rep.Missing) < 20 {
			rep.Missing = append(rep.Missing, s)
		}
	}
	return rep, nil
}
