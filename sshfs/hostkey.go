package sshfs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys is the callback that checks t's key against known_hosts under
// the policy, and the host-key algorithms to ask for: those of the keys
// known_hosts holds for t, so that the server offers the key it is
// checked against (golang/go#29286), or the defaults for a host it lacks.
func (p *Pool) hostKeys(t target) (ssh.HostKeyCallback, []string) {
	db, err := knownhosts.NewDB(p.opts.KnownHosts)
	if err != nil && !os.IsNotExist(err) {
		return func(string, net.Addr, ssh.PublicKey) error {
			return fmt.Errorf("ssh %s: known_hosts %s: %w. Try: fix or move the file", t.name, p.opts.KnownHosts, err)
		}, nil
	}
	var algos []string
	if db != nil {
		algos = db.HostKeyAlgorithms(t.addr)
	}
	check := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := error(nil)
		if db != nil {
			err = db.HostKeyCallback()(hostname, remote, key)
		} else {
			err = &unknown{}
		}
		var revoked *xknownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &revoked):
			return fmt.Errorf("ssh %s@%s (%s): %w: it offers the %s key %s, which %s marks @revoked; nothing was sent. Try: get the host's new key from its admin, and add it to %s",
				t.user, t.name, t.addr, ErrHostKeyChanged, key.Type(), ssh.FingerprintSHA256(key), p.opts.KnownHosts, p.opts.KnownHosts)
		case knownhosts.IsHostKeyChanged(err):
			return fmt.Errorf("ssh %s@%s (%s): %w: it now offers the %s key %s, which %s does not list for it. Someone may be intercepting the connection; nothing was sent. "+
				"Try: if the host was reinstalled, check the new fingerprint with its admin, then ssh-keygen -R '%s' -f %s and connect again",
				t.user, t.name, t.addr, ErrHostKeyChanged, key.Type(), ssh.FingerprintSHA256(key), p.opts.KnownHosts, knownhosts.Normalize(t.addr), p.opts.KnownHosts)
		case isUnknown(err) && p.opts.Policy == AcceptNew:
			return p.record(t, hostname, remote, key)
		case isUnknown(err):
			return fmt.Errorf("ssh %s@%s (%s): %w (%s): it offers the %s key %s. "+
				"Try: check that fingerprint with the host's admin, then ssh-keyscan -p %s %s >> %s; or set host_key_policy: accept-new to record it on first use",
				t.user, t.name, t.addr, ErrHostUnknown, p.opts.KnownHosts, key.Type(), ssh.FingerprintSHA256(key), portOf(t.addr), hostOf(t.addr), p.opts.KnownHosts)
		}
		return fmt.Errorf("ssh %s: host key: %w", t.name, err)
	}
	return check, algos
}

// unknown stands for knownhosts' error when there is no known_hosts file.
type unknown struct{}

func (*unknown) Error() string { return "no known_hosts file" }

func isUnknown(err error) bool {
	_, none := err.(*unknown)
	return none || knownhosts.IsHostUnknown(err)
}

// record appends the key of a host known_hosts lacked (accept-new).
func (p *Pool) record(t target, hostname string, remote net.Addr, key ssh.PublicKey) error {
	p.khMu.Lock()
	defer p.khMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(p.opts.KnownHosts), 0o700); err != nil {
		return fmt.Errorf("ssh %s: record its key: %w", t.name, err)
	}
	f, err := os.OpenFile(p.opts.KnownHosts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ssh %s: record its key: %w", t.name, err)
	}
	if err := knownhosts.WriteKnownHost(f, hostname, remote, key); err != nil {
		f.Close()
		return fmt.Errorf("ssh %s: record its key in %s: %w", t.name, p.opts.KnownHosts, err)
	}
	return f.Close()
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
