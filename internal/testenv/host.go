package testenv

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Host is another machine for a test: a network namespace of its own,
// linked to the test's by a veth pair, with its own sshd on port 22 and,
// if asked, its own MariaDB listening on its own loopback (127.0.0.1:3306
// there), which the test's side can reach only through SSH. It shares the
// file system with the test (a namespace separates the network only), so
// a test can look at the files a remote operation wrote.
type Host struct {
	Netns string // the namespace's name
	Addr  string // its address, as the test's side reaches it
	SSHD  *SSHD
	// DB is its MariaDB (nil without one): Socket is the server's unix
	// socket (for the test to seed and look, on the shared file
	// system), User and Password an account for cairn with every
	// privilege, from 127.0.0.1 and localhost.
	DB *HostDB

	veth string
}

// HostDB is a Host's own MariaDB server.
type HostDB struct {
	Socket, User, Password string
	cmd                    *exec.Cmd
}

// HostOptions describe a Host.
type HostOptions struct {
	Dir           string // its sshd's and MariaDB's files (required)
	AuthorizedKey string // the client key sshd accepts ("": a fresh one, SSHD.Key)
	MariaDB       bool   // run a MariaDB of its own
}

// StartHost makes the namespace and starts the host's servers; Stop
// removes them. It needs root.
func StartHost(o HostOptions) (*Host, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("network namespaces need root")
	}
	suffix := randomHex(3)
	h := &Host{Netns: "cairn-" + suffix, veth: "cv" + suffix}
	if err := h.network(); err != nil {
		h.Stop()
		return nil, err
	}
	var err error
	if h.SSHD, err = StartSSHD(SSHDOptions{Dir: o.Dir, Netns: h.Netns, Host: h.Addr, AuthorizedKey: o.AuthorizedKey}); err != nil {
		h.Stop()
		return nil, err
	}
	if o.MariaDB {
		if h.DB, err = h.startMariaDB(filepath.Join(o.Dir, "mariadb")); err != nil {
			h.Stop()
			return nil, err
		}
	}
	return h, nil
}

// network makes the namespace and a /30 link to it from a free subnet of
// 10.213.0.0/16.
func (h *Host) network() error {
	used, err := exec.Command("ip", "-o", "-4", "addr").Output()
	if err != nil {
		return fmt.Errorf("ip addr: %w", err)
	}
	var local string
	for range 100 {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<14))
		base := int(n.Int64()) * 4
		local = fmt.Sprintf("10.213.%d.%d", base>>8, base&0xff+1)
		h.Addr = fmt.Sprintf("10.213.%d.%d", base>>8, base&0xff+2)
		if !strings.Contains(string(used), " "+local+"/") && !strings.Contains(string(used), " "+h.Addr+"/") {
			break
		}
	}
	peer := h.veth + "p"
	for _, args := range [][]string{
		{"netns", "add", h.Netns},
		{"link", "add", h.veth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", h.Netns},
		{"addr", "add", local + "/30", "dev", h.veth},
		{"link", "set", h.veth, "up"},
		{"-n", h.Netns, "addr", "add", h.Addr + "/30", "dev", peer},
		{"-n", h.Netns, "link", "set", peer, "up"},
		{"-n", h.Netns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// startMariaDB starts a MariaDB server in the namespace, with a fresh
// data directory in dir.
func (h *Host) startMariaDB(dir string) (*HostDB, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v: %s", err, out)
	}
	db := &HostDB{Socket: filepath.Join(dir, "mysqld.sock"), User: "site", Password: "pw-" + randomHex(6) + "'\"$x"}
	logf, err := os.Create(filepath.Join(dir, "mariadbd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	db.cmd = exec.Command("ip", "netns", "exec", h.Netns, "mariadbd", "--no-defaults", "--datadir="+data,
		"--socket="+db.Socket, "--port=3306", "--bind-address=127.0.0.1", "--user=root",
		"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--skip-log-bin", "--innodb-buffer-pool-size=32M",
		"--innodb-log-file-size=16M", "--skip-name-resolve", "--tmpdir="+dir)
	db.cmd.Stdout, db.cmd.Stderr = logf, logf
	if err := db.cmd.Start(); err != nil {
		return nil, err
	}
	h.DB = db
	pass := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db.Password)
	setup := fmt.Sprintf("CREATE USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s'; CREATE USER '%[1]s'@'localhost' IDENTIFIED BY '%[2]s';"+
		" GRANT ALL ON *.* TO '%[1]s'@'127.0.0.1'; GRANT ALL ON *.* TO '%[1]s'@'localhost';", db.User, pass)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := db.SQL(setup)
		if err == nil {
			return db, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "mariadbd.log"))
			return nil, fmt.Errorf("MariaDB in %s did not start: %v: %s\n%s", h.Netns, err, out, log)
		}
	}
}

// SQL runs statements on the host's MariaDB as root, through its socket.
func (d *HostDB) SQL(statements string) ([]byte, error) {
	cmd := exec.Command("mariadb", "--no-defaults", "-S", d.Socket, "-uroot", "-N", "-B")
	cmd.Stdin = strings.NewReader(statements)
	return cmd.CombinedOutput()
}

// Stop stops the host's servers and removes its namespace.
func (h *Host) Stop() {
	if h.SSHD != nil {
		h.SSHD.Stop()
	}
	if h.DB != nil && h.DB.cmd != nil && h.DB.cmd.Process != nil {
		h.DB.cmd.Process.Kill() //nolint:errcheck
		h.DB.cmd.Wait()         //nolint:errcheck
	}
	exec.Command("ip", "link", "del", h.veth).Run()   //nolint:errcheck // gone with the namespace, if made
	exec.Command("ip", "netns", "del", h.Netns).Run() //nolint:errcheck
}

// Throttle limits the link to the host to rate (tc's notation: 20mbit)
// each way, as a slow network would; "" lifts the limit.
func (h *Host) Throttle(rate string) error {
	for _, dev := range [][]string{{h.veth}, {"-n", h.Netns, h.veth + "p"}} {
		args := append(dev[:len(dev)-1:len(dev)-1], "qdisc", "replace", "dev", dev[len(dev)-1], "root", "tbf", "rate", rate, "burst", "64kb", "latency", "500ms")
		if rate == "" {
			args = append(dev[:len(dev)-1:len(dev)-1], "qdisc", "del", "dev", dev[len(dev)-1], "root")
		}
		if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil && rate != "" {
			return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// SetLink takes the link to the host down (as a cable pulled, or the host
// gone) or up again.
func (h *Host) SetLink(up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	if out, err := exec.Command("ip", "link", "set", h.veth, state).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link set %s %s: %v: %s", h.veth, state, err, out)
	}
	return nil
}
