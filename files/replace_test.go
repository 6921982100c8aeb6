package files

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// ReplaceFile keeps the mode of the file it replaces and makes missing
// directories; ReadFile reads it back. Neither goes through a link, nor
// blocks on a named pipe put where the file was.
func TestReplaceAndReadFile(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	l := local(t, dir)
	os.WriteFile(filepath.Join(dir, "wp-config.php"), []byte("old"), 0o640)
	if err := ReplaceFile(ctx, l, "wp-config.php", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(ctx, l, "wp-config.php"); err != nil || string(b) != "new" {
		t.Fatalf("read back %q, %v", b, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "wp-config.php")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", st.Mode().Perm())
	}
	if err := ReplaceFile(ctx, l, "wp-content/mu-plugins/x.php", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "shared.php"), []byte("production"), 0o644)
	os.Symlink(filepath.Join(outside, "shared.php"), filepath.Join(dir, "linked.php"))
	os.Symlink(outside, filepath.Join(dir, "linkdir"))
	syscall.Mkfifo(filepath.Join(dir, "fifo.php"), 0o644)
	for _, rel := range []string{"linked.php", "linkdir/shared.php", "fifo.php"} {
		if _, err := ReadFile(ctx, l, rel); err == nil {
			t.Errorf("ReadFile %s: read", rel)
		}
		if err := ReplaceFile(ctx, l, rel, []byte("staging"), 0o644); err == nil {
			t.Errorf("ReplaceFile %s: written", rel)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "shared.php")); string(b) != "production" {
		t.Errorf("the file behind the link now holds %q", b)
	}
}
