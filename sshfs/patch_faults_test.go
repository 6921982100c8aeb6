package sshfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/sshfs"
)

// hooked is the new content, with a hook run once at the first Read
// (the local sums begin, alongside the host's copy) and once at the first
// Seek (the copy and its sums are done; the differing blocks are about to
// be written).
type hooked struct {
	*bytes.Reader
	onRead, onSeek     func()
	readOnce, seekOnce sync.Once
}

func (h *hooked) Read(p []byte) (int, error) {
	if h.onRead != nil {
		h.readOnce.Do(h.onRead)
	}
	return h.Reader.Read(p)
}

func (h *hooked) Seek(off int64, whence int) (int64, error) {
	if h.onSeek != nil {
		h.seekOnce.Do(h.onSeek)
	}
	return h.Reader.Seek(off, whence)
}

// temps are the temporary files in dir.
func temps(dir string) []string {
	var out []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if files.IsTemp(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// The copy the host makes is created by SFTP with the default
// mode (0666 less the umask: 0644) and then filled with the old file's
// bytes, so a file only its owner may read (0600), or a file outside the
// tree that a link swapped in for the file leads to, is readable by
// everyone on the host for as long as the patch takes.
func TestPatchFaultCopyReadableByOthers(t *testing.T) {
	for _, viaLink := range []bool{false, true} {
		name := map[bool]string{false: "a 0600 file", true: "a link to a 0600 file outside"}[viaLink]
		t.Run(name, func(t *testing.T) {
			srv := testenv.NewSSHD(t)
			dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
			os.MkdirAll(dir, 0o755)
			secret := randomBytes(11, 9<<20)
			if viaLink {
				os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600)
				os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "big.bin"))
			} else {
				os.WriteFile(filepath.Join(dir, "big.bin"), secret, 0o600)
			}
			tr := remote(t, srv, dir)
			want := bytes.Clone(secret)
			copy(want[4<<20:], "changed")
			var seen []string
			r := &hooked{Reader: bytes.NewReader(want), onSeek: func() {
				for _, p := range temps(dir) {
					fi, _ := os.Stat(p)
					got, _ := os.ReadFile(p)
					if fi.Mode().Perm()&0o077 != 0 && bytes.Equal(got, secret) {
						seen = append(seen, fi.Mode().String())
					}
				}
			}}
			_, _, err := tr.Patch(context.Background(), "big.bin", r, int64(len(want)), 0o600, testenv.MemTime)
			switch {
			case viaLink && !errors.Is(err, files.ErrNoPatch):
				t.Fatalf("Patch of a link: %v, want ErrNoPatch (it is written whole)", err)
			case !viaLink && err != nil:
				t.Fatal(err)
			}
			if len(temps(dir)) > 0 {
				t.Errorf("temporary files left: %v", temps(dir))
			}
			if len(seen) > 0 {
				t.Errorf("while patching, a copy of the 0600 file's content sat in the tree with mode %v", seen)
			}
		})
	}
}

// Lasting: a connection lost after the copy leaves it behind,
// still readable by everyone, holding what a link led to outside the tree.
func TestPatchFaultKilledLeavesReadableCopy(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	secret := randomBytes(12, 9<<20)
	os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "big.bin"))
	tr := remote(t, srv, dir)
	want := bytes.Clone(secret)
	copy(want[4<<20:], "changed")
	r := &hooked{Reader: bytes.NewReader(want), onSeek: srv.KillSessions}
	if _, _, err := tr.Patch(context.Background(), "big.bin", r, int64(len(want)), 0o600, testenv.MemTime); err == nil {
		t.Fatal("a patch over a killed connection succeeded")
	}
	for _, p := range temps(dir) {
		fi, _ := os.Stat(p)
		got, _ := os.ReadFile(p)
		if bytes.Equal(got, secret) {
			t.Errorf("left behind: %s, mode %v, holding the 0600 file from outside the tree", filepath.Base(p), fi.Mode())
		}
	}
}

