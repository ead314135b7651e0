package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/starter"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

var serial int64

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	file := filepath.Join(dir, name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue signs a leaf certificate and writes NAME.pem and NAME-key.pem.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// pki is a CA, a server certificate for 127.0.0.1, a client certificate
// from the same CA, and a client certificate from a CA the server does not
// trust.
type pki struct {
	ca                        string
	serverCert, serverKey     string
	clientCert, clientKey     string
	strangerCert, strangerKey string
}

func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	ca := newCA(t, dir, "drover-test-ca")
	var p pki
	p.ca = ca.file
	p.serverCert, p.serverKey = ca.issue(t, dir, "frontend", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	p.clientCert, p.clientKey = ca.issue(t, dir, "drover-cli", x509.ExtKeyUsageClientAuth)
	other := newCA(t, dir, "other-ca")
	p.strangerCert, p.strangerKey = other.issue(t, dir, "stranger", x509.ExtKeyUsageClientAuth)
	return p
}

func startTLSServer(t *testing.T, tlsOpts *devserver.TLS) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		UIPort: -1,
		TLS:    tlsOpts,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// dialThroughCLI parses args with drover's real root command (global flags
// and their env vars) and dials with the resulting Globals from a probe
// subcommand, then asks the frontend for its namespace over the connection.
// No drover command only dials, so the probe stands in for one.
func dialThroughCLI(t *testing.T, srv *devserver.Server, args ...string) error {
	t.Helper()
	root, g := starter.NewRootCommand(io.Discard, io.Discard)
	root.AddCommand(&cobra.Command{
		Use: "dial-probe",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.Dial()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Second)
			defer cancel()
			_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: srv.Namespace()})
			return err
		},
	})
	root.SetArgs(append([]string{"--address", srv.FrontendAddress(), "--namespace", srv.Namespace(), "--log-level", "error"}, append(args, "dial-probe")...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	t.Logf("drover %v: %v", args, err)
	return err
}

// requireRefused checks the connection itself failed (a run failure, exit
// 1), as opposed to the flags being refused before any dial.
func requireRefused(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to Temporal at ")
	assert.Equal(t, starter.ExitRunFailed, starter.ExitCode(err))
}

func TestTLSFrontend(t *testing.T) {
	p := newPKI(t)
	srv := startTLSServer(t, &devserver.TLS{CertFile: p.serverCert, KeyFile: p.serverKey, ServerCAFile: p.ca})

	t.Run("tls with the CA", func(t *testing.T) {
		require.NoError(t, dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca))
	})
	t.Run("tls from env vars", func(t *testing.T) {
		t.Setenv("TEMPORAL_TLS", "true")
		t.Setenv("TEMPORAL_TLS_CA", p.ca)
		require.NoError(t, dialThroughCLI(t, srv))
	})
	t.Run("server name checked", func(t *testing.T) {
		err := dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca, "--tls-server-name", "not-the-frontend.example")
		requireRefused(t, err)
		assert.Contains(t, err.Error(), "not-the-frontend.example")
	})
	t.Run("untrusted without the CA", func(t *testing.T) {
		err := dialThroughCLI(t, srv, "--tls")
		requireRefused(t, err)
		assert.Contains(t, err.Error(), "certificate signed by unknown authority")
	})
	t.Run("plaintext refused", func(t *testing.T) {
		requireRefused(t, dialThroughCLI(t, srv))
	})
	t.Run("unreadable CA is bad input", func(t *testing.T) {
		err := dialThroughCLI(t, srv, "--tls", "--tls-ca", filepath.Join(t.TempDir(), "missing.pem"))
		require.Error(t, err)
		assert.Equal(t, starter.ExitBadInput, starter.ExitCode(err))
	})
}

func TestMutualTLSFrontend(t *testing.T) {
	p := newPKI(t)
	srv := startTLSServer(t, &devserver.TLS{
		CertFile: p.serverCert, KeyFile: p.serverKey, ServerCAFile: p.ca,
		ClientCAFile: p.ca, ClientCertFile: p.clientCert, ClientKeyFile: p.clientKey,
	})

	t.Run("client certificate accepted", func(t *testing.T) {
		require.NoError(t, dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey))
	})
	t.Run("client certificate from env vars", func(t *testing.T) {
		t.Setenv("TEMPORAL_TLS", "true")
		t.Setenv("TEMPORAL_TLS_CA", p.ca)
		t.Setenv("TEMPORAL_TLS_CERT", p.clientCert)
		t.Setenv("TEMPORAL_TLS_KEY", p.clientKey)
		require.NoError(t, dialThroughCLI(t, srv))
	})
	t.Run("no client certificate refused", func(t *testing.T) {
		requireRefused(t, dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca))
	})
	t.Run("certificate from another CA refused", func(t *testing.T) {
		requireRefused(t, dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca, "--tls-cert", p.strangerCert, "--tls-key", p.strangerKey))
	})
	t.Run("cert without key is bad input", func(t *testing.T) {
		err := dialThroughCLI(t, srv, "--tls", "--tls-ca", p.ca, "--tls-cert", p.clientCert)
		require.Error(t, err)
		assert.Equal(t, starter.ExitBadInput, starter.ExitCode(err))
		assert.Contains(t, err.Error(), "give both")
	})

	// Globals.Dial directly, as the lead's commands call it.
	g := &starter.Globals{
		Address: srv.FrontendAddress(), Namespace: srv.Namespace(), LogLevel: "error",
		TLS:    starter.TLSFlags{Enabled: true, CACert: p.ca, ClientCert: p.clientCert, ClientKey: p.clientKey},
		Stdout: io.Discard, Stderr: io.Discard,
	}
	c, err := g.Dial()
	require.NoError(t, err)
	c.Close()
}
