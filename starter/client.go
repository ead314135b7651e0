package starter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/drover-dr/drover/worker"
)

// Dial connects to the Temporal frontend the global flags name.
func (g *Globals) Dial() (client.Client, error) { return g.DialWith(nil) }

// DialWith is Dial with extra client options (the worker's metrics handler).
func (g *Globals) DialWith(extra func(*client.Options)) (client.Client, error) {
	opts := client.Options{
		HostPort:  g.Address,
		Namespace: g.Namespace,
		Logger:    worker.NewSDKLogger(g.Logger().Named("sdk")),
	}
	dc, fc, err := EncryptionConverters(g.EncryptionKeyFile)
	if err != nil {
		return nil, err
	}
	opts.DataConverter, opts.FailureConverter = dc, fc // nil keeps the defaults
	tlsCfg, err := g.TLS.config()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts.ConnectionOptions.TLS = tlsCfg
	}
	if extra != nil {
		extra(&opts)
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", g.Address, g.Namespace, err)
	}
	return c, nil
}

// config builds the TLS configuration from the flags: nothing when TLS is
// off, server verification with an optional CA, and a client certificate
// for mTLS when both cert and key are given.
func (t TLSFlags) config() (*tls.Config, error) {
	if !t.Enabled && t.CACert == "" && t.ClientCert == "" && t.ClientKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, BadInputf("--tls-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, BadInputf("--tls-ca: %s holds no PEM certificate", t.CACert)
		}
		cfg.RootCAs = pool
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		return nil, BadInputf("--tls-cert and --tls-key: give both for mTLS, or neither")
	}
	if t.ClientCert != "" {
		pair, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
		if err != nil {
			return nil, BadInputf("--tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
