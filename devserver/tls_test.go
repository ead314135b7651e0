package devserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap/zaptest"
)

// TestMutualTLS: with a client CA the frontend refuses clients without a
// certificate, and everything of the server's own (start-up checks, system
// worker running schedules, Web UI) still reaches it.
func TestMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca, caKey := writeCA(t, dir)
	tlsOpts := &TLS{
		CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem"),
		ClientCAFile: filepath.Join(dir, "ca.pem"), ServerCAFile: filepath.Join(dir, "ca.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"), ClientKeyFile: filepath.Join(dir, "client-key.pem"),
	}
	writeLeaf(t, ca, caKey, "server", tlsOpts.CertFile, tlsOpts.KeyFile)
	writeLeaf(t, ca, caKey, "client", tlsOpts.ClientCertFile, tlsOpts.ClientKeyFile)

	s, err := Start(ctx, Options{TLS: tlsOpts, SearchAttributes: testSearchAttributes, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })

	describe := func(tc *tls.Config) error {
		c, err := client.DialContext(ctx, client.Options{
			HostPort: s.FrontendAddress(), Namespace: s.Namespace(),
			ConnectionOptions: client.ConnectionOptions{TLS: tc},
		})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.Namespace()})
		return err
	}
	withCert, err := tlsOpts.clientConfig("127.0.0.1")
	require.NoError(t, err)
	require.NoError(t, describe(withCert))
	noCert := withCert.Clone()
	noCert.Certificates = nil
	assert.Error(t, describe(noCert), "a client without a certificate must be refused")
	assert.Error(t, describe(nil), "a plain-text client must be refused")

	// The system worker dials the frontend with the client certificate: a
	// schedule's first action starts a workflow.
	c, err := client.DialContext(ctx, client.Options{
		HostPort: s.FrontendAddress(), Namespace: s.Namespace(),
		ConnectionOptions: client.ConnectionOptions{TLS: withCert},
	})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:                 "tls-schedule",
		Spec:               client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
		Action:             &client.ScheduleWorkflowAction{ID: "tls-scheduled", Workflow: "echo", TaskQueue: "nobody-polls"},
		TriggerImmediately: true,
	})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		ids, err := listIDs(ctx, c, `TemporalScheduledById = "tls-schedule"`)
		require.NoError(ct, err)
		assert.Len(ct, ids, 1)
	}, 30*time.Second, 100*time.Millisecond)

	// The Web UI's API reaches the frontend over mTLS too.
	assert.Regexp(t, `"name":\s*"default"`, httpGet(t, s.UIURL()+"/api/v1/namespaces/default"))
}

func writeCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "drover test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return ca, key
}

// writeLeaf writes a certificate for 127.0.0.1 good for server and client use.
func writeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	writePEM(t, certFile, "CERTIFICATE", der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
