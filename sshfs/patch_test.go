package sshfs_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// randomBytes is n deterministic random bytes.
func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// noTemp fails when a temporary file is left in dir.
func noTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && files.IsTemp(fi.Name()) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// A large file that changed a little is patched: what it holds after is
// the new content, with its mode and time, and what was sent is the
// blocks that differ (an edit in place, an append, a cut, nothing).
func TestPatch(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	const size = 20 << 20 // blocks of 1 MiB
	old := randomBytes(1, size)
	edited := bytes.Clone(old)
	copy(edited[10<<20+5:], "an edit in place, in the eleventh block")
	cases := []struct {
		name string
		new  []byte
		sent int64
		same bool
	}{
		{"edited in place", edited, 1 << 20, false},
		{"appended to", append(bytes.Clone(old), []byte("a line more\n")...), 12, false},
		{"cut short", old[:size-3<<20-7], 1<<20 - 7, false},
		{"the same", old, 0, true},
		{"another file", randomBytes(2, size+100), size + 100, false},
	}
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "db.sql")
			os.WriteFile(p, old, 0o644)
			sent, same, err := tr.Patch(ctx, "db.sql", bytes.NewReader(c.new), int64(len(c.new)), 0o600, when)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, c.new) {
				t.Fatalf("the file holds %d bytes, not the new content's %d", len(got), len(c.new))
			}
			if sent != c.sent || same != c.same {
				t.Errorf("sent %d bytes (same %v), want %d (%v)", sent, same, c.sent, c.same)
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(when) {
				t.Errorf("mode %v, time %v", fi.Mode(), fi.ModTime())
			}
			noTemp(t, dir)
		})
	}
	if _, _, err := tr.Patch(ctx, "db.sql", strings.NewReader("small"), 5, 0o644, when); !errors.Is(err, files.ErrNoPatch) {
		t.Errorf("a small file: %v, want ErrNoPatch", err)
	}
}

// A link swapped in for the file is not patched (its target never read
// into the tree): the restore writes the file whole in the link's place,
// and what the link led to outside the tree is as it was.
func TestPatchWritesNoLink(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	secret := randomBytes(3, 9<<20)
	os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "big.bin"))
	tr := remote(t, srv, dir)
	want := bytes.Clone(secret)
	copy(want[4<<20:], "changed")
	if _, _, err := tr.Patch(context.Background(), "big.bin", bytes.NewReader(want), int64(len(want)), 0o644, testenv.MemTime); !errors.Is(err, files.ErrNoPatch) {
		t.Fatalf("Patch of a link: %v, want ErrNoPatch", err)
	}
	if _, err := files.Restore(context.Background(), testenv.MemTree(map[string]string{"big.bin": string(want)}), tr, "", files.Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "big.bin")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("big.bin: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, want) {
		t.Error("big.bin does not hold the new content")
	}
	if got, _ := os.ReadFile(filepath.Join(outside, "secret")); !bytes.Equal(got, secret) {
		t.Error("the file behind the link was changed")
	}
}

// A host that lacks the tools (no b2sum) has its large files written
// whole by a restore, and right; Patch says it cannot, at once, after
// the first refusal.
func TestPatchWithoutTools(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"sh", "cp", "dd", "split", "find", "printf", "head", "timeout", "rm"} {
		full := "/usr/bin/" + tool
		if _, err := os.Stat(full); err != nil {
			full = "/bin/" + tool
		}
		os.Symlink(full, filepath.Join(bin, tool))
	}
	script := filepath.Join(t.TempDir(), "force")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
internal-sftp|*sftp-server) exec /usr/lib/openssh/sftp-server ;;
esac
PATH=`+bin+` exec sh -c "$SSH_ORIGINAL_COMMAND"
`), 0o755)
	srv := testenv.NewSSHDWith(t, testenv.SSHDOptions{ForceCommand: script})
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	old := randomBytes(4, 9<<20)
	os.WriteFile(filepath.Join(dir, "a.bin"), old, 0o644)
	os.WriteFile(filepath.Join(dir, "b.bin"), old, 0o644)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	want := map[string]string{"a.bin": string(old[:8<<20]) + "new", "b.bin": string(old[:8<<20]) + "newer"}
	st, err := files.Restore(ctx, testenv.MemTree(want), tr, "", files.Options{Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, dir); got["a.bin"] != want["a.bin"] || got["b.bin"] != want["b.bin"] || st.Updated != 2 {
		t.Fatalf("restored wrongly (stats %+v)", st)
	}
	start := time.Now()
	_, _, err = tr.Patch(ctx, "a.bin", strings.NewReader(want["a.bin"]), int64(len(want["a.bin"])), 0o644, testenv.MemTime)
	if !errors.Is(err, files.ErrNoPatch) || !strings.Contains(err.Error(), "b2sum") || time.Since(start) > time.Second {
		t.Errorf("Patch on a host without b2sum: %v (after %v)", err, time.Since(start))
	}
	noTemp(t, dir)
}

// A disk too full for the copy fails the patch, and the file written
// whole then says the disk is full; the old file is whole, and nothing
// is left behind.
func TestPatchDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	testenv.Tmpfs(t, dir, "14m")
	old := randomBytes(5, 9<<20)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o644)
	srv := testenv.NewSSHD(t)
	tr := remote(t, srv, dir)
	want := map[string]string{"big.bin": string(old[:len(old)-10]) + "0123456789"}
	_, err := files.Restore(context.Background(), testenv.MemTree(want), tr, "", files.Options{Delete: true})
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("restore onto a full disk: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, old) {
		t.Error("the old file is not whole")
	}
	noTemp(t, dir)
}

var _ files.Patcher = (*sshfs.Tree)(nil)
