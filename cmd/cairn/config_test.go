package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runAll runs cairn and returns its exit code, stdout and stderr.
func (c *cairnEnv) runAll(env []string, args ...string) (int, string, string) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(append([]string(nil), c.env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			c.t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestConfigErrors: every mistake in cairn.yaml is reported with the file,
// the line and the key, as a config error (exit 1), at start, whatever the
// command.
func TestConfigErrors(t *testing.T) {
	c := newCairnEnv(t)
	dir := t.TempDir()
	site := "sites:\n  blog:\n    environments:\n      prod:\n"
	tests := []struct{ yaml, want string }{
		{"repository:\n  compression: lz4\n", `cairn.yaml:2: repository.compression: unknown compressor "lz4". Try one of: deflate-best-compression,`},
		{"repository:\n  compression: none\n  dump_compression: zstd-ultra\n", `cairn.yaml:3: repository.dump_compression: unknown compressor "zstd-ultra". Try one of:`},
		{site + "        url: [a, b]\n", "cairn.yaml:5: sites.blog.environments.prod.url: expected one value, not a list"},
		{site + "        protected: maybe\n", "cairn.yaml:5: sites.blog.environments.prod.protected: expected true or false"},
		{site + "        files: /x\n        databases: [oracle://u:Zq9/sec@h/db]\n", `cairn.yaml:6: sites.blog.environments.prod.databases[0]: oracle://u:xxxxx@h/db: unknown database engine "oracle"`},
		{site + "        databases:\n          - mysql://u:p@h/db\n          - mysql://u:Zq9#sec@h:99999/db\n", `cairn.yaml:7: sites.blog.environments.prod.databases[1]: mysql://u:xxxxx@h:99999/db: bad port "99999"`},
		{"repository:\n  url: s4://bucket\n", `cairn.yaml:2: repository.url: repository url "s4://bucket": unknown scheme "s4"`},
	}
	for _, tt := range tests {
		cfg := filepath.Join(dir, "cairn.yaml")
		if err := os.WriteFile(cfg, []byte(tt.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"snapshots"}, {"snapshot", "blog/prod"}} {
			code, stdout, stderr := c.runAll(nil, append([]string{"--config", cfg}, args...)...)
			if code != exitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("%q: cairn %s = exit %d, stderr %q; want exit %d with %q", tt.yaml, args[0], code, stderr, exitError, tt.want)
			}
			if strings.Contains(stdout+stderr, "Zq9") {
				t.Errorf("%q: the password is shown: %s%s", tt.yaml, stdout, stderr)
			}
		}
	}
}

// TestDSNPasswordNeverShown: a DSN's password, whatever characters it holds
// (URL-encoded or not), is never printed, by a config error, a connection
// failure or a --database flag.
func TestDSNPasswordNeverShown(t *testing.T) {
	c := newCairnEnv(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "site")
	os.MkdirAll(files, 0o755)
	cfg := filepath.Join(dir, "cairn.yaml")
	repo := filepath.Join(dir, "repo")
	if code, _, stderr := c.runAll(nil, "--repo", repo, "init"); code != 0 {
		t.Fatal(stderr)
	}
	n := 0
	for _, ch := range " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" {
		pw := "Zq9" + string(ch) + "s" + string(ch) + "cret"
		// One failure a character: the parse errors are all tested
		// character by character in package database.
		dsn := []string{
			"mysql://u:" + pw + "@127.0.0.1:1/db",       // nobody listens
			"postgres://u:" + pw + "@127.0.0.1:1/db",    // nobody listens
			"mysql://u:" + pw + "@127.0.0.1:1/db?x=1",   // unknown option
			"mysql://u:" + pw + "@127.0.0.1:1",          // no database
			"mariadb://u:" + pw + "@127.0.0.1:70000/db", // bad port
		}[n%5]
		n++
		{
			yaml := fmt.Sprintf("repository: {path: %s}\nsites:\n  blog:\n    environments:\n      prod:\n        files: %s\n        databases: [%q]\n", repo, files, dsn)
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"--config", cfg, "snapshot", "blog/prod"},
				{"--repo", repo, "restore", "00000000", "--to", filepath.Join(dir, "out"), "--database", dsn},
			} {
				code, stdout, stderr := c.runAll(nil, args...)
				out := stdout + stderr
				if code == 0 || strings.Contains(out, "Zq9") || strings.Contains(out, "cret") {
					t.Errorf("cairn %s with %q = exit %d:\n%s", args[2], dsn, code, out)
				}
			}
		}
	}
}

// TestPasswordFiles: a missing password file is a missing password (exit
// 12, naming the key), and a password or key file that other users can
// read is warned about.
func TestPasswordFiles(t *testing.T) {
	c := newCairnEnv(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	cfg := filepath.Join(dir, "cairn.yaml")
	os.WriteFile(cfg, []byte("repository:\n  path: repo\n  password_file: pw.txt\n"), 0o600)

	code, _, stderr := c.runAll([]string{"CAIRN_PASSWORD="}, "--config", cfg, "snapshots")
	if code != exitPassword || !strings.Contains(stderr, "cairn.yaml:3: repository.password_file: no repository password given") {
		t.Errorf("missing password file: exit %d, %q; want %d", code, stderr, exitPassword)
	}
	pw := filepath.Join(dir, "pw.txt")
	os.WriteFile(pw, []byte("a password\n"), 0o644)
	code, _, stderr = c.runAll([]string{"CAIRN_PASSWORD="}, "--config", cfg, "init")
	if code != 0 || !strings.Contains(stderr, "warning: "+pw+" holds the repository password and other users can access it (mode 0644). Try: chmod 600 "+pw) {
		t.Errorf("readable password file: exit %d, %q; want a warning", code, stderr)
	}
	os.Chmod(pw, 0o600)
	if code, _, stderr = c.runAll([]string{"CAIRN_PASSWORD="}, "--config", cfg, "snapshots"); code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("0600 password file: exit %d, %q; want no warning", code, stderr)
	}

	// A generated key file.
	if code, _, stderr = c.runAll([]string{"CAIRN_PASSWORD="}, "--repo", repo+"2", "init"); code != 0 {
		t.Fatal(stderr)
	}
	keys, _ := filepath.Glob(filepath.Join(c.home, ".config/cairn/keys/*.key"))
	if len(keys) != 1 {
		t.Fatalf("key files: %v", keys)
	}
	os.Chmod(keys[0], 0o640)
	code, _, stderr = c.runAll([]string{"CAIRN_PASSWORD="}, "--repo", repo+"2", "snapshots")
	if code != 0 || !strings.Contains(stderr, "warning: "+keys[0]+" holds the repository password") || !strings.Contains(stderr, "chmod 600 "+keys[0]) {
		t.Errorf("readable key file: exit %d, %q; want a warning", code, stderr)
	}
}
