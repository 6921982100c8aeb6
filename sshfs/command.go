package sshfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// A command is a script run with sh on the host (the script on its stdin,
// so nothing of it shows in any process's arguments there), its output
// read as it comes. Nothing waits on one unbounded: its output fails at
// once when ctx ends, or when the command has gone quiet for the
// connection's timeout (find on a wedged disk, a host that never answers).
type command struct {
	Out    io.Reader // what the script writes to stdout
	s      *ssh.Session
	pw     *io.PipeWriter
	stderr bytes.Buffer
	stops  []func() bool
	quit   func()
	once   sync.Once // abandon
}

// start runs script on c's host; what is the command's name for messages.
func start(ctx context.Context, c *Conn, what, script string) (*command, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: open a session: %w", c, err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	cmd := &command{s: s}
	s.Stderr = &cmd.stderr
	s.Stdin = strings.NewReader(script)
	if err := s.Start("sh -s"); err != nil {
		s.Close()
		return nil, fmt.Errorf("ssh %s: run %s: %w", c, what, err)
	}
	// The output is read through a pipe that giving up closes at once:
	// OpenSSH keeps a channel whose command still runs open, a signal to
	// it notwithstanding (it refuses to signal a forced command), so what
	// reads the channel itself would wait for the command's end.
	pr, pw := io.Pipe()
	cmd.Out, cmd.pw = pr, pw
	r := &watched{r: out}
	go func() { _, err := io.Copy(pw, r); pw.CloseWithError(err) }()
	cmd.stops = append(cmd.stops, context.AfterFunc(ctx, func() { cmd.abandon(ctx.Err()) }))
	cmd.quit = r.watch(c.timeout, func() { cmd.abandon(fmt.Errorf("%s on %s: no word from it for %v", what, c, c.timeout)) })
	return cmd, nil
}

// abandon ends the command now: its output fails with why, and the host
// ends it whenever it does.
func (cmd *command) abandon(why error) {
	cmd.once.Do(func() {
		cmd.pw.CloseWithError(why)
		cmd.s.Signal(ssh.SIGKILL) //nolint:errcheck
		cmd.s.Close()
		cmd.release()
		go cmd.s.Wait() //nolint:errcheck
	})
}

func (cmd *command) release() {
	for _, stop := range cmd.stops {
		stop()
	}
	cmd.quit()
}

// Wait waits for the command's end, once its output was read through; its
// error holds what the command wrote to stderr.
func (cmd *command) Wait() error {
	err := cmd.s.Wait()
	cmd.release()
	cmd.s.Close()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(cmd.stderr.String()))
	}
	return nil
}

// Stderr is what the command wrote to stderr, once it ended.
func (cmd *command) Stderr() string { return cmd.stderr.String() }

// watched is a reader that counts what it reads, for watch.
type watched struct {
	r    io.Reader
	read atomic.Int64 // bytes read so far
}

func (w *watched) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.read.Add(int64(n))
	return n, err
}

// watch calls quit, once, when a period of d passes without a byte read;
// the function it returns stops the watch.
func (w *watched) watch(d time.Duration, quit func()) (stop func()) {
	done := make(chan struct{})
	var once atomic.Bool
	go func() {
		tick := time.NewTicker(d)
		defer tick.Stop()
		last := int64(-1)
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			n := w.read.Load()
			if n == last {
				quit()
				return
			}
			last = n
		}
	}()
	return func() {
		if once.CompareAndSwap(false, true) {
			close(done)
		}
	}
}
