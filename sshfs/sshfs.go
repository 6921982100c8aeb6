// Package sshfs reaches other hosts over SSH as rsync and Ansible do,
// agentlessly: nothing is installed or left on them. A Pool keeps one
// connection per host for a run, shared by the SFTP sessions and tunnels
// on it, with keepalives; host keys are checked against known_hosts (with
// the host-key algorithms negotiated from what it holds for the host) under
// a policy, strict or accept-new; authentication is by ssh-agent or key
// files; ~/.ssh/config's HostName, User, Port, IdentityFile and ProxyJump
// apply.
//
// An unknown or changed host key is an error that shows the key's
// fingerprint and how to accept it; it is never accepted silently.
package sshfs

import (
	"errors"
	"time"
)

// HostKeyPolicy says what to do with a host whose key known_hosts lacks.
type HostKeyPolicy string

const (
	// Strict refuses a host known_hosts does not list.
	Strict HostKeyPolicy = "strict"
	// AcceptNew records the key of a host known_hosts does not list, on
	// first use, then is strict. A changed key is refused either way.
	AcceptNew HostKeyPolicy = "accept-new"
)

// Errors a connection can fail with, to be tested with errors.Is.
var (
	ErrHostUnknown    = errors.New("the host's key is not in known_hosts")
	ErrHostKeyChanged = errors.New("the host's key has changed")
	ErrAuth           = errors.New("authentication failed")
)

// Options say how hosts are reached. The zero value reads the user's
// ~/.ssh/known_hosts and ~/.ssh/config, strictly.
type Options struct {
	// KnownHosts is the known_hosts file; "" is ~/.ssh/known_hosts.
	KnownHosts string
	// Policy is Strict when "".
	Policy HostKeyPolicy
	// Config is the ssh_config file; "" is ~/.ssh/config (none if it
	// does not exist), "none" reads none.
	Config string
	// Identities are key files tried after the agent's keys; nil is
	// ssh_config's IdentityFile, else ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa where they exist.
	Identities []string
	// Agent is the ssh-agent socket; "" is $SSH_AUTH_SOCK, "none" uses
	// no agent.
	Agent string
	// Timeout bounds connecting and each keepalive's answer; 0 is 15 s.
	Timeout time.Duration
	// KeepAlive is the time between keepalives; 0 is 15 s.
	KeepAlive time.Duration
	// Home is the user's home directory for ~ ("" : $HOME).
	Home string
}
