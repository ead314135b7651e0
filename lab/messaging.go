package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The messaging engine owns its bus's store in the ME database and delivers
// its messages: consumers lease batches from it and delete what they
// consumed inside their own global transactions. Producers write messages in
// their transactions directly, as the bus's persistent store would.

// leaseTime is how long a delivered message stays reserved for its consumer
// before it is redelivered to another. Batches take milliseconds; a lease
// only orders consumers, the prepare-time lock makes consumption exclusive,
// so a short lease only speeds redelivery after a crash.
const leaseTime = 5 * time.Second

// Message is a delivered message.
type Message struct {
	ID         int64           `json:"id"`
	Type       string          `json:"type"`
	Instance   string          `json:"instance"`
	Body       json.RawMessage `json:"body"`
	Deliveries int64           `json:"deliveries"`
}

type receiveRequest struct {
	Consumer string `json:"consumer"`
	Session  string `json:"session"`
	Dest     string `json:"dest"`
	Max      int    `json:"max"`
	WaitMS   int    `json:"waitMs"`
}

type meEngine struct {
	s      *labServer
	bus    string
	cancel context.CancelFunc

	// rmu serializes session registration, so no lease is handed out to a
	// consumer while its old leases are being released.
	rmu      sync.Mutex
	mu       sync.Mutex
	cond     *sync.Cond
	version  int64
	sessions map[string]string
	received int64
}

func startME(ctx context.Context, s *labServer) (*meEngine, error) {
	bus := BusOf(s.prof.Server.Product)
	engine := s.prof.Server.Server
	// Take ownership of the bus's store, as an ME locks its data store; a
	// store that names another engine is not ours to run.
	res, err := s.db.Exec(ctx, Stmt{
		SQL:  "UPDATE me.buses SET owner = ?, heartbeat = ? WHERE name = ? AND engine = ?",
		Args: []any{s.session, time.Now().UnixNano(), bus, engine},
	})
	if err != nil {
		return nil, cannotStart("messaging engine store: %v", err)
	}
	if res[0].Affected != 1 {
		return nil, cannotStart("the ME store has no bus %s owned by engine %s", bus, engine)
	}
	mctx, cancel := context.WithCancel(context.Background())
	m := &meEngine{s: s, bus: bus, cancel: cancel, sessions: map[string]string{}}
	m.cond = sync.NewCond(&m.mu)
	go m.watch(mctx)
	return m, nil
}

func (m *meEngine) stop() {
	m.cancel()
	m.mu.Lock()
	m.cond.Broadcast()
	m.mu.Unlock()
}

// watch follows the database's commit version so waiting receivers wake
// when something may have arrived.
func (m *meEngine) watch(ctx context.Context) {
	var v int64
	for ctx.Err() == nil {
		nv, err := m.s.db.Watch(ctx, v, 2*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				m.s.log.Warn("database watch failed", zap.Error(err))
				time.Sleep(500 * time.Millisecond)
			}
			continue
		}
		if nv != v {
			v = nv
			m.mu.Lock()
			m.version = nv
			m.cond.Broadcast()
			m.mu.Unlock()
		}
	}
}

func (m *meEngine) handleReceive(w http.ResponseWriter, r *http.Request) {
	var req receiveRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Consumer == "" || req.Dest == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("receive: consumer and dest are required"))
		return
	}
	if req.Max <= 0 || req.Max > 500 {
		req.Max = 100
	}
	wait := time.Duration(req.WaitMS) * time.Millisecond
	if wait > 10*time.Second {
		wait = 10 * time.Second
	}
	ctx := r.Context()
	if err := m.register(ctx, req.Consumer, req.Session); err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("messaging engine store: %w", err))
		return
	}
	deadline := time.Now().Add(wait)
	for {
		m.mu.Lock()
		v := m.version
		m.mu.Unlock()
		msgs, err := m.lease(ctx, req)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, fmt.Errorf("messaging engine store: %w", err))
			return
		}
		if len(msgs) > 0 || !time.Now().Before(deadline) {
			m.mu.Lock()
			m.received += int64(len(msgs))
			m.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
			return
		}
		m.waitChange(ctx, v, deadline)
	}
}

// register notes a consumer's session. A consumer that comes back with a
// new session lost what it held: its leases go back on the queue at once,
// before it receives anything, except messages a prepared transaction of
// its previous life still locks (their outcome is for recovery to decide).
func (m *meEngine) register(ctx context.Context, consumer, session string) error {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.mu.Lock()
	known := m.sessions[consumer] == session
	m.mu.Unlock()
	if known {
		return nil
	}
	if _, err := m.s.db.Exec(ctx, Stmt{
		SQL: `UPDATE me.messages SET lease_until = 0, lease_owner = NULL WHERE bus = ? AND lease_owner = ?
  AND NOT EXISTS (SELECT 1 FROM me.xa_locks l WHERE l.key = 'msg:' || me.messages.id)`,
		Args: []any{m.bus, consumer},
	}); err != nil {
		return err
	}
	m.mu.Lock()
	m.sessions[consumer] = session
	m.mu.Unlock()
	return nil
}

// waitChange waits until the commit version moves past v or the deadline.
func (m *meEngine) waitChange(ctx context.Context, v int64, deadline time.Time) {
	t := time.AfterFunc(time.Until(deadline), func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer t.Stop()
	m.mu.Lock()
	for m.version == v && time.Now().Before(deadline) && ctx.Err() == nil {
		m.cond.Wait()
	}
	m.mu.Unlock()
}

func (m *meEngine) lease(ctx context.Context, req receiveRequest) ([]Message, error) {
	now := time.Now().UnixNano()
	res, err := m.s.db.Exec(ctx, Stmt{
		SQL: `UPDATE me.messages SET lease_owner = ?, lease_until = ?, deliveries = deliveries + 1
WHERE id IN (SELECT id FROM me.messages m WHERE bus = ? AND dest = ? AND lease_until < ?
  AND NOT EXISTS (SELECT 1 FROM me.xa_locks l WHERE l.key = 'msg:' || m.id) ORDER BY id LIMIT ?)
RETURNING id, type, instance, body, deliveries`,
		Args: []any{req.Consumer, now + int64(leaseTime), m.bus, req.Dest, now, req.Max},
		Rows: true,
	})
	if err != nil {
		return nil, err
	}
	var msgs []Message
	for _, row := range res[0].Rows {
		msgs = append(msgs, Message{
			ID: jsonInt(row[0]), Type: jsonString(row[1]), Instance: jsonString(row[2]),
			Body: json.RawMessage(jsonString(row[3])), Deliveries: jsonInt(row[4]),
		})
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].ID < msgs[j].ID })
	return msgs, nil
}

// meClient is a consumer's connection to its messaging engine.
type meClient struct {
	c        *client
	consumer string
	session  string
}

func newMEClient(ref Ref, site, consumer, session string) *meClient {
	return &meClient{
		c:        &client{hc: newHTTPClient(30 * time.Second), addr: ref.Address, name: "messaging engine " + ref.Name, site: site},
		consumer: consumer, session: session,
	}
}

func (m *meClient) receive(ctx context.Context, dest string, max int, wait time.Duration) ([]Message, error) {
	var resp struct {
		Messages []Message `json:"messages"`
	}
	err := m.c.call(ctx, "/me/receive", receiveRequest{Consumer: m.consumer, Session: m.session, Dest: dest, Max: max, WaitMS: int(wait / time.Millisecond)}, &resp)
	return resp.Messages, err
}
