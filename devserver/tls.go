package devserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"go.temporal.io/server/common/config"
)

// TLS serves the frontend gRPC API over TLS, and over mutual TLS when
// ClientCAFile is set. Only the frontend is TLS: the internal services listen
// on 127.0.0.1 only.
type TLS struct {
	// CertFile and KeyFile are the frontend's certificate and key (PEM).
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, makes the frontend require a client
	// certificate signed by this CA (PEM): mutual TLS.
	ClientCAFile string

	// The rest is what the server's own clients (its system worker, the
	// Web UI, the start-up checks of this package) use to reach the frontend.

	// ServerCAFile is the CA (PEM) that signed CertFile. Empty: the system
	// roots.
	ServerCAFile string
	// ServerName is the name those clients verify in CertFile. Default: the
	// frontend's dial host (an IP, so CertFile needs it as an IP SAN).
	ServerName string
	// ClientCertFile and ClientKeyFile are the certificate those clients
	// present; required with ClientCAFile.
	ClientCertFile string
	ClientKeyFile  string
}

func (t *TLS) validate() error {
	if t.CertFile == "" || t.KeyFile == "" {
		return errors.New("devserver options: TLS needs both CertFile and KeyFile")
	}
	if t.ClientCAFile != "" && (t.ClientCertFile == "" || t.ClientKeyFile == "") {
		return errors.New("devserver options: TLS.ClientCAFile (mTLS) needs ClientCertFile and ClientKeyFile for the server's own clients")
	}
	if (t.ClientCertFile == "") != (t.ClientKeyFile == "") {
		return errors.New("devserver options: TLS.ClientCertFile and TLS.ClientKeyFile go together")
	}
	for field, path := range map[string]string{
		"CertFile": t.CertFile, "KeyFile": t.KeyFile, "ClientCAFile": t.ClientCAFile,
		"ServerCAFile": t.ServerCAFile, "ClientCertFile": t.ClientCertFile, "ClientKeyFile": t.ClientKeyFile,
	} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("devserver options: TLS.%s: %w", field, err)
		}
	}
	return nil
}

func (t *TLS) serverName(dialHost string) string {
	if t.ServerName != "" {
		return t.ServerName
	}
	return dialHost
}

// rootTLS is the server's TLS config: TLS on the frontend listener, and the
// matching client settings for the system worker that dials it.
func (t *TLS) rootTLS(dialHost string) config.RootTLS {
	client := config.ClientTLS{ServerName: t.serverName(dialHost), ForceTLS: true}
	if t.ServerCAFile != "" {
		client.RootCAFiles = []string{t.ServerCAFile}
	}
	server := config.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile}
	if t.ClientCAFile != "" {
		server.ClientCAFiles = []string{t.ClientCAFile}
		server.RequireClientAuth = true
	}
	return config.RootTLS{
		Frontend: config.GroupTLS{Server: server, Client: client},
		SystemWorker: config.WorkerTLS{
			CertFile: t.ClientCertFile,
			KeyFile:  t.ClientKeyFile,
			Client:   client,
		},
	}
}

// clientConfig is the crypto/tls config for this package's own SDK client.
func (t *TLS) clientConfig(dialHost string) (*tls.Config, error) {
	c := &tls.Config{ServerName: t.serverName(dialHost), MinVersion: tls.VersionTLS12}
	if t.ServerCAFile != "" {
		pem, err := os.ReadFile(t.ServerCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS.ServerCAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS.ServerCAFile %s: no PEM certificate in it", t.ServerCAFile)
		}
		c.RootCAs = pool
	}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s: %w", t.ClientCertFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
