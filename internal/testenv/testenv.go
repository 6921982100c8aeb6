// Package testenv starts the real services that cairn's tests use (a MinIO
// S3 server on loopback) and decides what a missing one means: under
// CI=true the test fails; elsewhere it is skipped with a message saying how
// to get it (the README's test command installs everything).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a running S3 server.
type S3 struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
}

var (
	minioOnce sync.Once
	minioSrv  *S3
	minioErr  error
	minioCmd  *exec.Cmd
	minioDir  string
)

// Main runs the tests and stops the services they started.
func Main(m *testing.M) {
	code := m.Run()
	StopMinIO()
	os.Exit(code)
}

// StopMinIO stops the MinIO server started by this process, if any, and
// removes its data.
func StopMinIO() {
	if minioCmd != nil && minioCmd.Process != nil {
		minioCmd.Process.Kill() //nolint:errcheck
		minioCmd.Wait()         //nolint:errcheck
		os.RemoveAll(minioDir)
		minioCmd = nil
	}
}

// Require fails (under CI=true) or skips the test when a service is missing.
func Require(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true: %v", what, err)
	}
	t.Skipf("SKIPPED: %s is not available (%v). Run the README's test command (./scripts/test) to install and start it.", what, err)
}

// MinIO returns a MinIO server shared by the tests of this binary, with a
// fresh bucket for the calling test.
func MinIO(t testing.TB) (S3, string) {
	t.Helper()
	minioOnce.Do(func() { minioSrv, minioErr = startMinIO() })
	Require(t, "MinIO", minioErr)
	bucket := "t-" + randomHex(6)
	cli, err := minio.New(minioSrv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(minioSrv.AccessKey, minioSrv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return *minioSrv, bucket
}

// MinIOBinary finds the minio server binary: $CAIRN_MINIO, then PATH, then
// the cache the test command builds into.
func MinIOBinary() (string, error) {
	if p := os.Getenv("CAIRN_MINIO"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	if cache, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(cache, "cairn-test", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio binary not found (set CAIRN_MINIO or put minio on PATH)")
}

// StartMinIO starts a MinIO server for the rest of the process's life
// (it is killed when the process exits).
func StartMinIO() (S3, error) {
	minioOnce.Do(func() { minioSrv, minioErr = startMinIO() })
	if minioErr != nil {
		return S3{}, minioErr
	}
	return *minioSrv, nil
}

func startMinIO() (*S3, error) {
	bin, err := MinIOBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cairn-minio-")
	if err != nil {
		return nil, err
	}
	port, console := FreePort(), FreePort()
	s := &S3{Endpoint: fmt.Sprintf("127.0.0.1:%d", port), AccessKey: "cairntest", SecretKey: "cairntest-" + randomHex(8)}
	cmd := exec.Command(bin, "server", "--quiet", "--address", s.Endpoint,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	minioCmd, minioDir = cmd, dir
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("minio did not become ready on %s", s.Endpoint)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck
	return hex.EncodeToString(b)
}
