package sshfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"github.com/cairn-backup/cairn/files"
)

// Tree is a directory on another host, over SFTP: a files.Target and a
// files.Linker. Like files.Local it never follows a link: SFTP resolves
// paths on the server, so each directory above an entry is checked to be
// a directory (not a link) before the entry is read or written, once per
// Tree. (A link swapped in by someone on the host between that check and
// the write cannot be excluded over SFTP, which has no openat.) Files are
// written to a temporary name beside their place and renamed over it
// (OpenSSH's posix-rename), so an interrupted write leaves the old file.
//
// A Tree spreads its lookups, reads and writes over a few SFTP sessions on
// the one connection: OpenSSH's sftp-server answers one request at a time,
// and a tree of many small files waits on it more than on the network.
type Tree struct {
	c    *sftp.Client   // the first session: directories, renames, removals
	data []*sftp.Client // the sessions for lookups, reads and writes
	all  []*sftp.Client // every session, c first
	next atomic.Uint32
	root string // absolute, on the host
	name string // for messages: ssh://user@host:port/root
	conn *Conn
	mu   sync.Mutex
	dirs map[string]bool // directories checked to be no links

	listOnce sync.Once // the listing is run by the first ReadDir
	listed   listing   // what is left of it (see fromListing)
	listErr  error     // why there is none

	patching chan struct{}         // the patches under way (see Patch)
	noPatch  atomic.Pointer[error] // why the host cannot patch, once it could not
}

var (
	_ files.Target = (*Tree)(nil)
	_ files.Linker = (*Tree)(nil)
)

// OpenTree opens the directory root on c's host; with create it is made
// (with its missing parents) when missing.
func OpenTree(ctx context.Context, c *Conn, root string, create bool) (*Tree, error) {
	if !path.IsAbs(root) {
		return nil, fmt.Errorf("%s: %q is not an absolute path", c, root)
	}
	t := &Tree{root: path.Clean(root), name: "ssh://" + c.host + path.Clean(root), conn: c, dirs: map[string]bool{"": true}, patching: make(chan struct{}, patchers)}
	opts := []sftp.ClientOption{sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64)}
	first, err := newSFTP(c.Client, opts...)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: start SFTP: %w. Try: check that the server's sshd has an sftp Subsystem", c, err)
	}
	t.c, t.all = first, []*sftp.Client{first}
	if _, ok := first.HasExtension("limits@openssh.com"); ok {
		// OpenSSH 8.7 and later read and write up to 255 KiB per request:
		// eight times fewer round trips than SFTP's 32 KiB.
		opts = append(opts, sftp.MaxPacketUnchecked(openSSHMaxRead))
	}
	for range sessions {
		sc, err := newSFTP(c.Client, opts...)
		if err != nil {
			break // the server allows fewer sessions (MaxSessions): fewer it is
		}
		t.all, t.data = append(t.all, sc), append(t.data, sc)
	}
	if len(t.data) == 0 {
		t.data = t.all
	}
	if create {
		if err := t.c.MkdirAll(t.root); err != nil {
			t.Close()
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
	}
	fi, err := t.c.Lstat(t.root)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%w (it is %v)", files.ErrNotDir, fi.Mode().Type())
	}
	if err != nil {
		t.Close()
		return nil, t.pathError("open", "", err)
	}
	return t, nil
}

// sessions is how many SFTP sessions a Tree opens for lookups, reads and
// writes, beside its first (OpenSSH allows 10 per connection by default).
const sessions = 3

// openSSHMaxRead is the most OpenSSH's sftp-server reads or writes for one
// request (SFTP_MAX_MSG_LENGTH less its headers' room).
const openSSHMaxRead = 256<<10 - 1024

// sc is the next data session, in turn.
func (t *Tree) sc() *sftp.Client { return t.data[int(t.next.Add(1))%len(t.data)] }

