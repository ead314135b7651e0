// Package sshrun runs a driver's commands on a host that has no drover
// worker of its own, over SSH (golang.org/x/crypto/ssh), with the same
// guarantees drivers/internal/cmdrun gives locally: a timeout that ends the
// command's whole process group, output bounded head and tail, and nothing
// secret on a command line, in output or in an error.
//
// A host's SSH settings (drivers.Host.SSH) are decoded strictly:
//
//	user:           login name (required)
//	key:            secret reference (env:NAME or file:PATH) to an unencrypted
//	                private key in OpenSSH or PEM form (required)
//	port:           default 22
//	knownHosts:     known_hosts file, default ~/.ssh/known_hosts of the user
//	                the worker runs as; ${VAR} and a leading ~/ are expanded
//	connectTimeout: TCP connect plus SSH handshake, default 15s
//
// The host key is checked strictly against knownHosts: an unknown host and a
// changed key are both refused before anything runs, with an error that says
// which (ErrUnknownHost, ErrHostKeyChanged), marked permanent.
//
// How a command runs remotely. The remote user's login shell must be
// POSIX-like (sh, bash, dash, ksh, zsh) and the host a Linux with setsid
// (util-linux). The login shell is handed a fixed wrapper (POSIX sh) with
// the command's argv as quoted arguments; no secret is on that command
// line. The wrapper first reads `export NAME='value'` lines
// from stdin up to a per-run nonce line, so secret environment values reach
// the command without appearing in `ps`, then starts the command under
// setsid (a new session, so its pid is its process group id) with stdout and
// stderr on one stream, and reports the pid and later the exit status on
// its own stderr, prefixed by the nonce. On a timeout or a cancelled context
// a second session on the same connection sends SIGTERM to that group, waits
// out the grace period, then sends SIGKILL to what is left.
//
// Connections are pooled per user@address:port (Pool): the several commands
// of one driver call share one connection, which is checked with a
// keepalive before reuse and closed once it has been idle a while.
package sshrun

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Defaults used when a host's settings leave a field out.
const (
	DefaultPort           = 22
	DefaultConnectTimeout = 15 * time.Second
)

// settings is the strict shape of drivers.Host.SSH.
type settings struct {
	User           string           `json:"user"`
	Key            string           `json:"key"`
	Port           int              `json:"port"`
	KnownHosts     string           `json:"knownHosts"`
	ConnectTimeout drivers.Duration `json:"connectTimeout"`
}

// Config is a host's SSH settings, checked.
type Config struct {
	// Host is the plan's name for the host, for messages (may be empty).
	Host           string
	User           string
	Address        string
	Port           int
	Key            secret.Ref
	KnownHosts     string
	ConnectTimeout time.Duration
}

// Endpoint is user@address:port, how messages and evidence name the host.
func (c Config) Endpoint() string { return c.User + "@" + c.addr() }

func (c Config) addr() string { return net.JoinHostPort(c.Address, strconv.Itoa(c.Port)) }

// Where names the host for evidence: the plan's name and the endpoint.
func (c Config) Where() string {
	if c.Host == "" {
		return "ssh " + c.Endpoint()
	}
	return c.Host + " (ssh " + c.Endpoint() + ")"
}

// poolKey separates connections made with different credentials or
// known_hosts files to the same endpoint, so a changed setting is never
// served by a connection checked under the old one.
func (c Config) poolKey() string {
	return c.Endpoint() + "|" + string(c.Key) + "|" + c.KnownHosts
}

// Parse checks a host's SSH settings. Every error is marked
// drivers.ErrBadSettings and names the host and the field.
func Parse(h drivers.Host) (Config, error) {
	name := h.Name
	if name == "" {
		name = h.Address
	}
	bad := func(format string, args ...any) error {
		return drivers.BadSettingsf("host %s: ssh %s", name, fmt.Sprintf(format, args...))
	}
	var s settings
	if err := drivers.DecodeSettings(h.SSH, &s); err != nil {
		// DecodeSettings says "settings: unknown field \"x\"".
		return Config{}, bad("%s", strings.TrimPrefix(err.Error(), "settings: "))
	}
	c := Config{Host: h.Name, User: s.User, Address: h.Address, Port: s.Port, Key: secret.Ref(s.Key),
		ConnectTimeout: s.ConnectTimeout.D()}
	var errs []string
	if c.Address == "" {
		errs = append(errs, "address: required for a host reached over SSH")
	} else if _, _, err := net.SplitHostPort(c.Address); err == nil {
		errs = append(errs, fmt.Sprintf("address %q: give the host alone and the port as ssh.port", c.Address))
	}
	if c.User == "" {
		errs = append(errs, "user: required")
	}
	if s.Key == "" {
		errs = append(errs, "key: required (env:NAME or file:PATH of a private key)")
	} else if err := c.Key.Check(); err != nil {
		errs = append(errs, "key: "+err.Error())
	}
	switch {
	case c.Port == 0:
		c.Port = DefaultPort
	case c.Port < 0 || c.Port > 65535:
		errs = append(errs, fmt.Sprintf("port: %d is not a TCP port", c.Port))
	}
	switch {
	case c.ConnectTimeout == 0:
		c.ConnectTimeout = DefaultConnectTimeout
	case c.ConnectTimeout < 0:
		errs = append(errs, "connectTimeout: must be positive")
	}
	kh, err := knownHostsPath(s.KnownHosts)
	if err != nil {
		errs = append(errs, "knownHosts: "+err.Error())
	}
	c.KnownHosts = kh
	if len(errs) > 0 {
		return Config{}, bad("%s", strings.Join(errs, "; "))
	}
	return c, nil
}

func knownHostsPath(p string) (string, error) {
	if p == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no default (the worker's home directory is unknown: %v); give a path", err)
		}
		return filepath.Join(home, ".ssh", "known_hosts"), nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%q: the worker's home directory is unknown: %v", p, err)
		}
		return filepath.Join(home, rest), nil
	}
	return drivers.ExpandPath(p)
}

// Errors a dial can end with, for errors.Is. All three are also marked
// drivers.ErrBadSettings: retrying does not fix them, a person must.
var (
	ErrUnknownHost    = errors.New("ssh host key unknown")
	ErrHostKeyChanged = errors.New("ssh host key changed")
	ErrAuth           = errors.New("ssh authentication refused")
)
