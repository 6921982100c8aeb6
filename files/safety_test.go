package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/pattern"
)

// fingerprint describes everything under dir (names, kinds, modes, times,
// contents, link targets), to tell whether anything changed there.
func fingerprint(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%q %v %d", rel, fi.Mode(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A link where the snapshot has a directory is replaced, never entered:
// for a whole-tree restore and for a --path restore below it.
func TestRestoreNeverFollowsLinks(t *testing.T) {
	snap := tree(map[string]string{"index.php": "i", "wp-content/uploads/a.jpg": "new a", "wp-content/uploads/b.jpg": "new b"})
	kids, _ := snap.Children(context.Background())
	var wpc, uploads cairn.Node
	for _, k := range kids {
		if k.Name() == "wp-content" {
			wpc = k
		}
	}
	grand, _ := wpc.Children(context.Background())
	uploads = grand[0]
	pics, _ := uploads.Children(context.Background())
	for _, tc := range []struct {
		name string
		src  cairn.Node
		at   string
	}{{"whole tree", snap, ""}, {"path", uploads, "wp-content/uploads"}, {"file", pics[0], "wp-content/uploads/a.jpg"}} {
		t.Run(tc.name, func(t *testing.T) {
			dst, outside := t.TempDir(), t.TempDir()
			write(t, outside, map[string]string{"uploads/a.jpg": "outside's own", "uploads/other": "keep me", "secret": "s"})
			os.Chmod(filepath.Join(outside, "uploads"), 0o700)
			if err := os.Symlink(outside, filepath.Join(dst, "wp-content")); err != nil {
				t.Fatal(err)
			}
			before := fingerprint(t, outside)
			if _, err := Restore(context.Background(), tc.src, local(t, dst), tc.at, Options{Delete: true}); err != nil {
				t.Fatal(err)
			}
			if after := fingerprint(t, outside); after != before {
				t.Fatalf("restore changed a directory outside its target:\nbefore\n%s\nafter\n%s", before, after)
			}
			fi, err := os.Lstat(filepath.Join(dst, "wp-content"))
			if err != nil || !fi.IsDir() {
				t.Fatalf("wp-content is %v (%v), want the snapshot's directory in place of the link", fi.Mode(), err)
			}
			if b, _ := os.ReadFile(filepath.Join(dst, "wp-content/uploads/a.jpg")); string(b) != "new a" {
				t.Errorf("a.jpg = %q", b)
			}
		})
	}
}

// The race: a helper process swaps a directory of the target for a link
// to another directory, again and again, while restores run. Whatever
// each restore does (it may fail), nothing outside the target changes,
// and a restore without the swapping finishes the job.
func TestRestoreLinkSwapRace(t *testing.T) {
	if dir := os.Getenv("CAIRN_TEST_SWAPPER"); dir != "" {
		swapForever(dir, os.Getenv("CAIRN_TEST_SWAP_TO"))
		return
	}
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("site/uploads/f%03d.txt", i)] = fmt.Sprintf("content %d", i)
		files[fmt.Sprintf("site/uploads/d%d/g%03d.txt", i%4, i)] = fmt.Sprintf("content %d", i)
	}
	snap := tree(files)
	dst, outside := t.TempDir(), t.TempDir()
	write(t, outside, map[string]string{"precious.txt": "must not change", "f000.txt": "outside's f000"})
	before := fingerprint(t, outside)
	os.MkdirAll(filepath.Join(dst, "site/uploads"), 0o755)

	helper := exec.Command(os.Args[0], "-test.run=^TestRestoreLinkSwapRace$")
	helper.Env = append(os.Environ(), "CAIRN_TEST_SWAPPER="+filepath.Join(dst, "site/uploads"), "CAIRN_TEST_SWAP_TO="+outside)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { helper.Process.Kill(); helper.Wait() }() //nolint:errcheck
	failed := 0
	for range 40 {
		if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{Delete: true, Workers: 4}); err != nil {
			failed++
		}
		if after := fingerprint(t, outside); after != before {
			t.Fatalf("a restore wrote through a swapped-in link:\nbefore\n%s\nafter\n%s", before, after)
		}
	}
	helper.Process.Kill()
	helper.Wait() //nolint:errcheck
	t.Logf("%d of 40 restores failed while the directory was being swapped", failed)
	// The swapper may have left the link or the moved directory behind.
	if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dst); !equalMaps(got, files) {
		t.Fatalf("after the race, the restore left %d files, want %d", len(got), len(files))
	}
	if after := fingerprint(t, outside); after != before {
		t.Fatal("the last restore changed the outside directory")
	}
}