// Close ends the SFTP sessions (not the connection).
func (t *Tree) Close() error {
	var errs []error
	for _, c := range t.all {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (t *Tree) String() string { return t.name }

func (t *Tree) abs(rel string) string { return path.Join(t.root, rel) }

func (t *Tree) pathError(op, rel string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is said once, the tree's way
	}
	var se *sftp.StatusError
	switch {
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxNoSuchFile:
		err = fs.ErrNotExist
	case lostConnection(err):
		err = files.ErrConnectionLost
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure && (op == "write" || op == "mkdir"):
		// OpenSSH's sftp-server says no more than "Failure" of a full disk.
		err = fmt.Errorf("%w: the host refused the %s, most often because its disk is full (of bytes, or of inodes: df -i). Try: free space there, then run the same command again", err, op)
	}
	return &fs.PathError{Op: op, Path: t.name + "/" + rel, Err: err}
}

// beneath checks that every directory above rel is a directory, not a
// link, and that rel stays inside the tree.
func (t *Tree) beneath(ctx context.Context, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if rel != path.Clean(rel) || strings.HasPrefix(rel, "../") || rel == ".." || path.IsAbs(rel) || rel == "." {
		if rel != "" {
			return t.pathError("open", rel, fmt.Errorf("%w: not a path inside the tree", fs.ErrInvalid))
		}
	}
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	t.mu.Lock()
	ok := t.dirs[dir]
	t.mu.Unlock()
	if ok {
		return nil
	}
	if err := t.beneath(ctx, dir); err != nil {
		return err
	}
	fi, err := t.c.Lstat(t.abs(dir))
	if err != nil {
		return t.pathError("lstat", dir, err)
	}
	if !fi.IsDir() {
		return t.pathError("open", rel, files.ErrNotDir)
	}
	t.mu.Lock()
	t.dirs[dir] = true
	t.mu.Unlock()
	return nil
}

// forget drops what is known of the directories at rel and below (it was
// removed or replaced).
func (t *Tree) forget(rel string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d := range t.dirs {
		if d == rel || strings.HasPrefix(d, rel+"/") {
			delete(t.dirs, d)
		}
	}
}

func info(fi os.FileInfo) files.Info {
	return files.Info{Name: fi.Name(), Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime()}
}

// Lstat describes rel without following a link.
func (t *Tree) Lstat(ctx context.Context, rel string) (files.Info, error) {
	if err := t.beneath(ctx, rel); err != nil {
		return files.Info{}, err
	}
	fi, err := t.sc().Lstat(t.abs(rel))
	if err != nil {
		return files.Info{}, t.pathError("lstat", rel, err)
	}
	i := info(fi)
	if rel == "" {
		i.Name = path.Base(t.root)
	}
	return i, nil
}

// ReadDir lists the directory rel (which is not a link). The listing is
// asked for while rel is looked at, not after: a listing's round trips
// are a remote restore's walk.
func (t *Tree) ReadDir(ctx context.Context, rel string) ([]files.Info, error) {
	if err := t.beneath(ctx, rel); err != nil {
		return nil, err
	}
	if list, ok := t.fromListing(ctx, rel); ok {
		return list, nil
	}
	type result struct {
		list []os.FileInfo
		err  error
	}
	listed := make(chan result, 1)
	go func() {
		list, err := t.sc().ReadDir(t.abs(rel))
		listed <- result{list, err}
	}()
	if err := t.isDir(ctx, rel); err != nil {
		<-listed
		return nil, err
	}
	l := <-listed
	list, err := l.list, l.err
	if err != nil {
		return nil, t.pathError("readdir", rel, err)
	}
	out := make([]files.Info, len(list))
	for i, fi := range list {
		out[i] = info(fi)
	}
	return out, nil
}

// isDir checks that rel is a directory, not a link to one.
func (t *Tree) isDir(ctx context.Context, rel string) error {
	i, err := t.Lstat(ctx, rel)
	if err != nil {
		return err
	}
	if !i.Mode.IsDir() {
		return t.pathError("open", rel, files.ErrNotDir)
	}
	return nil
}

// Mkdir makes the directory rel, its parent existing.
func (t *Tree) Mkdir(ctx context.Context, rel string, mode fs.FileMode) error {
	if err := t.beneath(ctx, rel); err != nil {
		return err
	}
	t.unlist(rel, false)
	if err := t.c.Mkdir(t.abs(rel)); err != nil {
		if fi, serr := t.c.Lstat(t.abs(rel)); serr == nil && fi != nil {
			return t.pathError("mkdir", rel, fs.ErrExist)
		}
		return t.pathError("mkdir", rel, err)
	}
	if err := t.c.Chmod(t.abs(rel), mode.Perm()|0o700); err != nil {
		return t.pathError("chmod", rel, err)
	}
	return nil
}

// Open reads the regular file rel.
func (t *Tree) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	i, err := t.Lstat(ctx, rel)
	if err != nil {
		return nil, err
	}
	if !i.Mode.IsRegular() {
		return nil, t.pathError("open", rel, fmt.Errorf("%w: not a regular file (%v)", fs.ErrInvalid, i.Mode.Type()))
	}
	f, err := t.sc().OpenFile(t.abs(rel), os.O_RDONLY)
	if err != nil {
		return nil, t.pathError("open", rel, err)
	}
	switch {
	case i.Size <= oneRead:
		return lossReader{&sized{f: f, size: i.Size}}, nil
	case i.Size <= streamAbove:
		return lossReader{f}, nil
	}
	return lossReader{stream(ctx, f)}, nil
}

