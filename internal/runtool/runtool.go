// Package runtool finds and runs the database engines' own command-line
// tools (mariadb-dump, pg_dump, psql, sqlite3…), keeping the end of what
// they print on stderr for the error a user will read.
package runtool

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Find returns the path of the first of names on PATH, or an error that
// says what to install (install is advice such as "apt-get install sqlite3").
func Find(install string, names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed. Try: %s", strings.Join(names, " or "), install)
}

// Run runs cmd, which the caller made with exec.CommandContext(ctx, …)
// and gave its stdin and stdout. A failure's error ends with the last 4 KiB
// of the tool's stderr; when ctx is done, the error wraps ctx.Err(). A
// stdin that cannot be read to its end is an error even if the tool
// succeeded on what it got.
func Run(ctx context.Context, cmd *exec.Cmd) error {
	var stderr tail
	cmd.Stderr = &stderr
	started, wait, err := feed(cmd)
	if err != nil {
		return err
	}
	drained, drainWait, err := drain(cmd)
	if err != nil {
		started()
		wait() //nolint:errcheck
		return err
	}
	runErr := cmd.Start()
	started()
	drained()
	drainErr := drainWait() // the tool has closed its stdout when it exits
	if runErr == nil {
		runErr = cmd.Wait()
	}
	feedErr := wait()
	if feedErr == nil && drainErr != nil && runErr == nil {
		feedErr = drainErr
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", cmd.Args[0], ctx.Err())
	case feedErr != nil:
		return fmt.Errorf("feeding %s: %w", filepath.Base(cmd.Args[0]), feedErr)
	case runErr != nil:
		return fmt.Errorf("%w: %s", runErr, stderr.String())
	}
	return nil
}

// pipeSize is the kernel buffer of the pipe into a tool: large writes,
// few wake-ups, where the default 64 KiB costs a context switch each.
const pipeSize = 1 << 20

// feed replaces a stdin that is not a file by a pipe with a large buffer,
// filled from it in big writes (through its WriteTo when it has one).
// Call started once the tool has started (or failed to), and wait once it
// has exited: wait ends the filling and reports a failure to read stdin.
func feed(cmd *exec.Cmd) (started func(), wait func() error, err error) {
	src := cmd.Stdin
	if _, isFile := src.(*os.File); src == nil || isFile {
		return func() {}, func() error { return nil }, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, pipeSize) //nolint:errcheck // a smaller pipe works too
	cmd.Stdin = pr
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pw.Close()
		w := &errWriter{w: pw}
		if wt, ok := src.(io.WriterTo); ok {
			_, readErr = wt.WriteTo(w)
		} else {
			_, readErr = io.CopyBuffer(w, src, make([]byte, pipeSize))
		}
		if w.err != nil { // the tool stopped reading: its exit status tells why
			readErr = nil
		}
	}()
	started = func() { pr.Close() } // the tool holds its end now
	return started, func() error {
		pw.Close() // unblocks a write to a tool that has exited
		<-done
		return readErr
	}, nil
}

// drain replaces a stdout that is not a file by a pipe with a large
// buffer, read in large blocks (the tool writes in small ones): fewer
// wake-ups for both. Call started once the tool has started (or failed
// to); wait returns once the tool has closed its stdout and everything
// it wrote was handed to the original stdout, with that writer's error.
func drain(cmd *exec.Cmd) (started func(), wait func() error, err error) {
	dst := cmd.Stdout
	if _, isFile := dst.(*os.File); dst == nil || isFile {
		return func() {}, func() error { return nil }, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	unix.FcntlInt(pr.Fd(), unix.F_SETPIPE_SZ, pipeSize) //nolint:errcheck // a smaller pipe works too
	cmd.Stdout = pw
	var writeErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pr.Close()
		buf := make([]byte, pipeSize)
		for {
			n, err := pr.Read(buf)
			if n > 0 && writeErr == nil {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					writeErr = werr
					pr.Close() // the tool gets EPIPE and stops
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return func() { pw.Close() }, func() error { <-done; return writeErr }, nil
}

// errWriter remembers a write failure, to tell it from a read failure.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// tail keeps the last 4 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }
