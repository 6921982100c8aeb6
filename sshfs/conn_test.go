package sshfs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// pool is a pool that reaches srv with its test key and known_hosts.
func pool(t *testing.T, srv *testenv.SSHD, o sshfs.Options) *sshfs.Pool {
	t.Helper()
	if o.KnownHosts == "" {
		o.KnownHosts = srv.KnownHosts
	}
	if o.Identities == nil {
		o.Identities = []string{srv.Key}
	}
	if o.Config == "" {
		o.Config = "none"
	}
	o.Agent, o.Home = "none", t.TempDir()
	p := sshfs.NewPool(o)
	t.Cleanup(func() { p.Close() })
	return p
}

func host(srv *testenv.SSHD) sshfs.Host {
	return sshfs.Host{User: "root", Name: srv.Host, Port: srv.Port}
}

func run(t *testing.T, c *sshfs.Conn, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output(cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return string(out)
}

func TestDialKnownHost(t *testing.T) {
	srv := testenv.NewSSHD(t)
	p := pool(t, srv, sshfs.Options{})
	ctx := context.Background()
	c, err := p.Dial(ctx, host(srv))
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, c, "echo hello"); got != "hello\n" {
		t.Fatalf("got %q", got)
	}
	again, err := p.Dial(ctx, host(srv))
	if err != nil || again != c {
		t.Fatalf("a second dial made another connection (%v)", err)
	}
}

// An unknown host is refused under strict, with its fingerprint and the
// way to accept it; accept-new records it once and is strict after.
func TestUnknownHost(t *testing.T) {
	srv := testenv.NewSSHD(t)
	ctx := context.Background()
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	_, err := pool(t, srv, sshfs.Options{KnownHosts: kh}).Dial(ctx, host(srv))
	if !errors.Is(err, sshfs.ErrHostUnknown) || !strings.Contains(err.Error(), "SHA256:") || !strings.Contains(err.Error(), "accept-new") {
		t.Fatalf("strict, unknown host: %v", err)
	}
	if _, err := os.Stat(kh); err == nil {
		t.Fatal("strict wrote known_hosts")
	}
	if _, err := pool(t, srv, sshfs.Options{KnownHosts: kh, Policy: sshfs.AcceptNew}).Dial(ctx, host(srv)); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	b, _ := os.ReadFile(kh)
	if !strings.Contains(string(b), srv.HostKey) {
		t.Fatalf("accept-new recorded %q, want the host's key %s", b, srv.HostKey)
	}
	if _, err := pool(t, srv, sshfs.Options{KnownHosts: kh}).Dial(ctx, host(srv)); err != nil {
		t.Fatalf("strict after accept-new: %v", err)
	}
	if _, err := pool(t, srv, sshfs.Options{KnownHosts: kh, Policy: sshfs.AcceptNew}).Dial(ctx, host(srv)); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(kh); string(b2) != string(b) {
		t.Fatalf("accept-new recorded a known host again:\n%s", b2)
	}
}

// A changed key is refused, under either policy, and known_hosts is left
// as it was.
func TestChangedHostKey(t *testing.T) {
	srv, other := testenv.NewSSHD(t), testenv.NewSSHD(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := "[" + srv.Host + "]:" + itoa(srv.Port) + " " + other.HostKey
	os.WriteFile(kh, []byte(line+"\n"), 0o600)
	for _, pol := range []sshfs.HostKeyPolicy{sshfs.Strict, sshfs.AcceptNew} {
		_, err := pool(t, srv, sshfs.Options{KnownHosts: kh, Policy: pol}).Dial(context.Background(), host(srv))
		if !errors.Is(err, sshfs.ErrHostKeyChanged) || !strings.Contains(err.Error(), "ssh-keygen -R") {
			t.Fatalf("%s, changed key: %v", pol, err)
		}
	}
	if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
		t.Fatalf("known_hosts changed:\n%s", b)
	}
}

func TestAuthAndReachFailures(t *testing.T) {
	srv := testenv.NewSSHD(t)
	ctx := context.Background()
	wrong := testenv.NewSSHD(t).Key // a key the server does not authorize
	_, err := pool(t, srv, sshfs.Options{Identities: []string{wrong}}).Dial(ctx, host(srv))
	if !errors.Is(err, sshfs.ErrAuth) || !strings.Contains(err.Error(), "authorized_keys") {
		t.Fatalf("wrong key: %v", err)
	}
	_, err = pool(t, srv, sshfs.Options{Identities: []string{}}).Dial(ctx, host(srv))
	if !errors.Is(err, sshfs.ErrAuth) || !strings.Contains(err.Error(), "ssh-add") {
		t.Fatalf("no key: %v", err)
	}
	closed := sshfs.Host{User: "root", Name: "127.0.0.1", Port: testenv.FreePort()}
	_, err = pool(t, srv, sshfs.Options{}).Dial(ctx, closed)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "Try:") {
		t.Fatalf("nothing listening: %v", err)
	}
}

// ~/.ssh/config's HostName, Port, User and IdentityFile apply to an alias.
func TestSSHConfig(t *testing.T) {
	srv := testenv.NewSSHD(t)
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte("Host web1\n  HostName 127.0.0.1\n  Port "+itoa(srv.Port)+"\n  User root\n  IdentityFile "+srv.Key+"\n"), 0o600)
	p := pool(t, srv, sshfs.Options{Config: cfg, Identities: nil})
	c, err := p.Dial(context.Background(), sshfs.Host{Name: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, c, "id -un"); got != "root\n" {
		t.Fatalf("got %q", got)
	}
}

// A connection whose session processes are killed is noticed, and the
// next Dial connects again.
func TestReconnect(t *testing.T) {
	srv := testenv.NewSSHD(t)
	p := pool(t, srv, sshfs.Options{KeepAlive: 100 * time.Millisecond, Timeout: time.Second})
	ctx := context.Background()
	c, err := p.Dial(ctx, host(srv))
	if err != nil {
		t.Fatal(err)
	}
	srv.KillSessions()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the lost connection was not noticed")
	}
	c2, err := p.Dial(ctx, host(srv))
	if err != nil || c2 == c {
		t.Fatalf("no new connection: %v", err)
	}
	if got := run(t, c2, "echo back"); got != "back\n" {
		t.Fatalf("got %q", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// ssh_config's ProxyJump is honoured: the connection to the host goes
// through the jump host, and ends when the jump host's does.
func TestProxyJump(t *testing.T) {
	jump, web := testenv.NewSSHD(t), testenv.NewSSHD(t)
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(jump.KnownHostsLine()+"\n"+web.KnownHostsLine()+"\n"), 0o600)
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte("Host web\n  HostName 127.0.0.1\n  Port "+itoa(web.Port)+"\n  User root\n  ProxyJump root@127.0.0.1:"+itoa(jump.Port)+"\n"), 0o600)
	p := pool(t, web, sshfs.Options{Config: cfg, KnownHosts: known, Identities: []string{jump.Key, web.Key}, KeepAlive: 100 * time.Millisecond, Timeout: time.Second})
	c, err := p.Dial(context.Background(), sshfs.Host{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, c, "echo through"); got != "through\n" {
		t.Fatalf("got %q", got)
	}
	jump.KillSessions()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived the jump host's: it did not go through it")
	}
}
