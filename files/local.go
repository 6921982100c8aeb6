package files

import (
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
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotDir is returned when a path the restore walks through is not a
// directory on the target: most often a symbolic link put where the
// snapshot has a directory, which is never followed.
var ErrNotDir = errors.New("not a directory (a symbolic link is never followed)")

// ErrConnectionLost: the connection to a remote tree's host was lost.
var ErrConnectionLost = errors.New("connection lost")

// Local is a directory on this machine. Every read and write is made
// relative to a directory handle, and every handle is opened from the
// root down, one name at a time, without following symbolic links: a link
// in the target (put there before the restore or swapped in while it
// runs) is seen as a link and replaced, never written through, so nothing
// outside the root is ever created, changed or removed. Where the kernel
// has openat2, each operation finds its directory from the root anew,
// beneath it and through no link (see dirCache.get), so a directory moved
// out of the target while the restore runs gets nothing more. The root
// itself is resolved once, when the target is opened.
//
// A Local holds open descriptors: Close it when done.
type Local struct {
	root string // resolved, absolute
	dirs *dirCache
	// keep are the inodes RemoveAll never removes, nor descends past:
	// cairn's own files, however they are reached (a bind mount, a hard
	// link).
	keep map[FileID]bool
}

// FileID names an inode: its device and number.
type FileID struct{ Dev, Ino uint64 }

// IDOf returns the inode p names (following links), if it exists.
func IDOf(p string) (FileID, bool) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return FileID{}, false
	}
	return FileID{st.Dev, st.Ino}, true
}

// Keep makes RemoveAll refuse to remove the inodes ids, or anything
// holding one.
func (l *Local) Keep(ids []FileID) {
	l.keep = map[FileID]bool{}
	for _, id := range ids {
		l.keep[id] = true
	}
}

var _ Target = (*Local)(nil)

// OpenLocal opens the directory dir (which must exist) as a target. Links
// in dir itself are resolved here, once: a deploy layout's
// current -> releases/42 is restored in releases/42.
func OpenLocal(dir string) (*Local, error) {
	resolved, err := Resolve(dir)
	if err != nil {
		return nil, err
	}
	fd, err := openDir(unix.AT_FDCWD, resolved)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: resolved, Err: err}
	}
	l := &Local{root: resolved, dirs: newDirCache(fd)}
	if err := l.Verify(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// CreateLocal opens the directory dir (absolute, its links resolved, as
// Resolve gives it) as a target, making it and any directory above it
// that is missing. Each is made and opened relative to the one above,
// from the root down, never through a link: a directory swapped for a
// link meanwhile fails it with ErrNotDir, and nothing is made where the
// link leads.
func CreateLocal(dir string) (*Local, error) {
	fd, err := openDir(unix.AT_FDCWD, "/")
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	cur := "/"
	for _, name := range strings.Split(strings.Trim(dir, "/"), "/") {
		if name == "" {
			continue
		}
		cur = filepath.Join(cur, name)
		if err := ignoringEINTR(func() error { return unix.Mkdirat(fd, name, 0o755) }); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd) //nolint:errcheck
			return nil, &fs.PathError{Op: "mkdir", Path: cur, Err: err}
		}
		next, err := openDir(fd, name)
		unix.Close(fd) //nolint:errcheck
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				err = ErrNotDir
			}
			return nil, &fs.PathError{Op: "open", Path: cur, Err: err}
		}
		fd = next
	}
	l := &Local{root: filepath.Clean(dir), dirs: newDirCache(fd)}
	if err := l.Verify(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Verify checks that the target's path still leads to the directory it
// opened: checks made on the path (what it holds, its lock) hold for what
// is written. A directory above it swapped for a link while it was
// opened fails it.
func (l *Local) Verify() error {
	d, err := l.dirs.get("")
	if err != nil {
		return err
	}
	defer l.dirs.put(d)
	var open, named unix.Stat_t
	if err := unix.Fstat(d.fd, &open); err != nil {
		return err
	}
	if err := unix.Lstat(l.root, &named); err != nil || open.Dev != named.Dev || open.Ino != named.Ino {
		return fmt.Errorf("%s changed while being opened (a directory above it replaced by a link?): %w. Try: check who writes there, and run the command again", l.root, ErrNotDir)
	}
	return nil
}

// Root is the target's resolved absolute path.
func (l *Local) Root() string { return l.root }

func (l *Local) String() string { return l.root }

// Close releases the target's descriptors.
func (l *Local) Close() error { return l.dirs.close() }

// at resolves rel to its parent's handle and its own name. release must
// be called when done with the handle.
func (l *Local) at(rel string) (dirfd int, name string, release func(), err error) {
	if rel == "" {
		return 0, "", nil, fmt.Errorf("the target's root has no parent here")
	}
	dir, name := path.Split(rel)
	d, err := l.dirs.get(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return 0, "", nil, err
	}
	return d.fd, name, func() { l.dirs.put(d) }, nil
}

func (l *Local) pathError(op, rel string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		err = ErrNotDir
	}
	return &fs.PathError{Op: op, Path: filepath.Join(l.root, filepath.FromSlash(rel)), Err: err}
}

