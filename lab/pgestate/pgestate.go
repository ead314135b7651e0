// Package pgestate is a PostgreSQL estate built from the Debian binaries for
// drover to protect: two clusters (the primary's site and the standby's),
// HAProxy in front of them, pgbench through HAProxy, and a ledger that
// proves the RPO after a failover. It creates the primary's cluster and
// the front door; drover itself seeds the standby, fails over and back,
// driven by Drover (the plan and the sites' workers), which `drover estate
// postgres` and `drover bench pgfailover` share. The clusters are
// lab/pgcluster's.
package pgestate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drover-dr/drover/lab/pgcluster"
)

// Site is one end of the estate: where its cluster listens.
type Site struct {
	Name string
	Host string
	Port int
}

// Addr is host:port.
func (s Site) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DataDir is the site's cluster directory under the estate's directory.
func (e *Estate) DataDir(s Site) string { return filepath.Join(e.Dir, s.Name, "pgdata") }

// Estate is the processes and files of one estate.
type Estate struct {
	Dir      string
	Tools    *pgcluster.Tools
	HAProxy  string
	Password string
	Primary  Site
	Standby  Site
	// Front is HAProxy's listening address (host:port).
	Front string
	// Admin, when set, is a loopback host:port where HAProxy's runtime API
	// answers too (beside the unix socket), for a shell runbook without
	// socat: bash's /dev/tcp reaches it.
	Admin string

	haproxy *exec.Cmd
}

// Socket is HAProxy's admin socket.
func (e *Estate) Socket() string { return filepath.Join(e.Dir, "haproxy.sock") }

// SocketDir is where the clusters put their unix sockets.
func (e *Estate) SocketDir() string { return filepath.Join(e.Dir, "run") }

// Missing says what the estate needs that this machine lacks, or "".
func Missing() string {
	if m := pgcluster.Missing(); m != "" {
		return m
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		return "haproxy not found on PATH (apt-get install haproxy)"
	}
	return ""
}

// New prepares an estate in dir (created, owned by the clusters' OS user
// when running as root) without starting anything.
func New(dir string, primary, standby Site, front string) (*Estate, error) {
	tools, err := pgcluster.NewTools()
	if err != nil {
		return nil, err
	}
	hap, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, errors.New("haproxy not found on PATH (apt-get install haproxy)")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	e := &Estate{Dir: abs, Tools: tools, HAProxy: hap, Primary: primary, Standby: standby, Front: front}
	for _, d := range []string{abs, e.SocketDir(), filepath.Join(abs, primary.Name), filepath.Join(abs, standby.Name)} {
		if err := tools.Mkdir(d, 0o750); err != nil {
			return nil, err
		}
	}
	pwFile := filepath.Join(abs, "password")
	if b, err := os.ReadFile(pwFile); err == nil {
		e.Password = strings.TrimSpace(string(b))
	} else {
		e.Password = fmt.Sprintf("estate-%d", time.Now().UnixNano())
		if err := os.WriteFile(pwFile, []byte(e.Password+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	tools.Env = append(tools.Env, "PGPASSWORD="+e.Password)
	return e, nil
}

// InitPrimary creates the primary's cluster ready for streaming replication
// and pg_rewind (checksums on, wal_log_hints), reachable over the
// loopback network with the estate's password. An existing one is kept.
func (e *Estate) InitPrimary(ctx context.Context) error {
	dir := e.DataDir(e.Primary)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return nil
	}
	return e.Tools.InitDB(ctx, pgcluster.InitOptions{DataDir: dir, User: "postgres", Password: e.Password, Checksums: true,
		Conf: []string{"wal_level = replica", "max_wal_senders = 10", "wal_keep_size = '512MB'", "hot_standby = on",
			"wal_log_hints = on", "max_connections = 50", "shared_buffers = '32MB'"},
		HBA: []string{"host all all 127.0.0.0/8 scram-sha-256", "host replication all 127.0.0.0/8 scram-sha-256"}})
}

// DSN is a connection string to one site (or the front door).
func (e *Estate) DSN(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return pgcluster.DSN(host, n, "postgres", e.Password, "postgres")
}

// Connect opens a connection to addr.
func (e *Estate) Connect(ctx context.Context, addr string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, e.DSN(addr))
}

// InitPgbench creates pgbench's tables at the primary (scale 1) and gives
// pgbench_history a row id, so the RPO proof can name rows.
func (e *Estate) InitPgbench(ctx context.Context) error {
	if _, err := e.Tools.Run(ctx, "pgbench", "-i", "-q", "-s", "1", "-h", e.Primary.Host, "-p", strconv.Itoa(e.Primary.Port), "-U", "postgres", "postgres"); err != nil {
		return err
	}
	c, err := e.Connect(ctx, e.Primary.Addr())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "ALTER TABLE pgbench_history ADD COLUMN IF NOT EXISTS hid bigserial")
	return err
}

