package repo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"

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
