package sshfs_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// remote opens a Tree at dir on srv (the test's sshd serves this
// machine's files, so the test checks them directly).
func remote(t *testing.T, srv *testenv.SSHD, dir string) *sshfs.Tree {
	t.Helper()
	return remoteWith(t, srv, dir, sshfs.Options{})
}

// remoteWith is remote, the connection made with o.
func remoteWith(t *testing.T, srv *testenv.SSHD, dir string, o sshfs.Options) *sshfs.Tree {
	t.Helper()
	c, err := pool(t, srv, o).Dial(context.Background(), host(srv))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sshfs.OpenTree(context.Background(), c, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func read(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "->" + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		}
		return nil
	})
	return out
}

// A snapshot tree restored onto a remote directory arrives whole, with
// its modes and times; a second restore after a change writes only it and
// deletes what the snapshot lacks.
func TestRestoreOntoRemoteTree(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	want := map[string]string{"index.php": "<?php // blog", "wp-content/themes/t/style.css": "body{}", "current": "->wp-content/themes/t"}
	tr := remote(t, srv, dir)
	ctx := context.Background()
	st, err := files.Restore(ctx, testenv.MemTree(want), tr, "", files.Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir); !maps.Equal(got, want) || st.Added != 6 {
		t.Fatalf("restored %v (stats %+v), want %v", got, st, want)
	}
	fi, _ := os.Stat(filepath.Join(dir, "index.php"))
	if !fi.ModTime().Equal(testenv.MemTime) || fi.Mode().Perm() != 0o644 {
		t.Errorf("index.php: mtime %v mode %v", fi.ModTime(), fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, "extra.txt"), []byte("not in the snapshot"), 0o644)
	want["index.php"] = "<?php // blog, edited"
	st, err = files.Restore(ctx, testenv.MemTree(want), tr, "", files.Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir); !maps.Equal(got, want) || st.Updated != 1 || st.Deleted != 1 {
		t.Fatalf("second restore: %v (stats %+v)", got, st)
	}
	for p := range read(t, dir) {
		if files.IsTemp(filepath.Base(p)) {
			t.Errorf("temporary file left: %s", p)
		}
	}
}

// A directory of the target swapped for a link to elsewhere is never
// written through: the restore replaces the link, and what it led to is
// untouched.
func TestRemoteTreeFollowsNoLink(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(outside, "style.css"), []byte("production"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "wp-content"))
	tr := remote(t, srv, dir)
	ctx := context.Background()
	if _, err := tr.Lstat(ctx, "wp-content/style.css"); err == nil {
		t.Error("Lstat went through a link")
	}
	if err := tr.WriteFile(ctx, "wp-content/style.css", strings.NewReader("staging"), 0o644, testenv.MemTime); err == nil {
		t.Error("WriteFile went through a link")
	}
	want := map[string]string{"wp-content/style.css": "staging"}
	if _, err := files.Restore(ctx, testenv.MemTree(want), tr, "", files.Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir); !maps.Equal(got, want) {
		t.Fatalf("restored %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "style.css")); string(b) != "production" {
		t.Fatalf("the file behind the link now holds %q", b)
	}
}

// A connection killed in the middle of a file leaves the old file whole
// (the new one was going to a temporary name), and the next restore
// finishes the job and removes the leftover.
func TestRemoteWriteCut(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "big.bin"), []byte("old"), 0o644)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	r := &killAfter{n: 4 << 20, kill: srv.KillSessions}
	if err := tr.WriteFile(ctx, "big.bin", r, 0o644, testenv.MemTime); err == nil {
		t.Fatal("the write survived its connection")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "big.bin")); string(b) != "old" {
		t.Fatalf("big.bin holds %d bytes, want the old file", len(b))
	}
	tr2 := remote(t, srv, dir)
	want := map[string]string{"big.bin": strings.Repeat("x", 1<<20)}
	if _, err := files.Restore(ctx, testenv.MemTree(want), tr2, "", files.Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir); !maps.Equal(got, want) {
		t.Fatalf("after the second restore: %d entries", len(got))
	}
}

// killAfter reads zeros, and kills the server's sessions after n bytes.
type killAfter struct {
	n, read int
	kill    func()
}

func (k *killAfter) Read(p []byte) (int, error) {
	if k.read >= k.n && k.kill != nil {
		k.kill()
		k.kill = nil
	}
	clear(p)
	k.read += len(p)
	return len(p), nil
}