// StartHAProxy writes the front door's configuration, starts HAProxy
// (in the foreground, a child of this process) with the primary's server
// ready and the standby's in maintenance.
func (e *Estate) StartHAProxy() error {
	admin := ""
	if e.Admin != "" {
		admin = fmt.Sprintf("\n    stats socket ipv4@%s level admin", e.Admin)
	}
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin%s
    pidfile %s
defaults
    mode tcp
    # A client reconnecting while the primary is lost fails at once instead
    # of retrying a dead server for seconds; its next attempt after the
    # redirect reaches the new primary.
    retries 0
    timeout connect 2s
    timeout client 1m
    timeout server 1m
frontend pg_front
    bind %s
    default_backend pg
backend pg
    server %s %s
    server %s %s
`, e.Socket(), admin, filepath.Join(e.Dir, "haproxy.pid"), e.Front, e.Primary.Name, e.Primary.Addr(), e.Standby.Name, e.Standby.Addr())
	path := filepath.Join(e.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(e.Dir, "haproxy.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(e.HAProxy, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start haproxy: %w", err)
	}
	e.haproxy = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", e.Socket()); err == nil {
			// The standby's server is put in maintenance at run time, not
			// with "disabled" in the file: a configured maintenance is one
			// the runtime API's "state ready" does not lift.
			_, err = fmt.Fprintf(c, "set server pg/%s state maint\n", e.Standby.Name)
			c.Close()
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("haproxy did not open its admin socket %s within 10s (log %s)", e.Socket(), log.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillPrimary is the disaster at the primary's site: its postmaster is
// killed (SIGKILL), as a lost machine would leave it.
func (e *Estate) KillPrimary() (int, error) {
	data, err := os.ReadFile(filepath.Join(e.DataDir(e.Primary), "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("primary not running: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return pid, err
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			return pid, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pid, fmt.Errorf("postmaster %d still runs after SIGKILL", pid)
}

// Down stops both clusters (fast) and HAProxy; what is not running is fine.
func (e *Estate) Down(ctx context.Context) {
	for _, s := range []Site{e.Primary, e.Standby} {
		_ = e.Tools.Stop(ctx, e.DataDir(s), "fast")
	}
	if e.haproxy != nil && e.haproxy.Process != nil {
		_ = e.haproxy.Process.Kill()
		_ = e.haproxy.Wait()
		e.haproxy = nil
	}
}

// Pgbench is one pgbench run through the front door.
type Pgbench struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// StartPgbench runs pgbench's TPC-B-like transactions through the front
// door for duration with clients connections.
func (e *Estate) StartPgbench(duration time.Duration, clients int) (*Pgbench, error) {
	host, port, _ := net.SplitHostPort(e.Front)
	p := &Pgbench{}
	p.cmd = exec.Command(filepath.Join(e.Tools.BinDir, "pgbench"), "-n", "-c", strconv.Itoa(clients), "-j", "1",
		"-T", strconv.Itoa(max(1, int(duration.Seconds()))), "-h", host, "-p", port, "-U", "postgres", "postgres")
	p.cmd.Env = append(os.Environ(), "PGPASSWORD="+e.Password, "PGCONNECT_TIMEOUT=3")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pgbench: %w", err)
	}
	return p, nil
}

// Wait waits for pgbench and returns what it printed. pgbench whose server
// died under it exits non-zero: that is the disaster, not an error here.
func (p *Pgbench) Wait() string {
	_ = p.cmd.Wait()
	return p.out.String()
}

// Committed counts pgbench_history rows at addr.
func (e *Estate) Committed(ctx context.Context, addr string) (int64, error) {
	c, err := e.Connect(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int64
	err = c.QueryRow(ctx, "SELECT count(*) FROM pgbench_history").Scan(&n)
	return n, err
}

// Sample is what a client saw committed at the primary at one moment: the
// pgbench_history rows visible to one snapshot and a WAL position at or
// past every one of their commit records (read in the same statement,
// after the snapshot).
type Sample struct {
	Position string
	LSN      uint64
	Rows     []int64
	At       time.Time
}

// Ledger samples the primary while pgbench runs.
type Ledger struct {
	mu      sync.Mutex
	samples []Sample
}

// maxSamples bounds the ledger's memory; old samples matter less as the
// standby's replayed position moves on.
const maxSamples = 400

// Watch samples the primary every interval until ctx ends or the primary
// stops answering.
func (e *Estate) Watch(ctx context.Context, interval time.Duration) *Ledger {
	l := &Ledger{}
	go func() {
		var c *pgx.Conn
		defer func() {
			if c != nil {
				c.Close(context.Background())
			}
		}()
		for ctx.Err() == nil {
			if c == nil {
				cc, err := e.Connect(ctx, e.Primary.Addr())
				if err != nil {
					time.Sleep(interval)
					continue
				}
				c = cc
			}
			var s Sample
			err := c.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text, coalesce(array_agg(hid), '{}') FROM pgbench_history").Scan(&s.Position, &s.Rows)
			if err != nil {
				c.Close(context.Background())
				c = nil
				time.Sleep(interval)
				continue
			}
			s.LSN, _ = ParseLSN(s.Position)
			s.At = time.Now()
			l.mu.Lock()
			l.samples = append(l.samples, s)
			if len(l.samples) > maxSamples {
				l.samples = l.samples[len(l.samples)-maxSamples:]
			}
			l.mu.Unlock()
			time.Sleep(interval)
		}
	}()
	return l
}

// Upto is the newest sample whose position the standby had replayed, and
// whether there is one.
func (l *Ledger) Upto(replayed uint64) (Sample, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.samples) - 1; i >= 0; i-- {
		if l.samples[i].LSN <= replayed {
			return l.samples[i], true
		}
	}
	return Sample{}, false
}

// Last is the newest sample.
func (l *Ledger) Last() (Sample, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) == 0 {
		return Sample{}, false
	}
	return l.samples[len(l.samples)-1], true
}

// Proof is the RPO proof: the rows committed at the primary up to the
// standby's replayed position, and which of them the new primary lacks.
type Proof struct {
	Replayed string
	Sample   Sample
	Missing  []int64
	// AfterPosition counts the rows the newest sample saw beyond the
	// replayed position (committed later, or not yet known to be covered).
	AfterPosition int
}

// Prove checks at addr (the promoted standby) every row of the newest
// sample the standby had replayed when the disaster was declared.
func (e *Estate) Prove(ctx context.Context, l *Ledger, replayed string, addr string) (Proof, error) {
	lsn, ok := ParseLSN(replayed)
	if !ok {
		return Proof{}, fmt.Errorf("replayed position %q is not an LSN", replayed)
	}
	s, ok := l.Upto(lsn)
	if !ok {
		return Proof{}, fmt.Errorf("no sample of the primary at or before %s: the ledger started too late", replayed)
	}
	p := Proof{Replayed: replayed, Sample: s}
	if last, ok := l.Last(); ok {
		p.AfterPosition = len(last.Rows) - len(s.Rows)
	}
	c, err := e.Connect(ctx, addr)
	if err != nil {
		return p, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SELECT h FROM unnest($1::bigint[]) AS h WHERE NOT EXISTS (SELECT 1 FROM pgbench_history WHERE hid = h)", s.Rows)
	if err != nil {
		return p, err
	}
	p.Missing, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	sort.Slice(p.Missing, func(i, j int) bool { return p.Missing[i] < p.Missing[j] })
	return p, err
}

// ParseLSN reads PostgreSQL's X/Y notation.
func ParseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}
