package sshfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Host names a host to reach: Name as the user wrote it (an ssh_config
// alias or a host name), with the User and Port the location gave (""
// and 0: ssh_config's, else the local user and 22).
type Host struct {
	User, Name string
	Port       int
}

func (h Host) String() string {
	s := h.Name
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Port != 0 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}

// Pool holds one connection per host for a run. It is safe for
// concurrent use.
type Pool struct {
	opts    Options
	mu      sync.Mutex
	conns   map[string]*Conn
	cfg     *ssh_config.Config // nil: none
	cfgOK   sync.Once
	cfgErr  error
	khMu    sync.Mutex            // serializes accept-new's appends to known_hosts
	trees   []*Tree               // opened by OpenTree, closed with the pool
	warm    map[string]chan *Tree // opened ahead by Warm, by location, for OpenTree
	tunnels map[string]*Tunnel    // opened by Forward, by user@host:port and address
}

// NewPool returns an empty pool.
func NewPool(o Options) *Pool {
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.Policy == "" {
		o.Policy = Strict
	}
	if o.Home == "" {
		o.Home, _ = os.UserHomeDir()
	}
	if o.KnownHosts == "" {
		o.KnownHosts = filepath.Join(o.Home, ".ssh", "known_hosts")
	}
	return &Pool{opts: o, conns: map[string]*Conn{}, tunnels: map[string]*Tunnel{}, warm: map[string]chan *Tree{}}
}

// Close ends every SFTP session OpenTree opened, every tunnel Forward
// opened, and every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, t := range p.trees {
		t.Close() //nolint:errcheck // the connection's end ends it anyway
	}
	p.trees = nil
	for k, t := range p.tunnels {
		t.Close() //nolint:errcheck
		delete(p.tunnels, k)
	}
	for k, c := range p.conns {
		errs = append(errs, c.Close())
		delete(p.conns, k)
	}
	return errors.Join(errs...)
}

// Conn is one SSH connection.
type Conn struct {
	*ssh.Client
	host string // user@host:port, for messages
	// timeout is how long a remote command may go without a word before
	// it is given up (a listing's find on a wedged disk).
	timeout time.Duration
	done    chan struct{}
	once    sync.Once
}

// Close closes the connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.Client.Close()
	})
	return err
}

func (c *Conn) String() string { return c.host }

// Dial returns the pool's connection to h, connecting on first use (or
// again, when the last one was lost).
func (p *Pool) Dial(ctx context.Context, h Host) (*Conn, error) {
	t, err := p.resolve(h)
	if err != nil {
		return nil, err
	}
	key := t.user + "@" + t.addr
	p.mu.Lock()
	c, ok := p.conns[key]
	p.mu.Unlock()
	if ok && c.alive(p.opts.Timeout) {
		return c, nil
	}
	c, err = p.connect(ctx, t)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.conns[key]; ok && old != c {
		select {
		case <-old.done:
		default: // another caller connected meanwhile: use that one
			c.Close()
			return old, nil
		}
	}
	p.conns[key] = c
	return c, nil
}

// target is a host resolved through ssh_config.
type target struct {
	name       string // as the user wrote it, for messages
	user, addr string // addr is host:port
	identities []string
	jump       string // ProxyJump, or ""
}

func (p *Pool) resolve(h Host) (target, error) {
	p.cfgOK.Do(p.loadConfig)
	if p.cfgErr != nil {
		return target{}, p.cfgErr
	}
	get := func(key string) string {
		if p.cfg == nil {
			return ""
		}
		v, _ := p.cfg.Get(h.Name, key)
		return v
	}
	t := target{name: h.Name, user: h.User}
	hostname := get("HostName")
	if hostname == "" {
		hostname = h.Name
	}
	port := h.Port
	if port == 0 {
		port, _ = strconv.Atoi(get("Port"))
	}
	if port == 0 {
		port = 22
	}
	t.addr = net.JoinHostPort(hostname, strconv.Itoa(port))
	if t.user == "" {
		t.user = get("User")
	}
	if t.user == "" {
		t.user = os.Getenv("USER")
		if t.user == "" {
			t.user = "root"
		}
	}
	if j := get("ProxyJump"); j != "" && !strings.EqualFold(j, "none") {
		t.jump = j
	}
	t.identities = p.opts.Identities
	if t.identities == nil && p.cfg != nil {
		all, _ := p.cfg.GetAll(h.Name, "IdentityFile")
		for _, f := range all {
			t.identities = append(t.identities, p.expand(f))
		}
	}
	return t, nil
}

