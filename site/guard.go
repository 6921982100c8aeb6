package site

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
)

// Own lists cairn's own files, resolved.
func (c *Catalog) Own() []string { return c.own }

// OwnIDs are the inodes of cairn's own files that exist: a restore
// leaves them alone however it meets them (a bind mount, a hard link).
func (c *Catalog) OwnIDs() []files.FileID {
	var ids []files.FileID
	for _, p := range c.own {
		if id, ok := files.IDOf(p); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// Guard checks a restore's resolved target against cairn's own files: a
// target inside one of them is refused; those inside the target are
// returned relative to it, for the restore to leave alone.
func (c *Catalog) Guard(target string) ([]string, error) {
	var inside []string
	for _, p := range c.own {
		if files.Within(target, p) {
			return nil, fmt.Errorf("%w: %s is inside cairn's own %s; a restore there could destroy the backups. Try: restore to another directory", cairn.ErrInvalidArgument, target, p)
		}
		if files.Within(p, target) {
			rel, _ := filepath.Rel(target, p)
			inside = append(inside, filepath.ToSlash(rel))
		}
	}
	return inside, nil
}

// At returns the environments whose files are the resolved directory dir
// (several may name one directory; a bind mount of it is it), and those
// whose files overlap it: inside it or around it.
func (c *Catalog) At(dir string) (exact, overlapping []*cairn.Environment) {
	remote := strings.HasPrefix(dir, "ssh://")
	did, okD := files.IDOf(dir)
	for _, e := range c.envs {
		kind := 0 // 2: exact, 1: overlapping
		for _, l := range nodesOf(e) {
			if l.IsLocal() == remote {
				continue
			}
			kind = max(kind, relation(dir, did, okD, l))
		}
		switch kind {
		case 2:
			exact = append(exact, e)
		case 1:
			overlapping = append(overlapping, e)
		}
	}
	return exact, overlapping
}

// nodesOf lists an environment's files: each node's, or its one place.
func nodesOf(e *cairn.Environment) []cairn.Location {
	if len(e.Nodes) > 0 {
		return e.Nodes
	}
	if e.Files.Path == "" {
		return nil
	}
	return []cairn.Location{e.Files}
}

// relation tells how the files at l are to the directory dir (resolved,
// or a remote one's Key; did its inode): 2 they are it, 1 they are inside
// or around it, 0 neither.
func relation(dir string, did files.FileID, okD bool, l cairn.Location) int {
	if !l.IsLocal() {
		k := l.Key()
		switch {
		case k == dir:
			return 2
		case strings.HasPrefix(k, dir+"/") || strings.HasPrefix(dir, k+"/") || strings.HasSuffix(dir, "/") && strings.HasPrefix(k, dir):
			return 1
		}
		return 0
	}
	p, err := files.Resolve(l.Path)
	if err != nil {
		return 0
	}
	pid, okP := files.IDOf(p)
	switch {
	case p == dir || okP && okD && pid == did:
		return 2
	case files.Within(p, dir) || files.Within(dir, p):
		return 1
	}
	return 0
}

// ProtectedAt lists the environments marked protected: true whose files
// a restore onto the resolved directory dir writes: dir itself, or a
// directory inside or around it, however the config spells them.
func (c *Catalog) ProtectedAt(dir string) []*cairn.Environment {
	exact, overlapping := c.At(dir)
	var out []*cairn.Environment
	for _, e := range append(exact, overlapping...) {
		if e.Protected {
			out = append(out, e)
		}
	}
	return out
}

// ProtectedDatabases lists the protected environments, beyond those in
// confirmed, one of whose databases is among dbs (compared by their DSN
// without its password).
func (c *Catalog) ProtectedDatabases(dbs []cairn.Database, confirmed []*cairn.Environment) []*cairn.Environment {
	var out []*cairn.Environment
	for _, e := range c.envs {
		if !e.Protected || slices.Contains(confirmed, e) {
			continue
		}
		for _, dsn := range e.Databases {
			db, err := database.Open(dsn, database.Options{})
			if err != nil {
				continue
			}
			if slices.ContainsFunc(dbs, func(d cairn.Database) bool { return d.String() == db.String() }) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// FilesRoots lists every environment's local files, and dir if not "":
// the directories a site's user may change, which a SQLite database is
// never replaced through a link in (see database.Options.Beneath).
func (c *Catalog) FilesRoots(dir string) []string {
	var out []string
	if dir != "" {
		out = append(out, dir)
	}
	for _, e := range c.envs {
		for _, l := range nodesOf(e) {
			if l.IsLocal() {
				out = append(out, l.Path)
			}
		}
	}
	return out
}

// Lock keeps cairn processes from writing one target at once, or from
// snapshotting a directory while another restores it (see package
// targetlock): a directory target must be resolved; anything else (a
// database) is named as it is. It fails at once with cairn.ErrLocked.
func (c *Catalog) Lock(target string, kind targetlock.Kind) (release func(), err error) {
	l, err := targetlock.Acquire(c.lockDir, target, kind)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// LockDatabase locks a database a restore replaces.
func (c *Catalog) LockDatabase(db cairn.Database) (release func(), err error) {
	return c.Lock("database "+db.String(), targetlock.Write)
}

// LockRepository keeps cairn repair (kind Write) from running while
// another cairn process of this machine uses the repository (Read), and
// the other way round. name is the repository's location (a local one
// resolved).
func (c *Catalog) LockRepository(name string, kind targetlock.Kind) (release func(), err error) {
	release, err = c.Lock("repository "+name, kind)
	if err != nil && errors.Is(err, cairn.ErrLocked) {
		return nil, fmt.Errorf("%w. Try: let the other cairn command finish (a repair needs the repository to itself)", err)
	}
	return release, err
}

// SystemLocks is where root's cairn processes keep their locks, whatever
// their state directories: every run as root sees every other's.
const SystemLocks = "/run/lock/cairn"

// LockDir is the directory of target locks: the system's for root (when
// /run/lock exists), else the state directory's.
func LockDir(stateDir string) string {
	if os.Geteuid() == 0 {
		if fi, err := os.Stat(filepath.Dir(SystemLocks)); err == nil && fi.IsDir() {
			return SystemLocks
		}
	}
	return filepath.Join(stateDir, "locks")
}

// MadeByRestore reports whether cairn made the resolved directory dir by
// a restore into it while it was empty: a later restore there may delete
// what the snapshot lacks without being told to, as in an environment's
// own files.
func (c *Catalog) MadeByRestore(dir string) bool {
	id := identity(dir)
	b, err := os.ReadFile(c.recordFile(dir))
	return err == nil && id != "" && string(b) == id
}

// NoteMadeByRestore records that a restore made dir.
func (c *Catalog) NoteMadeByRestore(dir string) error {
	id := identity(dir)
	if id == "" {
		return nil
	}
	if err := os.MkdirAll(c.records, 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.recordFile(dir), []byte(id), 0o600)
}

func (c *Catalog) recordFile(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(c.records, hex.EncodeToString(sum[:12]))
}

// identity names a directory's inode by its device, number and birth
// time, so that a record outlives neither the directory nor another made
// later with the same inode number. Without a birth time there is none.
func identity(dir string) string {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil || st.Mask&unix.STATX_BTIME == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d:%d.%d:%s\n%s", st.Dev_major, st.Dev_minor, st.Ino, st.Btime.Sec, st.Btime.Nsec, st.Mode, generation(dir), dir)
}

// fsIocGetVersion is FS_IOC_GETVERSION, _IOR('v', 1, long).
const fsIocGetVersion = 0x80087601

// generation is the inode's generation number, which the file system
// changes when it gives an inode number out again: birth times are
// coarse (a few milliseconds on ext4), so a directory removed and made
// again at once can have the same number and birth time. "" where the file
// system keeps none.
func generation(dir string) string {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd) //nolint:errcheck
	g, err := unix.IoctlGetUint32(fd, fsIocGetVersion)
	if err != nil {
		return ""
	}
	return strconv.FormatUint(uint64(g), 10)
}

// IsEmptyDir reports whether dir is missing or an empty directory.
func IsEmptyDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if os.IsNotExist(err) {
		return true
	}
	if err != nil || !fi.IsDir() {
		return false
	}
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return err != nil && len(names) == 0
}
