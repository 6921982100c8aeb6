package sqlite

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
)

func sh(t *testing.T, path, sql string) {
	t.Helper()
	cmd := exec.Command("sqlite3", "-bail", "-batch", path)
	cmd.Stdin = strings.NewReader(sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
}

// source makes a WAL-mode database with the hard cases.
func source(t *testing.T) Config {
	p := filepath.Join(t.TempDir(), "app.sqlite")
	sh(t, p, `PRAGMA journal_mode=WAL;
CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, body TEXT, img BLOB);
CREATE TABLE "odd ""name""" (x);
CREATE TABLE log (msg TEXT);
CREATE VIEW titles AS SELECT id, title FROM posts;
CREATE TRIGGER trim_title AFTER INSERT ON posts BEGIN UPDATE posts SET title = trim(title) WHERE id = NEW.id; END;
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 500)
INSERT INTO posts (title, body, img) SELECT ' post ' || i || ' ', 'Café ☕ 🎉 it''s "quoted"' || char(10) || 'line two', x'00ff27' FROM g;
INSERT INTO "odd ""name""" VALUES (NULL), (1.5);
`)
	return Config{Path: p}
}

func dumpOf(t *testing.T, c Config) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Dump(context.Background(), c, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseDSN(t *testing.T) {
	if c, err := ParseDSN("sqlite:///var/www/app/db.sqlite"); err != nil || c.Path != "/var/www/app/db.sqlite" {
		t.Errorf("ParseDSN = %+v, %v", c, err)
	}
	for _, bad := range []string{"sqlite://relative.db", "mysql:///x", "sqlite:"} {
		if _, err := ParseDSN(bad); !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("ParseDSN(%q) = %v", bad, err)
		}
	}
}

func TestDumpStatsReplace(t *testing.T) {
	src := source(t)
	ctx := context.Background()
	stats, err := Stats(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []TableStat{{Name: "log"}, {Name: `odd "name"`, Rows: 2}, {Name: "posts", Rows: 500}}
	if len(stats) != 3 || stats[0] != want[0] || stats[1] != want[1] || stats[2] != want[2] {
		t.Fatalf("stats = %+v, want %+v", stats, want)
	}
	dump := dumpOf(t, src)
	if !bytes.Contains(dump, []byte("🎉")) || !bytes.Contains(dump, []byte("X'00ff27'")) {
		t.Errorf("dump lacks data:\n%.500s", dump)
	}

	// The target: another database, in WAL mode, with a live -wal file.
	dst := Config{Path: filepath.Join(t.TempDir(), "staging.sqlite")}
	sh(t, dst.Path, "PRAGMA journal_mode=WAL; CREATE TABLE stale (x); INSERT INTO stale VALUES (1);")
	if err := Replace(ctx, dst, bytes.NewReader(dump), strict(stats), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := dumpOf(t, dst); !bytes.Equal(got, dump) {
		t.Errorf("the copy's dump differs from the source's:\n%.300s\n---\n%.300s", got, dump)
	}
	assertNoLeftovers(t, dst)
}

// Dumping a database that does not exist fails, and creates nothing.
func TestDumpMissing(t *testing.T) {
	missing := Config{Path: filepath.Join(t.TempDir(), "nope.sqlite")}
	if err := Dump(context.Background(), missing, io.Discard); !errors.Is(err, cairn.ErrNotFound) {
		t.Errorf("missing database: %v", err)
	}
	if _, err := os.Stat(missing.Path); err == nil {
		t.Error("dumping a missing database created it")
	}
}

func assertNoLeftovers(t *testing.T, c Config) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Dir(c.Path))
	for _, e := range entries {
		if e.Name() != filepath.Base(c.Path) {
			t.Errorf("left beside the database: %s", e.Name())
		}
	}
}

// strict verifies a loaded copy against want, checksums included.
func strict(want []TableStat) cairn.Verify { return cairn.Expect(want, nil) }

// A link in the database's place (a site's user may make one) is refused:
// the file it leads to is never replaced.
func TestReplaceRefusesALink(t *testing.T) {
	src := source(t)
	dump := dumpOf(t, src)
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim.txt")
	os.WriteFile(victim, []byte("precious"), 0o644)
	link := filepath.Join(dir, "app.sqlite")
	os.Symlink(victim, link)
	if err := Replace(context.Background(), Config{Path: link}, bytes.NewReader(dump), func([]cairn.TableStat) error { return nil }, ReplaceOptions{}); err == nil {
		t.Fatal("a restore replaced a database that is a link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the link's target was changed: %q", b)
	}
}

// A link among the database's directories inside an environment's files
// (Beneath) is refused, whatever the DSN's spelling; one above them (a
// deploy layout) is resolved.
func TestReplaceRefusesALinkBeneath(t *testing.T) {
	src := source(t)
	dump := dumpOf(t, src)
	stats, err := Stats(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	site := filepath.Join(base, "releases", "42")
	other := filepath.Join(base, "other")
	for _, d := range []string{site, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(other, "app.sqlite"), []byte("precious"), 0o644)
	os.Symlink(other, filepath.Join(site, "data"))                              // made by a site's user
	os.Symlink(filepath.Join("releases", "42"), filepath.Join(base, "current")) // a deploy layout
	roots := []string{filepath.Join(base, "current")}
	for _, p := range []string{
		filepath.Join(base, "current", "data", "app.sqlite"),
		filepath.Join(site, "data", "app.sqlite"),
	} {
		err := Replace(context.Background(), Config{Path: p}, bytes.NewReader(dump), strict(stats), ReplaceOptions{Beneath: roots})
		if !errors.Is(err, files.ErrNotDir) || !strings.Contains(err.Error(), "symbolic link inside") {
			t.Errorf("%s: got %v, want a refusal of the link", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(other, "app.sqlite")); string(b) != "precious" {
		t.Fatalf("the link's target was replaced: %q", b)
	}
	// Through the deploy layout's own link, into a real directory.
	os.Remove(filepath.Join(site, "data"))
	os.Mkdir(filepath.Join(site, "data"), 0o755)
	dst := Config{Path: filepath.Join(base, "current", "data", "app.sqlite")}
	if err := Replace(context.Background(), dst, bytes.NewReader(dump), strict(stats), ReplaceOptions{Beneath: roots}); err != nil {
		t.Fatal(err)
	}
	if got, err := Stats(context.Background(), Config{Path: filepath.Join(site, "data", "app.sqlite")}); err != nil || len(got) != len(stats) {
		t.Fatalf("restored through the deploy link: %v %v", got, err)
	}
}

// The database's directory swapped with a link to another, again and
// again, while restores run (a site's user can do that): no restore ever
// writes into the link's target.
func TestReplaceRaceWithALinkBeneath(t *testing.T) {
	base := t.TempDir()
	site, evil := filepath.Join(base, "site"), filepath.Join(base, "evil")
	os.MkdirAll(filepath.Join(site, "db"), 0o755)
	os.MkdirAll(evil, 0o755)
	os.Symlink(evil, filepath.Join(site, "dblink"))
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			unix.Renameat2(unix.AT_FDCWD, filepath.Join(site, "db"), unix.AT_FDCWD, filepath.Join(site, "dblink"), unix.RENAME_EXCHANGE)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	c := Config{Path: filepath.Join(site, "db", "app.sqlite")}
	for i := 0; i < 200; i++ {
		Replace(context.Background(), c, strings.NewReader("CREATE TABLE t(a);"), func([]cairn.TableStat) error { return nil }, ReplaceOptions{Beneath: []string{site}})
		if _, err := os.Stat(filepath.Join(evil, "app.sqlite")); err == nil {
			t.Fatalf("run %d: the database was written through the link", i)
		}
	}
}