// tee opens the temporary file again by its name, following a
// link, and the mode is set by name too (SFTP setstat follows links):
// a link put in the copy's place between its creation over SFTP and
// tee's open has tee write the old file's bytes into whatever it leads
// to, outside the tree, chmods that, and the link is renamed over the
// file. WriteFile, which writes and chmods through its open handle,
// leaves the outside file's content and mode alone.
func TestPatchFaultTempSwappedForLink(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	victim := filepath.Join(outside, "authorized_keys")
	os.WriteFile(victim, []byte("the victim's own content\n"), 0o600)
	old := append([]byte("ssh-ed25519 AAAA attacker\n"), randomBytes(13, 9<<20)...)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o644)
	tr := remote(t, srv, dir)
	want := bytes.Clone(old)
	copy(want[5<<20:], "changed")
	swapped := false
	r := &hooked{Reader: bytes.NewReader(want), onRead: func() {
		// Someone who can write the directory, watching it (inotify),
		// swaps a link in for the new temporary file.
		for _, p := range temps(dir) {
			os.Remove(p)
			os.Symlink(victim, p)
			swapped = true
		}
	}}
	_, _, err := tr.Patch(context.Background(), "big.bin", r, int64(len(want)), 0o644, testenv.MemTime)
	if !swapped {
		t.Fatal("no temporary file to swap at the first read: the test proves nothing")
	}
	t.Logf("Patch: %v", err)
	if got, _ := os.ReadFile(victim); string(got) != "the victim's own content\n" {
		t.Errorf("the file outside the tree was overwritten (%d bytes, starting %q)", len(got), got[:min(len(got), 26)])
	}
	if fi, _ := os.Stat(victim); fi.Mode().Perm() != 0o600 {
		t.Errorf("the file outside the tree was chmodded to %v", fi.Mode())
	}
	if fi, err := os.Lstat(filepath.Join(dir, "big.bin")); err == nil && !fi.Mode().IsRegular() {
		t.Errorf("big.bin is now %v", fi.Mode().Type())
	}
}

// The writing of the differing blocks does not heed ctx: a
// patch cancelled once the sums are in sends every differing block,
// renames the copy over the file, and says nothing went wrong.
func TestPatchFaultIgnoresCancel(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	old := randomBytes(14, 32<<20)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o644)
	tr := remote(t, srv, dir)
	want := randomBytes(15, 32<<20) // every block differs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &hooked{Reader: bytes.NewReader(want), onSeek: cancel}
	sent, _, err := tr.Patch(ctx, "big.bin", r, int64(len(want)), 0o644, testenv.MemTime)
	if err == nil {
		t.Errorf("a cancelled patch succeeded, having sent %d bytes after its cancellation", sent)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "big.bin")); !bytes.Equal(got, old) && !bytes.Equal(got, want) {
		t.Error("the file is neither old nor new")
	}
}

// (cost, not content). One file the host cannot copy (gone, or
// a directory now, or unreadable to the user) is taken for a host that
// cannot patch at all: every later large file of the run is sent whole.
func TestPatchFaultOneBadFileStopsAll(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(filepath.Join(dir, "now-a-dir.bin"), 0o755)
	old := randomBytes(16, 9<<20)
	os.WriteFile(filepath.Join(dir, "ok.bin"), old, 0o644)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	want := bytes.Clone(old)
	copy(want[1<<20:], "changed")
	// The restore listed now-a-dir.bin as a file; it was replaced since.
	_, _, err := tr.Patch(ctx, "now-a-dir.bin", bytes.NewReader(want), int64(len(want)), 0o644, testenv.MemTime)
	t.Logf("patch of a file that became a directory: %v", err)
	sent, _, err := tr.Patch(ctx, "ok.bin", bytes.NewReader(want), int64(len(want)), 0o644, testenv.MemTime)
	if err != nil {
		t.Errorf("the next file is not patched: %v", err)
	} else if sent != 1<<20 {
		t.Errorf("sent %d", sent)
	}
}

