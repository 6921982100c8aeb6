package sshfs

import (
	"io"
	"sync"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// batcher gathers the SFTP requests written one after the other into as
// few SSH packets as it can: each Write only queues its bytes (up to a
// bound), and one goroutine sends what has queued meanwhile in one write
// as soon as the last one is done. A lone request waits for nothing; many
// at once (a tree of small files read eight at a time) share packets,
// each of which costs an encryption and a system call here and at the
// host.
type batcher struct {
	w    io.WriteCloser
	mu   sync.Mutex
	more *sync.Cond // signalled when bytes queue or drain
	buf  []byte
	busy bool  // the sender is writing
	err  error // the first failed write: every later Write returns it
	done bool
}

// maxQueued bounds what a batcher holds: a Write waits while more is
// queued.
const maxQueued = 1 << 20

func newBatcher(w io.WriteCloser) *batcher {
	b := &batcher{w: w}
	b.more = sync.NewCond(&b.mu)
	go b.send()
	return b
}

func (b *batcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) >= maxQueued && b.err == nil && !b.done {
		b.more.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.ErrClosedPipe
	}
	b.buf = append(b.buf, p...)
	b.more.Broadcast()
	return len(p), nil
}

func (b *batcher) send() {
	var out []byte
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for len(b.buf) == 0 && !b.done {
			b.more.Wait()
		}
		if len(b.buf) == 0 {
			return
		}
		out, b.buf = b.buf, out[:0]
		b.busy = true
		b.mu.Unlock()
		_, err := b.w.Write(out)
		b.mu.Lock()
		b.busy = false
		if err != nil && b.err == nil {
			b.err = err
		}
		b.more.Broadcast()
	}
}

// Close sends what is queued, then closes the writer.
func (b *batcher) Close() error {
	b.mu.Lock()
	b.done = true
	b.more.Broadcast()
	for (len(b.buf) > 0 || b.busy) && b.err == nil {
		b.more.Wait()
	}
	err := b.err
	b.mu.Unlock()
	if cerr := b.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// newSFTP starts an SFTP session on c whose requests are batched (see
// batcher).
func newSFTP(c *ssh.Client, opts ...sftp.ClientOption) (*sftp.Client, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	r, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	e, err := s.StderrPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	go io.Copy(io.Discard, e) //nolint:errcheck // sftp-server's complaints; its answers say what failed
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		return nil, err
	}
	b := newBatcher(w)
	sc, err := sftp.NewClientPipe(r, &sessionWriter{batcher: b, s: s, private: privateCreates{w: b}}, opts...)
	if err != nil {
		s.Close()
		return nil, err
	}
	return sc, nil
}

// sessionWriter writes the client's requests through privateCreates and
// the batcher, and closes the session with the writer.
type sessionWriter struct {
	*batcher
	s       *ssh.Session
	private privateCreates
}

func (w *sessionWriter) Write(p []byte) (int, error) { return w.private.Write(p) }

func (w *sessionWriter) Close() error {
	err := w.batcher.Close()
	w.s.Close() //nolint:errcheck // the session may be over already
	return err
}
