package main

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/settings"
	"github.com/cairn-backup/cairn/site"
)

// cairnEnv runs the test binary as "cairn" (testscript.Main dispatches on
// the program's name) in a private HOME.
type cairnEnv struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

func newCairnEnv(t *testing.T) *cairnEnv {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cairn")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	return &cairnEnv{t: t, bin: bin, home: home, env: append(os.Environ(), "HOME="+home, "CAIRN_CONFIG=", "CAIRN_PASSWORD=pw",
		"XDG_DATA_HOME=", "XDG_STATE_HOME=", "XDG_CONFIG_HOME=")}
}

func (c *cairnEnv) command(args ...string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func (c *cairnEnv) run(args ...string) (int, string) {
	cmd, stderr := c.command(args...)
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			c.t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	c := newCairnEnv(t)
	repo := filepath.Join(t.TempDir(), "repo")
	site := t.TempDir()
	os.WriteFile(filepath.Join(site, "index.php"), []byte("<?php"), 0o644)
	cfg := filepath.Join(t.TempDir(), "cairn.yaml")
	os.WriteFile(cfg, []byte("repository: {path: "+repo+"}\nsites:\n  blog:\n    environments:\n      production: {files: "+site+", protected: true}\n"), 0o644)

	tests := []struct {
		name   string
		env    []string
		args   []string
		want   int
		stderr string
	}{
		{"usage", nil, []string{"frobnicate"}, exitUsage, "unknown command"},
		{"bad flag", nil, []string{"snapshots", "--nope"}, exitUsage, "unknown flag"},
		{"no repository", nil, []string{"--config", cfg, "snapshots"}, exitRepoMissing, "cairn init"},
		{"init", nil, []string{"--config", cfg, "init"}, exitOK, ""},
		{"snapshot", nil, []string{"--config", cfg, "snapshot", "blog/production"}, exitOK, ""},
		{"wrong password", []string{"CAIRN_PASSWORD=nope"}, []string{"--config", cfg, "snapshots"}, exitPassword, "wrong repository password"},
		{"no such snapshot", nil, []string{"--config", cfg, "show", "0000aaaa"}, exitNotFound, "not found"},
		{"no such site", nil, []string{"--config", cfg, "snapshot", "shop/production"}, exitNotFound, "not in"},
		{"protected", nil, []string{"--config", cfg, "restore", "blog/production@latest"}, exitProtected, "protected"},
		{"bad selector", nil, []string{"--config", cfg, "show", "blog/production@soon"}, exitUsage, "SEL must be"},
	}
	for _, tt := range tests {
		env := c.env
		c.env = append(append([]string(nil), env...), tt.env...)
		code, stderr := c.run(tt.args...)
		c.env = env
		if code != tt.want || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("%s: cairn %s = exit %d, stderr %q; want exit %d with %q", tt.name, strings.Join(tt.args, " "), code, stderr, tt.want, tt.stderr)
		}
	}

	// Another restore onto the same target holds its lock.
	t.Setenv("HOME", c.home)
	t.Setenv("XDG_STATE_HOME", "")
	target := filepath.Join(t.TempDir(), "out")
	unlock, err := lockTarget(target, targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	code, stderr := c.run("--config", cfg, "restore", "blog/production@latest", "--to", target)
	unlock()
	if code != exitLocked || !strings.Contains(stderr, "locked by another cairn process") {
		t.Errorf("restore onto a locked target = exit %d, %q; want %d", code, stderr, exitLocked)
	}

	// The lock is on the resolved directory: another spelling of it, or a
	// directory inside it, is locked too; and a snapshot of a directory
	// being restored waits for no torn tree: it is refused.
	real := t.TempDir()
	os.WriteFile(filepath.Join(real, "index.php"), []byte("<?php"), 0o644)
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(real, link)
	unlock, err = lockTarget(real, targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	for _, args := range [][]string{
		{"restore", "blog/production@latest", "--to", link},
		{"restore", "blog/production@latest", "--to", link + "/sub"},
		{"snapshot", link},
		{"snapshot", real},
	} {
		code, stderr := c.run(append([]string{"--config", cfg}, args...)...)
		if code != exitLocked || !strings.Contains(stderr, "restoring onto "+real) {
			t.Errorf("cairn %s while %s is being restored = exit %d, %q; want %d", strings.Join(args, " "), real, code, stderr, exitLocked)
		}
	}
	if _, err := os.Stat(filepath.Join(real, "sub")); err == nil {
		t.Error("a refused restore wrote into the locked directory")
	}
	// A bind mount of the directory is the same directory.
	bind := t.TempDir()
	if out, err := exec.Command("mount", "--bind", real, bind).CombinedOutput(); err != nil {
		t.Fatalf("bind mount (needs root): %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", bind).Run() //nolint:errcheck
	if code, stderr := c.run("--config", cfg, "snapshot", bind); code != exitLocked {
		t.Errorf("snapshot of a bind mount of %s while it is being restored = exit %d, %q; want %d", real, code, stderr, exitLocked)
	}
	// So is a bind mount of a directory around it, snapshotted or
	// restored onto, and a directory inside a bind mount of it.
	parent := t.TempDir()
	inner := filepath.Join(parent, "site")
	os.Mkdir(inner, 0o755)
	parentBind := t.TempDir()
	if out, err := exec.Command("mount", "--bind", parent, parentBind).CombinedOutput(); err != nil {
		t.Fatalf("bind mount (needs root): %v: %s", err, out)
	}
	defer exec.Command("umount", "-l", parentBind).Run() //nolint:errcheck
	unlockInner, err := lockTarget(inner, targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"snapshot", parentBind},
		{"restore", "blog/production@latest", "--to", parentBind, "--delete"},
	} {
		if code, stderr := c.run(append([]string{"--config", cfg}, args...)...); code != exitLocked || !strings.Contains(stderr, "restoring onto "+inner) {
			t.Errorf("cairn %s (a bind mount of %s) while %s is being restored = exit %d, %q; want %d", strings.Join(args, " "), parent, inner, code, stderr, exitLocked)
		}
	}
	unlockInner()
	unlockParent, err := lockTarget(parent, targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	if code, stderr := c.run("--config", cfg, "snapshot", filepath.Join(parentBind, "site")); code != exitLocked {
		t.Errorf("snapshot inside a bind mount of %s while it is being restored = exit %d, %q; want %d", parent, code, stderr, exitLocked)
	}
	unlockParent()
	// Root's locks are the system's: another state directory sees them.
	env := c.env
	c.env = append(append([]string(nil), env...), "XDG_STATE_HOME="+t.TempDir())
	code, stderr = c.run("--config", cfg, "restore", "blog/production@latest", "--to", real)
	c.env = env
	if code != exitLocked {
		t.Errorf("restore with another state directory while %s is being restored = exit %d, %q; want %d", real, code, stderr, exitLocked)
	}

	// A repair waits for no one: it is refused while another cairn
	// process uses the repository, and the other way round.
	using, err := lockRepository(repoLocation(repo), targetlock.Read)
	if err != nil {
		t.Fatal(err)
	}
	if code, stderr := c.run("--config", cfg, "repair"); code != exitLocked || !strings.Contains(stderr, "a repair needs the repository to itself") {
		t.Errorf("repair while the repository is in use = exit %d, %q; want %d", code, stderr, exitLocked)
	}
	using()
	repairing, err := lockRepository(repoLocation(repo), targetlock.Write)
	if err != nil {
		t.Fatal(err)
	}
	if code, stderr := c.run("--config", cfg, "snapshots"); code != exitLocked {
		t.Errorf("snapshots while the repository is repaired = exit %d, %q; want %d", code, stderr, exitLocked)
	}
	repairing()
	if code, stderr := c.run("--config", cfg, "repair"); code != 0 {
		t.Errorf("repair = exit %d, %q", code, stderr)
	}
}

func repoLocation(p string) repo.Location { return repo.Location{Path: p} }

// Ctrl-C during a snapshot exits 130 and records nothing.
func TestInterruptedSnapshot(t *testing.T) {
	c := newCairnEnv(t)
	repo := filepath.Join(t.TempDir(), "repo")
	if code, stderr := c.run("--repo", repo, "init"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	site := t.TempDir()
	buf := make([]byte, 1<<20)
	rng := rand.New(rand.NewSource(1))
	for i := range 24 {
		rng.Read(buf) // incompressible, so the upload limit bites
		os.WriteFile(filepath.Join(site, "f"+string(rune('a'+i))), buf, 0o644)
	}
	cmd, stderr := c.command("--repo", repo, "--limit-upload", "2048", "snapshot", site)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("interrupted snapshot: exit %d, stderr %q; want 130", code, stderr.String())
	}
	list := exec.Command(c.bin, "--repo", repo, "snapshots", "--json")
	list.Env = c.env
	out, err := list.Output()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("after interrupt, snapshots = %s, %v; want []", out, err)
	}
}

// lockTarget holds a lock as another cairn process would.
func lockTarget(target string, kind targetlock.Kind) (func(), error) {
	dirs, err := settings.FindDirs(nil)
	if err != nil {
		return nil, err
	}
	l, err := targetlock.Acquire(site.LockDir(dirs.State), target, kind)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}

// lockRepository holds a repository's lock as another cairn process would.
func lockRepository(loc repo.Location, kind targetlock.Kind) (func(), error) {
	return lockTarget("repository "+repositoryName(loc), kind)
}
