package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want Config
		err  bool
	}{
		{"mysql://wp:s3cret@db1:3307/wordpress", Config{User: "wp", Password: "s3cret", Host: "db1", Port: 3307, Database: "wordpress"}, false},
		{"mariadb://backup@127.0.0.1/shop", Config{User: "backup", Host: "127.0.0.1", Port: 3306, Database: "shop"}, false},
		{"mysql://root@/wp?socket=/run/mysqld/mysqld.sock", Config{User: "root", Port: 3306, Socket: "/run/mysqld/mysqld.sock", Database: "wp"}, false},
		{"mysql://u:p%40ss@h/db", Config{User: "u", Password: "p@ss", Host: "h", Port: 3306, Database: "db"}, false},
		{"mysql://u@h/", Config{}, true},
		{"mysql://u@h:99999/db", Config{}, true},
		{"postgres://u@h/db", Config{}, true},
		{"mysql://u@h/db?tls=1", Config{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDSN(tt.dsn)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v (error %v)", tt.dsn, got, err, tt.want, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "p@ss") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
	c, _ := ParseDSN("mysql://wp:s3cret@db1/wordpress")
	if s := c.String(); strings.Contains(s, "s3cret") || s != "mysql://wp@db1:3306/wordpress" {
		t.Errorf("String() = %q", s)
	}
	if r := cairn.RedactDSN("mysql://wp:s3cret@db1/wordpress"); strings.Contains(r, "s3cret") {
		t.Errorf("Redact = %q", r)
	}
}

func fixture(t *testing.T) (*testenv.MariaDB, Config) {
	m := testenv.NewMariaDB(t)
	for _, q := range []string{
		"CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), body MEDIUMTEXT, img BLOB) CHARACTER SET utf8mb4",
		"CREATE TABLE log (msg TEXT, at DATETIME)", // no primary key
		"CREATE VIEW titles AS SELECT id, title FROM posts",
		"CREATE TRIGGER posts_bi BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = TRIM(NEW.title)",
		"SET SESSION sql_mode = ''",
		"INSERT INTO log VALUES ('zero date', '0000-00-00 00:00:00')",
	} {
		if _, err := m.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	body := strings.Repeat("Café ☕ and 🎉 at https://example.com/ ", 20)
	for i := 0; i < 400; i++ {
		if _, err := m.Admin.Exec("INSERT INTO posts (title, body, img) VALUES (?, ?, ?)", " post "+strconv.Itoa(i)+" ", body, []byte{0, 1, 2, 0xff, '\'', '\\'}); err != nil {
			t.Fatal(err)
		}
	}
	return m, Config{User: m.User, Password: cairnSecret(m.Password), Host: "127.0.0.1", Port: 3306, Database: m.Database}
}

func TestDumpAndStats(t *testing.T) {
	m, c := fixture(t)
	ctx := context.Background()

	// While the dump runs (blocked on a full pipe), no process shows the
	// password on its command line.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Dump(ctx, c, pw); pw.Close() }()
	pid := waitForDumpProcess(t, m.Database)
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if bytes.Contains(cmdline, []byte(m.Password)) {
		t.Fatalf("password on the dump's command line: %q", cmdline)
	}
	assertNoPasswordInProcesses(t, m.Password)
	dump, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := string(dump)
	for _, want := range []string{"CREATE TABLE `posts`", "CREATE TABLE `log`", "0000-00-00 00:00:00", "🎉", "'\\0\x01\x02\xff\\'\\\\'", "posts_bi", "titles"} {
		if !strings.Contains(s, want) && !strings.Contains(strings.ToUpper(s), strings.ToUpper(want)) {
			t.Errorf("dump lacks %q", want)
		}
	}
	for _, bad := range []string{"\nUSE `", "CREATE DATABASE", "Dump completed on"} {
		if strings.Contains(s, bad) {
			t.Errorf("dump holds %q: it must load into any database name and stay byte-identical", bad)
		}
	}

	stats, err := Stats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]TableStat{}
	for _, st := range stats {
		byName[st.Name] = st
	}
	if byName["posts"].Rows != 400 || byName["posts"].Checksum == "" || byName["log"].Rows != 1 || !byName["titles"].View || byName["titles"].Rows != 400 {
		t.Errorf("stats = %+v", stats)
	}
}

func TestDumpFaults(t *testing.T) {
	m, c := fixture(t)
	ctx := context.Background()

	wrong := c
	wrong.Password = "not-it"
	err := Dump(ctx, wrong, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Access denied") || !strings.Contains(err.Error(), "Try:") || strings.Contains(err.Error(), "not-it") {
		t.Errorf("wrong password: %v", err)
	}
	missing := c
	missing.Database = m.Database + "_nope"
	if err := Dump(ctx, missing, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: check the database name") {
		t.Errorf("missing database: %v", err)
	}
	down := c
	down.Port = testenv.FreePort()
	if err := Dump(ctx, down, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: check the host and port") {
		t.Errorf("server down: %v", err)
	}
	if _, err := Stats(ctx, wrong); err == nil {
		t.Error("Stats with a wrong password succeeded")
	}

	// A dump killed half-way is an error, not a short dump.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Dump(ctx, c, pw); pw.Close() }()
	pid := waitForDumpProcess(t, m.Database)
	buf := make([]byte, 1000)
	io.ReadFull(pr, buf)
	syscall.Kill(pid, syscall.SIGKILL)
	go io.Copy(io.Discard, pr)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("killed dump: %v", err)
	}
}

// waitForDumpProcess finds the running dump of db in /proc.
func waitForDumpProcess(t *testing.T, db string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if bytes.Contains(b, []byte("dump")) && bytes.Contains(b, []byte(db)) && bytes.Contains(b, []byte("--single-transaction")) {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("dump process not found")
	return 0
}

func assertNoPasswordInProcesses(t *testing.T, password string) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte(url.QueryEscape(password))) {
			t.Errorf("process %s has the password on its command line", e.Name())
		}
	}
}

func cairnSecret(s string) cairn.Secret { return cairn.Secret(s) }

// A dump loads into another database name (the staging case) and the
// per-table row counts and checksums prove the copy equal; a dump from a
// newer MariaDB with the sandbox-mode first line loads too.
func TestDumpLoadRoundTrip(t *testing.T) {
	src, c := fixture(t)
	dst := testenv.NewMariaDB(t)
	ctx := context.Background()
	var dump bytes.Buffer
	if err := Dump(ctx, c, &dump); err != nil {
		t.Fatal(err)
	}
	sandboxed := append([]byte("/*M!999999\\- enable the sandbox mode */ \n"), dump.Bytes()...)
	for _, data := range [][]byte{dump.Bytes(), sandboxed} {
		if _, err := dst.Admin.Exec("DROP TABLE IF EXISTS posts, log"); err != nil {
			t.Fatal(err)
		}
		dst.Admin.Exec("DROP VIEW IF EXISTS titles")
		target := Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: dst.Database}
		if err := Load(ctx, target, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want, err := Stats(ctx, Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: src.Database})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Stats(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("tables %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("table %s: copy %+v, source %+v", want[i].Name, got[i], want[i])
			}
		}
	}
	bad := Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: dst.Database}
	if err := Load(ctx, bad, strings.NewReader("CREATE TABLE x (;\n")); err == nil || !strings.Contains(err.Error(), "syntax") {
		t.Errorf("a broken dump loaded: %v", err)
	}
}

// execAll runs statements on db, failing the test at the first error.
func execAll(t *testing.T, db *sql.DB, statements ...string) {
	t.Helper()
	for _, q := range statements {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
