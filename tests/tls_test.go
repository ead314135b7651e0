package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/drover-dr/drover/codec"
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

type secretInput struct {
	Password string `json:"password"`
}

func leakyActivity(_ context.Context, in secretInput) error {
	return temporal.NewNonRetryableApplicationError("login refused for password "+in.Password, "LoginError", nil)
}

func leakyWorkflow(ctx workflow.Context, in secretInput) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	err := workflow.ExecuteActivity(ctx, leakyActivity, in).Get(ctx, nil)
	if err == nil {
		return "", errors.New("leakyActivity should have failed")
	}
	return "recovered from: " + err.Error(), nil
}

// TestEncryptedHistoryOverMutualTLS runs a workflow over mTLS with the
// converters --encryption-key-file gives, then reads the raw history as the
// server stores it: the secret is in no payload and no failure message, and
// the codec server's handler decodes the payloads back for the UI.
func TestEncryptedHistoryOverMutualTLS(t *testing.T) {
	const secret = "db2-password-s3cr3t"
	p := newPKI(t)
	srv := startTLSServer(t, &devserver.TLS{
		CertFile: p.serverCert, KeyFile: p.serverKey, ServerCAFile: p.ca,
		ClientCAFile: p.ca, ClientCertFile: p.clientCert, ClientKeyFile: p.clientKey,
	})
	keyFile := filepath.Join(t.TempDir(), "payload.key")
	var out bytes.Buffer
	require.Equal(t, starter.ExitOK, starter.Main([]string{"keys", "new-encryption-key", "--out", keyFile}, &out, &out), out.String())
	dc, fc, err := starter.EncryptionConverters(keyFile)
	require.NoError(t, err)

	pair, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(p.ca)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	tlsCfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	dial := func(withKey bool) client.Client {
		o := client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg}}
		if withKey {
			o.DataConverter, o.FailureConverter = dc, fc
		}
		c, err := client.Dial(o)
		require.NoError(t, err)
		t.Cleanup(c.Close)
		return c
	}
	c := dial(true)
	w := worker.New(c, "encrypted", worker.Options{})
	w.RegisterWorkflow(leakyWorkflow)
	w.RegisterActivity(leakyActivity)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "encrypted"}, leakyWorkflow, secretInput{Password: secret})
	require.NoError(t, err)
	var result string
	require.NoError(t, run.Get(ctx, &result))
	assert.Contains(t, result, secret, "the keyed client reads everything back")

	// The raw history, read by a client without the key.
	raw := dial(false)
	var payloads []*commonpb.Payload
	var sawFailure bool
	it := raw.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		b, err := proto.Marshal(ev)
		require.NoError(t, err)
		require.NotContains(t, string(b), secret, "event %d (%s) leaks the secret", ev.GetEventId(), ev.GetEventType())
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			payloads = append(payloads, a.GetInput().GetPayloads()...)
		}
		if a := ev.GetWorkflowExecutionCompletedEventAttributes(); a != nil {
			payloads = append(payloads, a.GetResult().GetPayloads()...)
		}
		if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
			sawFailure = true
			assert.Equal(t, "Encoded failure", a.GetFailure().GetMessage())
			payloads = append(payloads, a.GetFailure().GetEncodedAttributes())
		}
	}
	require.True(t, sawFailure, "the activity failure is in the history")
	require.Len(t, payloads, 3)

	// What the Web UI does: POST the payloads to the codec server.
	key, err := codec.LoadKey(keyFile)
	require.NoError(t, err)
	cd, err := codec.NewCodec(key)
	require.NoError(t, err)
	hs := httptest.NewServer(codec.NewHTTPHandler(cd, codec.HTTPOptions{AllowedOrigins: []string{"http://127.0.0.1:8233"}}))
	defer hs.Close()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/decode", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	req.Header.Set("X-Namespace", srv.Namespace())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	decoded, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(decoded))
	var got commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(decoded, &got))
	require.Len(t, got.Payloads, 3)
	for i, pl := range got.Payloads {
		assert.Contains(t, string(pl.GetData()), secret, "decoded payload %d", i)
	}
}
