package repo

import (
	"context"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/pattern"
)

// A file whose size or time changes while it is read is noted, so that the
// snapshot can carry a warning; excluded entries are invisible.
func TestSourceNotesChangesAndExcludes(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"log.txt": "first line\n", "cache/x": "c", "ok.txt": "fine"})
	ld, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := &source{exclude: pattern.MustCompile("cache/")}
	root := src.wrapDir(ld, "")
	ctx := context.Background()
	entries, err := fs.GetAllEntries(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !equal(names, []string{"log.txt", "ok.txt"}) {
		t.Fatalf("entries = %v, want log.txt ok.txt (cache excluded)", names)
	}
	if _, err := root.Child(ctx, "cache"); err == nil {
		t.Error("Child(cache) found an excluded directory")
	}
	read := func(e fs.Entry, during func()) {
		r, err := e.(fs.File).Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(r)
		during()
		r.Close()
	}
	read(entries[0], func() {
		f, _ := os.OpenFile(filepath.Join(dir, "log.txt"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("appended while read\n")
		f.Close()
		later := time.Now().Add(time.Second)
		os.Chtimes(filepath.Join(dir, "log.txt"), later, later)
	})
	read(entries[1], func() {})
	if got := src.changedFiles(); !equal(got, []string{"log.txt"}) {
		t.Errorf("changed = %v, want [log.txt]", got)
	}
}

// recordingMirror keeps what a mirror is given.
type recordingMirror struct {
	mu    sync.Mutex
	files map[string]*recordedFile
}

type recordedFile struct {
	data     []byte
	finished int
	complete bool
}

func (m *recordingMirror) MirrorFile(rel string, _ iofs.FileMode, _ int64, _ time.Time) cairn.MirrorWriter {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &recordedFile{}
	m.files[rel] = f
	return f
}

func (f *recordedFile) Write(p []byte) (int, error) {
	f.data = append(f.data, p...)
	return len(p), nil
}
func (f *recordedFile) Finish(complete bool) { f.finished++; f.complete = complete }

// The mirror gets each file's bytes as read, and is told a copy is
// complete only for a file read whole, from its start, that did not change.
func TestSourceMirrorsFilesReadWhole(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"whole.txt": "read whole", "part.txt": "read in part", "seek.txt": "read after a seek", "grows.txt": "first line\n"})
	ld, err := localfs.Directory(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &recordingMirror{files: map[string]*recordedFile{}}
	src := &source{mirror: m}
	ctx := context.Background()
	root := src.wrapDir(ld, "")
	open := func(name string) fs.Reader {
		e, err := root.Child(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.(fs.File).Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open("whole.txt")
	io.ReadAll(r)
	r.Close()
	r = open("part.txt")
	r.Read(make([]byte, 4))
	r.Close()
	r = open("seek.txt")
	r.Seek(5, io.SeekStart)
	io.ReadAll(r)
	r.Close()
	r = open("grows.txt")
	io.ReadAll(r)
	os.WriteFile(filepath.Join(dir, "grows.txt"), []byte("first line\nsecond line\n"), 0o644)
	r.Close()

	for name, want := range map[string]bool{"whole.txt": true, "part.txt": false, "seek.txt": false, "grows.txt": false} {
		f := m.files[name]
		if f == nil || f.finished != 1 || f.complete != want {
			t.Errorf("%s: %+v, want finished once, complete=%v", name, f, want)
		}
	}
	if got := string(m.files["whole.txt"].data); got != "read whole" {
		t.Errorf("whole.txt mirrored as %q", got)
	}
}

// A real snapshot with a files.Mirror leaves a copy of the tree, as the
// snapshot recorded it, on the mirror's directory.
func TestSnapshotMirror(t *testing.T) {
	r, _ := initRepo(t)
	ctx := context.Background()
	dir, dst := t.TempDir(), t.TempDir()
	writeTree(t, dir, map[string]string{"index.php": "<?php", "wp-content/themes/t/style.css": "body{}", "cache/big": "excluded"})
	old := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	os.Chtimes(filepath.Join(dir, "index.php"), old, old)
	os.Chmod(filepath.Join(dir, "index.php"), 0o600)
	target, err := files.OpenLocal(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	m := files.NewMirror(pattern.Set{})
	m.Start(context.Background(), target)
	snap, err := r.Snapshot(ctx, cairn.SnapshotRequest{Site: "s", Environment: "e", Path: dir, Exclude: []string{"cache/"}, Mirror: m}, cairn.NoProgress{})
	if err != nil {
		t.Fatal(err)
	}
	st := m.Stop()
	if st.Added != 2 || snap.Files != 2 {
		t.Errorf("mirrored %+v of a snapshot of %d files, want 2 added", st, snap.Files)
	}
	for _, rel := range []string{"index.php", "wp-content/themes/t/style.css"} {
		a, _ := os.Lstat(filepath.Join(dir, rel))
		b, err := os.Lstat(filepath.Join(dst, rel))
		if err != nil {
			t.Fatal(err)
		}
		da, _ := os.ReadFile(filepath.Join(dir, rel))
		db, _ := os.ReadFile(filepath.Join(dst, rel))
		if string(da) != string(db) || !a.ModTime().Equal(b.ModTime()) || a.Mode() != b.Mode() {
			t.Errorf("%s: copy %q %v %v, want %q %v %v", rel, db, b.ModTime(), b.Mode(), da, a.ModTime(), a.Mode())
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "cache")); err == nil {
		t.Error("an excluded directory was mirrored")
	}
}
