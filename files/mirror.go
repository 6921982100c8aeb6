package files

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/pattern"
)

// Mirror copies files onto a local directory from another reader's reads:
// a clone writes the source's files onto its target from the very reads
// that snapshot them, instead of reading them a second time. It is a head
// start only: a file it does not finish (read in part, changed while read,
// a write that failed) is left as it was, for the restore that follows.
// Files get the size, permissions and time the snapshot records, so that
// the restore finds them in place. A file the target has is replaced
// atomically, as WriteFile does; one it lacks is made in place and
// removed again if its copy fails (after a crash, its size or time tells
// the restore to write it again).
//
// A Mirror copies nothing until Start and nothing after Stop; it is safe
// for concurrent use.
type Mirror struct {
	ctx  context.Context
	dst  *Local
	keep pattern.Set

	mu    sync.Mutex
	on    bool
	dirs  map[string]bool // directories made or seen
	stats Stats
}

var _ cairn.FileMirror = (*Mirror)(nil)

// NewMirror returns a mirror that never writes the paths keep matches
// (nor anything below them).
func NewMirror(keep pattern.Set) *Mirror {
	return &Mirror{keep: keep, dirs: map[string]bool{"": true}}
}

// Start begins copying onto dst, within ctx; files opened before are not
// copied. dst stays the caller's to close, after Stop.
func (m *Mirror) Start(ctx context.Context, dst *Local) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ctx, m.dst, m.on = ctx, dst, true
}

// Stop ends copying and returns what was written. Files being written
// when it is called are still finished (the target's handles they use
// stay open until then, even once it is closed).
func (m *Mirror) Stop() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = false
	return m.stats
}

// MirrorFile implements cairn.FileMirror.
func (m *Mirror) MirrorFile(rel string, mode fs.FileMode, size int64, mtime time.Time) cairn.MirrorWriter {
	m.mu.Lock()
	on := m.on
	m.mu.Unlock()
	if !on {
		return nil
	}
	if w := m.mirrorFile(rel, mode, size, mtime); w != nil {
		return w
	}
	return nil // a nil *mirrorFile is not a nil MirrorWriter
}

func (m *Mirror) mirrorFile(rel string, mode fs.FileMode, size int64, mtime time.Time) *mirrorFile {
	if !mode.IsRegular() || m.kept(rel) {
		return nil
	}
	// Directories above are made or checked first: one that is a link
	// on the target must not be written through.
	if err := m.mkdirAll(path.Dir(rel)); err != nil {
		return nil
	}
	dirfd, name, release, err := m.dst.at(rel)
	if err != nil {
		return nil
	}
	display := m.dst.displayPath(rel)
	// Most often the target lacks the file (a first clone): it is made
	// in place.
	tmp, err := createNew(dirfd, name, display, mode)
	exists := errors.Is(err, fs.ErrExist)
	if exists {
		var cur unix.Stat_t
		serr := fstatat(dirfd, name, &cur)
		if serr != nil || cur.Mode&unix.S_IFMT == unix.S_IFDIR || cur.Size == size && cur.Mtim.Nano() == mtime.UnixNano() && fs.FileMode(cur.Mode&0o777) == mode.Perm() {
			release()
			return nil // a directory is the restore's to replace; an equal file is done
		}
		tmp, err = createTemp(dirfd, name, display, mode)
	}
	if err != nil {
		release()
		return nil
	}
	return &mirrorFile{m: m, tmp: tmp, release: release, mode: mode, size: size, mtime: mtime, exists: exists}
}

// kept reports whether rel or a directory above it is one the target keeps.
func (m *Mirror) kept(rel string) bool {
	if m.keep.Empty() {
		return false
	}
	if m.keep.Match(rel, false) {
		return true
	}
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if m.keep.Match(dir, true) {
			return true
		}
	}
	return false
}

// mkdirAll makes the directories above a file; the restore gives them
// their permissions and times afterwards.
func (m *Mirror) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	m.mu.Lock()
	known := m.dirs[dir]
	m.mu.Unlock()
	if known {
		return nil
	}
	if err := m.mkdirAll(path.Dir(dir)); err != nil {
		return err
	}
	err := m.dst.Mkdir(m.ctx, dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		// Something is there: a directory does, anything else is the
		// restore's to replace.
		if fi, serr := m.dst.Lstat(m.ctx, dir); serr != nil || !fi.Mode.IsDir() {
			return fs.ErrExist
		}
		err = nil
	}
	if err == nil {
		m.mu.Lock()
		m.dirs[dir] = true
		m.mu.Unlock()
	}
	return err
}

// mirrorFile is one file being copied.
type mirrorFile struct {
	m       *Mirror
	tmp     *tempFile
	release func() // gives back the directory's handle
	mode    fs.FileMode
	size    int64
	mtime   time.Time
	exists  bool
	written int64
	failed  bool
}

// Write never fails: a failed copy is dropped, and the reader reads on.
func (f *mirrorFile) Write(p []byte) (int, error) {
	if !f.failed {
		n, err := f.tmp.Write(p)
		f.written += int64(n)
		f.failed = err != nil
	}
	return len(p), nil
}

func (f *mirrorFile) Finish(complete bool) {
	defer f.release()
	if !complete || f.failed || f.written != f.size {
		f.tmp.abort()
		return
	}
	if err := f.tmp.commit(f.mode, f.mtime); err != nil {
		return
	}
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.exists {
		f.m.stats.Updated++
	} else {
		f.m.stats.Added++
	}
	f.m.stats.BytesWritten += f.size
}