// swapForever replaces dir by a link to target and back, until killed.
// When a restore has replaced the link by a directory meanwhile, the
// directory put aside is dropped and the swapping goes on.
func swapForever(dir, target string) {
	aside := dir + ".aside"
	for {
		if os.Rename(dir, aside) == nil {
			os.Symlink(target, dir) //nolint:errcheck
			time.Sleep(200 * time.Microsecond)
			if os.Remove(dir) == nil {
				os.Rename(aside, dir) //nolint:errcheck
			}
		}
		os.RemoveAll(aside) //nolint:errcheck
		time.Sleep(50 * time.Microsecond)
	}
}

// Paths a restore is told to protect are never written, replaced or
// removed, nor the directories above them.
func TestRestoreProtect(t *testing.T) {
	dst := t.TempDir()
	write(t, dst, map[string]string{"data/repo/kopia.repository": "format", "data/repo/p1": "pack", "old.txt": "old"})
	before := fingerprint(t, filepath.Join(dst, "data/repo"))
	snap := tree(map[string]string{"index.php": "i", "data/repo/p1": "the snapshot's", "data/other": "o"})
	st, err := Restore(context.Background(), snap, local(t, dst), "", Options{Delete: true, Protect: []string{"data/repo"}})
	if err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(t, filepath.Join(dst, "data/repo")); after != before {
		t.Fatalf("the protected directory changed:\n%s\n%s", before, after)
	}
	if st.Deleted != 1 {
		t.Errorf("deleted %d, want 1 (old.txt)", st.Deleted)
	}
	// A snapshot with a file where a directory above the protected one is
	// must fail rather than remove it.
	bad := tree(map[string]string{"data": "a file"})
	if _, err := Restore(context.Background(), bad, local(t, dst), "", Options{Delete: true, Protect: []string{"data/repo"}}); !ErrProtectedPath(err) {
		t.Fatalf("restore replacing a protected path's parent: err = %v, want a refusal", err)
	}
	if after := fingerprint(t, filepath.Join(dst, "data/repo")); after != before {
		t.Fatal("the refused restore changed the protected directory")
	}
	// Restoring onto the protected path itself is refused.
	if _, err := Restore(context.Background(), snap, local(t, dst), "data/repo", Options{Protect: []string{"data/repo"}}); !ErrProtectedPath(err) {
		t.Fatalf("restore onto a protected path: err = %v", err)
	}
}

// A preserved directory that is a link on the target stays a link.
func TestRestoreKeepsPreservedLinks(t *testing.T) {
	dst, shared := t.TempDir(), t.TempDir()
	write(t, shared, map[string]string{"a.jpg": "shared upload"})
	os.Symlink(shared, filepath.Join(dst, "uploads"))
	snap := tree(map[string]string{"index.php": "i", "uploads/b.jpg": "snapshot's"})
	if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{Delete: true, Keep: pattern.MustCompile("uploads/")}); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "uploads")); err != nil || target != shared {
		t.Fatalf("uploads is no longer the link to %s: %q, %v", shared, target, err)
	}
	// And the snapshot's link at a preserved directory leaves the
	// target's real directory alone.
	dst2 := t.TempDir()
	write(t, dst2, map[string]string{"uploads/own.jpg": "own"})
	snap2 := tree(map[string]string{"uploads": "->/elsewhere"})
	if _, err := Restore(context.Background(), snap2, local(t, dst2), "", Options{Delete: true, Keep: pattern.MustCompile("uploads/")}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst2, "uploads/own.jpg")); err != nil || string(b) != "own" {
		t.Fatalf("the preserved directory was replaced: %q, %v", b, err)
	}
}

