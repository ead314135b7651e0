package starter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"
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
	if g.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(g.APIKey)
	}
	tlsCfg, err := g.TLS.config(g.APIKey != "")
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

// TLSFlags configure TLS and mTLS to the Temporal frontend. The PEM data
// fields come only from the temporal CLI's *_DATA environment variables, for
// certificates handed to a container as values rather than files.
type TLSFlags struct {
	CACert     string
	ClientCert string
	ClientKey  string
	ServerName string
	Enabled    bool
	// Disabled is an explicit TEMPORAL_TLS=false: no TLS even with an API key.
	Disabled                bool
	DisableHostVerification bool
	CAData, CertData        string
	KeyData                 string
}

// Environment variables for the connection flags: drover's own names first,
// then the temporal CLI's (docs.temporal.io, client environment
// configuration), so one environment serves both tools; drover's name wins
// when both are set.
var (
	envTLSCA         = []string{"TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"}
	envTLSCert       = []string{"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_CLIENT_CERT_PATH"}
	envTLSKey        = []string{"TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CLIENT_KEY_PATH"}
	envTLSServerName = []string{"TEMPORAL_TLS_SERVER_NAME"}
	envTLSNoVerify   = []string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"}
)

// addConnectionFlags defines the flags that say where Temporal is and how to
// reach it, their defaults read from the environment.
func addConnectionFlags(pf *pflag.FlagSet, g *Globals) {
	pf.StringVar(&g.Address, "address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	pf.StringVar(&g.Namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	tlsOn, tlsSet := envBool("TEMPORAL_TLS")
	g.TLS.Disabled = tlsSet && !tlsOn
	pf.BoolVar(&g.TLS.Enabled, "tls", tlsOn, "use TLS to the frontend (env TEMPORAL_TLS=true)")
	pf.StringVar(&g.TLS.CACert, "tls-ca", envFirst(envTLSCA...), "CA certificate file for the frontend (env TEMPORAL_TLS_CA or TEMPORAL_TLS_SERVER_CA_CERT_PATH)")
	pf.StringVar(&g.TLS.ClientCert, "tls-cert", envFirst(envTLSCert...), "client certificate file for mTLS (env TEMPORAL_TLS_CERT or TEMPORAL_TLS_CLIENT_CERT_PATH)")
	pf.StringVar(&g.TLS.ClientKey, "tls-key", envFirst(envTLSKey...), "client key file for mTLS (env TEMPORAL_TLS_KEY or TEMPORAL_TLS_CLIENT_KEY_PATH)")
	pf.StringVar(&g.TLS.ServerName, "tls-server-name", envFirst(envTLSServerName...), "server name to verify (env TEMPORAL_TLS_SERVER_NAME)")
	noVerify, _ := envBool(envTLSNoVerify[0])
	pf.BoolVar(&g.TLS.DisableHostVerification, "tls-disable-host-verification", noVerify,
		"do not verify the frontend's certificate against its host name (env TEMPORAL_TLS_DISABLE_HOST_VERIFICATION)")
	pf.StringVar(&g.APIKey, "api-key", os.Getenv("TEMPORAL_API_KEY"), "API key for the frontend, sent as a bearer token over TLS (env TEMPORAL_API_KEY)")
	g.TLS.CAData = os.Getenv("TEMPORAL_TLS_SERVER_CA_CERT_DATA")
	g.TLS.CertData = os.Getenv("TEMPORAL_TLS_CLIENT_CERT_DATA")
	g.TLS.KeyData = os.Getenv("TEMPORAL_TLS_CLIENT_KEY_DATA")
}

// envFirst returns the first of the variables that is set and not empty.
func envFirst(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// envBool reads a boolean variable; set says whether it held one.
func envBool(name string) (value, set bool) {
	v, err := strconv.ParseBool(os.Getenv(name))
	return v && err == nil, err == nil
}

// config builds the TLS configuration from the flags: nothing when TLS is
// off, server verification with an optional CA, and a client certificate
// for mTLS when both cert and key are given. An API key turns TLS on unless
// TEMPORAL_TLS=false says otherwise, as the temporal CLI does.
func (t TLSFlags) config(apiKey bool) (*tls.Config, error) {
	wanted := t.Enabled || t.CACert != "" || t.ClientCert != "" || t.ClientKey != "" || t.CAData != "" || t.CertData != "" ||
		t.KeyData != "" || t.DisableHostVerification || (apiKey && !t.Disabled)
	if !wanted {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.DisableHostVerification}
	caPEM, caFrom := []byte(t.CAData), "TEMPORAL_TLS_SERVER_CA_CERT_DATA"
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, BadInputf("--tls-ca: %v", err)
		}
		caPEM, caFrom = pem, t.CACert
	}
	if len(caPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, BadInputf("--tls-ca: %s holds no PEM certificate", caFrom)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.ClientCert != "" || t.ClientKey != "":
		if (t.ClientCert == "") != (t.ClientKey == "") {
			return nil, BadInputf("--tls-cert and --tls-key: give both for mTLS, or neither")
		}
		pair, err := tls.LoadX509KeyPair(t.ClientCert, t.ClientKey)
		if err != nil {
			return nil, BadInputf("--tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case t.CertData != "" || t.KeyData != "":
		if (t.CertData == "") != (t.KeyData == "") {
			return nil, BadInputf("TEMPORAL_TLS_CLIENT_CERT_DATA and TEMPORAL_TLS_CLIENT_KEY_DATA: give both for mTLS, or neither")
		}
		pair, err := tls.X509KeyPair([]byte(t.CertData), []byte(t.KeyData))
		if err != nil {
			return nil, BadInputf("TEMPORAL_TLS_CLIENT_CERT_DATA/TEMPORAL_TLS_CLIENT_KEY_DATA: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
