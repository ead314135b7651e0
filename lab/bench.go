package lab

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// BenchOptions drive a workload benchmark of a running lab.
type BenchOptions struct {
	// Rate is the orders per second offered through the front door; set it
	// above what the cell can take to measure its ceiling.
	Rate float64
	// Warmup runs load before measuring.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration
	// BaselineDuration is how long the baseline runs (default 2s).
	BaselineDuration time.Duration
}

// BenchReport is a benchmark's outcome: process steps committed per second
// by the cell, beside what raw SQLite does on the same machine in the same
// run.
type BenchReport struct {
	Site           string        `json:"site"`
	Window         time.Duration `json:"window"`
	OfferedRate    float64       `json:"offeredOrdersPerSecond"`
	Orders         int64         `json:"orders"`
	FailedOrders   int64         `json:"failedOrders"`
	Steps          int64         `json:"steps"`
	StepsPerSecond float64       `json:"stepsPerSecond"`
	// BacklogStart and BacklogEnd are messages waiting at the window's
	// edges: a backlog that grows means the offered rate is above what
	// the cell sustains (the steps per second are still what it did).
	BacklogStart int64 `json:"backlogStart"`
	BacklogEnd   int64 `json:"backlogEnd"`
	// Baseline is single-row SQLite transactions per second (WAL,
	// synchronous=NORMAL) in this process, measured in the same run.
	Baseline float64 `json:"baselineTxPerSecond"`
	// Ratio is StepsPerSecond / Baseline.
	Ratio float64 `json:"ratio"`
}

func (r BenchReport) String() string {
	return fmt.Sprintf("%.0f process steps/s sustained over %s at site %s (%d steps, %d orders, %d failed; backlog %d → %d); baseline %.0f SQLite tx/s on this machine; ratio %.3f",
		r.StepsPerSecond, r.Window.Round(time.Millisecond), r.Site, r.Steps, r.Orders, r.FailedOrders, r.BacklogStart, r.BacklogEnd, r.Baseline, r.Ratio)
}

// Bench measures the cell's sustained workload at the site the front door
// points at: steps committed per second while orders arrive at the offered
// rate. Every step is a distributed transaction (prepare, forced log write,
// commit) through the database server and a message through an engine.
func (l *Lab) Bench(ctx context.Context, o BenchOptions) (BenchReport, error) {
	var rep BenchReport
	if o.Rate <= 0 || o.Duration <= 0 {
		return rep, fmt.Errorf("bench: rate and duration must be positive")
	}
	if o.BaselineDuration <= 0 {
		o.BaselineDuration = 2 * time.Second
	}
	site, err := l.CurrentRoute(ctx)
	if err != nil {
		return rep, err
	}
	rep.Site, rep.OfferedRate = site, o.Rate
	// The baseline runs first, alone, so neither disturbs the other.
	if rep.Baseline, err = sqliteBaseline(o.BaselineDuration); err != nil {
		return rep, fmt.Errorf("bench baseline: %w", err)
	}
	load := make(chan LoadReport, 1)
	loadErr := make(chan error, 1)
	go func() {
		r, err := l.RunLoad(ctx, LoadOptions{Rate: o.Rate, Duration: o.Warmup + o.Duration, Concurrency: 64})
		loadErr <- err
		load <- r
	}()
	select {
	case <-time.After(o.Warmup):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	c0, err := l.counts(ctx, site)
	if err != nil {
		return rep, err
	}
	t0 := time.Now()
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	c1, err := l.counts(ctx, site)
	if err != nil {
		return rep, err
	}
	rep.Window = time.Since(t0)
	if err := <-loadErr; err != nil {
		return rep, err
	}
	lr := <-load
	rep.Orders, rep.FailedOrders = lr.Accepted, lr.Failed
	rep.Steps = c1.Steps - c0.Steps
	rep.StepsPerSecond = float64(rep.Steps) / rep.Window.Seconds()
	rep.BacklogStart, rep.BacklogEnd = backlog(c0), backlog(c1)
	if rep.Baseline > 0 {
		rep.Ratio = rep.StepsPerSecond / rep.Baseline
	}
	return rep, nil
}

func backlog(c CellCounts) int64 {
	var n int64
	for _, v := range c.Messages {
		n += v
	}
	return n
}

// counts asks a site's database server for the cell's counts.
func (l *Lab) counts(ctx context.Context, site string) (CellCounts, error) {
	var out struct {
		Counts CellCounts `json:"counts"`
	}
	c, err := l.serverClient(site, l.Topo.Database().Name)
	if err != nil {
		return out.Counts, err
	}
	err = c.call(ctx, "/stats", nil, &out)
	return out.Counts, err
}

// sqliteBaseline commits single-row transactions into a scratch WAL database
// for d and returns how many per second.
func sqliteBaseline(d time.Duration) (float64, error) {
	dir, err := os.MkdirTemp("", "drover-bench-baseline-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, "baseline.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE steps (instance TEXT NOT NULL, seq INTEGER NOT NULL, name TEXT NOT NULL, committed INTEGER NOT NULL, PRIMARY KEY (instance, seq))"); err != nil {
		return 0, err
	}
	ins, err := db.Prepare("INSERT INTO steps(instance, seq, name, committed) VALUES (?, ?, 'step', ?)")
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		if _, err := tx.Stmt(ins).Exec(fmt.Sprintf("i%d", n), n%7, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