func (l *Local) Lstat(_ context.Context, rel string) (Info, error) {
	var st unix.Stat_t
	if rel == "" {
		d, err := l.dirs.get("")
		if err != nil {
			return Info{}, err
		}
		defer l.dirs.put(d)
		if err := unix.Fstat(d.fd, &st); err != nil {
			return Info{}, l.pathError("lstat", rel, err)
		}
		return infoOfStat(path.Base(l.root), &st), nil
	}
	fd, name, release, err := l.at(rel)
	if err != nil {
		return Info{}, err
	}
	defer release()
	if err := fstatat(fd, name, &st); err != nil {
		return Info{}, l.pathError("lstat", rel, err)
	}
	return infoOfStat(name, &st), nil
}

func (l *Local) ReadDir(_ context.Context, rel string) ([]Info, error) {
	d, err := l.dirs.get(rel)
	if err != nil {
		return nil, err
	}
	defer l.dirs.put(d)
	names, err := readNames(d.fd)
	if err != nil {
		return nil, l.pathError("readdir", rel, err)
	}
	out := make([]Info, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		err := fstatat(d.fd, name, &st)
		if errors.Is(err, unix.ENOENT) {
			continue // vanished while listing
		}
		if err != nil {
			return nil, l.pathError("lstat", path.Join(rel, name), err)
		}
		out = append(out, infoOfStat(name, &st))
	}
	return out, nil
}

func (l *Local) Mkdir(_ context.Context, rel string, mode fs.FileMode) error {
	fd, name, release, err := l.at(rel)
	if err != nil {
		return err
	}
	defer release()
	if err := ignoringEINTR(func() error { return unix.Mkdirat(fd, name, unixMode(mode)&0o7777|0o700) }); err != nil {
		return l.pathError("mkdir", rel, err)
	}
	return nil
}

