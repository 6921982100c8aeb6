package files

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/pattern"
)

// A local directory restored as a tree gives an exact copy (content,
// symbolic links, modes and times), removes what the source lacks but for
// kept paths, and a second pass finds nothing to write.
func TestTreeCopies(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, src, map[string]string{"index.php": "<?php", "wp-content/uploads/a.jpg": "jpeg", "wp-content/themes/t/style.css": "css"})
	if err := os.Symlink("index.php", filepath.Join(src, "link.php")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "index.php"), 0o600)
	when := time.Date(2026, 1, 2, 3, 4, 5, 678, time.UTC)
	os.Chtimes(filepath.Join(src, "wp-content/uploads/a.jpg"), when, when)
	write(t, dst, map[string]string{"stale.txt": "old", "wp-config.php": "staging's own"})

	tree, err := Tree(src)
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := pattern.Compile("/wp-config.php")
	st, err := Restore(context.Background(), tree, Local{Root: dst}, "", Options{Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	want := readTree(t, src)
	want["wp-config.php"] = "staging's own"
	if got := readTree(t, dst); !equalMaps(got, want) {
		t.Errorf("copy %v, want %v", got, want)
	}
	if st.Added != 8 || st.Deleted != 1 { // 4 files and 4 directories added
		t.Errorf("stats %+v", st)
	}
	fi, err := os.Stat(filepath.Join(dst, "index.php"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "wp-content/uploads/a.jpg")); err != nil || !fi.ModTime().Equal(when) {
		t.Errorf("time: %v %v", fi, err)
	}
	st, err = Restore(context.Background(), tree, Local{Root: dst}, "", Options{Keep: keep})
	if err != nil || st.Added+st.Updated+st.Meta+st.Deleted != 0 {
		t.Errorf("second pass: %+v %v", st, err)
	}
	if _, err := Tree(filepath.Join(src, "index.php")); err == nil {
		t.Errorf("a file is not a tree")
	}
}