// oneRead is the size up to which a file is read by one request of
// exactly its size, as the listing gave it.
const oneRead = 64 << 10

// sized reads a small file's size bytes, in one request when the reader
// asks for as many at once, and then says io.EOF without asking the host
// again. Bytes appended since the listing are left for the next snapshot,
// which sees the file's new size and time; so is a file cut shorter, whose
// read ends early.
type sized struct {
	f    *sftp.File
	size int64
	off  int64
}

func (s *sized) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if rest := s.size - s.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.f.ReadAt(p, s.off)
	s.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // the next Read says it
	}
	return n, err
}

func (s *sized) Close() error { return s.f.Close() }

// lostConnection tells whether err is the connection's end: the SFTP
// client's word for it, or the network's (a broken pipe, a reset).
func lostConnection(err error) bool {
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// lossReader says files.ErrConnectionLost of a read the connection's end
// broke off.
type lossReader struct{ io.ReadCloser }

func (r lossReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && err != io.EOF && lostConnection(err) {
		err = fmt.Errorf("%w (%v)", files.ErrConnectionLost, err)
	}
	return n, err
}

// streamAbove is the size from which a file is read ahead: a reader that
// asks for 64 KiB at a time would otherwise wait a round trip for each.
const streamAbove = 256 << 10

// streamed is a remote file read ahead by many requests in flight (the
// SFTP client's WriteTo), into a pipe that Read drains.
type streamed struct {
	pr   *io.PipeReader
	f    *sftp.File
	done chan struct{}
}

func stream(ctx context.Context, f *sftp.File) *streamed {
	pr, pw := io.Pipe()
	s := &streamed{pr: pr, f: f, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_, err := f.WriteTo(pw)
		pw.CloseWithError(err) //nolint:errcheck // it never fails
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) }) //nolint:errcheck
	go func() { <-s.done; stop() }()
	return s
}

func (s *streamed) Read(p []byte) (int, error) { return s.pr.Read(p) }

func (s *streamed) Close() error {
	s.pr.Close() //nolint:errcheck // the writer's next write fails, ending WriteTo
	<-s.done
	return s.f.Close()
}

// WriteFile writes r to a temporary file beside rel, sets its mode and
// time, and renames it over rel.
func (t *Tree) WriteFile(ctx context.Context, rel string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	return t.place(ctx, rel, func(tmp string) error {
		sc := t.sc()
		f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		if _, err := f.ReadFrom(files.ContextReader(ctx, r)); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode.Perm()); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return sc.Chtimes(tmp, mtime, mtime)
	})
}

// Symlink replaces rel with a link to target.
func (t *Tree) Symlink(ctx context.Context, target, rel string) error {
	return t.place(ctx, rel, func(tmp string) error { return t.c.Symlink(target, tmp) })
}

