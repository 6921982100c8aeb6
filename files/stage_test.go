package files

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// A staged restore changes nothing a reader sees until Commit, which puts
// all of it in place; Abort leaves the target as it was.
func TestStagedRestore(t *testing.T) {
	ctx := context.Background()
	snap := tree(map[string]string{"index.php": "new index", "new.txt": "added", "sub/page.html": "page", "link": "->index.php", "ab/x": "x"})
	before := map[string]string{"index.php": "old index", "gone.txt": "removed", "ab": "a file where the snapshot has a directory"}
	for _, commit := range []bool{false, true} {
		dir := t.TempDir()
		write(t, dir, before)
		l, err := OpenLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Stage(l)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Restore(ctx, snap, s, "", Options{Delete: true, HardLinks: nil})
		if err != nil {
			t.Fatal(err)
		}
		if st.Added == 0 || st.Deleted == 0 {
			t.Errorf("stats = %+v", st)
		}
		// Staged: what was there still is (the file a new directory
		// takes the place of, under a temporary name), beside temporary
		// files.
		got := readTree(t, dir)
		if got["index.php"] != "old index" || got["gone.txt"] != "removed" || got["new.txt"] != "" {
			t.Errorf("staged, before commit: %v", got)
		}
		if commit {
			err = s.Commit(ctx)
		} else {
			err = s.Abort(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		got = readTree(t, dir)
		want := map[string]string{"index.php": "new index", "new.txt": "added", "sub/page.html": "page", "link": "->index.php", "ab/x": "x"}
		if !commit {
			want = before // the file a directory took the place of is back too
		}
		if !maps.Equal(got, want) {
			t.Errorf("commit=%v: tree = %v, want %v", commit, got, want)
		}
		if fi, err := os.Stat(filepath.Join(dir, "index.php")); commit && (err != nil || !fi.ModTime().Equal(t0)) {
			t.Errorf("commit: index.php's time = %v, %v; want %v", fi.ModTime(), err, t0)
		}
	}
}
