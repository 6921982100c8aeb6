package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHD is a real OpenSSH server for one test, on loopback, with its own
// host key and one authorized client key. It serves SFTP and TCP
// forwarding, as a web server's sshd does.
type SSHD struct {
	Host string // 127.0.0.1
	Port int
	// HostKey is the server's public key as known_hosts holds it
	// ("ssh-ed25519 AAAA…"); KnownHosts a file that lists it for Host
	// and Port; Key the client's private key file (unencrypted ed25519).
	HostKey, KnownHosts, Key string
	Dir                      string
	cmd                      *exec.Cmd
}

// NewSSHD starts an sshd stopped at the test's end.
func NewSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin := "/usr/sbin/sshd" // sshd wants to be run by its absolute path
	if _, err := os.Stat(bin); err != nil {
		Require(t, "OpenSSH sshd", fmt.Errorf("%s not found: install openssh-server", bin))
	}
	s := &SSHD{Host: "127.0.0.1", Port: FreePort(), Dir: t.TempDir()}
	s.Key = filepath.Join(s.Dir, "client_ed25519")
	for _, k := range []string{filepath.Join(s.Dir, "host_ed25519"), s.Key} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.Key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(s.Dir, "authorized_keys"), string(pub))
	host, err := os.ReadFile(filepath.Join(s.Dir, "host_ed25519.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(host))
	s.HostKey = f[0] + " " + f[1]
	s.KnownHosts = filepath.Join(s.Dir, "known_hosts")
	WriteFile(t, s.KnownHosts, s.KnownHostsLine()+"\n")
	cfg := filepath.Join(s.Dir, "sshd_config")
	WriteFile(t, cfg, strings.Join([]string{
		"Port " + strconv.Itoa(s.Port), "ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(s.Dir, "host_ed25519"), "PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"StrictModes no", "UsePAM no", "PermitRootLogin yes", "PasswordAuthentication no",
		"KbdInteractiveAuthentication no", "AllowTcpForwarding yes", "Subsystem sftp internal-sftp",
		"LogLevel ERROR", "",
	}, "\n"))
	os.MkdirAll("/run/sshd", 0o755) //nolint:errcheck // privilege separation needs it; sshd says so if it is missing
	var stderr bytes.Buffer
	s.cmd = exec.Command(bin, "-D", "-e", "-f", cfg)
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		Require(t, "OpenSSH sshd", err)
	}
	t.Cleanup(s.Stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start: %s", stderr.String())
		}
	}
	return s
}

// Addr is host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line of the server.
func (s *SSHD) KnownHostsLine() string { return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, s.HostKey) }

// Stop stops the server and every session it serves.
func (s *SSHD) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.KillSessions()
	s.cmd.Process.Kill() //nolint:errcheck
	s.cmd.Wait()         //nolint:errcheck
	s.cmd = nil
}

// KillSessions kills the server's session processes (each connection's
// sshd child and what it runs), as a network cut or a reboot would, and
// leaves the listener running.
func (s *SSHD) KillSessions() {
	for _, pid := range descendants(s.cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck
	}
}

// descendants are the processes below pid, children first.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		if f := strings.Fields(string(rest)); len(f) > 1 {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	var out []int
	var walk func(int)
	walk = func(pp int) {
		for p, q := range parent {
			if q == pp {
				out = append(out, p)
				walk(p)
			}
		}
	}
	walk(pid)
	return out
}