// WriteFile under the same swap (a temporary file swapped for a link)
// writes and chmods through its handle only: the file outside is as it
// was.
func TestPatchFaultWriteFileTempSwappedForLink(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir, outside := filepath.Join(t.TempDir(), "www"), t.TempDir()
	os.MkdirAll(dir, 0o755)
	victim := filepath.Join(outside, "authorized_keys")
	os.WriteFile(victim, []byte("the victim's own content\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "big.bin"), []byte("old"), 0o644)
	tr := remote(t, srv, dir)
	want := randomBytes(13, 9<<20)
	r := &hooked{Reader: bytes.NewReader(want), onRead: func() {
		for _, p := range temps(dir) {
			os.Remove(p)
			os.Symlink(victim, p)
		}
	}}
	tr.WriteFile(context.Background(), "big.bin", r, 0o644, testenv.MemTime) //nolint:errcheck // the swap may fail it or not
	got, _ := os.ReadFile(victim)
	fi, _ := os.Stat(victim)
	if string(got) != "the victim's own content\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("the file outside holds %d bytes, mode %v", len(got), fi.Mode())
	}
}

// Abandoning the host's copy does not stop it: OpenSSH refuses
// the SIGKILL that abandon sends to a root login's or a forced command's
// session, and the script still runs once its shell is up. Abandoned
// before tee has opened the temporary file (a cancel, a banner, a
// timeout), the patch removes the file SFTP made, and then tee makes it
// again and fills it with a full copy of the old file, left behind.
func TestPatchFaultCancelLeavesCopy(t *testing.T) {
	srv := testenv.NewSSHD(t) // root, as the harness logs in
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	old := randomBytes(17, 9<<20)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o600)
	tr := remote(t, srv, dir)
	want := bytes.Clone(old)
	copy(want[1<<20:], "changed")
	ctx, cancel := context.WithCancel(context.Background())
	r := &hooked{Reader: bytes.NewReader(want), onRead: func() {
		go func() { time.Sleep(50 * time.Millisecond); cancel() }() // ^C, as the host's shell starts
	}}
	_, _, err := tr.Patch(ctx, "big.bin", r, int64(len(want)), 0o644, testenv.MemTime)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Patch: %v", err)
	}
	if len(temps(dir)) != 0 {
		t.Fatal("left at once")
	}
	time.Sleep(3 * time.Second) // cairn has moved on; the host has not
	for _, p := range temps(dir) {
		fi, _ := os.Stat(p)
		got, _ := os.ReadFile(p)
		t.Errorf("left behind after the patch returned: %s, %v, %d bytes, the old file's start: %v", filepath.Base(p), fi.Mode(), len(got), bytes.HasPrefix(old, got))
	}
}

