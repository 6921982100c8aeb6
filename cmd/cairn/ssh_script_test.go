package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// The hosts scripts started (sshhost), by $WORK and name.
var (
	hostsMu sync.Mutex
	hosts   = map[string]*testenv.Host{}
)

func scriptHost(ts *testscript.TestScript, name string) *testenv.Host {
	hostsMu.Lock()
	defer hostsMu.Unlock()
	h := hosts[ts.Getenv("WORK")+"/"+name]
	if h == nil {
		ts.Fatalf("no host %s: start it with sshhost %s", name, name)
	}
	return h
}

// sshhost NAME [mariadb]: another machine, in a network namespace of its
// own, reachable only over SSH at $NAME_ADDR (port 22), which accepts
// $HOME/.ssh/id_ed25519 (made on first use) and whose key is added to
// $HOME/.ssh/known_hosts (and written alone to $WORK/NAME.known_hosts).
// With mariadb, it runs a MariaDB of its own on its loopback
// (127.0.0.1:3306 there), with an account $NAME_DBUSER / $NAME_DBPASS
// that may do anything (see hostsql).
func cmdSSHHost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 || len(args) == 2 && args[1] != "mariadb" {
		ts.Fatalf("usage: sshhost NAME [mariadb]")
	}
	name := args[0]
	home := ts.Getenv("HOME")
	key := filepath.Join(home, ".ssh", "id_ed25519")
	ts.Check(os.MkdirAll(filepath.Dir(key), 0o700))
	if _, err := os.Stat(key); err != nil {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			ts.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(key + ".pub")
	ts.Check(err)
	h, err := testenv.StartHost(testenv.HostOptions{Dir: ts.MkAbs(".hosts/" + name), AuthorizedKey: string(pub), MariaDB: len(args) == 2})
	requireServer(ts, "a host in a network namespace (ip netns, sshd, as root)", err)
	ts.Defer(h.Stop)
	hostsMu.Lock()
	hosts[ts.Getenv("WORK")+"/"+name] = h
	hostsMu.Unlock()
	line := h.SSHD.KnownHostsLine() + "\n"
	ts.Check(os.WriteFile(ts.MkAbs(name+".known_hosts"), []byte(line), 0o600))
	f, err := os.OpenFile(filepath.Join(home, ".ssh", "known_hosts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	ts.Check(err)
	_, err = f.WriteString(line)
	ts.Check(err)
	ts.Check(f.Close())
	upper := strings.ToUpper(name)
	ts.Setenv(upper+"_ADDR", h.Addr)
	if h.DB != nil {
		ts.Setenv(upper+"_DBUSER", h.DB.User)
		ts.Setenv(upper+"_DBPASS", h.DB.Password)
	}
}

// hostsql NAME SQL...: run SQL on the host's own MariaDB as root; its
// output (tab-separated, no headers) is the command's stdout.
func cmdHostSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: hostsql NAME SQL")
	}
	h := scriptHost(ts, args[0])
	if h.DB == nil {
		ts.Fatalf("host %s has no MariaDB: start it with sshhost %s mariadb", args[0], args[0])
	}
	out, err := h.DB.SQL(strings.Join(args[1:], " "))
	if err != nil {
		ts.Fatalf("hostsql: %v: %s", err, out)
	}
	ts.Stdout().Write(out) //nolint:errcheck
}

// sshkill NAME: kill every session the host's sshd serves (each
// connection's sshd and what it runs), as a network cut would; sshd
// itself keeps listening.
func cmdSSHKill(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sshkill NAME")
	}
	scriptHost(ts, args[0]).SSHD.KillSessions()
}

// sshrekey NAME: the host gets a new host key (as when reinstalled), and
// its sshd starts again with it.
func cmdSSHRekey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: sshrekey NAME")
	}
	ts.Check(scriptHost(ts, args[0]).SSHD.Rekey())
}

// sshslow NAME RATE: the network to the host carries at most RATE (tc's
// notation: 20mbit) each way; "sshslow NAME off" lifts the limit.
func cmdSSHSlow(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sshslow NAME RATE|off")
	}
	rate := args[1]
	if rate == "off" {
		rate = ""
	}
	ts.Check(scriptHost(ts, args[0]).Throttle(rate))
}

// sshnet NAME down|up: the network to the host goes down (as a cable
// pulled, or the host gone) or comes back.
func cmdSSHNet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || args[1] != "down" && args[1] != "up" {
		ts.Fatalf("usage: sshnet NAME down|up")
	}
	ts.Check(scriptHost(ts, args[0]).SetLink(args[1] == "up"))
}