// defaultIdentities are the files ssh tries when none is configured.
var defaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

func (p *Pool) loadConfig() {
	name := p.opts.Config
	if name == "none" {
		return
	}
	if name == "" {
		name = filepath.Join(p.opts.Home, ".ssh", "config")
		if _, err := os.Stat(name); err != nil {
			return
		}
	}
	f, err := os.Open(name)
	if err != nil {
		p.cfgErr = fmt.Errorf("ssh config: %w", err)
		return
	}
	defer f.Close()
	if p.cfg, err = ssh_config.Decode(f); err != nil {
		p.cfgErr = fmt.Errorf("ssh config %s: %w. Try: fix the file, or point ssh_config: elsewhere", name, err)
	}
}

// expand resolves ~ in a path from ssh_config.
func (p *Pool) expand(f string) string {
	if rest, ok := strings.CutPrefix(f, "~/"); ok {
		return filepath.Join(p.opts.Home, rest)
	}
	return f
}

// connect makes a new connection to t, through its ProxyJump host if it
// has one.
func (p *Pool) connect(ctx context.Context, t target) (*Conn, error) {
	auth, closeAgent, tried, err := p.auth(t)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	hostKey, algos := p.hostKeys(t)
	cfg := &ssh.ClientConfig{User: t.user, Auth: auth, HostKeyCallback: hostKey, HostKeyAlgorithms: algos, Timeout: p.opts.Timeout}
	raw, cc, chans, reqs, err := p.handshake(ctx, t, cfg, tried)
	if err == nil && cc == nil && algos != nil {
		// known_hosts lists keys of other types than the host offers now:
		// its key changed. Asked for any type, the host shows the key it
		// has, which the check refuses with its fingerprint.
		cfg.HostKeyAlgorithms = nil
		raw, cc, chans, reqs, err = p.handshake(ctx, t, cfg, tried)
	}
	if err != nil {
		return nil, err
	}
	if cc == nil {
		return nil, fmt.Errorf("ssh %s@%s (%s): the host offers no key of a type known_hosts lists. Try: ssh-keyscan %s, and compare with %s", t.user, t.name, t.addr, hostOf(t.addr), p.opts.KnownHosts)
	}
	raw.SetDeadline(time.Time{}) //nolint:errcheck
	c := &Conn{Client: ssh.NewClient(cc, chans, reqs), host: t.user + "@" + t.addr, timeout: p.opts.Timeout, done: make(chan struct{})}
	go c.keepAlive(p.opts.KeepAlive, p.opts.Timeout)
	go func() { c.Wait(); c.Close() }() //nolint:errcheck // a lost connection is marked so, for Dial to make another
	return c, nil
}

// handshake connects to t and runs SSH's handshake on the connection,
// bounded by the timeout and by ctx. A handshake that failed because the
// host offers no key of the types asked for returns no error and no
// connection, for the caller to ask again for any type; any other failure
// is explained.
func (p *Pool) handshake(ctx context.Context, t target, cfg *ssh.ClientConfig, tried []string) (net.Conn, ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	raw, err := p.dialTCP(ctx, t)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	raw.SetDeadline(time.Now().Add(p.opts.Timeout))                             //nolint:errcheck
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) }) //nolint:errcheck
	cc, chans, reqs, err := ssh.NewClientConn(raw, t.addr, cfg)
	stop()
	if err != nil {
		raw.Close()
		if strings.Contains(err.Error(), "no common algorithm for host key") && ctx.Err() == nil {
			return nil, nil, nil, nil, nil
		}
		return nil, nil, nil, nil, p.explain(ctx, t, tried, err)
	}
	return raw, cc, chans, reqs, nil
}

