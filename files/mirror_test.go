package files

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/pattern"
)

// copyThrough mirrors content as a snapshot reading it in two reads would.
func copyThrough(m *Mirror, rel, content string, mode fs.FileMode, mtime time.Time, complete bool) bool {
	w := m.MirrorFile(rel, mode, int64(len(content)), mtime)
	if w == nil {
		return false
	}
	half := len(content) / 2
	w.Write([]byte(content[:half]))
	w.Write([]byte(content[half:]))
	w.Finish(complete)
	return true
}

func TestMirror(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	mtime := time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC)
	// What the target holds before.
	write(t, dir, map[string]string{
		"changed.php":      "old",
		"same.php":         "same",
		"uploads/kept.jpg": "the target's own",
		"cache/x":          "old cache",
		"dir-on-target/a":  "a file in a directory",
		"wp-config.php":    "the target's config",
	})
	if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "same.php"), 0o640)
	os.Chtimes(filepath.Join(dir, "same.php"), mtime, mtime)

	m := NewMirror(pattern.MustCompile("uploads/", "wp-config.php"))
	if copyThrough(m, "before-start.php", "x", 0o644, mtime, true) {
		t.Fatal("a mirror copied a file before Start")
	}
	m.Start(context.Background(), local(t, dir))
	for _, c := range []struct {
		rel, content string
		complete     bool
		want         bool // a copy is attempted
	}{
		{"new/deep/file.php", "<?php echo 1;", true, true},
		{"changed.php", "new content", true, true},
		{"same.php", "same", true, false},                             // in place already
		{"uploads/kept.jpg", "production's", true, false},             // kept below a kept directory
		{"wp-config.php", "production's config", true, false},         // kept
		{"dir-on-target", "a file where a directory is", true, false}, // the restore's to replace
		{"linked/outside.js", "never outside", true, false},           // not through a link
		{"partial.php", "read in part", false, true},
		{"cache/x", "changed while read", false, true},
	} {
		if got := copyThrough(m, c.rel, c.content, 0o640, mtime, c.complete); got != c.want {
			t.Errorf("%s: copy attempted = %v, want %v", c.rel, got, c.want)
		}
	}
	// A file shorter than announced is not put in place.
	if w := m.MirrorFile("short.php", 0o644, 100, mtime); w != nil {
		w.Write([]byte("only this"))
		w.Finish(true)
	}
	st := m.Stop()
	if copyThrough(m, "after-stop.php", "x", 0o644, mtime, true) {
		t.Fatal("a mirror copied a file after Stop")
	}

	want := map[string]string{
		"new/deep/file.php": "<?php echo 1;",
		"changed.php":       "new content",
		"same.php":          "same",
		"uploads/kept.jpg":  "the target's own",
		"wp-config.php":     "the target's config",
		"dir-on-target/a":   "a file in a directory",
		"cache/x":           "old cache",
		"linked":            "->" + outside,
	}
	got := readTree(t, dir)
	for rel, content := range want {
		if got[rel] != content {
			t.Errorf("%s = %q, want %q", rel, got[rel], content)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("unexpected %s (%q): partial copies and temporary files must not stay", rel, got[rel])
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the mirror wrote through a link on the target: %v", entries)
	}
	for _, rel := range []string{"new/deep/file.php", "changed.php"} {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: time %v mode %v, want the snapshot's %v and 0640", rel, fi.ModTime(), fi.Mode().Perm(), mtime)
		}
	}
	if st.Added != 1 || st.Updated != 1 || st.BytesWritten != int64(len("<?php echo 1;")+len("new content")) {
		t.Errorf("stats = %+v, want 1 added and 1 updated", st)
	}
}

// A copy that fails for want of space is dropped, the reader reads on,
// and no partial file stays. (A real full disk: a tiny tmpfs, which needs
// root, as the test machines have.)
func TestMirrorDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	m := NewMirror(pattern.Set{})
	m.Start(context.Background(), local(t, dir))
	big := strings.Repeat("x", 256<<10)
	w := m.MirrorFile("big.bin", 0o644, int64(len(big)), time.Now())
	if w == nil {
		t.Fatal("no copy attempted")
	}
	for i := 0; i < len(big); i += 32 << 10 {
		if n, err := w.Write([]byte(big[i : i+32<<10])); n != 32<<10 || err != nil {
			t.Fatalf("Write = %d, %v: a mirror's writes never fail", n, err)
		}
	}
	w.Finish(true)
	if !copyThrough(m, "small.php", "fits", 0o644, time.Now(), true) {
		t.Fatal("the next file was not copied")
	}
	if st := m.Stop(); st.Added != 1 {
		t.Errorf("stats = %+v, want the small file only", st)
	}
	if got := readTree(t, dir); len(got) != 1 || got["small.php"] != "fits" {
		t.Errorf("left on the full disk: %v", keysOf(got))
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
