package sshfs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

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
	p.mu.Lock()
	ahead, ok := p.warm[l.String()]
	delete(p.warm, l.String())
	p.mu.Unlock()
	if ok {
		select {
		case t := <-ahead:
			if t != nil {
				return t, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.open(ctx, l, create)
}

// open opens the directory at l (see OpenTree).
func (p *Pool) open(ctx context.Context, l cairn.Location, create bool) (*Tree, error) {
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

// Warm opens the tree at l in the background and starts its listing (see
// Tree.Prefetch), for the next OpenTree of l to take: the connection and
// the listing are made while the caller does other work (a restore opens
// the repository and reads the snapshot meanwhile). Nothing is written:
// a tree that does not exist is not made here, and OpenTree then does
// as it would have.
func (p *Pool) Warm(ctx context.Context, l cairn.Location) {
	if l.IsLocal() {
		return
	}
	ahead := make(chan *Tree, 1)
	p.mu.Lock()
	if _, ok := p.warm[l.String()]; ok {
		p.mu.Unlock()
		return
	}
	p.warm[l.String()] = ahead
	p.mu.Unlock()
	go func() {
		t, err := p.open(ctx, l, false)
		if err != nil {
			ahead <- nil
			return
		}
		t.Prefetch(ctx)
		ahead <- t
	}()
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
	// stdout and stderr are copied by goroutines of their own: one
	// buffer, locked (a login shell's warnings on stderr, pyenv's say,
	// raced the script's output and lost some of it).
	var out lockedBuffer
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

// lockedBuffer is a buffer that two goroutines may write at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes is what was written.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Bytes()
}
