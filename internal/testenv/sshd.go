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
	args                     []string // the command that runs it
}

// NewSSHD starts an sshd on loopback, stopped at the test's end.
func NewSSHD(t testing.TB) *SSHD { t.Helper(); return NewSSHDWith(t, SSHDOptions{}) }

// NewSSHDWith starts an sshd on loopback as o says (Dir: the test's own
// when empty), stopped at the test's end.
func NewSSHDWith(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := StartSSHD(o)
	if err != nil {
		Require(t, "OpenSSH sshd", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// SSHDOptions say where an sshd runs.
type SSHDOptions struct {
	Dir string // its keys, config and authorized_keys (required)
	// Netns is the network namespace it runs in ("": this one); Host
	// the address it listens on there ("": 127.0.0.1), Port its port
	// (0: a free one, 22 in a namespace of its own).
	Netns, Host string
	Port        int
	// AuthorizedKey is the client's public key line; "" makes a client
	// key (Key) for it.
	AuthorizedKey string
	// SFTPOnly allows SFTP and nothing else (ForceCommand internal-sftp),
	// as hosting that offers no shell does.
	SFTPOnly bool
	// ForceCommand is a program run in place of every command and
	// subsystem asked for, which finds what was asked in
	// SSH_ORIGINAL_COMMAND (a host that acts up on some commands).
	ForceCommand string
}

// StartSSHD starts an sshd; Stop stops it.
func StartSSHD(o SSHDOptions) (*SSHD, error) {
	bin := "/usr/sbin/sshd" // sshd wants to be run by its absolute path
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s not found: install openssh-server", bin)
	}
	s := &SSHD{Host: o.Host, Port: o.Port, Dir: o.Dir}
	if s.Host == "" {
		s.Host = "127.0.0.1"
	}
	if s.Port == 0 && o.Netns != "" {
		s.Port = 22
	} else if s.Port == 0 {
		s.Port = FreePort()
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, err
	}
	keys := []string{filepath.Join(s.Dir, "host_ed25519")}
	if o.AuthorizedKey == "" {
		s.Key = filepath.Join(s.Dir, "client_ed25519")
		keys = append(keys, s.Key)
	}
	for _, k := range keys {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	authorized := o.AuthorizedKey
	if s.Key != "" {
		pub, err := os.ReadFile(s.Key + ".pub")
		if err != nil {
			return nil, err
		}
		authorized = string(pub)
	}
	host, err := os.ReadFile(filepath.Join(s.Dir, "host_ed25519.pub"))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(host))
	s.HostKey = f[0] + " " + f[1]
	s.KnownHosts = filepath.Join(s.Dir, "known_hosts")
	cfg := filepath.Join(s.Dir, "sshd_config")
	for name, content := range map[string]string{
		"authorized_keys": strings.TrimSpace(authorized) + "\n",
		"known_hosts":     s.KnownHostsLine() + "\n",
		"sshd_config": strings.Join([]string{
			"Port " + strconv.Itoa(s.Port), "ListenAddress " + s.Host,
			"HostKey " + filepath.Join(s.Dir, "host_ed25519"), "PidFile " + filepath.Join(s.Dir, "sshd.pid"),
			"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
			"StrictModes no", "UsePAM no", "PermitRootLogin yes", "PasswordAuthentication no",
			"KbdInteractiveAuthentication no", "AllowTcpForwarding yes", "Subsystem sftp internal-sftp",
			"MaxSessions 64", "MaxStartups 64", "LogLevel ERROR", forced(o), "",
		}, "\n"),
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	os.MkdirAll("/run/sshd", 0o755) //nolint:errcheck // privilege separation needs it; sshd says so if it is missing
	s.args = []string{bin, "-D", "-e", "-f", cfg}
	if o.Netns != "" {
		s.args = append([]string{"ip", "netns", "exec", o.Netns}, s.args...)
	}
	return s, s.start()
}

func forced(o SSHDOptions) string {
	switch {
	case o.SFTPOnly:
		return "ForceCommand internal-sftp"
	case o.ForceCommand != "":
		return "ForceCommand " + o.ForceCommand
	}
	return ""
}

// start runs the server and waits until it listens.
func (s *SSHD) start() error {
	var stderr bytes.Buffer
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("sshd did not start: %s", stderr.String())
		}
	}
}

// Rekey gives the server a new host key, as a reinstalled host has, and
// starts it again; HostKey is the new one (KnownHosts still lists the
// old).
func (s *SSHD) Rekey() error {
	s.Stop()
	key := filepath.Join(s.Dir, "host_ed25519")
	os.Remove(key)          //nolint:errcheck
	os.Remove(key + ".pub") //nolint:errcheck
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	host, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	f := strings.Fields(string(host))
	s.HostKey = f[0] + " " + f[1]
	return s.start()
}

// Addr is host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// KnownHostsLine is the known_hosts line of the server.
func (s *SSHD) KnownHostsLine() string {
	if s.Port == 22 {
		return s.Host + " " + s.HostKey
	}
	return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, s.HostKey)
}

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

// Tmpfs mounts a tmpfs of size (as mount's size=) on dir, a small disk to
// fill for real (root needed), unmounted when t ends.
func Tmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		Require(t, "a tmpfs mount (root)", fmt.Errorf("%v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() }) //nolint:errcheck
}
