package repo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	kfs "github.com/kopia/kopia/fs"

	"github.com/cairn-backup/cairn/files"
)

// A tree read through TreeDirectory shows its entries sorted, by kind,
// with their sizes and contents, and links as links.
func TestTreeDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "wp-content"), 0o755)
	os.WriteFile(filepath.Join(dir, "wp-content", "b.php"), []byte("<?php // b"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.php"), []byte("<?php // a"), 0o600)
	os.Symlink("wp-content", filepath.Join(dir, "current"))
	l, err := files.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root, err := TreeDirectory(ctx, l, "")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := kfs.GetAllEntries(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 || names[0] != "a.php" || names[1] != "current" || names[2] != "wp-content" {
		t.Fatalf("entries %v", names)
	}
	f := entries[0].(kfs.File)
	r, err := f.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "<?php // a" || f.Size() != 10 || f.Mode().Perm() != 0o600 {
		t.Fatalf("a.php: %q, %d bytes, %v", b, f.Size(), f.Mode())
	}
	if target, err := entries[1].(kfs.Symlink).Readlink(ctx); err != nil || target != "wp-content" {
		t.Fatalf("current -> %q, %v", target, err)
	}
	sub, err := entries[2].(kfs.Directory).Child(ctx, "b.php")
	if err != nil || sub.Size() != 10 {
		t.Fatalf("wp-content/b.php: %v", err)
	}
	if _, err := entries[2].(kfs.Directory).Child(ctx, "missing"); err != kfs.ErrEntryNotFound {
		t.Fatalf("a missing child: %v", err)
	}
	if _, err := TreeDirectory(ctx, l, "a.php"); err == nil {
		t.Fatal("a file opened as a directory")
	}
}
