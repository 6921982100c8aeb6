package sshfs

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"golang.org/x/crypto/ssh"
)

var _ files.Remote = (*Pool)(nil)

// OpenTree opens the directory at l on the pool's connection to l's host
// (see files.Remote); the tree's SFTP session ends with the pool.
func (p *Pool) OpenTree(ctx context.Context, l cairn.Location, create bool) (files.Target, error) {
	if l.IsLocal() {
		return nil, fmt.Errorf("%w: %s is not on another host", cairn.ErrInvalidArgument, l)
	}
	c, err := p.Dial(ctx, Host{User: l.User, Name: l.Host, Port: l.Port})
	if err != nil {
		return nil, err
	}
	t, err := OpenTree(ctx, c, l.Path, create)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.trees = append(p.trees, t)
	p.mu.Unlock()
	return t, nil
}

// Shell runs script with sh on l's host, the script on sh's stdin (so
// nothing in it shows in any process's arguments there), in l's
// directory's stead nowhere in particular: the script changes directory
// itself. It returns what the script wrote to stdout and stderr.
func (p *Pool) Shell(ctx context.Context, l cairn.Location, script string) ([]byte, error) {
	c, err := p.Dial(ctx, Host{User: l.User, Name: l.Host, Port: l.Port})
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: open a session: %w", c, err)
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = strings.NewReader(script), &out, &out
	stop := context.AfterFunc(ctx, func() { s.Signal(ssh.SIGKILL); s.Close() }) //nolint:errcheck
	defer stop()
	if err := s.Run("sh -s"); err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), ctx.Err()
		}
		return out.Bytes(), fmt.Errorf("on %s: %w", c, err)
	}
	return out.Bytes(), nil
}

// Forward returns the local address of a tunnel to addr (host:port as
// l's host sees it), opened on first use and kept for the run: a
// database that listens only on the web server's loopback is reached
// through it by the local tools. A tunnel whose connection was lost is
// opened again on the new one.
func (p *Pool) Forward(ctx context.Context, l cairn.Location, addr string) (string, error) {
	c, err := p.Dial(ctx, Host{User: l.User, Name: l.Host, Port: l.Port})
	if err != nil {
		return "", err
	}
	key := c.host + " " + addr
	p.mu.Lock()
	t := p.tunnels[key]
	p.mu.Unlock()
	if t != nil && t.conn == c {
		return t.Addr(), nil
	}
	nt, err := c.Forward(ctx, addr)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.tunnels[key]; old != nil {
		if old.conn == c { // another caller opened one meanwhile
			nt.Close()
			return old.Addr(), nil
		}
		old.Close()
	}
	p.tunnels[key] = nt
	return nt.Addr(), nil
}