func (l *Local) Open(_ context.Context, rel string) (io.ReadCloser, error) {
	fd, name, release, err := l.at(rel)
	if err != nil {
		return nil, err
	}
	defer release()
	var f int
	err = ignoringEINTR(func() (err error) {
		f, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, l.pathError("open", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(f) //nolint:errcheck
		return nil, l.pathError("open", rel, unix.EINVAL)
	}
	if err := unix.SetNonblock(f, false); err != nil {
		unix.Close(f) //nolint:errcheck
		return nil, l.pathError("open", rel, err)
	}
	return os.NewFile(uintptr(f), filepath.Join(l.root, rel)), nil
}

func (l *Local) WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	fd, name, release, err := l.at(rel)
	if err != nil {
		return err
	}
	defer release()
	tmp, err := createTemp(fd, name, l.displayPath(rel), mode)
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

func (l *Local) displayPath(rel string) string {
	return filepath.Join(l.root, filepath.FromSlash(rel))
}

func (l *Local) Symlink(_ context.Context, target, rel string) error {
	fd, name, release, err := l.at(rel)
	if err != nil {
		return err
	}
	defer release()
	return l.place(fd, name, rel, "symlink", func(tmp string) error { return unix.Symlinkat(target, fd, tmp) })
}

// Link makes rel another name of the regular file existing, replacing
// whatever file rel was, atomically. Neither path is followed if it is a
// link.
func (l *Local) Link(_ context.Context, existing, rel string) error {
	ofd, oname, orelease, err := l.at(existing)
	if err != nil {
		return err
	}
	defer orelease()
	fd, name, release, err := l.at(rel)
	if err != nil {
		return err
	}
	defer release()
	return l.place(fd, name, rel, "link", func(tmp string) error { return unix.Linkat(ofd, oname, fd, tmp, 0) })
}

// place makes an entry under a fresh temporary name in fd with mk, and
// renames it over name: readers see the old entry or the new one.
func (l *Local) place(fd int, name, rel, op string, mk func(tmp string) error) error {
	for range 100 {
		tmp := tempName(name)
		err := mk(tmp)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return l.pathError(op, rel, err)
		}
		err = unix.Renameat(fd, tmp, fd, name)
		unix.Unlinkat(fd, tmp, 0) //nolint:errcheck // there still if the rename failed, or name was that file already
		if err != nil {
			return l.pathError(op, rel, err)
		}
		return nil
	}
	return l.pathError(op, rel, unix.EEXIST)
}

// FreeSpace is how many bytes the target's file system has free for its
// user.
func (l *Local) FreeSpace(context.Context) (int64, error) {
	d, err := l.dirs.get("")
	if err != nil {
		return 0, err
	}
	defer l.dirs.put(d)
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.fd, &st); err != nil {
		return 0, l.pathError("statfs", "", err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Rename renames from to to, both relative to the target, replacing to
// if it is a file.
func (l *Local) Rename(_ context.Context, from, to string) error {
	ofd, oname, orelease, err := l.at(from)
	if err != nil {
		return err
	}
	defer orelease()
	fd, name, release, err := l.at(to)
	if err != nil {
		return err
	}
	defer release()
	if err := unix.Renameat(ofd, oname, fd, name); err != nil {
		return l.pathError("rename", from, err)
	}
	return nil
}

// Sync flushes rel (a file or a directory, "" the root) to its disk.
func (l *Local) Sync(_ context.Context, rel string) error {
	d, err := l.dirs.get("")
	if err != nil {
		return err
	}
	defer l.dirs.put(d)
	dirfd, name := d.fd, "."
	if rel != "" {
		fd, n, release, err := l.at(rel)
		if err != nil {
			return err
		}
		defer release()
		dirfd, name = fd, n
	}
	var fd int
	err = ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		return err
	})
	if err != nil {
		return l.pathError("sync", rel, err)
	}
	defer unix.Close(fd) //nolint:errcheck
	if err := unix.Fsync(fd); err != nil {
		return l.pathError("sync", rel, err)
	}
	return nil
}

func (l *Local) Readlink(_ context.Context, rel string) (string, error) {
	fd, name, release, err := l.at(rel)
	if err != nil {
		return "", err
	}
	defer release()
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, buf)
		if err != nil {
			return "", l.pathError("readlink", rel, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (l *Local) RemoveAll(_ context.Context, rel string) error {
	if rel == "" {
		return fmt.Errorf("refusing to remove the target's root")
	}
	fd, name, release, err := l.at(rel)
	if err != nil {
		return err
	}
	defer release()
	l.dirs.forget(rel)
	if err := l.removeAllAt(fd, name); err != nil {
		return l.pathError("remove", rel, err)
	}
	return nil
}

func (l *Local) SetAttrs(_ context.Context, rel string, mode fs.FileMode, mtime time.Time) error {
	if mode&fs.ModeSymlink != 0 {
		return nil
	}
	var (
		fd   int
		name string
	)
	if rel == "" {
		d, err := l.dirs.get("")
		if err != nil {
			return err
		}
		defer l.dirs.put(d)
		fd, name = d.fd, ""
	} else {
		dfd, n, release, err := l.at(rel)
		if err != nil {
			return err
		}
		defer release()
		fd, name = dfd, n
	}
	if err := chmodAt(fd, name, unixMode(mode)&0o7777); err != nil {
		return l.pathError("chmod", rel, err)
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags = unix.AT_EMPTY_PATH
	}
	if err := ignoringEINTR(func() error { return unix.UtimesNanoAt(fd, name, []unix.Timespec{ts, ts}, flags) }); err != nil {
		return l.pathError("chtimes", rel, err)
	}
	return nil
}

// chmodAt changes the mode of name in dirfd ("" for dirfd itself) without
// following a link: with fchmodat2 where the kernel has it (Linux 6.6),
// else through an O_PATH handle, which names the entry itself.
func chmodAt(dirfd int, name string, mode uint32) error {
	if name == "" {
		return unix.Fchmod(dirfd, mode)
	}
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd) //nolint:errcheck
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil // a link has no mode of its own
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// openDir opens name in dirfd as a directory, never through a link.
func openDir(dirfd int, name string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	return ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW) })
}

