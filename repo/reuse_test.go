package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn"
)

// fakeDump is a database whose dump is given bytes.
type fakeDump struct {
	name string
	sql  []byte
}

func (f fakeDump) Engine() string { return "mysql" }
func (f fakeDump) Name() string   { return f.name }
func (f fakeDump) String() string { return "fake://" + f.name }
func (f fakeDump) Dump(_ context.Context, w io.Writer) ([]cairn.TableStat, error) {
	_, err := w.Write(f.sql)
	return []cairn.TableStat{{Name: "t", Rows: 1}}, err
}
func (f fakeDump) Replace(context.Context, io.Reader, cairn.Verify) error { return nil }
func (f fakeDump) Exec(context.Context, string) error                     { return nil }

// A dump saved as state, then a state and a snapshot that start from it
// by reference and add a tail: their dumps read back as the whole, the
// reused chunks are not stored again, the state is never listed, and a
// new state under the same key replaces the old.
func TestReusedDumps(t *testing.T) {
	ctx := context.Background()
	r, opts := initRepo(t)

	var base bytes.Buffer
	rng := rand.New(rand.NewSource(1))
	for i := 0; base.Len() < 12<<20; i++ { // several chunks
		fmt.Fprintf(&base, "INSERT INTO `t` VALUES (%d,'%x');\n", i, rng.Int63())
	}
	first, err := r.SaveState(ctx, "target", []cairn.Database{fakeDump{"db", base.Bytes()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := readDump(t, r, first, "db"); got != base.String() {
		t.Fatalf("first state's dump differs")
	}
	tail := func(s string) func(context.Context, io.Writer) ([]cairn.TableStat, error) {
		return func(_ context.Context, w io.Writer) ([]cairn.TableStat, error) {
			_, err := io.WriteString(w, s)
			return []cairn.TableStat{{Name: "t", Rows: 42}}, err
		}
	}
	before := repoSize(t, opts.Location.Path)
	second, err := r.SaveState(ctx, "target", []cairn.Database{Reused{Database: fakeDump{name: "db"}, From: DumpRef{first, "db"}, Tail: tail("DELETE FROM `t`;\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if grown := repoSize(t, opts.Location.Path) - before; grown > 1<<20 {
		t.Errorf("the repository grew by %d bytes for a state made of stored chunks", grown)
	}

	want := base.String() + "DELETE FROM `t`;\n"
	if got := readDump(t, r, second, "db"); got != want {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Errorf("state dump: %d bytes, want %d; differs at %d: %q vs %q", len(got), len(want), i, got[max(0, i-20):i+40], want[max(0, i-20):i+40])
	}
	if tables, err := r.StateTables(ctx, DumpRef{second, "db"}); err != nil || len(tables) != 1 || tables[0].Rows != 42 {
		t.Errorf("state tables %+v, %v", tables, err)
	}
	if _, err := r.StateTables(ctx, DumpRef{first, "db"}); err == nil {
		t.Errorf("the first state is still there after the second replaced it")
	}

	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php"})
	s, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "s", Environment: "e", Path: src,
		Databases: []cairn.Database{Reused{Database: fakeDump{name: "db"}, From: DumpRef{second, "db"}, Tail: tail("-- more\n")}}}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readDump(t, r, s.ID, "db"); got != want+"-- more\n" {
		t.Errorf("snapshot dump: %d bytes, want %d", len(got), len(want)+8)
	}
	if s.Databases[0].Bytes != int64(len(want)+8) || s.Databases[0].Rows != 42 {
		t.Errorf("snapshot database %+v", s.Databases[0])
	}
	if list, err := r.Snapshots(ctx); err != nil || len(list) != 1 {
		t.Errorf("Snapshots = %v, %v: states must not be listed", list, err)
	}

	// A state that is gone cannot be started from.
	if err := r.DropState(ctx, "target"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveState(ctx, "other", []cairn.Database{Reused{Database: fakeDump{name: "db"}, From: DumpRef{second, "db"}, Tail: tail("")}}); err == nil {
		t.Errorf("a state started from a dropped one")
	}
}

func readDump(t *testing.T, r *Repo, id, name string) string {
	t.Helper()
	rc, err := r.OpenDump(context.Background(), &cairn.Snapshot{ID: id}, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repoSize is the bytes a local repository's files hold.
func repoSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// initRepo creates a local repository and opens it, for the test's time.
func initRepo(t *testing.T) (*Repo, Options) {
	t.Helper()
	ctx := context.Background()
	opts := testOptions(t, Location{Path: filepath.Join(t.TempDir(), "repo")})
	if _, err := Init(ctx, opts); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	return r, opts
}
