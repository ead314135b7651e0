package lab

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// LoadOptions drive the workload through the front door.
type LoadOptions struct {
	// Rate is new orders per second.
	Rate float64
	// Duration is how long orders are sent.
	Duration time.Duration
	// Concurrency bounds orders in flight (default 32).
	Concurrency int
}

// LoadReport is what a load run did.
type LoadReport struct {
	Sent     int64            `json:"sent"`
	Accepted int64            `json:"accepted"`
	Failed   int64            `json:"failed"`
	Skipped  int64            `json:"skipped"`
	BySite   map[string]int64 `json:"bySite"`
	Errors   map[string]int64 `json:"errors,omitempty"`
	Elapsed  time.Duration    `json:"elapsed"`
	// FirstAt and LastAt bracket the accepted orders.
	FirstAt time.Time `json:"firstAt"`
	LastAt  time.Time `json:"lastAt"`
	// Orders are the ids of the accepted orders (process instance ids).
	Orders []string `json:"-"`
}

func (r LoadReport) String() string {
	var sites []string
	for _, s := range sortedKeys(r.BySite) {
		sites = append(sites, fmt.Sprintf("%s %d", s, r.BySite[s]))
	}
	s := fmt.Sprintf("%d orders sent in %s: %d accepted (%s), %d failed", r.Sent, r.Elapsed.Round(time.Millisecond), r.Accepted, strings.Join(sites, ", "), r.Failed)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d not sent (too many in flight)", r.Skipped)
	}
	return s
}

// RunLoad sends new orders to the front door at a steady rate. Failed
// orders are counted, not fatal: load keeps going through a disaster, as
// clients do.
func (l *Lab) RunLoad(ctx context.Context, o LoadOptions) (LoadReport, error) {
	rep := LoadReport{BySite: map[string]int64{}, Errors: map[string]int64{}}
	if o.Rate <= 0 {
		return rep, errors.New("load: rate must be positive")
	}
	if o.Duration <= 0 {
		return rep, errors.New("load: duration must be positive")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	fd := &client{hc: newHTTPClient(30 * time.Second), addr: l.Topo.FrontDoor.Addr(), name: "front door"}
	var mu sync.Mutex
	var sent, seq atomic.Int64
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(o.Duration)
	interval := time.Duration(float64(time.Second) / o.Rate)
	next := start
	for ctx.Err() == nil && time.Now().Before(end) {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			rep.Skipped++
			mu.Unlock()
			continue
		}
		sent.Add(1)
		n := seq.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req := orderRequest{Order: "o-" + newID(), Customer: fmt.Sprintf("customer-%03d", n%997), Amount: 10 + n%490}
			var resp OrderResponse
			err := fd.call(ctx, "/order", req, &resp)
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Failed++
				msg := err.Error()
				if len(msg) > 160 {
					msg = msg[:160] + "…"
				}
				rep.Errors[msg]++
				return
			}
			rep.Accepted++
			rep.BySite[resp.Site]++
			rep.Orders = append(rep.Orders, resp.Instance)
			if rep.FirstAt.IsZero() {
				rep.FirstAt = now
			}
			rep.LastAt = now
		}()
	}
	wg.Wait()
	rep.Sent = sent.Load()
	rep.Elapsed = time.Since(start)
	if len(rep.Errors) > 0 {
		// Keep the report short: the five commonest errors.
		type kv struct {
			k string
			v int64
		}
		var all []kv
		for k, v := range rep.Errors {
			all = append(all, kv{k, v})
		}
		sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
		rep.Errors = map[string]int64{}
		for i, e := range all {
			if i == 5 {
				break
			}
			rep.Errors[e.k] = e.v
		}
	}
	l.log.Info("load finished", zap.Int64("sent", rep.Sent), zap.Int64("accepted", rep.Accepted), zap.Int64("failed", rep.Failed))
	return rep, nil
}