// readNames lists a directory open as fd.
func readNames(fd int) ([]string, error) {
	dup, err := openDir(fd, ".")
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAllAt removes name in dirfd and everything below it, each entry
// relative to its own directory's handle: a link is removed, never
// followed.
func (l *Local) removeAllAt(dirfd int, name string) error {
	if len(l.keep) > 0 {
		var st unix.Stat_t
		if err := fstatat(dirfd, name, &st); err == nil && l.keep[FileID{st.Dev, st.Ino}] {
			return errProtectedPath
		}
	}
	err := ignoringEINTR(func() error { return unix.Unlinkat(dirfd, name, 0) })
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := openDir(dirfd, name)
	if oerr != nil {
		if errors.Is(oerr, unix.ENOENT) {
			return nil
		}
		if errors.Is(oerr, unix.ENOTDIR) || errors.Is(oerr, unix.ELOOP) {
			return err // not a directory after all: unlink's error stands
		}
		return oerr
	}
	for {
		names, err := readNames(fd)
		if err != nil {
			unix.Close(fd) //nolint:errcheck
			return err
		}
		if len(names) == 0 {
			break
		}
		for _, n := range names {
			if err := l.removeAllAt(fd, n); err != nil {
				unix.Close(fd) //nolint:errcheck
				return err
			}
		}
	}
	unix.Close(fd) //nolint:errcheck
	err = ignoringEINTR(func() error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// unixMode turns Go's mode bits into the kernel's, the setuid, setgid
// and sticky bits included.
func unixMode(m fs.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		out |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		out |= unix.S_ISVTX
	}
	return out
}

func infoOfStat(name string, st *unix.Stat_t) Info {
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return Info{
		Name: name, Mode: mode, Size: st.Size,
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Dev:     st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink),
	}
}

// dirCache keeps the handles of the directories a restore is working in,
// so that each file costs one walk step, not one per level. A handle in
// use is never closed; unused ones are closed beyond maxOpenDirs.
type dirCache struct {
	mu   sync.Mutex
	open map[string]*dirHandle
	tick uint64
}

type dirHandle struct {
	rel  string
	fd   int
	refs int
	used uint64
	gone bool // removed from the cache: closed when no longer used
}

const maxOpenDirs = 256

func newDirCache(root int) *dirCache {
	return &dirCache{open: map[string]*dirHandle{"": {fd: root, refs: 1}}} // the root's reference is never given back
}

// get returns the handle of the directory rel, without following links.
// Where the kernel has openat2 (Linux 5.6), rel is resolved afresh from
// the root for each use, in one call that refuses links and any way out
// of the root: a directory moved out of the target meanwhile is not
// written through. Elsewhere handles are opened name by name and cached.
func (c *dirCache) get(rel string) (*dirHandle, error) {
	if rel != "" && haveOpenat2 {
		return c.resolve(rel)
	}
	c.mu.Lock()
	if d, ok := c.open[rel]; ok {
		d.refs++
		c.tick++
		d.used = c.tick
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()
	parent, name := path.Split(rel)
	p, err := c.get(strings.TrimSuffix(parent, "/"))
	if err != nil {
		return nil, err
	}
	fd, err := openDir(p.fd, name)
	c.put(p)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			err = ErrNotDir
		}
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.open[rel]; ok { // opened meanwhile by another walker
		unix.Close(fd) //nolint:errcheck
		d.refs++
		return d, nil
	}
	c.tick++
	d := &dirHandle{rel: rel, fd: fd, refs: 1, used: c.tick}
	c.open[rel] = d
	c.evict()
	return d, nil
}

// haveOpenat2 tells whether the kernel has openat2.
var haveOpenat2 = func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return false
	}
	unix.Close(fd) //nolint:errcheck
	return true
}()

