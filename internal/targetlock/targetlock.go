// Package targetlock keeps cairn processes that write a target from
// running at the same time as others that read or write it: a restore of a
// directory excludes a snapshot of it (which would record a torn tree) and
// any other restore, of that directory or of one inside or around it.
//
// Locks live in one directory (cairn's state). Each held lock is a small
// file naming its target, kept locked with flock by the process holding
// it, so a lock whose process died (even by kill -9) is seen as free. A
// process never conflicts with its own locks: a clone snapshots and
// restores in turn, and orders its own stages.
package targetlock

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
)

// Kind says what a lock's holder does to its target.
type Kind string

const (
	Read  Kind = "read"  // a snapshot: other readers may run
	Write Kind = "write" // a restore or clone: nothing else may
)

// Lock is a held lock.
type Lock struct {
	f    *os.File
	path string
}

var seq atomic.Uint64

// Acquire locks target for kind, or fails at once with an error
// satisfying errors.Is(err, cairn.ErrLocked) naming the other process's
// target. A target that starts with "/" is a directory (resolved, absolute)
// and conflicts with directories inside or above it, by path and by inode:
// a bind mount of a directory, or of one above it, is the same files. One
// on another host, ssh://host:port/path, conflicts with those inside or
// above it there. Anything else (a database's name) conflicts only with
// itself.
func Acquire(dir, target string, kind Kind) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	// One process at a time looks at the locks and adds its own.
	guard, err := os.OpenFile(filepath.Join(dir, "guard"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	defer guard.Close()
	if err := flock(guard, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	ids := chain(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	pid := strconv.Itoa(os.Getpid())
	var found error // the conflict to report: one naming a directory, if any
	foundDir := false
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".lock") || strings.HasPrefix(name, pid+"-") {
			continue
		}
		other, otherKind, otherIDs, alive := inspect(filepath.Join(dir, name))
		if !alive {
			os.Remove(filepath.Join(dir, name)) //nolint:errcheck // a dead process's
			continue
		}
		if (overlap(target, other) || related(ids, otherIDs)) && (kind == Write || otherKind == Write) && (found == nil || !foundDir && strings.HasPrefix(other, "/")) {
			found, foundDir = conflict(target, kind, other, otherKind), strings.HasPrefix(other, "/")
		}
	}
	if found != nil {
		return nil, found
	}
	path := filepath.Join(dir, pid+"-"+strconv.FormatUint(seq.Add(1), 10)+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	if err = flock(f, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		_, err = f.WriteString(string(kind) + "\n" + target + "\n" + strings.Join(ids, " "))
	}
	if err != nil {
		f.Close()
		os.Remove(path) //nolint:errcheck
		return nil, fmt.Errorf("lock %s: %w", target, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Release gives the lock back.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path) //nolint:errcheck
	l.f.Close()
	l.f = nil
}

// inspect reads a lock file and tells whether its process still holds it.
func inspect(path string) (target string, kind Kind, ids []string, alive bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", nil, false
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH|unix.LOCK_NB); err == nil {
		return "", "", nil, false // nobody holds it
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", nil, false
	}
	k, rest, _ := strings.Cut(string(b), "\n")
	t, idLine, _ := strings.Cut(rest, "\n")
	return t, Kind(k), strings.Fields(idLine), true
}

// chain names a directory target and every directory above it, so that
// any two spellings of related directories (bind mounts, links already
// resolved) meet: each directory by its inode ("dev:ino") where it
// exists, and by each existing directory above it and the path from there
// ("dev:ino/a/b"), which names it even before it exists. The target's
// own names come first, marked "=". Other targets have none.
func chain(target string) []string {
	if !strings.HasPrefix(target, "/") {
		return nil
	}
	var out []string
	for p, own := target, true; ; p = filepath.Dir(p) {
		for _, n := range names(p) {
			if own {
				n = "=" + n
			}
			out = append(out, n)
		}
		if p == "/" {
			return out
		}
		own = false
	}
}

// names are the names of the directory p (see chain).
func names(p string) []string {
	var out []string
	if id, ok := inode(p); ok {
		out = append(out, id)
	}
	rest := ""
	for q := p; q != "/"; q = filepath.Dir(q) {
		rest = path.Join(filepath.Base(q), rest)
		if id, ok := inode(filepath.Dir(q)); ok {
			out = append(out, id+"/"+rest)
		}
	}
	return out
}

func inode(p string) (string, bool) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return "", false
	}
	return strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10), true
}

// related reports whether one of two directories (their chains) is the
// other, or inside it: a name of one's own is among the other's.
func related(a, b []string) bool {
	return ownIn(a, b) || ownIn(b, a)
}

func ownIn(a, b []string) bool {
	in := map[string]bool{}
	for _, n := range b {
		in[strings.TrimPrefix(n, "=")] = true
	}
	for _, n := range a {
		if own, ok := strings.CutPrefix(n, "="); ok && in[own] {
			return true
		}
	}
	return false
}

func overlap(a, b string) bool {
	if a == b {
		return true
	}
	if ra, ok := strings.CutPrefix(a, "ssh://"); ok {
		// Directories on one host: ssh://host:port/path.
		rb, ok := strings.CutPrefix(b, "ssh://")
		ha, pa, _ := strings.Cut(ra, "/")
		hb, pb, _ := strings.Cut(rb, "/")
		return ok && ha == hb && overlap("/"+pa, "/"+pb)
	}
	if !strings.HasPrefix(a, "/") || !strings.HasPrefix(b, "/") {
		return false
	}
	return within(a, b) || within(b, a)
}

// within reports whether path p is inside directory dir.
func within(p, dir string) bool {
	return dir == "/" || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func conflict(target string, kind Kind, other string, otherKind Kind) error {
	if !strings.HasPrefix(target, "/") || !strings.HasPrefix(other, "/") {
		doing := map[Kind]string{Read: "which reads it", Write: "which writes it"}
		return fmt.Errorf("%s: %w (%s). Try: wait for it to finish and run the command again", target, cairn.ErrLocked, doing[otherKind])
	}
	doing := map[Kind]string{Read: "snapshotting", Write: "restoring onto"}
	what := "restore to " + target
	if kind == Read {
		what = "snapshot of " + target
	}
	return fmt.Errorf("%s: %w (%s %s). Try: wait for it to finish and run the command again", what, cairn.ErrLocked, doing[otherKind], other)
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
