package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The transaction manager of an app server: every unit of work is a global
// transaction over branches in BPMDB, MONDB and the ME store, committed with
// two-phase commit. Transactions are batched: one prepare call, one forced
// log write and one commit call serve many.

// GlobalTx is one unit of work.
type GlobalTx struct {
	Branches []Branch
	// Steps are the process steps the transaction commits, for the ledger.
	Steps []LedgerStep

	xid  string
	done chan error
}

// ErrVotedNo is a transaction a resource manager refused to prepare.
var ErrVotedNo = errors.New("rolled back")

// ErrOutcomePending is a transaction decided commit whose branches could not
// be reached yet; recovery completes it.
var ErrOutcomePending = errors.New("commit decided, outcome pending")

type txManager struct {
	owner  string
	site   string
	db     *dbClient
	log    *zap.Logger
	tlog   *tranlog
	ledger *ledgerWriter

	queue  chan *GlobalTx
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// gate is held shared by a batch in flight; pause holds it exclusively.
	gate   sync.RWMutex
	pmu    sync.Mutex
	paused bool
	ptimer *time.Timer

	committed  atomic.Int64
	rolledBack atomic.Int64
	heuristic  atomic.Int64
	recovered  atomic.Int64
	seq        atomic.Int64
}

func newTxManager(s *labServer) (*txManager, error) {
	tlog, err := openTranlog(s.l.RuntimeDir(s.o.site, s.o.server) + "/tranlog")
	if err != nil {
		return nil, err
	}
	lw, err := openLedger(s.l.LedgerFile(s.o.site, s.o.server), s.o.site, s.o.server)
	if err != nil {
		tlog.close()
		return nil, err
	}
	return &txManager{
		owner: s.o.server, site: s.o.site, db: s.db, log: s.log, tlog: tlog, ledger: lw,
		queue: make(chan *GlobalTx, 4096),
	}, nil
}

