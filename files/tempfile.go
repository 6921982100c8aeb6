package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tempFile is a file being written under a temporary name beside its
// destination; commit puts it in place in one rename, abort removes it.
// It works on the bare descriptor: a restore or clone writes tens of
// thousands of files, and *os.File's set-up (non-blocking mode, the
// poller) and os.Rename's extra Lstat cost a third of a second of CPU per
// 25,000 files on the machines measured.
type tempFile struct {
	fd       int
	tmp, dst string // the same for a file made in place (createNew)
	perm     fs.FileMode
}

// umask is the process's, read once: a file created with permissions the
// umask leaves whole needs no chmod.
var umask = func() fs.FileMode {
	m := unix.Umask(0)
	unix.Umask(m)
	return fs.FileMode(m)
}()

var tempSeq atomic.Uint64

// createTemp creates a temporary file for dst in dst's directory, with
// permissions perm (where the umask allows: commit sets them).
func createTemp(dst string, perm fs.FileMode) (*tempFile, error) {
	dir, base := filepath.Split(dst)
	for range 100 {
		tmp := dir + tempPrefix + base + "." + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(tempSeq.Add(1), 36) + tempSuffix
		fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.Perm()|0o600))
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: tmp, Err: err}
		}
		return &tempFile{fd: fd, tmp: tmp, dst: dst, perm: (perm.Perm() | 0o600) &^ umask}, nil
	}
	return nil, fmt.Errorf("create a temporary file beside %s: too many attempts", dst)
}

// createNew creates dst itself, which must not exist: for a file the
// target lacks, a reader sees no file or a partial one either way, and the
// rename is saved. abort removes it again. It fails with an error
// satisfying errors.Is(err, fs.ErrExist) if dst exists.
func createNew(dst string, perm fs.FileMode) (*tempFile, error) {
	for {
		fd, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.Perm()|0o600))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "create", Path: dst, Err: err}
		}
		return &tempFile{fd: fd, tmp: dst, dst: dst, perm: (perm.Perm() | 0o600) &^ umask}, nil
	}
}

func (t *tempFile) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(t.fd, p[written:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return written, &fs.PathError{Op: "write", Path: t.tmp, Err: err}
		}
		written += n
	}
	return written, nil
}

// commit sets the file's permissions and time and renames it over dst.
func (t *tempFile) commit(mode fs.FileMode, mtime time.Time) error {
	var err error
	if t.perm != mode.Perm() {
		err = unix.Fchmod(t.fd, uint32(mode.Perm()))
	}
	if err == nil {
		ts := unix.NsecToTimespec(mtime.UnixNano())
		err = futimens(t.fd, &[2]unix.Timespec{ts, ts})
	}
	if cerr := unix.Close(t.fd); err == nil {
		err = cerr
	}
	t.fd = -1
	if err == nil && t.tmp != t.dst {
		// dst is known not to be a directory (the caller looked), so the
		// check os.Rename makes first is not needed.
		err = unix.Rename(t.tmp, t.dst)
	}
	if err != nil {
		t.abort()
		return &fs.PathError{Op: "write", Path: t.dst, Err: err}
	}
	return nil
}

// futimens sets an open file's times (utimensat with no path): no path
// lookup, and nanoseconds kept, which unix.Futimes would round.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// abort closes and removes the temporary file (or the file createNew
// made).
func (t *tempFile) abort() {
	if t.fd >= 0 {
		unix.Close(t.fd) //nolint:errcheck
		t.fd = -1
	}
	unix.Unlink(t.tmp) //nolint:errcheck
}