// Without Delete, what the target has and the snapshot lacks stays, and
// is counted.
func TestRestoreWithoutDeleteKeepsExtras(t *testing.T) {
	dst := t.TempDir()
	write(t, dst, map[string]string{"mine.txt": "the user's", "d/also-mine": "x", "index.php": "old"})
	st, err := Restore(context.Background(), tree(map[string]string{"index.php": "new", "d/x": "x"}), local(t, dst), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"mine.txt": "the user's", "d/also-mine": "x", "index.php": "new", "d/x": "x"}
	if got := readTree(t, dst); !equalMaps(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if st.Extra != 2 || st.Deleted != 0 {
		t.Errorf("stats %+v, want 2 extra, 0 deleted", st)
	}
}

// Every name the file system takes restores, 255 bytes included, when
// the file is new and when it replaces another.
func TestRestoreLongNames(t *testing.T) {
	long := strings.Repeat("n", 255)
	longer := strings.Repeat("\xe9", 255)
	dst := t.TempDir()
	for _, content := range []string{"first", "second version"} {
		snap := tree(map[string]string{long: content, "d/" + longer: content, strings.Repeat("l", 250) + "/x": content})
		if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{Delete: true}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dst, long)); err != nil || string(b) != content {
			t.Fatalf("255-byte name: %q, %v", b, err)
		}
		if b, err := os.ReadFile(filepath.Join(dst, "d", longer)); err != nil || string(b) != content {
			t.Fatalf("255-byte Latin-1 name: %q, %v", b, err)
		}
	}
}

// A file of zeros with a little data comes back sparse, its bytes exact.
func TestRestoreSparse(t *testing.T) {
	data := make([]byte, 8<<20)
	copy(data[3<<20:], "in the middle")
	copy(data[len(data)-5:], "tail!")
	dst := t.TempDir()
	snap := &memNode{mode: fs.ModeDir | 0o755, mtime: t0, kids: []*memNode{{name: "disk.img", mode: 0o644, data: string(data), mtime: t0}, {name: "zeros", mode: 0o644, data: string(make([]byte, 1<<20)), mtime: t0}}}
	if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"disk.img": data, "zeros": make([]byte, 1<<20)} {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: %d bytes (%v), want %d, equal", name, len(got), err, len(want))
		}
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(dst, name), &st)
		if st.Blocks*512 > 256<<10 {
			t.Errorf("%s takes %d bytes on disk; want it sparse", name, st.Blocks*512)
		}
	}
}

