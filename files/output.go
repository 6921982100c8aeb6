package files

import (
	"bytes"
	"context"
	"errors"
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

	"golang.org/x/sys/unix"
)

// Output is a file being written at a path a user gave (cairn rewrite
// --out). A regular file, or none, is replaced atomically at Commit: the
// content goes to a temporary file beside it, renamed over it at the end,
// so an interrupted run leaves it as it was. Anything else — a device such
// as /dev/null, a named pipe, a socket, or a link to one — is written in
// place and never replaced. A link to a regular file is followed: the file
// it leads to is replaced, the link stays.
type Output struct {
	// inPlace is the device, pipe or descriptor written in place.
	inPlace *os.File
	// tmp is the temporary file beside the one replaced, made and
	// renamed relative to dirfd, the handle of its directory.
	tmp   *tempFile
	dirfd int
	perm  fs.FileMode
}

// CreateOutput opens p for writing (see Output). A path under /dev or
// /proc (/dev/stdout, /dev/fd/N) is written in place whatever it leads
// to: it names a descriptor the caller opened, perhaps for appending. A
// link to nothing is refused rather than replaced.
//
// Unlike a restore's writes, links are followed here on purpose: the user
// named this path, and a link to a device or a file is theirs to name.
// Once the file to replace is found, its directory is opened once and the
// temporary file is made, renamed and removed relative to that handle.
func CreateOutput(p string) (*Output, error) {
	if abs, ok := deviceOrDescriptor(p); ok {
		if fd, ok := inheritedFD(abs); ok {
			// The descriptor itself, as the shell opened it (>> appends).
			dup, err := syscall.Dup(fd)
			if err != nil {
				return nil, err
			}
			syscall.CloseOnExec(dup)
			return &Output{inPlace: os.NewFile(uintptr(dup), p)}, nil
		}
		// A device the user named (/dev/null): written in place. By path,
		// as the user named it on the command line (--out): it is their
		// output, not a restore's target, and nothing is created there.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0) // the user's own --out device, not a target (see above)
		if err != nil {
			return nil, err
		}
		return &Output{inPlace: f}, nil
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			return nil, fmt.Errorf("%s is a link to a file that does not exist: %w", p, err)
		}
	}
	st, err := os.Stat(p)
	switch {
	case err == nil && !st.Mode().IsRegular():
		// A pipe or socket the user named: written in place, never replaced.
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &Output{inPlace: f}, nil
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
	dirfd, err := openDir(unix.AT_FDCWD, filepath.Dir(dst))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Dir(dst), Err: err}
	}
	tmp, err := createTemp(dirfd, filepath.Base(dst), dst, perm)
	if err == nil {
		if sys, ok := statOf(st); ok && os.Geteuid() == 0 {
			// The replaced file's owner stays.
			if err = unix.Fchown(tmp.fd, int(sys.Uid), int(sys.Gid)); err != nil {
				tmp.abort()
			}
		}
	}
	if err != nil {
		unix.Close(dirfd) //nolint:errcheck
		return nil, err
	}
	return &Output{tmp: tmp, dirfd: dirfd, perm: perm}, nil
}

func (o *Output) Write(p []byte) (int, error) {
	if o.inPlace != nil {
		return o.inPlace.Write(p)
	}
	return o.tmp.Write(p)
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

// Commit finishes the output: the replaced file appears whole, under its
// name.
func (o *Output) Commit() error {
	if o.inPlace != nil {
		return o.inPlace.Close()
	}
	defer o.closeDir()
	if err := unix.Fsync(o.tmp.fd); err != nil {
		o.tmp.abort()
		return &fs.PathError{Op: "sync", Path: o.tmp.display, Err: err}
	}
	err := o.tmp.commit(o.perm, time.Now())
	o.tmp = nil
	return err
}

// Abort drops what was written to a file being replaced; it leaves it as
// it was. After Commit it does nothing.
func (o *Output) Abort() {
	if o.inPlace != nil {
		o.inPlace.Close()
		return
	}
	if o.tmp != nil {
		o.tmp.abort()
		o.tmp = nil
	}
	o.closeDir()
}

func (o *Output) closeDir() {
	if o.dirfd >= 0 {
		unix.Close(o.dirfd) //nolint:errcheck
		o.dirfd = -1
	}
}

// WriteFileIn writes data to rel (slash-separated) inside dir, as
// ReplaceFile does on the local tree at dir.
func WriteFileIn(ctx context.Context, dir, rel string, data []byte, perm fs.FileMode) error {
	l, err := OpenLocal(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	return ReplaceFile(ctx, l, rel, data, perm)
}

// ReplaceFile writes data to rel (slash-separated) of the tree t as a
// restore writes: atomically (t.WriteFile), keeping the mode of the file
// it replaces (perm for a new one), making the directories above it that
// are missing. A link or anything but a regular file at rel is an error:
// cairn never writes a target's file through a link that may lead outside
// it (and t refuses links above rel).
func ReplaceFile(ctx context.Context, t Target, rel string, data []byte, perm fs.FileMode) error {
	rel = strings.Trim(path.Clean(rel), "/")
	if parent := path.Dir(rel); parent != "." {
		cur := ""
		for _, name := range strings.Split(parent, "/") {
			cur = path.Join(cur, name)
			if err := t.Mkdir(ctx, cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
	}
	if fi, err := t.Lstat(ctx, rel); err == nil && !fi.Mode.IsRegular() {
		return fmt.Errorf("%s in %s is not a regular file (%v); cairn does not write through it", rel, t, fi.Mode.Type())
	} else if err == nil {
		perm = fi.Mode.Perm()
	}
	return t.WriteFile(ctx, rel, bytes.NewReader(data), perm, writeTime(ctx))
}

type writeTimeKey struct{}

// WithWriteTime makes the files ReplaceFile writes under ctx carry the
// time t rather than the time of each write: the same file configured on
// several web nodes then reads the same on all (their trees are compared
// by size and time).
func WithWriteTime(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, writeTimeKey{}, t)
}

func writeTime(ctx context.Context) time.Time {
	if t, ok := ctx.Value(writeTimeKey{}).(time.Time); ok {
		return t
	}
	return time.Now()
}

// ReadFile reads the regular file rel of the tree t whole. A link there
// is an error, not followed: what cairn reads to write back (an
// application's configuration) is the target's own file.
func ReadFile(ctx context.Context, t Target, rel string) ([]byte, error) {
	fi, err := t.Lstat(ctx, rel)
	if err != nil {
		return nil, err
	}
	if !fi.Mode.IsRegular() {
		return nil, fmt.Errorf("%s in %s is not a regular file (%v): cairn reads and writes it only as the tree's own file", rel, t, fi.Mode.Type())
	}
	f, err := t.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenRegular opens p for reading if it is a regular file (after links):
// a named pipe or a device put where a file is expected (wp-config.php
// made a FIFO by a site's user) fails at once instead of blocking or
// reading without end. It only reads, so following a link is safe here
// (an application's config may be a link to a shared one); what is
// written back into a target goes through WriteFileIn, which follows none.
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
