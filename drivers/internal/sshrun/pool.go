package sshrun

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drover-dr/drover/drivers"
)

// DefaultIdle is how long a pooled connection stays open unused.
const DefaultIdle = 30 * time.Second

// keepaliveTimeout bounds the check of a pooled connection before reuse.
const keepaliveTimeout = 5 * time.Second

// Pool holds one SSH connection per host (user@address:port) for a driver.
// The commands of one driver call (a status, then a start) share it; a
// connection is checked before reuse and closed after it has been idle for
// the pool's idle time. A Pool is safe for concurrent use.
type Pool struct {
	logger *zap.Logger
	idle   time.Duration

	mu    sync.Mutex
	conns map[string]*entry

	dials atomic.Int64
}

type entry struct {
	key      string
	endpoint string
	users    int    // guarded by Pool.mu
	gen      uint64 // guarded by Pool.mu; bumps each time the entry goes idle
	timer    *time.Timer

	mu     sync.Mutex // held while checking or dialing
	client *ssh.Client
}

// NewPool returns a pool that closes connections idle for longer than idle
// (DefaultIdle when zero).
func NewPool(logger *zap.Logger, idle time.Duration) *Pool {
	if logger == nil {
		logger = zap.NewNop()
	}
	if idle <= 0 {
		idle = DefaultIdle
	}
	return &Pool{logger: logger, idle: idle, conns: map[string]*entry{}}
}

// Dials counts the connections the pool has opened.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Close closes every pooled connection. Commands running on them fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*entry{}
	p.mu.Unlock()
	for _, e := range conns {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		if e.client != nil {
			_ = e.client.Close()
			e.client = nil
		}
		e.mu.Unlock()
	}
	return nil
}

// acquire returns a live client for c, reusing the pooled one when it
// still answers. The caller must release the entry.
func (p *Pool) acquire(ctx context.Context, c Config) (*entry, *ssh.Client, error) {
	key := c.poolKey()
	p.mu.Lock()
	e := p.conns[key]
	if e == nil {
		e = &entry{key: key, endpoint: c.Endpoint()}
		p.conns[key] = e
	}
	e.users++
	e.gen++ // a pending idle close of this entry is now stale
	p.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		err := alive(e.client)
		if err == nil {
			return e, e.client, nil
		}
		p.logger.Info("ssh connection no longer answers; reconnecting", zap.String("host", e.endpoint), zap.Error(err))
		_ = e.client.Close()
		e.client = nil
	}
	client, err := dial(ctx, c)
	if err != nil {
		p.release(e)
		return nil, nil, err
	}
	p.dials.Add(1)
	p.logger.Debug("ssh connected", zap.String("host", e.endpoint))
	e.client = client
	return e, client, nil
}

// discard closes client if it is still e's connection, so the next acquire
// dials anew.
func (p *Pool) discard(e *entry, client *ssh.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == client {
		_ = client.Close()
		e.client = nil
	}
}

// release ends one use of e and, when nobody uses it, schedules its close.
func (p *Pool) release(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.users--
	if e.users > 0 {
		return
	}
	e.gen++
	gen := e.gen
	e.timer = time.AfterFunc(p.idle, func() { p.closeIdle(e, gen) })
}

func (p *Pool) closeIdle(e *entry, gen uint64) {
	p.mu.Lock()
	if e.users > 0 || e.gen != gen {
		p.mu.Unlock()
		return
	}
	if p.conns[e.key] == e {
		delete(p.conns, e.key)
	}
	p.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		p.logger.Debug("ssh connection idle; closed", zap.String("host", e.endpoint))
		_ = e.client.Close()
		e.client = nil
	}
}

// alive sends a keepalive request and waits for any answer: OpenSSH
// answers an unknown global request with a failure, which proves the
// connection works.
func alive(c *ssh.Client) error {
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(keepaliveTimeout):
		return fmt.Errorf("no answer to a keepalive within %s", keepaliveTimeout)
	}
}

