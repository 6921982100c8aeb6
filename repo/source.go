package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"sync"
	"syscall"

	"github.com/kopia/kopia/fs"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/pattern"
)

// source wraps a local kopia directory so that the snapshot sees exactly
// the tree cairn means: excluded paths are left out (with the same matcher
// that restore uses to keep them), and files that change while being read
// are noted. Files read whole are handed to the mirror, if any.
type source struct {
	exclude pattern.Set
	mirror  cairn.FileMirror
	// protect are paths (relative, slash-separated) never read: cairn's
	// own repository, keys and state inside the tree.
	protect map[string]bool
	// protectIDs are their inodes, for directories reached another way.
	protectIDs map[[2]uint64]bool

	mu       sync.Mutex
	changed  []string
	warnings []string // what the snapshot could not keep
	links    linkTracker
}

// linkGroups returns the files seen with other names (see linkTracker).
func (s *source) linkGroups() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.links.over {
		s.warnings = append(s.warnings, fmt.Sprintf("more than %d hard-linked paths: the rest are kept as separate copies", maxHardLinks))
	}
	return s.links.groups()
}

func (s *source) wrapDir(d fs.Directory, rel string) fs.Directory {
	return &sourceDir{Directory: d, rel: rel, name: escapeName(d.Name()), src: s}
}

func (s *source) warn(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

func (s *source) warningsSorted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.warnings...)
	sort.Strings(out)
	return out
}

func (s *source) noteChanged(rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changed = append(s.changed, rel)
}

func (s *source) changedFiles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.changed...)
	sort.Strings(out)
	return out
}

// wrap applies the exclude rules to one entry; it returns nil when the
// entry is left out. Names are escaped (see escapeName).
func (s *source) wrap(e fs.Entry, rel string) fs.Entry {
	if s.exclude.Match(rel, e.IsDir()) {
		return nil
	}
	if !e.IsDir() && files.IsTemp(e.Name()) {
		s.warn("%s left out: a file an interrupted cairn restore was writing (the next restore there removes it)", rel)
		return nil
	}
	if s.protect[rel] {
		s.warn("%s left out: it holds cairn's own repository, keys or state, which are never snapshotted", rel)
		return nil
	}
	switch e := e.(type) {
	case fs.Directory:
		if s.isProtectedDir(e) {
			s.warn("%s left out: it is cairn's own repository, keys or state (mounted there), which are never snapshotted", rel)
			return nil
		}
		return s.wrapDir(e, rel)
	case fs.File:
		s.mu.Lock()
		s.links.note(rel, e.LocalFilesystemPath())
		s.mu.Unlock()
		return &sourceFile{File: e, rel: rel, name: escapeName(e.Name()), src: s}
	case fs.Symlink:
		if name := escapeName(e.Name()); name != e.Name() {
			return renamedLink{e, name}
		}
	case fs.ErrorEntry:
		if errors.Is(e.ErrorInfo(), fs.ErrUnknown) {
			s.warn("%s left out: a %s is not kept (only files, directories and links are)", rel, kindOf(e.Mode()))
			return nil
		}
	}
	return e
}

// isProtectedDir reports whether the directory d is one of protectIDs.
func (s *source) isProtectedDir(d fs.Directory) bool {
	if len(s.protectIDs) == 0 {
		return false
	}
	fi, err := os.Lstat(d.LocalFilesystemPath())
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && s.protectIDs[[2]uint64{uint64(st.Dev), st.Ino}] //nolint:unconvert // Dev's type varies
}

func kindOf(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}

type renamedLink struct {
	fs.Symlink
	name string
}

func (l renamedLink) Name() string { return l.name }

type sourceDir struct {
	fs.Directory
	rel  string
	name string // as stored
	src  *source
}

func (d *sourceDir) Name() string { return d.name }

func (d *sourceDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, unescapeName(name))
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	w := d.src.wrap(e, path.Join(d.rel, e.Name()))
	if w == nil {
		return nil, fs.ErrEntryNotFound
	}
	return w, nil
}

func (d *sourceDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	it, err := d.Directory.Iterate(ctx)
	if err != nil {
		return nil, err //nolint:wrapcheck
	}
	return &sourceIter{DirectoryIterator: it, dir: d}, nil
}

type sourceIter struct {
	fs.DirectoryIterator
	dir *sourceDir
}

func (it *sourceIter) Next(ctx context.Context) (fs.Entry, error) {
	for {
		e, err := it.DirectoryIterator.Next(ctx)
		if e == nil || err != nil {
			return e, err //nolint:wrapcheck
		}
		if w := it.dir.src.wrap(e, path.Join(it.dir.rel, e.Name())); w != nil {
			return w, nil
		}
	}
}

// sourceFile notes a file whose size or modification time changed between
// the directory listing and the end of reading it.
type sourceFile struct {
	fs.File
	rel  string
	name string // as stored
	src  *source
}

func (f *sourceFile) Name() string { return f.name }

func (f *sourceFile) Open(ctx context.Context) (fs.Reader, error) {
	r, err := f.File.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.rel, err)
	}
	sr := &sourceReader{Reader: r, f: f, ctx: ctx}
	if f.src.mirror != nil {
		sr.mirror = f.src.mirror.MirrorFile(f.rel, f.Mode(), f.Size(), f.ModTime())
	}
	return sr, nil
}

// remoteOneRead is the size up to which a remote file is read in one
// request (kopia reads 64 KiB at a time).
const remoteOneRead = 64 << 10

type sourceReader struct {
	fs.Reader
	f   *sourceFile
	ctx context.Context // the Open's: a remote file is looked at again on Close

	mirror cairn.MirrorWriter // nil: not mirrored, or no longer
	read   int64
	eof    bool
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if r.mirror != nil && n > 0 {
		r.mirror.Write(p[:n]) //nolint:errcheck // it never fails
	}
	r.read += int64(n)
	r.eof = r.eof || err == io.EOF
	return n, err //nolint:wrapcheck
}

// Seek is only used by kopia to read a large file in parts, each opened
// anew: the mirror takes files read whole, start to end.
func (r *sourceReader) Seek(offset int64, whence int) (int64, error) {
	if r.mirror != nil {
		r.mirror.Finish(false)
		r.mirror = nil
	}
	return r.Reader.Seek(offset, whence) //nolint:wrapcheck
}

func (r *sourceReader) Close() error {
	err := r.Reader.Close()
	changed := false
	if p := r.f.LocalFilesystemPath(); p != "" {
		st, serr := os.Lstat(p)
		changed = serr != nil || st.Size() != r.f.Size() || !st.ModTime().Equal(r.f.ModTime())
	} else if t, ok := r.f.File.(treeFile); ok {
		// Over a network a look costs a round trip: a file read in one
		// request (most of a site's) is looked at again only if it did
		// not end where the listing said.
		if r.f.Size() > remoteOneRead || r.read != r.f.Size() || !r.eof {
			i, serr := t.t.Lstat(r.ctx, t.rel)
			changed = serr != nil || i.Size != r.f.Size() || !i.ModTime.Equal(r.f.ModTime())
		}
	}
	if changed {
		r.f.src.noteChanged(r.f.rel)
	}
	if r.mirror != nil {
		r.mirror.Finish(err == nil && !changed && r.eof && r.read == r.f.Size())
		r.mirror = nil
	}
	return err //nolint:wrapcheck
}
