// Package files writes snapshot trees onto file trees: it compares what a
// snapshot holds with what a target already has, writes only what differs,
// removes what the snapshot lacks (never excluded or preserved paths), and
// does so in parallel, atomically per file, so that running the same restore
// again after an interruption finishes the job.
package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Info describes one entry of a target tree.
type Info struct {
	Name    string
	Mode    fs.FileMode // type bits and permissions
	Size    int64
	ModTime time.Time
}

// Target is a file tree that can be restored onto. Paths are relative,
// slash-separated, "" being the root. Missing entries are reported with
// errors satisfying errors.Is(err, fs.ErrNotExist).
type Target interface {
	// Lstat describes one entry without following symbolic links.
	Lstat(rel string) (Info, error)
	// ReadDir lists a directory's entries.
	ReadDir(rel string) ([]Info, error)
	// Mkdir creates a directory whose parent exists.
	Mkdir(rel string, mode fs.FileMode) error
	// Open reads a regular file.
	Open(rel string) (io.ReadCloser, error)
	// WriteFile replaces rel atomically: readers see the old content or
	// the new one, never a part, and an interrupted write leaves rel as
	// it was.
	WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error
	// Symlink replaces rel with a symbolic link to target.
	Symlink(target, rel string) error
	// Readlink returns a symbolic link's target.
	Readlink(rel string) (string, error)
	// RemoveAll removes rel and anything below it.
	RemoveAll(rel string) error
	// SetAttrs sets permissions and modification time.
	SetAttrs(rel string, mode fs.FileMode, mtime time.Time) error
	// String names the target for messages.
	String() string
}

// tempPrefix marks cairn's in-flight files; leftovers of an interrupted
// restore are removed by the next one.
const (
	tempPrefix = ".cairn-"
	tempSuffix = ".tmp"
)

func isTemp(name string) bool {
	return strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix)
}

// Local is a directory on this machine.
type Local struct{ Root string }

var _ Target = Local{}

func (l Local) path(rel string) string { return filepath.Join(l.Root, filepath.FromSlash(rel)) }

func (l Local) String() string { return l.Root }

func infoOf(fi fs.FileInfo) Info {
	return Info{Name: fi.Name(), Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime()}
}

func (l Local) Lstat(rel string) (Info, error) {
	fi, err := os.Lstat(l.path(rel))
	if err != nil {
		return Info{}, err
	}
	return infoOf(fi), nil
}

func (l Local) ReadDir(rel string) ([]Info, error) {
	entries, err := os.ReadDir(l.path(rel))
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // vanished while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, infoOf(fi))
	}
	return out, nil
}

func (l Local) Mkdir(rel string, mode fs.FileMode) error {
	return os.Mkdir(l.path(rel), mode.Perm()|0o700)
}

func (l Local) Open(rel string) (io.ReadCloser, error) { return os.Open(l.path(rel)) }

func (l Local) WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	tmp, err := createTemp(l.path(rel), mode)
	if err != nil {
		return err
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	if _, err := io.CopyBuffer(tmp, ctxReader{ctx, r}, *buf); err != nil {
		tmp.abort()
		return err
	}
	return tmp.commit(mode, mtime)
}

func (l Local) Symlink(target, rel string) error {
	dst := l.path(rel)
	tmp := filepath.Join(filepath.Dir(dst), fmt.Sprintf("%s%s.%d%s", tempPrefix, filepath.Base(dst), time.Now().UnixNano(), tempSuffix))
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (l Local) Readlink(rel string) (string, error) { return os.Readlink(l.path(rel)) }

func (l Local) RemoveAll(rel string) error {
	if rel == "" {
		return fmt.Errorf("refusing to remove the target's root")
	}
	return os.RemoveAll(l.path(rel))
}

func (l Local) SetAttrs(rel string, mode fs.FileMode, mtime time.Time) error {
	p := l.path(rel)
	if mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(p, mode.Perm()); err != nil {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	}
	return nil
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
