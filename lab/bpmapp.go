package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// A BPM app server runs the seed's scenario. OrderHandling (long-running)
// receives an order, invokes CheckCustomerAccountStatus (long-running,
// asynchronous: its receive commits, then its snippet and invoke commit
// together), then either UpdateOrderDatabase (a microflow, asynchronous)
// or, when the account is bad, CancelOrderandSendNotification (one-way).
// Every navigation step is one global transaction: the step in BPMDB, the
// consumed and produced messages in the ME store, an event for Monitor.

// Message types on the BPM bus.
const (
	msgCheckRequest  = "check.request"
	msgCheckContinue = "check.continue"
	msgCheckReply    = "check.reply"
	msgUpdateRequest = "update.request"
	msgUpdateReply   = "update.reply"
	msgCancelRequest = "cancel.request"
	msgSCAEcho       = "sca.echo"
)

// maxDeliveries is how often a message may fail before it goes to the dead
// letter destination.
const maxDeliveries = 5

type flowBody struct {
	Order    string `json:"order"`
	Child    string `json:"child,omitempty"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
	OK       bool   `json:"ok,omitempty"`
}

// eventBody is what Monitor receives for every step.
type eventBody struct {
	Template string `json:"template"`
	Seq      int    `json:"seq"`
	Step     string `json:"step"`
	State    string `json:"state"`
	Outcome  string `json:"outcome,omitempty"`
	// Final marks the event that ends the instance.
	Final bool `json:"final,omitempty"`
}

// Instance states.
const (
	InstanceRunning   = "running"
	InstanceCompleted = "completed"
)

// appRuntime is what every app server runs, whatever its product: a
// transaction manager that recovers in-doubt work first, and consumers of
// one destination that turn each message into a global transaction.
type appRuntime struct {
	s      *labServer
	tm     *txManager
	me     *meClient
	cancel context.CancelFunc
	wg     sync.WaitGroup

	processed    atomic.Int64
	deadLettered atomic.Int64
}

const consumersPerApp = 2

// run recovers the transaction manager, then starts the consumers of dest;
// handle turns a message into its transaction, and a message that fails too
// often goes to deadLetter.
func (a *appRuntime) run(ctx context.Context, s *labServer, dest, deadLetter string, handle func(Message) (*GlobalTx, error)) error {
	tm, err := newTxManager(s)
	if err != nil {
		return err
	}
	if err := tm.start(ctx); err != nil {
		return err
	}
	a.s, a.tm = s, tm
	a.me = newMEClient(*s.prof.Resources.Messaging, s.o.site, s.o.server, s.session)
	cctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	for i := 0; i < consumersPerApp; i++ {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			consume(cctx, s, a.me, dest, deadLetter, a.tm, handle, &a.processed, &a.deadLettered)
		}()
	}
	return nil
}

func (a *appRuntime) stop() {
	a.cancel()
	a.wg.Wait()
	a.tm.stop()
}

type bpmApp struct {
	appRuntime
	orders atomic.Int64
}

func startBPMApp(ctx context.Context, s *labServer) (*bpmApp, error) {
	a := &bpmApp{}
	if err := a.run(ctx, s, DestWork, DeadLetterBPM, a.navigate); err != nil {
		return nil, err
	}
	return a, nil
}

// consume is the message-driven loop of an app server: lease a batch, turn
// each message into a global transaction, commit them together, and put
// back or dead-letter what failed.
func consume(ctx context.Context, s *labServer, me *meClient, dest, deadLetter string, tm *txManager,
	handle func(Message) (*GlobalTx, error), processed, deadLettered *atomic.Int64) {
	var lastWarn time.Time
	// unreturned are failed messages whose lease could not be given back
	// (the database was down); they go back before anything new is taken.
	var unreturned []Stmt
	for ctx.Err() == nil {
		if len(unreturned) > 0 {
			if _, err := s.db.Exec(ctx, unreturned...); err == nil {
				unreturned = nil
			}
		}
		msgs, err := me.receive(ctx, dest, 64, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if time.Since(lastWarn) > 10*time.Second {
				s.log.Warn("cannot receive messages", zap.Error(err))
				lastWarn = time.Now()
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		var txs []*GlobalTx
		var txMsgs []Message
		var poison, release []Message
		for _, m := range msgs {
			tx, err := handle(m)
			if err != nil {
				s.log.Warn("poison message", zap.Int64("id", m.ID), zap.String("type", m.Type), zap.Error(err))
				poison = append(poison, m)
				continue
			}
			txs = append(txs, tx)
			txMsgs = append(txMsgs, m)
		}
		errs := tm.Run(ctx, txs)
		for i, err := range errs {
			if err == nil {
				processed.Add(1)
				continue
			}
			if errors.Is(err, ErrOutcomePending) || ctx.Err() != nil {
				continue
			}
			m := txMsgs[i]
			// A message whose step is locked by an in-doubt transaction is
			// not poison: it waits for transaction recovery to decide the
			// holder (after a restore from a crash-consistent snapshot the
			// first deliveries can come before recovery has run).
			if m.Deliveries >= maxDeliveries && !strings.Contains(err.Error(), lockedInDoubt) {
				s.log.Warn("message failed too often; dead-lettered", zap.Int64("id", m.ID), zap.String("type", m.Type), zap.Error(err))
				poison = append(poison, m)
			} else {
				release = append(release, m)
			}
		}
		var stmts []Stmt
		for _, m := range poison {
			stmts = append(stmts, Stmt{SQL: "UPDATE me.messages SET dest = ?, lease_until = 0, lease_owner = NULL WHERE id = ?", Args: []any{deadLetter, m.ID}})
		}
		for _, m := range release {
			stmts = append(stmts, Stmt{SQL: "UPDATE me.messages SET lease_until = 0, lease_owner = NULL WHERE id = ? AND lease_owner = ?", Args: []any{m.ID, s.o.server}})
		}
		if len(stmts) > 0 {
			if _, err := s.db.Exec(ctx, stmts...); err != nil && ctx.Err() == nil {
				s.log.Warn("return failed messages", zap.Error(err))
				unreturned = append(unreturned, stmts...)
			} else {
				deadLettered.Add(int64(len(poison)))
			}
		}
	}
}

// consumeStmt deletes a consumed message. The branch's lock on the message
// (taken at prepare) keeps every other consumer off it until the outcome;
// the lease only decides who gets it first, so it is not checked here: a
// lease released meanwhile must not turn a commit into a heuristic.
func consumeStmt(m Message) Stmt {
	return Stmt{SQL: "DELETE FROM me.messages WHERE id = ?", Args: []any{m.ID}, Expect: expect(1)}
}

func sendStmt(bus, dest, typ, instance string, body any, now int64) Stmt {
	data, _ := json.Marshal(body)
	return Stmt{SQL: "INSERT INTO me.messages(bus, dest, type, instance, body, created) VALUES (?, ?, ?, ?, ?, ?)",
		Args: []any{bus, dest, typ, instance, string(data), now}}
}

func eventStmt(instance string, ev eventBody, now int64) Stmt {
	return sendStmt(BusMonitor, DestEvents, "event", instance, ev, now)
}

func stepStmt(instance, template string, seq int, name string, now int64, server string) Stmt {
	return Stmt{SQL: "INSERT INTO bpm.steps(instance, seq, name, template, committed, server) VALUES (?, ?, ?, ?, ?, ?)",
		Args: []any{instance, seq, name, template, now, server}, Expect: expect(1)}
}

// accountOK is CheckCustomerAccountStatus's verdict: one customer in ten has
// a bad account, decided by the customer's name so a redo decides the same.
func accountOK(customer string) bool {
	h := fnv.New32a()
	h.Write([]byte(customer))
	return h.Sum32()%10 != 0
}

// Step sequence numbers are fixed per step name, so a step done twice
// cannot be stored twice.
const (
	seqReceive  = 1
	seqCheck    = 2
	seqUpdate   = 3
	seqCancel   = 3
	seqComplete = 4
	seqInvoke   = 2
)

// newOrder is OrderHandling's receive.
func (a *bpmApp) newOrder(p, customer string, amount int64) (string, *GlobalTx) {
	if p == "" {
		p = newID()
	}
	now := time.Now().UnixNano()
	srv := a.s.o.server
	body := flowBody{Order: p, Customer: customer, Amount: amount}
	return p, &GlobalTx{
		Branches: []Branch{
			// The lock keeps a second attempt at the same order (a client
			// or the front door sending it again while the first is in
			// doubt) from preparing too: the trial insert cannot see the
			// first one's uncommitted row, and both committing would make
			// the second a heuristic outcome.
			{DB: DBBPM, Locks: []string{"pi:" + p}, Stmts: []Stmt{
				{SQL: "INSERT INTO bpm.instances(id, template, state, step, customer, amount, created, updated, server) VALUES (?, ?, ?, 'receive', ?, ?, ?, ?, ?)",
					Args: []any{p, TemplateOrderHandling, InstanceRunning, customer, amount, now, now, srv}, Expect: expect(1)},
				stepStmt(p, TemplateOrderHandling, seqReceive, "receive", now, srv),
			}},
			{DB: DBME, Stmts: []Stmt{
				sendStmt(BusBPM, DestWork, msgCheckRequest, p, body, now),
				eventStmt(p, eventBody{Template: TemplateOrderHandling, Seq: seqReceive, Step: "receive", State: InstanceRunning}, now),
			}},
		},
		Steps: []LedgerStep{{Instance: p, Seq: seqReceive, Name: "receive", Template: TemplateOrderHandling}},
	}
}

// navigate turns a message into the navigation step it triggers.
func (a *bpmApp) navigate(m Message) (*GlobalTx, error) {
	var b flowBody
	if m.Type != msgSCAEcho {
		if err := json.Unmarshal(m.Body, &b); err != nil {
			return nil, fmt.Errorf("bad body: %w", err)
		}
		if b.Order == "" {
			return nil, errors.New("body names no order")
		}
	}
	now := time.Now().UnixNano()
	srv := a.s.o.server
	consumed := consumeStmt(m)
	msgLock := fmt.Sprintf("msg:%d", m.ID)
	tx := func(bpm []Stmt, bpmLocks []string, me []Stmt, steps ...LedgerStep) *GlobalTx {
		return &GlobalTx{
			Branches: []Branch{
				{DB: DBBPM, Stmts: bpm, Locks: bpmLocks},
				{DB: DBME, Stmts: append([]Stmt{consumed}, me...), Locks: []string{msgLock}},
			},
			Steps: steps,
		}
	}
	switch m.Type {
	case msgCheckRequest:
		c := newID()
		b.Child = c
		return tx([]Stmt{
			{SQL: "INSERT INTO bpm.instances(id, template, parent, state, step, customer, amount, created, updated, server) VALUES (?, ?, ?, ?, 'receive', ?, ?, ?, ?, ?)",
				Args: []any{c, TemplateCheckCustomer, b.Order, InstanceRunning, b.Customer, b.Amount, now, now, srv}, Expect: expect(1)},
			stepStmt(c, TemplateCheckCustomer, seqReceive, "receive", now, srv),
		}, []string{"pi:" + b.Order}, []Stmt{
			sendStmt(BusBPM, DestWork, msgCheckContinue, c, b, now),
			eventStmt(c, eventBody{Template: TemplateCheckCustomer, Seq: seqReceive, Step: "receive", State: InstanceRunning}, now),
		}, LedgerStep{Instance: c, Seq: seqReceive, Name: "receive", Template: TemplateCheckCustomer}), nil

	case msgCheckContinue:
		b.OK = accountOK(b.Customer)
		outcome := map[bool]string{true: "ok", false: "rejected"}[b.OK]
		return tx([]Stmt{
			{SQL: "UPDATE bpm.instances SET state = ?, outcome = ?, step = 'invoke', updated = ?, server = ? WHERE id = ? AND state = ? AND step = 'receive'",
				Args: []any{InstanceCompleted, outcome, now, srv, b.Child, InstanceRunning}, Expect: expect(1)},
			stepStmt(b.Child, TemplateCheckCustomer, seqInvoke, "invoke", now, srv),
		}, []string{"pi:" + b.Child}, []Stmt{
			sendStmt(BusBPM, DestWork, msgCheckReply, b.Order, b, now),
			eventStmt(b.Child, eventBody{Template: TemplateCheckCustomer, Seq: seqInvoke, Step: "invoke", State: InstanceCompleted, Outcome: outcome, Final: true}, now),
		}, LedgerStep{Instance: b.Child, Seq: seqInvoke, Name: "invoke", Template: TemplateCheckCustomer}), nil

	case msgCheckReply:
		step := LedgerStep{Instance: b.Order, Seq: seqCheck, Name: "checkAccount", Template: TemplateOrderHandling}
		if b.OK {
			return tx([]Stmt{
				{SQL: "UPDATE bpm.instances SET step = 'checkAccount', updated = ?, server = ? WHERE id = ? AND state = ? AND step = 'receive'",
					Args: []any{now, srv, b.Order, InstanceRunning}, Expect: expect(1)},
				stepStmt(b.Order, TemplateOrderHandling, seqCheck, "checkAccount", now, srv),
			}, []string{"pi:" + b.Order}, []Stmt{
				sendStmt(BusBPM, DestWork, msgUpdateRequest, b.Order, b, now),
				eventStmt(b.Order, eventBody{Template: TemplateOrderHandling, Seq: seqCheck, Step: "checkAccount", State: InstanceRunning}, now),
			}, step), nil
		}
		return tx([]Stmt{
			{SQL: "UPDATE bpm.instances SET state = ?, outcome = 'cancelled', step = 'checkAccount', updated = ?, server = ? WHERE id = ? AND state = ? AND step = 'receive'",
				Args: []any{InstanceCompleted, now, srv, b.Order, InstanceRunning}, Expect: expect(1)},
			stepStmt(b.Order, TemplateOrderHandling, seqCheck, "checkAccount", now, srv),
		}, []string{"pi:" + b.Order}, []Stmt{
			sendStmt(BusBPM, DestWork, msgCancelRequest, b.Order, b, now),
			eventStmt(b.Order, eventBody{Template: TemplateOrderHandling, Seq: seqCheck, Step: "checkAccount", State: InstanceCompleted, Outcome: "cancelled", Final: true}, now),
		}, step), nil

	case msgUpdateRequest:
		// UpdateOrderDatabase is a microflow: it keeps no instance of its
		// own; its transaction is recorded as a step of the caller.
		return tx([]Stmt{
			{SQL: "INSERT INTO bpm.orders(id, customer, amount, status, updated) VALUES (?, ?, ?, 'updated', ?)",
				Args: []any{b.Order, b.Customer, b.Amount, now}, Expect: expect(1)},
			stepStmt(b.Order, TemplateOrderHandling, seqUpdate, TemplateUpdateOrder, now, srv),
		}, []string{"order:" + b.Order}, []Stmt{
			sendStmt(BusBPM, DestWork, msgUpdateReply, b.Order, b, now),
			eventStmt(b.Order, eventBody{Template: TemplateOrderHandling, Seq: seqUpdate, Step: TemplateUpdateOrder, State: InstanceRunning}, now),
		}, LedgerStep{Instance: b.Order, Seq: seqUpdate, Name: TemplateUpdateOrder, Template: TemplateOrderHandling}), nil

	case msgUpdateReply:
		return tx([]Stmt{
			{SQL: "UPDATE bpm.instances SET state = ?, outcome = 'completed', step = 'complete', updated = ?, server = ? WHERE id = ? AND state = ? AND step = 'checkAccount'",
				Args: []any{InstanceCompleted, now, srv, b.Order, InstanceRunning}, Expect: expect(1)},
			stepStmt(b.Order, TemplateOrderHandling, seqComplete, "complete", now, srv),
		}, []string{"pi:" + b.Order}, []Stmt{
			eventStmt(b.Order, eventBody{Template: TemplateOrderHandling, Seq: seqComplete, Step: "complete", State: InstanceCompleted, Outcome: "completed", Final: true}, now),
		}, LedgerStep{Instance: b.Order, Seq: seqComplete, Name: "complete", Template: TemplateOrderHandling}), nil

	case msgCancelRequest:
		return tx([]Stmt{
			{SQL: "INSERT INTO bpm.notifications(instance, customer, message, created) VALUES (?, ?, ?, ?)",
				Args: []any{b.Order, b.Customer, "order " + b.Order + " cancelled: customer account check failed", now}, Expect: expect(1)},
			stepStmt(b.Order, TemplateOrderHandling, seqCancel, TemplateCancelOrder, now, srv),
		}, []string{"notify:" + b.Order}, []Stmt{
			eventStmt(b.Order, eventBody{Template: TemplateOrderHandling, Seq: seqCancel, Step: TemplateCancelOrder, State: InstanceCompleted, Outcome: "cancelled"}, now),
		}, LedgerStep{Instance: b.Order, Seq: seqCancel, Name: TemplateCancelOrder, Template: TemplateOrderHandling}), nil

	case msgSCAEcho:
		return tx([]Stmt{
			{SQL: "INSERT INTO bpm.sca_replies(id, server, created) VALUES (?, ?, ?)", Args: []any{m.Instance, srv, now}, Expect: expect(1)},
		}, nil, nil), nil
	}
	return nil, fmt.Errorf("unknown message type %q", m.Type)
}

type orderRequest struct {
	// Order is the client's order id; it becomes the instance id, so a
	// client that retries after a lost answer does not order twice.
	Order    string `json:"order,omitempty"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
}