// Link makes rel another name of the regular file existing (OpenSSH's
// hardlink extension).
func (t *Tree) Link(ctx context.Context, existing, rel string) error {
	if err := t.beneath(ctx, existing); err != nil {
		return err
	}
	return t.place(ctx, rel, func(tmp string) error { return t.c.Link(t.abs(existing), tmp) })
}

// place makes rel's new entry under a temporary name with mk, then
// renames it over rel; on failure the temporary entry is removed.
func (t *Tree) place(ctx context.Context, rel string, mk func(tmp string) error) error {
	if err := t.beneath(ctx, rel); err != nil {
		return err
	}
	tmp := t.abs(path.Join(path.Dir(rel), files.TempName(path.Base(rel))))
	t.unlist(rel, true)
	if err := mk(tmp); err != nil {
		t.c.Remove(tmp) //nolint:errcheck
		return t.pathError("write", rel, err)
	}
	if err := t.c.PosixRename(tmp, t.abs(rel)); err != nil {
		t.c.Remove(tmp) //nolint:errcheck
		return t.pathError("rename", rel, err)
	}
	t.forget(rel)
	return nil
}

// Readlink returns the link rel's target.
func (t *Tree) Readlink(ctx context.Context, rel string) (string, error) {
	if err := t.beneath(ctx, rel); err != nil {
		return "", err
	}
	s, err := t.c.ReadLink(t.abs(rel))
	if err != nil {
		return "", t.pathError("readlink", rel, err)
	}
	return s, nil
}

// RemoveAll removes rel and what is below it, following no link.
func (t *Tree) RemoveAll(ctx context.Context, rel string) error {
	if rel == "" {
		return t.pathError("remove", rel, fmt.Errorf("%w: the tree's root", fs.ErrInvalid))
	}
	i, err := t.Lstat(ctx, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	t.unlist(rel, true)
	if !i.Mode.IsDir() {
		if err := t.c.Remove(t.abs(rel)); err != nil {
			return t.pathError("remove", rel, err)
		}
		return nil
	}
	kids, err := t.ReadDir(ctx, rel)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := t.RemoveAll(ctx, path.Join(rel, k.Name)); err != nil {
			return err
		}
	}
	t.forget(rel)
	if err := t.c.RemoveDirectory(t.abs(rel)); err != nil {
		return t.pathError("remove", rel, err)
	}
	return nil
}

// SetAttrs sets rel's permissions and modification time. SFTP's setstat
// follows links, so a link's own are left as they are.
func (t *Tree) SetAttrs(ctx context.Context, rel string, mode fs.FileMode, mtime time.Time) error {
	i, err := t.Lstat(ctx, rel)
	if err != nil {
		return err
	}
	if i.Mode&fs.ModeSymlink != 0 {
		return nil
	}
	t.unlist(rel, false)
	if err := t.c.Chmod(t.abs(rel), mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return t.pathError("chmod", rel, err)
	}
	if err := t.c.Chtimes(t.abs(rel), mtime, mtime); err != nil {
		return t.pathError("chtimes", rel, err)
	}
	return nil
}

// Rename renames from to to, both in the tree, replacing to if it is a
// file (OpenSSH's posix-rename).
func (t *Tree) Rename(ctx context.Context, from, to string) error {
	if err := t.beneath(ctx, from); err != nil {
		return err
	}
	if err := t.beneath(ctx, to); err != nil {
		return err
	}
	t.unlist(from, true)
	t.unlist(to, true)
	if err := t.c.PosixRename(t.abs(from), t.abs(to)); err != nil {
		return t.pathError("rename", from, err)
	}
	t.forget(to)
	return nil
}

// FreeSpace is how many bytes the tree's file system has free for its
// user (OpenSSH's statvfs extension).
func (t *Tree) FreeSpace(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st, err := t.c.StatVFS(t.root)
	if err != nil {
		return 0, t.pathError("statvfs", "", err)
	}
	return int64(st.Bavail * st.Frsize), nil
}