// resolve opens rel beneath the root for one use (see get).
func (c *dirCache) resolve(rel string) (*dirHandle, error) {
	c.mu.Lock()
	root := c.open[""]
	c.mu.Unlock()
	if root == nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrClosed}
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat2(root.fd, rel, how)
		if errors.Is(err, unix.EAGAIN) { // a rename raced the lookup: again
			err = unix.EINTR
		}
		return err
	})
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			err = ErrNotDir
		}
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return &dirHandle{rel: rel, fd: fd, refs: 1, gone: true}, nil // closed when given back
}

func (c *dirCache) put(d *dirHandle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.refs--
	if d.refs == 0 && d.gone {
		unix.Close(d.fd) //nolint:errcheck
	}
}

// evict closes the least recently used idle handles beyond maxOpenDirs.
// c.mu is held.
func (c *dirCache) evict() {
	for len(c.open) > maxOpenDirs {
		var oldest *dirHandle
		for _, d := range c.open {
			if d.refs == 0 && (oldest == nil || d.used < oldest.used) {
				oldest = d
			}
		}
		if oldest == nil {
			return
		}
		delete(c.open, oldest.rel)
		unix.Close(oldest.fd) //nolint:errcheck
	}
}

// forget drops the handles of rel and everything below it: they are
// about to be removed.
func (c *dirCache) forget(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.open {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(c.open, k)
			d.gone = true
			if d.refs == 0 {
				unix.Close(d.fd) //nolint:errcheck
			}
		}
	}
}

// close closes the idle handles, and the others once they are given back.
func (c *dirCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, d := range c.open {
		delete(c.open, k)
		if k == "" {
			d.refs-- // the root's own reference
		}
		d.gone = true
		if d.refs == 0 {
			unix.Close(d.fd) //nolint:errcheck
		}
	}
	return nil
}

// Resolve returns path made absolute with every symbolic link in it
// resolved, as far as it exists: the part that does not exist yet is
// appended as given (cleaned). It is how targets are compared and locked,
// whatever spelling names them.
//
// A ".." is taken as the file system does, after the link before it: the
// path is not cleaned first, as filepath.Abs would.
func Resolve(p string) (string, error) {
	abs := p
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		abs = wd + "/" + p
	}
	var rest []string
	for cur := abs; ; {
		resolved, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{resolved}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		cur = strings.TrimRight(cur, "/")
		i := strings.LastIndex(cur, "/")
		if i <= 0 {
			return filepath.Clean(abs), nil
		}
		base := cur[i+1:]
		if base == ".." {
			return "", fmt.Errorf("%s: %w", p, fs.ErrNotExist) // above a directory that does not exist
		}
		if base != "." && base != "" {
			rest = append([]string{base}, rest...)
		}
		cur = cur[:i]
	}
}

// ResolveBeneath is Resolve for a path that must not pass through a link
// inside any of the directories roots (an environment's files, which a
// site's user may change): links above them are resolved, as a deploy
// layout's current -> releases/42 is, but a link met at or below a root
// is refused with ErrNotDir, whatever spelling p uses.
func ResolveBeneath(p string, roots []string) (string, error) {
	var within []string
	for _, r := range roots {
		if r, err := Resolve(r); err == nil {
			within = append(within, r)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	cur := "/"
	rest := strings.Split(strings.Trim(abs, "/"), "/")
	for hops := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		next := filepath.Join(cur, name) // a ".." here is the resolved parent's
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		for _, r := range within {
			if Within(next, r) {
				return "", fmt.Errorf("%s is a symbolic link inside %s: %w", next, r, ErrNotDir)
			}
		}
		if hops++; hops > 40 {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return cur, nil
}

// Within reports whether path p is dir or inside it (both absolute and
// clean).
func Within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}
