package files

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Output is a file being written at a path a user gave (cairn rewrite
// --out). A regular file, or none, is replaced atomically at Commit: the
// content goes to a temporary file beside it, renamed over it at the end,
// so an interrupted run leaves it as it was. Anything else — a device such
// as /dev/null, a named pipe, a socket, or a link to one — is written in
// place and never replaced. A link to a regular file is followed: the file
// it leads to is replaced, the link stays.
type Output struct {
	*os.File
	tmp, dst string // tmp is "" when written in place
}

// CreateOutput opens p for writing (see Output). A path under /dev or
// /proc (/dev/stdout, /dev/fd/N) is written in place whatever it leads
// to: it names a descriptor the caller opened, perhaps for appending. A
// link to nothing is refused rather than replaced.
func CreateOutput(p string) (*Output, error) {
	if abs, ok := deviceOrDescriptor(p); ok {
		if fd, ok := inheritedFD(abs); ok {
			// The descriptor itself, as the shell opened it (>> appends).
			dup, err := syscall.Dup(fd)
			if err != nil {
				return nil, err
			}
			syscall.CloseOnExec(dup)
			return &Output{File: os.NewFile(uintptr(dup), p)}, nil
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		return &Output{File: f}, nil
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return nil, fmt.Errorf("%s is a link to a file that does not exist: %w", p, err)
		}
	}
	st, err := os.Stat(p)
	switch {
	case err == nil && !st.Mode().IsRegular():
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &Output{File: f}, nil
	case err != nil && !os.IsNotExist(err):
		return nil, err
	}
	dst := p
	if resolved, err := filepath.EvalSymlinks(p); err == nil {
		dst = resolved
	}
	perm := fs.FileMode(0o644)
	if st != nil {
		perm = st.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+truncateName(filepath.Base(dst))+".cairn-*.tmp")
	if err != nil {
		return nil, err
	}
	err = f.Chmod(perm)
	if sys, ok := statOf(st); ok && err == nil && os.Geteuid() == 0 {
		err = f.Chown(int(sys.Uid), int(sys.Gid)) // the replaced file's owner stays
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &Output{File: f, tmp: f.Name(), dst: dst}, nil
}

// deviceOrDescriptor tells whether p, or a link on the way from it,
// names a path under /dev or /proc (/dev/stdout, /dev/fd/N, /dev/null),
// and returns that path.
func deviceOrDescriptor(p string) (string, bool) {
	for range 40 {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", false
		}
		if strings.HasPrefix(abs, "/dev/") || strings.HasPrefix(abs, "/proc/") {
			return abs, true
		}
		target, err := os.Readlink(abs)
		if err != nil {
			return "", false // not a link: the end of the way
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(abs), target)
		}
		p = target
	}
	return "", false
}

// inheritedFD returns the descriptor a /dev/stdout, /dev/stderr,
// /dev/fd/N or /proc/self/fd/N path names.
func inheritedFD(abs string) (int, bool) {
	switch abs {
	case "/dev/stdout":
		return 1, true
	case "/dev/stderr":
		return 2, true
	}
	for _, prefix := range []string{"/dev/fd/", "/proc/self/fd/"} {
		if n, ok := strings.CutPrefix(abs, prefix); ok {
			fd, err := strconv.Atoi(n)
			return fd, err == nil && fd >= 0
		}
	}
	return 0, false
}

func statOf(fi os.FileInfo) (*syscall.Stat_t, bool) {
	if fi == nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

func truncateName(name string) string {
	if len(name) > tempMaxBase {
		return name[:tempMaxBase]
	}
	return name
}

// Commit finishes the output: the replaced file appears whole, under its
// name.
func (o *Output) Commit() error {
	if o.tmp == "" {
		return o.Close()
	}
	if err := o.Sync(); err != nil {
		o.Abort()
		return err
	}
	if err := o.Close(); err != nil {
		o.Abort()
		return err
	}
	if err := os.Rename(o.tmp, o.dst); err != nil {
		os.Remove(o.tmp)
		return err
	}
	return nil
}

// Abort drops what was written to a file being replaced; it leaves it as
// it was. After Commit it does nothing.
func (o *Output) Abort() {
	o.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// WriteFileIn writes data to rel (slash-separated) inside dir, as a
// restore writes: atomically, through directory handles that follow no
// link, making the directories above it that are missing. A link at rel,
// or anywhere above it inside dir, is an error: cairn never writes a
// target's file through a link that may lead outside it.
func WriteFileIn(dir, rel string, data []byte, perm fs.FileMode) error {
	l, err := OpenLocal(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	rel = strings.Trim(path.Clean(rel), "/")
	if parent := path.Dir(rel); parent != "." {
		cur := ""
		for _, name := range strings.Split(parent, "/") {
			cur = path.Join(cur, name)
			if err := l.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		}
	}
	if fi, err := l.Lstat(rel); err == nil && !fi.Mode.IsRegular() {
		return fmt.Errorf("%s is not a regular file (%v); cairn does not write through it", l.displayPath(rel), fi.Mode.Type())
	} else if err == nil {
		perm = fi.Mode.Perm()
	}
	return l.WriteFile(context.Background(), rel, strings.NewReader(string(data)), perm, time.Now())
}

// OpenRegular opens p for reading if it is a regular file (after links):
// a named pipe or a device put where a file is expected (wp-config.php
// made a FIFO by a site's user) fails at once instead of blocking or
// reading without end.
func OpenRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: p, Err: fmt.Errorf("not a regular file (%v)", st.Mode().Type())}
	}
	if err == nil {
		err = syscall.SetNonblock(int(f.Fd()), false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadRegular reads the regular file p whole (see OpenRegular).
func ReadRegular(p string) ([]byte, error) {
	f, err := OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
