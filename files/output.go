package files

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
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

// CreateOutput opens p for writing (see Output).
func CreateOutput(p string) (*Output, error) {
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
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &Output{File: f, tmp: f.Name(), dst: dst}, nil
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
