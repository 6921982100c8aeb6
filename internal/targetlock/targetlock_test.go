package targetlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
)

func TestOverlap(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"/srv/www", "/srv/www", true},
		{"/srv/www", "/srv/www/uploads", true},
		{"/srv/www/uploads", "/srv", true},
		{"/srv/www", "/srv/www2", false},
		{"/", "/anything", true},
		{"database mysql://x/db", "database mysql://x/db", true},
		{"database mysql://x/db", "database mysql://x/db2", false},
		{"database /srv", "/srv", false},
		{"ssh://web1:22/srv/www", "ssh://web1:22/srv/www/uploads", true},
		{"ssh://web1:22/srv", "ssh://web1:22/srv/www", true},
		{"ssh://web1:22/srv/www", "ssh://web2:22/srv/www", false},
		{"ssh://web1:22/srv/www", "ssh://web1:2222/srv/www", false},
		{"ssh://web1:22/srv/www", "/srv/www", false},
		{"/srv/www", "ssh://web1:22/srv/www", false},
		{"ssh://web1:22/", "ssh://web1:22/srv", true},
	} {
		if got := overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// Another process's lock conflicts by kind and nesting, and is free once
// that process is gone, even killed.
func TestAcquireAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("TARGETLOCK_HOLD"); dir != "" {
		if _, err := Acquire(dir, "/srv/www", Write); err != nil {
			os.Exit(3)
		}
		os.WriteFile(filepath.Join(dir, "held"), nil, 0o600) //nolint:errcheck
		time.Sleep(time.Hour)
	}
	dir := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestAcquireAcrossProcesses$")
	holder.Env = append(os.Environ(), "TARGETLOCK_HOLD="+dir)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "held")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder never took its lock")
		}
	}
	for _, tc := range []struct {
		target string
		kind   Kind
	}{{"/srv/www", Read}, {"/srv/www/uploads", Write}, {"/srv", Read}} {
		if l, err := Acquire(dir, tc.target, tc.kind); !errors.Is(err, cairn.ErrLocked) {
			l.Release()
			t.Errorf("%s %s while /srv/www is written: err = %v, want ErrLocked", tc.kind, tc.target, err)
		}
	}
	l, err := Acquire(dir, "/srv/other", Write)
	if err != nil {
		t.Errorf("a directory beside the locked one: %v", err)
	}
	l.Release()
	holder.Process.Kill()
	holder.Wait() //nolint:errcheck
	l, err = Acquire(dir, "/srv/www", Write)
	if err != nil {
		t.Fatalf("the lock of a killed process: %v", err)
	}
	l.Release()
}

// Directories are related by inode and by the path below an existing
// one: through a bind mount, one that does not exist yet (a restore
// locks its target before making it) is the same as the other spelling,
// made or not; siblings are not related.
func TestChainThroughABindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root, for a bind mount (the test command runs as root)")
	}
	a, b := t.TempDir(), t.TempDir()
	if out, err := exec.Command("mount", "--bind", a, b).CombinedOutput(); err != nil {
		t.Fatalf("bind mount: %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", b).Run() //nolint:errcheck
	aNew, bNew := chain(filepath.Join(a, "new")), chain(filepath.Join(b, "new"))
	if !related(aNew, bNew) {
		t.Error("a missing directory and its other spelling are not related")
	}
	os.Mkdir(filepath.Join(a, "new"), 0o755)
	if !related(aNew, chain(filepath.Join(b, "new"))) {
		t.Error("a missing directory and its other spelling, made since, are not related")
	}
	if !related(aNew, chain(filepath.Join(b, "new", "deep", "er"))) {
		t.Error("a directory and one below its other spelling are not related")
	}
	if related(chain(filepath.Join(a, "new")), chain(filepath.Join(b, "sibling"))) {
		t.Error("siblings are related")
	}
}
