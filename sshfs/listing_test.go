package sshfs_test

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// hostileTree makes a tree of the names and kinds a listing must carry
// whole: spaces, newlines, quotes, a leading dash, non-ASCII, links to a
// directory and to nowhere, a pipe, an empty directory, special bits.
func hostileTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "www")
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	for _, p := range []string{"a b/c d.php", "new\nline/x", "it's/\"q\"", "-rf", "ünïcødé/ß.txt", "back\\slash", "deep/er/and/deeper/f", "tab\there"} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(p), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(full, old, old)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o700)
	os.Symlink("deep/er", filepath.Join(dir, "to-dir"))
	os.Symlink("/nowhere/at/all", filepath.Join(dir, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "setuid"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(dir, "setuid"), 0o4755)
	os.Mkdir(filepath.Join(dir, "sticky"), 0o755)
	os.Chmod(filepath.Join(dir, "sticky"), 0o1777)
	return dir
}

// walk lists the tree below rel, every directory through ReadDir, as
// "path mode size time" lines (link counts aside: SFTP does not tell).
func walk(t *testing.T, tr files.Target, rel string) []string {
	t.Helper()
	list, err := tr.ReadDir(context.Background(), rel)
	if err != nil {
		t.Fatalf("ReadDir %q: %v", rel, err)
	}
	var out []string
	for _, i := range list {
		p := path.Join(rel, i.Name)
		out = append(out, strings.Join([]string{p, i.Mode.String(), time.Duration(i.Size).String(), i.ModTime.UTC().Format(time.RFC3339Nano)}, " "))
		if i.Mode.IsDir() {
			out = append(out, walk(t, tr, p)...)
		}
	}
	slices.Sort(out)
	return out
}

// A tree listed by the host's find (a shell account) reads as the same
// tree listed over SFTP (an SFTP-only account): every name, kind, mode,
// size and time.
func TestListingMatchesSFTP(t *testing.T) {
	dir := hostileTree(t)
	shellHost := testenv.NewSSHD(t)
	sftpOnly := testenv.NewSSHDWith(t, testenv.SSHDOptions{SFTPOnly: true})
	got, want := walk(t, remote(t, shellHost, dir), ""), walk(t, remote(t, sftpOnly, dir), "")
	if !slices.Equal(got, want) {
		t.Fatalf("listed by find:\n%s\nover SFTP:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(want) < 20 {
		t.Fatalf("only %d entries listed: %q", len(want), want)
	}
}

// What the tree changes after the listing was taken is what the next
// ReadDir shows: a file written, a directory removed, a rename, a time set.
func TestListingSeesChanges(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := hostileTree(t)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	if _, err := tr.ReadDir(ctx, ""); err != nil { // takes the listing
		t.Fatal(err)
	}
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []func() error{
		func() error { return tr.WriteFile(ctx, "deep/er/new.txt", strings.NewReader("new"), 0o600, when) },
		func() error { return tr.RemoveAll(ctx, "deep/er/and") },
		func() error { return tr.Rename(ctx, "a b/c d.php", "a b/renamed.php") },
		func() error { return tr.SetAttrs(ctx, "it's/\"q\"", 0o600, when) },
		func() error { return tr.Mkdir(ctx, "empty/made", 0o755) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	fresh := remote(t, testenv.NewSSHDWith(t, testenv.SSHDOptions{SFTPOnly: true}), dir)
	for _, rel := range []string{"deep/er", "deep", "a b", "it's", "empty"} {
		if got, want := walk(t, tr, rel), walk(t, fresh, rel); !slices.Equal(got, want) {
			t.Errorf("%s after the changes:\n%s\nwant\n%s", rel, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// The root of a tree on an SFTP-only account, and on a shell account,
// both list; neither hangs on the other's protocol.
func TestListingSFTPOnlyRoot(t *testing.T) {
	srv := testenv.NewSSHDWith(t, testenv.SSHDOptions{SFTPOnly: true})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.php"), []byte("<?php"), 0o644)
	c, err := pool(t, srv, sshfs.Options{}).Dial(context.Background(), host(srv))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sshfs.OpenTree(context.Background(), c, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := tr.ReadDir(ctx, "")
	if err != nil || len(list) != 1 || list[0].Name != "index.php" {
		t.Fatalf("ReadDir: %v, %v", list, err)
	}
}

// A host whose shell commands hang (find on a wedged disk) is listed over
// SFTP once the listing has gone quiet for the connection's timeout:
// nothing waits on it for good.
func TestListingWedgedHost(t *testing.T) {
	script := filepath.Join(t.TempDir(), "force")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
internal-sftp|*sftp-server) exec /usr/lib/openssh/sftp-server ;;
"sh -s") exec sleep 60 ;;
esac
exec sh -c "$SSH_ORIGINAL_COMMAND"
`), 0o755)
	srv := testenv.NewSSHDWith(t, testenv.SSHDOptions{ForceCommand: script})
	dir := hostileTree(t)
	c, err := pool(t, srv, sshfs.Options{Timeout: time.Second}).Dial(context.Background(), host(srv))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := sshfs.OpenTree(context.Background(), c, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	start := time.Now()
	got := walk(t, tr, "")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the walk took %v", d)
	}
	want := walk(t, remote(t, testenv.NewSSHDWith(t, testenv.SSHDOptions{SFTPOnly: true}), dir), "")
	if !slices.Equal(got, want) {
		t.Fatalf("listed:\n%s\nover SFTP:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