// Setgid and sticky directories keep their bits; setuid and setgid files
// lose theirs (ownership is not restored) and are listed.
func TestRestoreSpecialModeBits(t *testing.T) {
	snap := &memNode{mode: fs.ModeDir | 0o755, mtime: t0, kids: []*memNode{
		{name: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777, mtime: t0},
		{name: "shared", mode: fs.ModeDir | fs.ModeSetgid | 0o775, mtime: t0},
		{name: "tool", mode: fs.ModeSetuid | 0o755, data: "#!/bin/sh", mtime: t0},
	}}
	dst := t.TempDir()
	st, err := Restore(context.Background(), snap, local(t, dst), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"tmp": fs.ModeDir | fs.ModeSticky | 0o777, "shared": fs.ModeDir | fs.ModeSetgid | 0o775, "tool": 0o755} {
		fi, _ := os.Lstat(filepath.Join(dst, name))
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if len(st.Unsafe) != 1 || st.Unsafe[0] != "tool" {
		t.Errorf("Unsafe = %v, want [tool]", st.Unsafe)
	}
	// The root's time is the snapshot's, once everything is written.
	if fi, _ := os.Stat(dst); !fi.ModTime().Equal(t0) {
		t.Errorf("root mtime %v, want %v", fi.ModTime(), t0)
	}
}

// Paths of one file come back as one file, and a second restore finds
// them linked already.
func TestRestoreHardLinks(t *testing.T) {
	snap := tree(map[string]string{"a.txt": "shared", "d/b.txt": "shared", "d/c.txt": "shared", "other.txt": "shared"})
	dst := t.TempDir()
	opts := Options{HardLinks: [][]string{{"a.txt", "d/b.txt", "d/c.txt"}}}
	if _, err := Restore(context.Background(), snap, local(t, dst), "", opts); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		syscall.Lstat(filepath.Join(dst, p), &st)
		return st.Ino
	}
	if ino("a.txt") != ino("d/b.txt") || ino("a.txt") != ino("d/c.txt") || ino("a.txt") == ino("other.txt") {
		t.Fatalf("inodes: a %d, b %d, c %d, other %d; want a, b, c one file", ino("a.txt"), ino("d/b.txt"), ino("d/c.txt"), ino("other.txt"))
	}
	st, err := Restore(context.Background(), snap, local(t, dst), "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unchanged != 4 || st.Added+st.Updated != 0 {
		t.Errorf("second restore: %+v, want 4 unchanged", st)
	}
	// A restore of part of the tree links within it.
	os.RemoveAll(filepath.Join(dst, "d"))
	kids, _ := snap.Children(context.Background())
	for _, k := range kids {
		if k.Name() == "d" {
			if _, err := Restore(context.Background(), k, local(t, dst), "d", opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ino("d/b.txt") != ino("d/c.txt") {
		t.Error("a partial restore did not link b and c")
	}
}

// A target's file that has another name outside the target (a release
// tree made with cp -al) is replaced, never changed in place: the other
// name keeps its content, mode and time.
func TestRestoreNeverChangesSharedInodes(t *testing.T) {
	dst, outside := t.TempDir(), t.TempDir()
	write(t, outside, map[string]string{"a.txt": "same", "b.txt": "old!"})
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []string{"a.txt", "b.txt"} {
		os.Chmod(filepath.Join(outside, n), 0o600)
		os.Chtimes(filepath.Join(outside, n), old, old)
		if err := os.Link(filepath.Join(outside, n), filepath.Join(dst, n)); err != nil {
			t.Fatal(err)
		}
	}
	before := fingerprint(t, outside)
	snap := tree(map[string]string{"a.txt": "same", "b.txt": "new!"})
	if _, err := Restore(context.Background(), snap, local(t, dst), "", Options{}); err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(t, outside); after != before {
		t.Fatalf("a restore changed a file outside its target through a hard link:\n%s\n%s", before, after)
	}
	if got := readTree(t, dst); got["a.txt"] != "same" || got["b.txt"] != "new!" {
		t.Fatalf("restored %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "a.txt")); fi.Mode().Perm() != 0o644 || !fi.ModTime().Equal(t0) {
		t.Errorf("a.txt: %v %v, want the snapshot's 0644 and time", fi.Mode(), fi.ModTime())
	}
}

// cairn's own files reached another way than by their path (a bind
// mount inside the target) are left alone too: the restore refuses to
// remove what holds them.
func TestRestoreProtectsInodes(t *testing.T) {
	dst, repo := t.TempDir(), t.TempDir()
	write(t, repo, map[string]string{"kopia.repository.f": "format", "p/pack": "data"})
	before := fingerprint(t, repo)
	mnt := filepath.Join(dst, "t", "backup")
	os.MkdirAll(mnt, 0o755)
	if out, err := exec.Command("mount", "--bind", repo, mnt).CombinedOutput(); err != nil {
		t.Fatalf("bind mount (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() }) //nolint:errcheck
	id, _ := IDOf(repo)
	l := local(t, dst)
	l.Keep([]FileID{id})
	_, err := Restore(context.Background(), tree(map[string]string{"index.php": "i"}), l, "", Options{Delete: true, ProtectIDs: []FileID{id}})
	if !ErrProtectedPath(err) {
		t.Errorf("restore removing a directory that holds a bind mount of the repository: err = %v, want a refusal", err)
	}
	if after := fingerprint(t, repo); after != before {
		t.Fatalf("the repository changed through a bind mount:\n%s\n%s", before, after)
	}
	// Met directly (the mount point itself), it is skipped.
	snap := tree(map[string]string{"t/index.php": "i", "t/backup/x": "snapshot's"})
	if _, err := Restore(context.Background(), snap, l, "", Options{Delete: true, ProtectIDs: []FileID{id}}); err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(t, repo); after != before {
		t.Fatal("the repository changed through a bind mount")
	}
}

// A directory moved out of the target while the restore writes it gets
// no more of the restore's files: each write finds its directory from the
// target's root anew.
func TestRestoreStopsAtDirectoryMovedOut(t *testing.T) {
	if !haveOpenat2 {
		t.Fatal("this kernel has no openat2 (Linux 5.6): directories are cached by handle")
	}
	files := map[string]string{}
	for i := range 100 {
		files[fmt.Sprintf("d1/f%03d", i)] = "x"
	}
	dst, outside := t.TempDir(), t.TempDir()
	moved := filepath.Join(outside, "d1")
	n := 0
	_, err := Restore(context.Background(), tree(files), local(t, dst), "", Options{Workers: 1, OnChange: func(c Change) {
		if strings.HasPrefix(c.Path, "d1/f") {
			if n++; n == 10 {
				if err := os.Rename(filepath.Join(dst, "d1"), moved); err != nil {
					t.Error(err)
				}
			}
		}
	}})
	t.Logf("restore: %v", err)
	entries, _ := os.ReadDir(moved)
	if len(entries) > 10 {
		t.Fatalf("%d files were written into the directory after it left the target", len(entries)-9)
	}
}

// Run by a user who is not root, a restore updates files in directories
// the snapshot has read-only (0555), and gives them their mode back.
func TestRestoreReadOnlyDirectoriesAsUser(t *testing.T) {
	if dir := os.Getenv("CAIRN_TEST_AS_USER"); dir != "" {
		snap := tree(map[string]string{"ro/f": os.Getenv("CAIRN_TEST_CONTENT")})
		snap.kids[0].mode = fs.ModeDir | 0o555
		l, err := OpenLocal(dir)
		if err == nil {
			_, err = Restore(context.Background(), snap, l, "", Options{Delete: true})
			l.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	base := t.TempDir()
	dst := filepath.Join(base, "t")
	os.Mkdir(dst, 0o755)
	for _, p := range []string{filepath.Dir(base), base, dst} {
		os.Chmod(p, 0o755) //nolint:errcheck
	}
	os.Chown(dst, 65534, 65534) //nolint:errcheck
	for _, content := range []string{"first", "second"} {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0], "-test.run=^TestRestoreReadOnlyDirectoriesAsUser$")
		cmd.Env = append(os.Environ(), "CAIRN_TEST_AS_USER="+dst, "CAIRN_TEST_CONTENT="+content)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restore %q as nobody: %v: %s", content, err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "ro/f")); string(b) != content {
			t.Fatalf("ro/f = %q, want %q", b, content)
		}
		if fi, _ := os.Stat(filepath.Join(dst, "ro")); fi.Mode().Perm() != 0o555 {
			t.Errorf("ro's mode %v, want 0555", fi.Mode())
		}
	}
}

// ResolveBeneath resolves links above the roots (with ".." taken after
// the link, as the kernel does) and refuses one at or below a root.
func TestResolveBeneath(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"releases/42/data", "other", "shared/x"} {
		os.MkdirAll(filepath.Join(base, d), 0o755)
	}
	os.Symlink("releases/42", filepath.Join(base, "current"))
	os.Symlink("../../other", filepath.Join(base, "releases/42/up"))
	os.Symlink("shared/x/..", filepath.Join(base, "rel"))
	roots := []string{filepath.Join(base, "current")}
	for _, c := range []struct{ in, want string }{
		{"current/data/app.db", "releases/42/data/app.db"},
		{"current/data/new/app.db", "releases/42/data/new/app.db"},
		{"rel/x", "shared/x"},
	} {
		got, err := ResolveBeneath(filepath.Join(base, c.in), roots)
		if err != nil || got != filepath.Join(base, c.want) {
			t.Errorf("%s: got %q, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"current/up/app.db", "releases/42/up/app.db"} {
		if got, err := ResolveBeneath(filepath.Join(base, in), roots); !errors.Is(err, ErrNotDir) {
			t.Errorf("%s: got %q, %v; want the link refused", in, got, err)
		}
	}
}

// CreateLocal makes the missing directories of a target through handles:
// a link where one of them should be is refused, and nothing is made
// where it leads.
func TestCreateLocalNeverThroughALink(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := CreateLocal(filepath.Join(base, "a", "b", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Root() != filepath.Join(base, "a", "b", "c") {
		t.Errorf("root = %s", l.Root())
	}
	l.Close()
	if fi, err := os.Stat(filepath.Join(base, "a", "b", "c")); err != nil || !fi.IsDir() {
		t.Fatalf("the target was not made: %v", err)
	}
	elsewhere := filepath.Join(base, "elsewhere")
	os.Mkdir(elsewhere, 0o755)
	os.Symlink(elsewhere, filepath.Join(base, "link"))
	if _, err := CreateLocal(filepath.Join(base, "link", "new")); !errors.Is(err, ErrNotDir) {
		t.Errorf("through a link: %v, want ErrNotDir", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "new")); err == nil {
		t.Error("a directory was made where the link leads")
	}
}
