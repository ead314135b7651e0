// Package sshdtest starts a real OpenSSH server (/usr/sbin/sshd) for tests:
// on 127.0.0.1 at a free port, with throwaway host and user keys in a temp
// dir, accepting the user the test runs as. One server serves a package's
// tests (Shared); it is stopped from TestMain.
//
// When sshd is missing a test is skipped with a message, unless CI is set:
// then it fails, so CI never passes without having run the SSH tests.
package sshdtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/drover-dr/drover/drivers"
)

// SSHD is where Debian's openssh-server puts the server.
const SSHD = "/usr/sbin/sshd"

// Server is one running sshd.
type Server struct {
	Dir     string
	Address string // 127.0.0.1
	Port    int
	User    string
	// UserKeyFile holds the private key sshd accepts for User.
	UserKeyFile string
	// KnownHosts lists the server's host key under [127.0.0.1]:Port.
	KnownHosts string
	HostKey    ssh.PublicKey
	LogFile    string

	cmd    *exec.Cmd
	exited chan error
}

// Shared starts one server on first use and stops it in Stop.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get returns the package's server, starting it once. It skips the test
// when sshd is not installed and CI is unset, and fails it otherwise.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not found (apt-get install openssh-server); SSH tests skipped outside CI", SSHD)
		}
		t.Fatalf("%s not found and CI is set: .ci/run must install openssh-server", SSHD)
	}
	s.once.Do(func() { s.srv, s.err = Start() })
	if s.err != nil {
		t.Fatalf("start sshd: %v", s.err)
	}
	return s.srv
}

// Stop stops the server if one was started.
func (s *Shared) Stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}

// Start starts an sshd in a new temp dir.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "drover-sshd-")
	if err != nil {
		return nil, err
	}
	srv, err := start(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

func start(dir string) (*Server, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Address: "127.0.0.1", User: u.Username, LogFile: filepath.Join(dir, "sshd.log")}
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	if s.HostKey, err = WriteKey(hostKeyFile); err != nil {
		return nil, err
	}
	s.UserKeyFile = filepath.Join(dir, "user_ed25519")
	userPub, err := WriteKey(s.UserKeyFile)
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	if err := WriteKnownHosts(s.KnownHosts, s.Address, s.Port, s.HostKey); err != nil {
		return nil, err
	}
	config := strings.Join([]string{
		"ListenAddress " + net.JoinHostPort(s.Address, strconv.Itoa(s.Port)),
		"HostKey " + hostKeyFile,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	configFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		return nil, err
	}
	// sshd refuses to start without its privilege separation directory,
	// which a container may lack.
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	logf, err := os.Create(s.LogFile)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// sshd wants an absolute path to re-execute itself.
	s.cmd = exec.Command(SSHD, "-D", "-e", "-f", configFile)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// A test binary that panics never reaches TestMain's Stop: the
	// server then goes with it instead of listening on.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if banner(s.Address, s.Port) {
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("sshd exited (%v): %s", err, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("sshd did not answer on port %d within 10s: %s", s.Port, s.Log())
		}
	}
}

// banner reports whether an SSH server answers on the port.
func banner(addr string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

// Stop stops the listening sshd (SIGTERM, SIGKILL after 5s) and removes
// its dir. Sessions still open end when their clients close them.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	_ = os.RemoveAll(s.Dir)
}

// Log returns sshd's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// Accepted counts the logins sshd has accepted.
func (s *Server) Accepted() int {
	return strings.Count(s.Log(), "Accepted publickey for ")
}

// Host returns a drivers.Host reaching this server; extra SSH settings are
// added to (or replace) the defaults, and a nil value removes one.
func (s *Server) Host(name string, extra map[string]any) drivers.Host {
	settings := map[string]any{
		"user":       s.User,
		"key":        "file:" + s.UserKeyFile,
		"port":       s.Port,
		"knownHosts": s.KnownHosts,
	}
	for k, v := range extra {
		if v == nil {
			delete(settings, k)
			continue
		}
		settings[k] = v
	}
	return drivers.Host{Name: name, Address: s.Address, SSH: settings}
}

// WriteKey writes a new ed25519 private key in OpenSSH form (mode 0600) and
// returns its public key.
func WriteKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "drover test key")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// WriteKnownHosts writes a known_hosts file naming key for addr:port.
func WriteKnownHosts(path, addr string, port int, key ssh.PublicKey) error {
	line := knownhosts.Line([]string{net.JoinHostPort(addr, strconv.Itoa(port))}, key)
	return os.WriteFile(path, []byte(line+"\n"), 0o600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}
