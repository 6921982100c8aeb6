package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"golang.org/x/sync/errgroup"
)

func sqliteDB(t *testing.T, script string) cairn.Database {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.sqlite")
	if out, err := exec.Command("sqlite3", p, script).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	db, err := database.Open(cairn.NewDSN("sqlite://"+p), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestSnapshotWithDatabases(t *testing.T) {
	ctx := context.Background()
	r, _ := initRepo(t)

	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php", "databases/x.sql": "a file, not a dump"})
	db := sqliteDB(t, "CREATE TABLE posts(id, title); INSERT INTO posts VALUES (1, 'héllo'), (2, 'two'); CREATE TABLE empty(x);")
	app := &cairn.AppInfo{Name: "wordpress", Version: "6.4.2", Components: map[string]string{"plugin/akismet": "5.3"}}
	req := cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: src, Databases: []cairn.Database{db, db}, App: app}
	s, err := r.Snapshot(ctx, req, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 2 || s.Dirs != 2 {
		t.Errorf("files %d dirs %d, want the file tree's own: 2 and 2", s.Files, s.Dirs)
	}
	list, err := r.Snapshots(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Snapshots = %v, %v", list, err)
	}
	got := list[0]
	if len(got.Databases) != 2 || got.Databases[0].Name != "app" || got.Databases[1].Name != "app-2" ||
		got.Databases[0].Engine != "sqlite" || got.Databases[0].Tables != 2 || got.Databases[0].Rows != 2 || got.Databases[0].Bytes == 0 {
		t.Errorf("Databases = %+v", got.Databases)
	}
	if got.App == nil || got.App.Name != "wordpress" || got.App.Version != "6.4.2" {
		t.Errorf("App = %+v", got.App)
	}
	full, err := r.App(ctx, got)
	if err != nil || full.Components["plugin/akismet"] != "5.3" {
		t.Errorf("App() = %+v, %v", full, err)
	}
	tables, err := r.Tables(ctx, got, "app")
	if err != nil || len(tables) != 2 || tables[0] != (cairn.TableStat{Name: "empty"}) || tables[1] != (cairn.TableStat{Name: "posts", Rows: 2}) {
		t.Errorf("Tables = %+v, %v", tables, err)
	}
	rc, err := r.OpenDump(ctx, got, "app-2")
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(dump), "INSERT INTO posts VALUES(1,'héllo');") || int64(len(dump)) != got.Databases[1].Bytes {
		t.Errorf("dump (%d bytes, label %d):\n%s", len(dump), got.Databases[1].Bytes, dump)
	}
	if _, err := r.OpenDump(ctx, got, "nope"); !errors.Is(err, cairn.ErrNotFound) {
		t.Errorf("OpenDump(nope) = %v, want ErrNotFound", err)
	}
	root, err := r.Root(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	kids, _ := root.Children(ctx)
	if len(kids) != 2 || kids[0].Name() != "databases" || kids[1].Name() != "index.php" {
		t.Errorf("Root holds %v, want the files only", kids)
	}
}

func TestSnapshotFailsWithItsDatabase(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t, Location{Path: filepath.Join(t.TempDir(), "repo")})
	if _, err := Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	good := sqliteDB(t, "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
	gone, _ := database.Open(cairn.NewDSN("sqlite://"+filepath.Join(t.TempDir(), "missing.db")), database.Options{})
	req := cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: t.TempDir(), Databases: []cairn.Database{good, gone}}
	_, err = r.Snapshot(ctx, req, cairn.NoProgress{})
	if err == nil || !strings.Contains(err.Error(), "dump database missing") || !errors.Is(err, cairn.ErrNotFound) {
		t.Fatalf("Snapshot = %v, want the missing database's error", err)
	}
	if list, _ := r.Snapshots(ctx); len(list) != 0 {
		t.Errorf("listed %d snapshots after a failed dump", len(list))
	}
}

// A tree restored from another snapshot may name it as a hint: unchanged
// files come from it, changed ones are read.
func TestSnapshotHints(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t, Location{Path: filepath.Join(t.TempDir(), "repo")})
	if _, err := Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	a := t.TempDir()
	writeTree(t, a, map[string]string{"same.php": "unchanged", "edit.php": "before!"})
	sa, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "s", Environment: "prod", Path: a}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(t.TempDir(), "b")
	if out, err := exec.Command("cp", "-a", a, b).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	writeTree(t, b, map[string]string{"edit.php": "after!!"}) // same size, new time
	sb, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "s", Environment: "stage", Path: b, Hints: []string{sa.ID, "nonexistent"}}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.Root(ctx, sb)
	if err != nil {
		t.Fatal(err)
	}
	kids, _ := root.Children(ctx)
	got := map[string]string{}
	for _, k := range kids {
		rc, _ := k.Open(ctx)
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[k.Name()] = string(b)
	}
	if got["same.php"] != "unchanged" || got["edit.php"] != "after!!" {
		t.Errorf("snapshot with a hint holds %v", got)
	}
}

// partedDB dumps in three parts written at once, each of several chunks.
type partedDB struct{ cairn.Database }

func (partedDB) DumpParts(ctx context.Context, parts func(n int) []io.Writer) ([]cairn.TableStat, error) {
	ws := parts(3)
	var g errgroup.Group
	for i, w := range ws {
		g.Go(func() error {
			for line := 0; line < 40000; line++ {
				if _, err := fmt.Fprintf(w, "INSERT INTO t%d VALUES (%d, '%s');\n", i, line, strings.Repeat("x", line%300)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return []cairn.TableStat{{Name: "t0", Rows: 40000}}, g.Wait()
}

// A dump in parts, written at once, reads back as the parts one after the
// other.
func TestSnapshotOfDumpInParts(t *testing.T) {
	ctx := context.Background()
	r, _ := initRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php"})
	db := partedDB{sqliteDB(t, "CREATE TABLE t(x);")}
	s, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: src, Databases: []cairn.Database{db}}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.OpenDump(ctx, s, "app")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	var want strings.Builder
	for i := range 3 {
		for line := 0; line < 40000; line++ {
			fmt.Fprintf(&want, "INSERT INTO t%d VALUES (%d, '%s');\n", i, line, strings.Repeat("x", line%300))
		}
	}
	if string(got) != want.String() {
		t.Fatalf("read back %d bytes, want the %d of the parts in order", len(got), want.Len())
	}
	parts, err := r.OpenDumpParts(ctx, s, "app")
	if err != nil || len(parts) != 3 {
		t.Fatalf("OpenDumpParts: %d parts, %v", len(parts), err)
	}
	for i, p := range parts {
		b, _ := io.ReadAll(p)
		p.Close()
		if !strings.HasPrefix(string(b), fmt.Sprintf("INSERT INTO t%d VALUES (0, '');\n", i)) || !strings.HasSuffix(string(b), fmt.Sprintf("INSERT INTO t%d VALUES (39999, '%s');\n", i, strings.Repeat("x", 39999%300))) {
			t.Errorf("part %d: %d bytes, not the part's", i, len(b))
		}
	}
	// A dump in one stream is one part.
	one := sqliteDB(t, "CREATE TABLE t(x); INSERT INTO t VALUES (1);")
	s2, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "blog", Environment: "prod", Path: src, Databases: []cairn.Database{one}}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if parts, err := r.OpenDumpParts(ctx, s2, "app"); err != nil || len(parts) != 1 {
		t.Errorf("a dump in one stream: %d parts, %v", len(parts), err)
	}
}