// dial opens and authenticates one connection. Errors name the host, the
// key reference and the known_hosts file, never the key.
func dial(ctx context.Context, c Config) (*ssh.Client, error) {
	keyText, err := c.Key.Resolve()
	if err != nil {
		// A key file may be mounted before a retry: not permanent.
		return nil, fmt.Errorf("ssh to %s: key: %w", c.Endpoint(), err)
	}
	signer, err := ssh.ParsePrivateKey([]byte(keyText))
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, drivers.BadSettingsf("ssh to %s: key %s is protected by a passphrase; give an unencrypted key behind a secret reference", c.Endpoint(), c.Key)
		}
		return nil, drivers.BadSettingsf("ssh to %s: key %s is not a private key drover can read: %v", c.Endpoint(), c.Key, err)
	}
	check, err := newHostKeyCheck(c)
	if err != nil {
		return nil, err
	}

	d := net.Dialer{Timeout: c.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", c.addr())
	if err != nil {
		return nil, fmt.Errorf("ssh to %s: %w", c.Endpoint(), err)
	}
	_ = conn.SetDeadline(time.Now().Add(c.ConnectTimeout))
	// A cancelled context ends the handshake too.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	cc, chans, reqs, err := ssh.NewClientConn(conn, c.addr(), &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   check.callback,
		HostKeyAlgorithms: check.algorithms(c.addr(), conn.RemoteAddr()),
		Timeout:           c.ConnectTimeout,
	})
	stop()
	if err != nil {
		_ = conn.Close()
		switch {
		case check.verdict != nil:
			return nil, check.verdict
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh to %s: %w", c.Endpoint(), ctx.Err())
		case hostKeyAlgorithmMismatch(err):
			return nil, drivers.BadSettings(fmt.Errorf("%w: ssh to %s refused: the server offers none of the host key types %s holds for it (%s); treat it as a changed key; nothing was run",
				ErrHostKeyChanged, c.Endpoint(), c.KnownHosts, strings.Join(check.algorithms(c.addr(), conn.RemoteAddr()), ", ")))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, drivers.BadSettings(fmt.Errorf("%w: ssh to %s: the server refused key %s for user %s", ErrAuth, c.Endpoint(), c.Key, c.User))
		}
		return nil, fmt.Errorf("ssh to %s: %w", c.Endpoint(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// hostKeyCheck checks the server's key against known_hosts and keeps the
// verdict, so the dial reports the host key problem rather than the
// handshake error that wraps it.
type hostKeyCheck struct {
	c       Config
	known   ssh.HostKeyCallback
	verdict error
}

func newHostKeyCheck(c Config) (*hostKeyCheck, error) {
	if _, err := os.Stat(c.KnownHosts); errors.Is(err, os.ErrNotExist) {
		return nil, drivers.BadSettings(fmt.Errorf("%w: ssh to %s refused: known_hosts file %s does not exist, so the host cannot be checked; nothing was run",
			ErrUnknownHost, c.Endpoint(), c.KnownHosts))
	}
	known, err := knownhosts.New(c.KnownHosts)
	if err != nil {
		return nil, drivers.BadSettingsf("ssh to %s: known_hosts file %s: %v", c.Endpoint(), c.KnownHosts, err)
	}
	return &hostKeyCheck{c: c, known: known}, nil
}

func (h *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.known(hostname, remote, key)
	if err == nil {
		return nil
	}
	c := h.c
	got := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		h.verdict = fmt.Errorf("%w: ssh to %s refused: it presented host key %s, which %s:%d marks as revoked; nothing was run",
			ErrHostKeyChanged, c.Endpoint(), got, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) == 0:
		h.verdict = fmt.Errorf("%w: ssh to %s refused: the host is not in %s (it presented %s); check that fingerprint with the host's owner, then add its key to that file (ssh-keyscan -p %d %s); nothing was run",
			ErrUnknownHost, c.Endpoint(), c.KnownHosts, got, c.Port, c.Address)
	case errors.As(err, &ke):
		var want []string
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		h.verdict = fmt.Errorf("%w: ssh to %s refused: the HOST KEY HAS CHANGED: it presented %s but known_hosts holds %s; this may be a man-in-the-middle or a reinstalled host; nothing was run",
			ErrHostKeyChanged, c.Endpoint(), got, strings.Join(want, ", "))
	default:
		h.verdict = fmt.Errorf("ssh to %s: host key check: %w", c.Endpoint(), err)
		return h.verdict
	}
	h.verdict = drivers.BadSettings(h.verdict)
	return h.verdict
}

// algorithms returns the host key algorithms known_hosts holds for the
// host, so the server is asked for a key we can check: otherwise a server
// offering, say, ECDSA first to a client that knows its Ed25519 key would
// look like a changed key. Nil (the library's default) for an unknown host.
func (h *hostKeyCheck) algorithms(hostname string, remote net.Addr) []string {
	key := probeKey()
	if key == nil {
		return nil
	}
	err := h.known(hostname, remote, key)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		var list []string
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			list = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		default:
			list = []string{t}
		}
		for _, a := range list {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

var probe struct {
	sync.Once
	key ssh.PublicKey
}

// probeKey is a throwaway key no known_hosts file holds; checking it lists
// the keys the file does hold for a host.
func probeKey() ssh.PublicKey {
	probe.Do(func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			probe.key, _ = ssh.NewPublicKey(pub)
		}
	})
	return probe.key
}

// hostKeyAlgorithmMismatch reports a handshake that failed because the
// server offers no key of a type known_hosts holds for it.
func hostKeyAlgorithmMismatch(err error) bool {
	var ne *ssh.AlgorithmNegotiationError
	if errors.As(err, &ne) {
		return ne.What == "host key"
	}
	return strings.Contains(err.Error(), "no common algorithm for host key")
}