func (p *Pool) dialTCP(ctx context.Context, t target) (net.Conn, error) {
	if t.jump != "" {
		j, err := p.Dial(ctx, parseJump(t.jump))
		if err != nil {
			return nil, fmt.Errorf("ssh %s through its ProxyJump %s: %w", t.name, t.jump, err)
		}
		c, err := j.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return nil, fmt.Errorf("ssh %s (%s) through %s: %w. Try: check that %s reaches it", t.name, t.addr, t.jump, err, t.jump)
		}
		return c, nil
	}
	d := net.Dialer{Timeout: p.opts.Timeout}
	// A host that refuses or resets the connection may be restarting its
	// sshd: it is tried again, twice, a second and then two later. One
	// that does not answer has had its timeout.
	for wait := time.Second; ; wait *= 2 {
		c, err := d.DialContext(ctx, "tcp", t.addr)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		transient := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
		if !transient || wait > 2*time.Second {
			return nil, fmt.Errorf("ssh %s (%s): %w. Try: check the host name and port, and that sshd runs there and this machine may reach it", t.name, t.addr, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// parseJump reads the first host of a ProxyJump value, [user@]host[:port].
func parseJump(s string) Host {
	s, _, _ = strings.Cut(s, ",")
	var h Host
	if u, rest, ok := strings.Cut(s, "@"); ok {
		h.User, s = u, rest
	}
	if host, port, err := net.SplitHostPort(s); err == nil {
		h.Port, _ = strconv.Atoi(port)
		s = host
	}
	h.Name = s
	return h
}

// alive tells whether the connection answers a keepalive within timeout
// (a lost one is closed). Dial asks before handing out a connection that
// may have died since it was made; it costs a round trip.
func (c *Conn) alive(timeout time.Duration) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err == nil {
			return true
		}
	case <-time.After(timeout):
	}
	c.Close()
	return false
}

// keepAlive checks the connection every interval; one unanswered within
// timeout closes it, so that what waits on it fails instead of hanging.
func (c *Conn) keepAlive(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !c.alive(timeout) {
				return
			}
		}
	}
}

// auth is the agent's keys, then the identity files'. tried names them
// for a failure's message.
func (p *Pool) auth(t target) (methods []ssh.AuthMethod, closeAgent func(), tried []string, err error) {
	closeAgent = func() {}
	sock := p.opts.Agent
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	var signers []ssh.Signer
	if sock != "" && sock != "none" {
		if c, err := net.Dial("unix", sock); err == nil {
			closeAgent = func() { c.Close() }
			if s, err := agent.NewClient(c).Signers(); err == nil && len(s) > 0 {
				signers = append(signers, s...)
				tried = append(tried, fmt.Sprintf("%d key(s) of ssh-agent", len(s)))
			}
		}
	}
	files := t.identities
	explicit := files != nil
	if !explicit {
		for _, n := range defaultIdentities {
			files = append(files, filepath.Join(p.opts.Home, ".ssh", n))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if explicit {
				closeAgent()
				return nil, nil, nil, fmt.Errorf("ssh %s: the key file %w. Try: fix IdentityFile, or the key's path", t.name, err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			tried = append(tried, f+" (encrypted: skipped; add it to ssh-agent with ssh-add)")
			continue
		}
		if err != nil {
			closeAgent()
			return nil, nil, nil, fmt.Errorf("ssh %s: key file %s: %w", t.name, f, err)
		}
		signers = append(signers, s)
		tried = append(tried, f)
	}
	if len(signers) == 0 {
		closeAgent()
		return nil, nil, tried, fmt.Errorf("ssh %s: %w: no key to offer (no ssh-agent, no readable key file). Try: start ssh-agent and ssh-add your key, or name one with IdentityFile in ~/.ssh/config", t.name, ErrAuth)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, closeAgent, tried, nil
}

// explain turns a failed handshake into advice.
func (p *Pool) explain(ctx context.Context, t target, tried []string, err error) error {
	switch {
	case errors.Is(err, ErrHostUnknown), errors.Is(err, ErrHostKeyChanged):
		if inner := errors.Unwrap(err); inner != nil {
			return inner // the host key callback's own message, without "ssh: handshake failed"
		}
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("ssh %s@%s: %w (offered: %s). Try: add this machine's public key to the remote user's ~/.ssh/authorized_keys, or name the right key with IdentityFile in ~/.ssh/config",
			t.user, t.addr, ErrAuth, strings.Join(tried, ", "))
	}
	return fmt.Errorf("ssh %s@%s (%s): %w. Try: check that it is an SSH server, and ssh -v %s@%s", t.user, t.name, t.addr, err, t.user, t.name)
}
