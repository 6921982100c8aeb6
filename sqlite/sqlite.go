// Package sqlite dumps, loads and replaces SQLite databases with the
// engine's own sqlite3 tool. Its .dump reads inside one savepoint, so the
// dump is consistent while the application writes; a replace builds the
// new database beside the old file and renames it into place, which is
// atomic.
package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/runtool"
)

// Config is one database file, from sqlite:///absolute/path.db.
type Config struct{ Path string }

// ParseDSN reads a sqlite:///absolute/path DSN.
func ParseDSN(dsn string) (Config, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "sqlite" {
		return Config{}, fmt.Errorf("%w: %q is not a sqlite:///path DSN", cairn.ErrInvalidArgument, dsn)
	}
	p := u.Host + u.Path
	if !filepath.IsAbs(p) {
		return Config{}, fmt.Errorf("%w: %q: the path must be absolute, e.g. sqlite:///var/www/app/db.sqlite", cairn.ErrInvalidArgument, dsn)
	}
	return Config{Path: filepath.Clean(p)}, nil
}

func (c Config) String() string { return "sqlite://" + c.Path }

// TableStat describes one table at dump time. SQLite offers no cheap
// checksum, so only rows are counted.
type TableStat = cairn.TableStat

func (c Config) mustExist() error {
	st, err := os.Stat(c.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("database %s does not exist: %w. Try: check the path in the DSN", c.Path, cairn.ErrNotFound)
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("database %s is not a regular file", c.Path)
	}
	return nil
}

// run runs sqlite3 on path with stdin and stdout; args follow the path.
func run(ctx context.Context, path string, stdin io.Reader, stdout io.Writer, args ...string) error {
	t, err := runtool.Find("apt-get install sqlite3", "sqlite3")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, t, append([]string{"-bail", "-batch", path}, args...)...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	if err := runtool.Run(ctx, cmd); err != nil {
		return fmt.Errorf("sqlite3 %s: %w", path, err)
	}
	return nil
}

// Dump streams the database as SQL to w.
func Dump(ctx context.Context, c Config, w io.Writer) error {
	if err := c.mustExist(); err != nil {
		return err
	}
	return run(ctx, c.Path, nil, w, ".dump")
}

// Exec runs SQL statements on the database.
func Exec(ctx context.Context, c Config, sql string) error {
	if err := c.mustExist(); err != nil {
		return err
	}
	return run(ctx, c.Path, strings.NewReader(sql), io.Discard)
}

// Stats counts every table's rows, in name order, in one read transaction.
func Stats(ctx context.Context, c Config) ([]TableStat, error) {
	if err := c.mustExist(); err != nil {
		return nil, err
	}
	var names strings.Builder
	if err := run(ctx, c.Path, nil, &names, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); err != nil {
		return nil, err
	}
	var tables []string
	for _, n := range strings.Split(strings.TrimSpace(names.String()), "\n") {
		if n != "" {
			tables = append(tables, n)
		}
	}
	if len(tables) == 0 {
		return nil, nil
	}
	var q []string
	for _, t := range tables {
		q = append(q, "SELECT count(*) FROM "+quoteIdent(t))
	}
	var counts strings.Builder
	script := "BEGIN;\n" + strings.Join(q, ";\n") + ";\nCOMMIT;\n"
	if err := run(ctx, c.Path, strings.NewReader(script), &counts); err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(counts.String()), "\n")
	if len(lines) != len(tables) {
		return nil, fmt.Errorf("count rows of %s: got %d answers for %d tables", c.Path, len(lines), len(tables))
	}
	stats := make([]TableStat, len(tables))
	for i, t := range tables {
		n, err := strconv.ParseInt(strings.TrimSpace(lines[i]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count rows of %s.%s: %q", c.Path, t, lines[i])
		}
		stats[i] = TableStat{Name: t, Rows: n}
	}
	return stats, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// ErrMismatch means a loaded copy does not match the snapshot's statistics.
var ErrMismatch = cairn.ErrMismatch

// ReplaceOptions tune Replace.
type ReplaceOptions struct {
	// Beneath are directories a site's user may change (the
	// environments' files): a link at or below one of them on the way to
	// the database is refused, never followed. Links above them (a
	// deploy layout's current -> releases/42) are resolved once.
	Beneath []string
}

// Replace builds the database from the dump in a new file beside c.Path,
// checks it with verify, and renames it over c.Path: readers see the old
// database or the new one, never a mix. Stale -wal and -shm files of the
// old database are removed so that they are not applied to the new one.
// Any failure before the rename leaves c.Path as it was. Stop the
// application while restoring: connections it keeps open still see the
// old file.
//
// The database's directory is resolved once and opened; the rename and
// removals are made relative to that handle, so a directory swapped for a
// link meanwhile is not written through.
func Replace(ctx context.Context, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions) error {
	dir, err := files.ResolveBeneath(filepath.Dir(c.Path), o.Beneath)
	if err != nil {
		return fmt.Errorf("database %s: %w. Try: replace the link with the directory it should be (a restore with --only files does), or point the DSN at the real path", c.Path, err)
	}
	d, err := files.OpenLocal(dir)
	if err != nil {
		return fmt.Errorf("database %s: %w", c.Path, err)
	}
	defer d.Close()
	if d.Root() != dir { // a link swapped in since dir was resolved
		return fmt.Errorf("database %s: %s now leads to %s: %w. Try: check who writes there, and run the restore again", c.Path, dir, d.Root(), files.ErrNotDir)
	}
	base := filepath.Base(c.Path)
	// A link in the database's place is refused: whoever can write its
	// directory (a site's user) could point it at any file root's restore
	// would then replace. Anything but a regular file is not a database
	// to replace.
	switch fi, err := d.Lstat(ctx, base); {
	case err == nil && fi.Mode&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: cairn does not replace a database through one. Try: point the DSN at the file itself", c.Path)
	case err == nil && !fi.Mode.IsRegular():
		return fmt.Errorf("%s is not a regular file (%v): refusing to replace it. Try: point the DSN at the database file", c.Path, fi.Mode.Type())
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database %s: %w", c.Path, err)
	}
	tmp := files.TempName(base)
	ok := false
	defer func() {
		if !ok {
			for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
				d.RemoveAll(ctx, tmp+suffix) //nolint:errcheck
			}
		}
	}()
	// sqlite3 takes a path: what it built is checked to be the file the
	// handle sees before it is renamed into place.
	built := filepath.Join(dir, tmp)
	if err := run(ctx, built, dump, io.Discard); err != nil {
		return fmt.Errorf("load %s: %w", c.Path, err)
	}
	got, err := Stats(ctx, Config{Path: built})
	if err != nil {
		return err
	}
	if err := verify(got); err != nil {
		return err
	}
	held, err := d.Lstat(ctx, tmp)
	if err != nil {
		return fmt.Errorf("load %s: %w", c.Path, err)
	}
	if id, found := files.IDOf(built); !found || id != (files.FileID{Dev: held.Dev, Ino: held.Ino}) || !held.Mode.IsRegular() {
		return fmt.Errorf("load %s: %s changed while it was loaded (a directory replaced by a link?). Try: check who writes there, and run the restore again", c.Path, dir)
	}
	if err := d.Sync(ctx, tmp); err != nil {
		return err
	}
	if err := d.Rename(ctx, tmp, base); err != nil {
		return fmt.Errorf("swap %s: %w", c.Path, err)
	}
	ok = true
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := d.RemoveAll(ctx, base+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the old database's %s: %w", suffix, err)
		}
	}
	return d.Sync(ctx, "")
}