// On a host whose login prints a banner on stdout (here by a
// forced command; a ~/.bashrc that echoes does the same for root): the
// restore is right (the file is written whole) but a full copy of the old
// file is left in the tree.
func TestPatchFaultBannerLeavesCopy(t *testing.T) {
	script := filepath.Join(t.TempDir(), "force")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$SSH_ORIGINAL_COMMAND" in
internal-sftp|*sftp-server) exec /usr/lib/openssh/sftp-server ;;
esac
echo "Welcome to host"
sleep 1 # a login that takes its time (or a loaded host)
exec sh -c "$SSH_ORIGINAL_COMMAND"
`), 0o755)
	srv := testenv.NewSSHDWith(t, testenv.SSHDOptions{ForceCommand: script})
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	old := randomBytes(18, 9<<20)
	os.WriteFile(filepath.Join(dir, "a.bin"), old, 0o644)
	tr := remote(t, srv, dir)
	want := map[string]string{"a.bin": string(old[:8<<20]) + "new"}
	if _, err := files.Restore(context.Background(), testenv.MemTree(want), tr, "", files.Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if read(t, dir)["a.bin"] != want["a.bin"] {
		t.Error("restored wrongly")
	}
	time.Sleep(3 * time.Second)
	noTemp(t, dir)
}

// A link to an endless file (/dev/zero, /dev/urandom) swapped
// in for the file after the restore listed it: tee copies it for ever,
// b2sum's lines keep coming (so the quiet-for-the-timeout guard never
// fires), and Patch never returns, while the copy fills the host's disk
// (tee goes on writing its stdout after ENOSPC).
func TestPatchFaultEndlessFile(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	testenv.Tmpfs(t, dir, "64m") // the disk it fills
	os.Symlink("/dev/zero", filepath.Join(dir, "big.bin"))
	tr := remoteWith(t, srv, dir, sshfs.Options{Timeout: 3 * time.Second})
	want := randomBytes(19, 9<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := tr.Patch(ctx, "big.bin", bytes.NewReader(want), int64(len(want)), 0o644, testenv.MemTime)
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("Patch: %v", err)
	case <-time.After(30 * time.Second):
		var st syscall.Statfs_t
		syscall.Statfs(dir, &st)
		t.Errorf("Patch has not returned after 30s, ten times the timeout; the tree's disk has %d KiB free", st.Bavail*uint64(st.Bsize)>>10)
		cancel()
		<-done
	}
	time.Sleep(2 * time.Second)
	noTemp(t, dir)
}

// hostProcs are the commands the test's sshd runs for its sessions (not
// sshd's own processes).
func hostProcs(srv *testenv.SSHD) []string {
	b, _ := os.ReadFile(filepath.Join(srv.Dir, "sshd.pid"))
	root := strings.TrimSpace(string(b))
	parent := map[string]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
		if len(f) > 1 {
			parent[e.Name()] = f[1]
		}
	}
	var out []string
	for p := range parent {
		for q := parent[p]; q != "" && q != "0" && q != "1"; q = parent[q] {
			if q == root {
				cmd, _ := os.ReadFile(filepath.Join("/proc", p, "cmdline"))
				c := strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")
				if !strings.HasPrefix(c, "sshd:") {
					wchan, _ := os.ReadFile(filepath.Join("/proc", p, "wchan"))
					out = append(out, p+" "+c+" ("+string(wchan)+")")
				}
				break
			}
		}
	}
	return out
}

// A FIFO swapped in for the file: the patch gives up after the
// timeout, as it should, but the host's shell stays blocked opening the
// FIFO for good (its session with it: OpenSSH keeps the channel of a
// command that runs), as the SIGKILL is refused for root.
func TestPatchFaultFIFOLeavesProcess(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	syscall.Mkfifo(filepath.Join(dir, "big.bin"), 0o644)
	tr := remoteWith(t, srv, dir, sshfs.Options{Timeout: 2 * time.Second})
	want := randomBytes(21, 9<<20)
	start := time.Now()
	_, _, err := tr.Patch(context.Background(), "big.bin", bytes.NewReader(want), int64(len(want)), 0o644, testenv.MemTime)
	t.Logf("Patch after %v: %v", time.Since(start).Round(time.Millisecond), err)
	time.Sleep(3 * time.Second)
	if ps := hostProcs(srv); len(ps) > 0 {
		t.Errorf("still running on the host 3s after the patch was abandoned: %q", ps)
	}
	// Someone writes to the FIFO at last: the abandoned script goes on,
	// and tee makes the temporary file that the patch removed long ago.
	if f, err := os.OpenFile(filepath.Join(dir, "big.bin"), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Write([]byte("late\n"))
		f.Close()
	}
	time.Sleep(time.Second)
	noTemp(t, dir)
}

// gate gives its first bytes at once, then waits for open to be closed
// before the rest.
type gate struct {
	first, rest []byte
	open        chan struct{}
}

func (g *gate) Read(p []byte) (int, error) {
	if len(g.first) > 0 {
		n := copy(p, g.first)
		g.first = g.first[n:]
		return n, nil
	}
	<-g.open
	if len(g.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// A file being written, or the copy a patch makes, is no one else's to
// open from the moment it exists: SFTP makes it 0600 (the client asks
// for no mode, the server would give 0666 less its umask), and its own
// mode comes once its bytes are in. Another user who opened it before
// would keep reading what follows (wp-config.php's password; the old
// bytes of a file being patched).
func TestNewFilesArePrivate(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	tr := remote(t, srv, dir)
	g := &gate{first: []byte("<?php define('DB_PASSWORD', "), rest: []byte("'secret');\n"), open: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- tr.WriteFile(context.Background(), "wp-config.php", g, 0o640, testenv.MemTime) }()
	var modes []string
	deadline := time.Now().Add(10 * time.Second)
	for len(modes) == 0 && time.Now().Before(deadline) {
		for _, p := range temps(dir) {
			if fi, err := os.Stat(p); err == nil {
				modes = append(modes, fi.Mode().Perm().String())
			}
		}
		time.Sleep(time.Millisecond)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(modes) == 0 || modes[0] != "-rw-------" {
		t.Errorf("the file being written had mode %v, want -rw------- until its bytes are in", modes)
	}
	if fi, err := os.Stat(filepath.Join(dir, "wp-config.php")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("wp-config.php: %v, %v; want mode 0640", fi, err)
	}

	// The patch's copy, from its first moment.
	old := randomBytes(31, 9<<20)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o600)
	want := bytes.Clone(old)
	copy(want[5<<20:], "changed")
	stop := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var modes []string
		for {
			select {
			case <-stop:
				seen <- modes
				return
			default:
			}
			for _, p := range temps(dir) {
				if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
					modes = append(modes, fi.Mode().Perm().String())
				}
			}
		}
	}()
	_, _, err := tr.Patch(context.Background(), "big.bin", bytes.NewReader(want), int64(len(want)), 0o600, testenv.MemTime)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if m := <-seen; len(m) > 0 {
		t.Errorf("the patch's copy was open to others: modes %v", m)
	}
}
