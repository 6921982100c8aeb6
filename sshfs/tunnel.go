package sshfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Tunnel is a local TCP port that leads, over the connection, to an
// address as the remote host sees it (direct-tcpip, as ssh -L): a
// database that listens only on the web server's loopback is reached by
// the local tools and drivers through it, with nothing run on the host.
type Tunnel struct {
	ln     net.Listener
	conn   *Conn
	remote string
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]bool
	closed bool
}

// Forward opens a tunnel to remote (host:port on the far side), listening
// on 127.0.0.1 at a free port until Close.
func (c *Conn) Forward(ctx context.Context, remote string) (*Tunnel, error) {
	// Fail now, with advice, if the server refuses forwarding or nothing
	// listens there.
	probe, err := c.DialContext(ctx, "tcp", remote)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: forward to %s: %w. Try: check that the service listens there on that host, and that its sshd allows TCP forwarding (AllowTcpForwarding)", c, remote, err)
	}
	probe.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Tunnel{ln: ln, conn: c, remote: remote, open: map[net.Conn]bool{}}
	t.wg.Add(1)
	go t.serve()
	return t, nil
}

// Addr is the local end, 127.0.0.1:port.
func (t *Tunnel) Addr() string { return t.ln.Addr().String() }

func (t *Tunnel) serve() {
	defer t.wg.Done()
	for {
		local, err := t.ln.Accept()
		if err != nil {
			return
		}
		far, err := t.conn.Dial("tcp", t.remote)
		if err != nil {
			local.Close()
			continue
		}
		if !t.track(local, far) {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			pipe(local, far)
			t.untrack(local, far)
		}()
	}
}

func (t *Tunnel) track(cs ...net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		t.open[c] = true
	}
	return true
}

func (t *Tunnel) untrack(cs ...net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(t.open, c)
	}
}

// pipe copies both ways until either side ends.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src) //nolint:errcheck // the end of either side ends the pipe
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
}

// Close stops listening and cuts the connections through the tunnel.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	t.closed = true
	for c := range t.open {
		c.Close()
	}
	t.mu.Unlock()
	err := t.ln.Close()
	t.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
