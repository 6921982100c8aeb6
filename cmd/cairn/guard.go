package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/config"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/repo"
)

// ownPaths are cairn's own files, resolved: the local repository, the key
// files, the state directory (kopia's config and caches, locks, records)
// and the password file. They are never snapshotted, overwritten or
// deleted.
func (a *app) ownPaths() ([]string, error) {
	var raw []string
	// Every repository this run knows of, not only the one it opens.
	if loc, _, err := a.repoLocation(); err == nil && loc.Path != "" {
		raw = append(raw, loc.Path)
	}
	if p := a.cfg.Repository.Path; p != "" {
		raw = append(raw, a.cfg.RepositoryPath())
	}
	if p := os.Getenv("CAIRN_REPOSITORY"); p != "" && !strings.Contains(p, "://") {
		raw = append(raw, p)
	}
	if d, err := dataDir(); err == nil {
		raw = append(raw, filepath.Join(d, "repository"))
	}
	cfgDir, err := configDir()
	if err != nil {
		return nil, err
	}
	state, err := stateDir()
	if err != nil {
		return nil, err
	}
	raw = append(raw, filepath.Join(cfgDir, "keys"), state)
	for _, f := range []string{os.Getenv("CAIRN_PASSWORD_FILE"), a.cfg.PasswordFilePath(), a.cfg.File} {
		if f != "" {
			raw = append(raw, f)
		}
	}
	out := make([]string, 0, len(raw))
	for _, p := range raw {
		r, err := files.Resolve(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// guardTarget checks a restore's resolved target against cairn's own
// files: a target inside one of them is refused; those inside the target
// are returned relative to it, for the restore to leave alone.
func (a *app) guardTarget(target string) ([]string, error) {
	own, err := a.ownPaths()
	if err != nil {
		return nil, err
	}
	var inside []string
	for _, p := range own {
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

// ownIDs are the inodes of cairn's own files that exist: a restore
// leaves them alone however it meets them (a bind mount, a hard link).
func (a *app) ownIDs() []files.FileID {
	own, err := a.ownPaths()
	if err != nil {
		return nil
	}
	var ids []files.FileID
	for _, p := range own {
		if id, ok := files.IDOf(p); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// lockTarget keeps cairn processes from writing one target at once, or
// from snapshotting a directory while another restores it (see package
// targetlock). A directory target must be resolved; anything else (a
// database) is named as it is.
func lockTarget(target string, kind targetlock.Kind) (func(), error) {
	dir, err := lockDir()
	if err != nil {
		return nil, err
	}
	l, err := targetlock.Acquire(dir, target, kind)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// lockRepository keeps cairn repair from running while another cairn
// process of this machine uses the repository (Read), and the other way
// round. A local repository is named by its resolved path.
func lockRepository(loc repo.Location, kind targetlock.Kind) (func(), error) {
	name := loc.String()
	if loc.S3 == nil {
		if p, err := files.Resolve(loc.Path); err == nil {
			name = p
		}
	}
	release, err := lockTarget("repository "+name, kind)
	if err != nil && errors.Is(err, cairn.ErrLocked) {
		return nil, fmt.Errorf("%w. Try: let the other cairn command finish (a repair needs the repository to itself)", err)
	}
	return release, err
}

// systemLocks is where root's cairn processes keep their locks, whatever
// their state directories: every run as root sees every other's.
const systemLocks = "/run/lock/cairn"

// lockDir is the directory of target locks: the system's for root (when
// /run/lock exists), else the user's state directory's.
func lockDir() (string, error) {
	if os.Geteuid() == 0 {
		if fi, err := os.Stat(filepath.Dir(systemLocks)); err == nil && fi.IsDir() {
			return systemLocks, nil
		}
	}
	state, err := stateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(state, "locks"), nil
}

// snapshotTree takes a snapshot with cairn's own files left out, while no
// restore writes the tree.
func (a *app) snapshotTree(ctx context.Context, r *repo.Repo, req cairn.SnapshotRequest, p cairn.Progress) (*cairn.Snapshot, error) {
	own, err := a.ownPaths()
	if err != nil {
		return nil, err
	}
	req.Protect = own
	for _, id := range a.ownIDs() {
		req.ProtectIDs = append(req.ProtectIDs, [2]uint64{id.Dev, id.Ino})
	}
	dir, err := files.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	unlock, err := lockTarget(dir, targetlock.Read)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return r.Snapshot(ctx, req, p)
}

// envAt returns the environments whose files are the resolved directory
// dir (several may name one directory), and those whose files overlap it:
// inside it or around it.
func envAt(cfg *config.Config, dir string) (exact, overlapping []*cairn.Environment) {
	for _, sn := range slices.Sorted(maps.Keys(cfg.Sites)) {
		for _, en := range slices.Sorted(maps.Keys(cfg.Sites[sn].Environments)) {
			e := cfg.Sites[sn].Environments[en]
			if e.Files.Path == "" || !e.Files.IsLocal() {
				continue
			}
			p, err := files.Resolve(e.Files.Path)
			if err != nil {
				continue
			}
			pid, okP := files.IDOf(p)
			did, okD := files.IDOf(dir)
			switch {
			case p == dir || okP && okD && pid == did: // a bind mount is the same directory
				exact = append(exact, e)
			case files.Within(p, dir) || files.Within(dir, p):
				overlapping = append(overlapping, e)
			}
		}
	}
	return exact, overlapping
}

// filesRoots lists every environment's local files, and the restore's
// target dir if any: the directories a site's user may change, which a
// SQLite database is never replaced through a link in.
func filesRoots(cfg *config.Config, dir string) []string {
	var out []string
	if dir != "" {
		out = append(out, dir)
	}
	for _, sn := range slices.Sorted(maps.Keys(cfg.Sites)) {
		for _, en := range slices.Sorted(maps.Keys(cfg.Sites[sn].Environments)) {
			if e := cfg.Sites[sn].Environments[en]; e.Files.Path != "" && e.Files.IsLocal() {
				out = append(out, e.Files.Path)
			}
		}
	}
	return out
}

// protectedAt lists the environments marked protected: true whose files
// a restore onto dir writes: dir itself, or a directory inside or around
// it, however the config spells them.
func protectedAt(cfg *config.Config, dir string) []*cairn.Environment {
	exact, overlapping := envAt(cfg, dir)
	var out []*cairn.Environment
	for _, e := range append(exact, overlapping...) {
		if e.Protected {
			out = append(out, e)
		}
	}
	return out
}

// protectedDatabases lists the protected environments (beyond those
// already confirmed) whose databases are among dbs.
func (a *app) protectedDatabases(dbs []dbRestore, confirmed []*cairn.Environment) []*cairn.Environment {
	var out []*cairn.Environment
	for _, sn := range slices.Sorted(maps.Keys(a.cfg.Sites)) {
		for _, en := range slices.Sorted(maps.Keys(a.cfg.Sites[sn].Environments)) {
			e := a.cfg.Sites[sn].Environments[en]
			if !e.Protected || slices.Contains(confirmed, e) {
				continue
			}
			for _, dsn := range e.Databases {
				db, err := database.Open(dsn, database.Options{})
				if err != nil {
					continue
				}
				if slices.ContainsFunc(dbs, func(d dbRestore) bool { return d.to.String() == db.String() }) {
					out = append(out, e)
					break
				}
			}
		}
	}
	return out
}

// madeByRestore records directories cairn restored into while they were
// empty: a later restore there may delete what the snapshot lacks
// without --delete, as in an environment's own files.
type madeByRestore struct{ dir string }

func restoredRecords() (madeByRestore, error) {
	state, err := stateDir()
	if err != nil {
		return madeByRestore{}, err
	}
	return madeByRestore{filepath.Join(state, "restored")}, nil
}

func (m madeByRestore) file(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(m.dir, hex.EncodeToString(sum[:12]))
}

// identity names a directory's inode by its device, number and birth
// time, so that a record outlives neither the directory nor another made
// later with the same inode number. Without a birth time there is none.
func identity(dir string) string {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil || st.Mask&unix.STATX_BTIME == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d:%d.%d\n%s", st.Dev_major, st.Dev_minor, st.Ino, st.Btime.Sec, st.Btime.Nsec, st.Mode, dir)
}

// Has reports whether cairn made dir (resolved) by a restore.
func (m madeByRestore) Has(dir string) bool {
	id := identity(dir)
	b, err := os.ReadFile(m.file(dir))
	return err == nil && id != "" && string(b) == id
}

// Add records that cairn made dir.
func (m madeByRestore) Add(dir string) error {
	id := identity(dir)
	if id == "" {
		return nil
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(m.file(dir), []byte(id), 0o600)
}

// isEmptyDir reports whether dir is missing or an empty directory.
func isEmptyDir(dir string) bool {
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
