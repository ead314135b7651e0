// Package s3test starts a real S3-compatible server for tests: SeaweedFS
// (`weed server -s3`, installed by .ci/run) on loopback ports in a temp
// folder, one per test package (TestMain), stopped when the package's tests
// end. There is no in-process fake: without the binary the tests skip
// (locally) or fail (CI=true).
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Binary is the SeaweedFS executable the tests run: $DROVER_WEED, else
// weed on PATH.
func Binary() string {
	if b := os.Getenv("DROVER_WEED"); b != "" {
		return b
	}
	p, err := exec.LookPath("weed")
	if err != nil {
		return ""
	}
	return p
}

// Server is a running SeaweedFS with its S3 gateway.
type Server struct {
	// Endpoint is 127.0.0.1:port of the S3 API.
	Endpoint  string
	AccessKey string
	SecretKey string
	Dir       string
	cmd       *exec.Cmd
	exited    chan error
	log       string
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start runs weed in dir (a fresh temp folder) and waits until its S3 API
// answers with the test credentials.
func Start(dir string) (*Server, error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New("SeaweedFS (weed) is not installed: run .ci/run's install step, or set DROVER_WEED")
	}
	ports, err := freePorts(10)
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[0]), AccessKey: "drover-test-access", SecretKey: "drover-test-secret-key-0123456789", Dir: dir}
	cfg := fmt.Sprintf(`{"identities":[{"name":"drover","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, s.AccessKey, s.SecretKey)
	cfgFile := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{"server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + data,
		"-master.port=" + p(1), "-master.port.grpc=" + p(2), "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
		"-volume.port=" + p(3), "-volume.port.grpc=" + p(4), "-volume.max=32",
		"-filer", "-filer.port=" + p(5), "-filer.port.grpc=" + p(6),
		"-s3", "-s3.port=" + p(0), "-s3.port.grpc=" + p(7), "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=" + cfgFile,
		"-metricsPort=0"}
	s.log = filepath.Join(dir, "weed.log")
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	logf.Close()
	s.cmd = cmd
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- cmd.Wait() }()
	client, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		s.Stop()
		return nil, err
	}
	deadline := time.Now().Add(180 * time.Second)
	probe := "drover-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for {
		select {
		case err := <-exited:
			exited <- err
			s.cmd = nil
			return nil, fmt.Errorf("weed exited before its S3 API answered (%v): %s", err, s.Tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// Ready when a bucket can be made and removed: the filer and a
		// volume server are up, not only the gateway.
		err := client.MakeBucket(ctx, probe, minio.MakeBucketOptions{})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil // made by an earlier round whose write failed
		}
		if err == nil {
			_, err = client.PutObject(ctx, probe, "x", strings.NewReader("x"), 1, minio.PutObjectOptions{})
			if err == nil {
				_ = client.RemoveObject(ctx, probe, "x", minio.RemoveObjectOptions{})
				err = client.RemoveBucket(ctx, probe)
			}
		}
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("weed's S3 API at %s did not answer in 180s (%v): %s", s.Endpoint, err, s.Tail())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Tail is the end of the server's log, for failure messages.
func (s *Server) Tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop ends the server and its process group.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Anything the server forked stays in its group: end it too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
}

// Package is the one server a test package shares: started by the first
// test that needs it, stopped by Main when the package's tests end, so
// packages (and helper processes) that need no server start none.
type Package struct {
	once sync.Once
	srv  *Server
	err  error
	dir  string
}

// Main runs the package's tests (m.Run) and stops the server if one was
// started: call it from TestMain.
func (p *Package) Main(run func() int) int {
	code := run()
	if p.srv != nil {
		p.srv.Stop()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
	return code
}

// TB is the part of testing.TB Get uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Get returns the package's server, starting it on first use. Without the
// binary the test skips, unless CI is set: then it fails, since CI must
// run the S3 tests.
func (p *Package) Get(t TB) *Server {
	t.Helper()
	if Binary() == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and SeaweedFS (weed) is not installed: .ci/run must install it")
		}
		t.Skip("SeaweedFS (weed) is not installed: the S3 tests need it (.ci/run builds it; or set DROVER_WEED)")
	}
	p.once.Do(func() {
		p.dir, p.err = os.MkdirTemp("", "drover-s3test-")
		if p.err == nil {
			p.srv, p.err = Start(p.dir)
		}
	})
	if p.err != nil {
		t.Fatal("start the S3 server: ", p.err)
	}
	return p.srv
}