// start recovers in-doubt transactions, then runs the commit loop.
func (t *txManager) start(ctx context.Context) error {
	if err := t.recover(ctx); err != nil {
		return fmt.Errorf("transaction recovery: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.wg.Add(1)
	go t.loop(lctx)
	return nil
}

func (t *txManager) stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
	t.tlog.close()
	t.ledger.close()
}

// Run commits transactions and returns one error per transaction.
func (t *txManager) Run(ctx context.Context, txs []*GlobalTx) []error {
	for _, tx := range txs {
		tx.done = make(chan error, 1)
		select {
		case t.queue <- tx:
		case <-ctx.Done():
			tx.done <- ctx.Err()
		}
	}
	errs := make([]error, len(txs))
	for i, tx := range txs {
		select {
		case errs[i] = <-tx.done:
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

func (t *txManager) newXID() string {
	return fmt.Sprintf("%s:%s:%d", t.owner, newID(), t.seq.Add(1))
}

func (t *txManager) loop(ctx context.Context) {
	defer t.wg.Done()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		var first *GlobalTx
		select {
		case <-ctx.Done():
			t.drain(ctx.Err())
			return
		case <-tick.C:
			t.gate.RLock()
			if err := t.recover(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("periodic transaction recovery", zap.Error(err))
			}
			t.gate.RUnlock()
			continue
		case first = <-t.queue:
		}
		batch := []*GlobalTx{first}
	collect:
		for len(batch) < 256 {
			select {
			case tx := <-t.queue:
				batch = append(batch, tx)
			default:
				break collect
			}
		}
		t.gate.RLock()
		t.runBatch(ctx, batch)
		t.gate.RUnlock()
	}
}

func (t *txManager) drain(err error) {
	for {
		select {
		case tx := <-t.queue:
			tx.done <- err
		default:
			return
		}
	}
}

func (t *txManager) runBatch(ctx context.Context, batch []*GlobalTx) {
	txns := make([]XATx, len(batch))
	for i, tx := range batch {
		tx.xid = t.newXID()
		txns[i] = XATx{XID: tx.xid, Branches: tx.Branches}
	}
	votes, err := t.db.Prepare(ctx, t.owner, txns)
	if err == nil {
		crashPoint(t.owner, crashAfterPrepare)
	}
	if err != nil {
		// Whether anything was prepared is unknown: roll back what may be;
		// recovery retries if the database cannot be reached now.
		xids := make([]string, len(batch))
		for i, tx := range batch {
			xids[i] = tx.xid
		}
		if _, rerr := t.db.Rollback(context.WithoutCancel(ctx), xids); rerr != nil {
			t.log.Warn("rollback after failed prepare", zap.Error(rerr))
		}
		for _, tx := range batch {
			tx.done <- fmt.Errorf("prepare: %w", err)
		}
		return
	}
	var yes []*GlobalTx
	var recs []tlRecord
	now := time.Now().UnixNano()
	for i, v := range votes {
		if !v.OK {
			t.rolledBack.Add(1)
			batch[i].done <- fmt.Errorf("%w: %s", ErrVotedNo, v.Reason)
			continue
		}
		yes = append(yes, batch[i])
		recs = append(recs, tlRecord{Commit: batch[i].xid, At: now, Steps: batch[i].Steps})
	}
	if len(yes) == 0 {
		return
	}
	// The commit point: once these records are on disk the transactions
	// commit, whatever happens next.
	if err := t.tlog.commit(recs); err != nil {
		xids := make([]string, len(yes))
		for i, tx := range yes {
			xids[i] = tx.xid
		}
		_, _ = t.db.Rollback(context.WithoutCancel(ctx), xids)
		for _, tx := range yes {
			tx.done <- err
		}
		return
	}
	crashPoint(t.owner, crashAfterCommitRecord)
	results := t.complete(context.WithoutCancel(ctx), recs)
	for _, tx := range yes {
		tx.done <- results[tx.xid]
	}
}

// complete commits decided transactions at the database, writes their steps
// to the ledger and ends them in the log. It returns each xid's error.
func (t *txManager) complete(ctx context.Context, recs []tlRecord) map[string]error {
	out := make(map[string]error, len(recs))
	xids := make([]string, len(recs))
	byXID := make(map[string]tlRecord, len(recs))
	for i, r := range recs {
		xids[i] = r.Commit
		byXID[r.Commit] = r
	}
	outcomes, err := t.db.Commit(ctx, xids)
	if err != nil {
		for _, x := range xids {
			out[x] = fmt.Errorf("%w: %v", ErrOutcomePending, err)
		}
		return out
	}
	ackAt := time.Now()
	var ended []string
	var steps []ledgerEntry
	for _, o := range outcomes {
		r := byXID[o.XID]
		switch o.Result {
		case "committed", "already-committed":
			t.committed.Add(1)
			for _, st := range r.Steps {
				steps = append(steps, ledgerEntry{LedgerStep: st, At: ackAt.UnixNano(), XID: o.XID})
			}
			out[o.XID] = nil
		case "heuristic":
			t.heuristic.Add(1)
			t.log.Error("heuristic outcome", zap.String("xid", o.XID), zap.String("detail", o.Detail))
			out[o.XID] = fmt.Errorf("heuristic outcome: %s", o.Detail)
		default:
			// unknown: the database never saw the transaction. Nothing can
			// commit it; record the damage and end it.
			t.heuristic.Add(1)
			t.log.Error("transaction unknown to the database", zap.String("xid", o.XID), zap.String("result", o.Result), zap.String("detail", o.Detail))
			out[o.XID] = fmt.Errorf("%s: %s", o.Result, o.Detail)
		}
		ended = append(ended, o.XID)
	}
	// The ledger records a step once its commit is acknowledged, before the
	// end record: after a crash in between, recovery writes it again (the
	// ledger check tolerates repeats).
	if err := t.ledger.append(steps); err != nil {
		t.log.Error("ledger write failed", zap.Error(err))
	}
	if err := t.tlog.end(ended); err != nil {
		t.log.Error("transaction log end records", zap.Error(err))
	}
	return out
}

// recover finishes what the log decided and rolls back prepared branches of
// this owner that the log never decided (presumed abort). It runs before
// the commit loop starts and then inside it, between batches, so no batch
// of this process is ever half-way when it looks.
func (t *txManager) recover(ctx context.Context) error {
	if n := len(t.tlog.outstanding); n > 0 {
		recs := make([]tlRecord, 0, n)
		for _, r := range t.tlog.outstanding {
			recs = append(recs, r)
		}
		res := t.complete(ctx, recs)
		done := 0
		for _, err := range res {
			if err == nil {
				done++
			}
		}
		t.recovered.Add(int64(done))
		t.log.Info("recovered in-doubt transactions from the transaction log", zap.Int("decided", n), zap.Int("committed", done))
	}
	pending, err := t.db.Recover(ctx, t.owner)
	if err != nil {
		return err
	}
	var undecided []string
	seen := map[string]bool{}
	for _, p := range pending {
		if seen[p.XID] {
			continue
		}
		seen[p.XID] = true
		if _, decided := t.tlog.outstanding[p.XID]; decided {
			continue
		}
		undecided = append(undecided, p.XID)
	}
	if len(undecided) > 0 {
		if _, err := t.db.Rollback(ctx, undecided); err != nil {
			return err
		}
		t.log.Info("rolled back prepared transactions with no commit record", zap.Int("count", len(undecided)))
	}
	return nil
}

// pause holds new batches and waits for the one in flight; it lifts itself
// after max.
func (t *txManager) pause(max time.Duration) {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if t.paused {
		return
	}
	t.gate.Lock()
	t.paused = true
	t.ptimer = time.AfterFunc(max, t.resume)
}

func (t *txManager) resume() {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if !t.paused {
		return
	}
	t.ptimer.Stop()
	t.paused = false
	t.gate.Unlock()
}

func (t *txManager) stats() map[string]any {
	return map[string]any{
		"committed": t.committed.Load(), "rolledBack": t.rolledBack.Load(),
		"heuristic": t.heuristic.Load(), "recovered": t.recovered.Load(),
		"inDoubt": t.tlog.count.Load(),
	}
}

// EnvCrash arms a crash of one lab server at a point of two-phase commit,
// for tests of in-doubt resolution: "SERVER:after-prepare" (branches
// prepared, no commit record: recovery must roll them back) or
// "SERVER:after-commit-record" (commit decided, no branch committed:
// recovery must commit them from the transaction log). The server exits
// with code 3 at its first batch that reaches the point.
const EnvCrash = "DROVER_LAB_CRASH"

const (
	crashAfterPrepare      = "after-prepare"
	crashAfterCommitRecord = "after-commit-record"
)

func crashPoint(server, point string) {
	if os.Getenv(EnvCrash) == server+":"+point {
		fmt.Fprintf(os.Stderr, "%s: crashing %s (%s)\n", server, point, EnvCrash)
		os.Exit(3)
	}
}