// OrderResponse is the answer to a new order.
type OrderResponse struct {
	Instance string `json:"instance"`
	Server   string `json:"server"`
	Site     string `json:"site"`
	// Repeated is set when the order had been taken before.
	Repeated bool `json:"repeated,omitempty"`
	// Pending is set when the order's transaction is decided but its
	// commit is still to be completed by recovery.
	Pending bool `json:"pending,omitempty"`
}

func (a *bpmApp) handleOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Customer == "" {
		writeError(w, http.StatusBadRequest, errors.New("order: customer is empty"))
		return
	}
	if req.Order != "" && !validName(req.Order) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("order: id %q may hold only letters, digits, '-' and '_'", req.Order))
		return
	}
	ctx := r.Context()
	p, tx := a.newOrder(req.Order, req.Customer, req.Amount)
	err := a.tm.Run(ctx, []*GlobalTx{tx})[0]
	// A client's order sent again (by the client, or by the front door
	// after a member died) meets the attempt before it: answer as that one
	// ends. Its prepared branch holds the order's lock until its outcome is
	// decided (by its server's recovery, if it crashed), so this waits for
	// it; an attempt that rolled back leaves the order to this one.
	for retries := 0; errors.Is(err, ErrVotedNo) && req.Order != "" && retries < 3; {
		server, held, qerr := a.orderState(ctx, p)
		if qerr != nil {
			break
		}
		if server != "" {
			writeJSON(w, http.StatusOK, OrderResponse{Instance: p, Server: server, Site: a.s.o.site, Repeated: true})
			return
		}
		if !held {
			retries++
			_, tx = a.newOrder(p, req.Customer, req.Amount)
			err = a.tm.Run(ctx, []*GlobalTx{tx})[0]
			continue
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("%w (waiting for an earlier attempt in doubt)", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if errors.Is(err, ErrOutcomePending) {
		// Decided but not yet committed everywhere: recovery finishes it,
		// so the order is taken.
		a.orders.Add(1)
		writeJSON(w, http.StatusAccepted, OrderResponse{Instance: p, Server: a.s.o.server, Site: a.s.o.site, Pending: true})
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("order %s: %w", p, err))
		return
	}
	a.orders.Add(1)
	writeJSON(w, http.StatusOK, OrderResponse{Instance: p, Server: a.s.o.server, Site: a.s.o.site})
}

// orderState says which server took an order ("" if none has) and whether
// a transaction in doubt holds the order's lock.
func (a *bpmApp) orderState(ctx context.Context, id string) (server string, held bool, err error) {
	rs, err := a.s.db.Query(ctx, true,
		Stmt{SQL: "SELECT server FROM bpm.instances WHERE id = ?", Args: []any{id}},
		Stmt{SQL: "SELECT count(*) FROM bpm.xa_locks WHERE key = ?", Args: []any{"pi:" + id}})
	if err != nil {
		return "", false, err
	}
	if len(rs[0].Rows) == 1 {
		server = jsonString(rs[0].Rows[0][0])
	}
	return server, jsonInt(rs[1].Rows[0][0]) > 0, nil
}

// SCAResult is one SCA invocation's round trip.
type SCAResult struct {
	Mode    string  `json:"mode"`
	OK      bool    `json:"ok"`
	Millis  float64 `json:"ms"`
	Detail  string  `json:"detail,omitempty"`
	Handled string  `json:"handledBy,omitempty"`
}

// handleSCA invokes the EchoService component synchronously (a request
// answered in the caller's thread, reading BPMDB) or asynchronously (a
// message through the bus, consumed by any BPM app server, whose reply the
// caller waits for).
func (a *bpmApp) handleSCA(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	start := time.Now()
	ctx := r.Context()
	res := SCAResult{Mode: mode}
	switch mode {
	case "sync":
		n, err := a.s.db.QueryInt(ctx, "SELECT count(*) FROM bpm.templates WHERE state = 'started'")
		if err != nil {
			res.Detail = err.Error()
		} else {
			res.OK = true
			res.Detail = fmt.Sprintf("%d templates started", n)
			res.Handled = a.s.o.server
		}
	case "async":
		id := newID()
		now := time.Now().UnixNano()
		tx := &GlobalTx{Branches: []Branch{{DB: DBME, Stmts: []Stmt{sendStmt(BusBPM, DestWork, msgSCAEcho, id, map[string]string{"echo": id}, now)}}}}
		if err := a.tm.Run(ctx, []*GlobalTx{tx})[0]; err != nil {
			res.Detail = "send: " + err.Error()
			break
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			rs, err := a.s.db.Query(ctx, false, Stmt{SQL: "SELECT server FROM bpm.sca_replies WHERE id = ?", Args: []any{id}})
			if err == nil && len(rs[0].Rows) > 0 {
				res.OK = true
				res.Handled = jsonString(rs[0].Rows[0][0])
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !res.OK && res.Detail == "" {
			res.Detail = "no reply within 10s"
		}
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("sca: mode must be sync or async, not %q", mode))
		return
	}
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	writeJSON(w, http.StatusOK, res)
}

// handleValidateStart checks every process template can start: it is
// installed and started, and an instance of it can be created (in a
// transaction that is then rolled back).
func (a *bpmApp) handleValidateStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rs, err := a.s.db.Query(ctx, false, Stmt{SQL: "SELECT name, kind, state FROM bpm.templates ORDER BY name"})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	type tpl struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		State    string `json:"state"`
		CanStart bool   `json:"canStart"`
		Detail   string `json:"detail,omitempty"`
	}
	found := map[string]tpl{}
	for _, row := range rs[0].Rows {
		t := tpl{Name: jsonString(row[0]), Kind: jsonString(row[1]), State: jsonString(row[2])}
		found[t.Name] = t
	}
	var out []tpl
	now := time.Now().UnixNano()
	for _, want := range Templates {
		t, ok := found[want.Name]
		if !ok {
			out = append(out, tpl{Name: want.Name, Kind: want.Kind, State: "missing", Detail: "not installed in BPMDB"})
			continue
		}
		if t.State != "started" {
			t.Detail = "template is " + t.State
			out = append(out, t)
			continue
		}
		if t.Kind == "long-running" {
			_, err := a.s.db.DryRun(ctx, Stmt{
				SQL:  "INSERT INTO bpm.instances(id, template, state, step, created, updated, server) VALUES (?, ?, ?, 'receive', ?, ?, ?)",
				Args: []any{"validate-" + newID(), t.Name, InstanceRunning, now, now, a.s.o.server}, Expect: expect(1),
			})
			if err != nil {
				t.Detail = err.Error()
				out = append(out, t)
				continue
			}
		}
		t.CanStart = true
		out = append(out, t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
}
