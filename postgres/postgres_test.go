package postgres

import (
	"bytes"
	"context"
	"io"
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
		{"postgres://app:s3cret@db1:5433/shop?sslmode=require", Config{User: "app", Password: "s3cret", Host: "db1", Port: 5433, Database: "shop", SSLMode: "require"}, false},
		{"postgresql://backup@/app", Config{User: "backup", Host: "127.0.0.1", Port: 5432, Database: "app"}, false},
		{"postgres://u@h/", Config{}, true},
		{"postgres://u@h/db?foo=1", Config{}, true},
		{"mysql://u@h/db", Config{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDSN(tt.dsn)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v (error %v)", tt.dsn, got, err, tt.want, tt.err)
		}
	}
	c, _ := ParseDSN("postgres://app:s3cret@db1/shop")
	if s := c.String(); strings.Contains(s, "s3cret") || s != "postgres://app@db1:5432/shop" {
		t.Errorf("String() = %q", s)
	}
}

func fixture(t *testing.T) (*testenv.Postgres, Config) {
	p := testenv.NewPostgres(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE posts (id serial PRIMARY KEY, title text, body text, img bytea, meta jsonb)",
		"CREATE TABLE log (msg text, at timestamptz)", // no primary key
		"CREATE VIEW titles AS SELECT id, title FROM posts",
		"CREATE FUNCTION trim_title() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.title := btrim(NEW.title); RETURN NEW; END $$",
		"CREATE TRIGGER posts_bi BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trim_title()",
		"INSERT INTO log VALUES ('tab\there', '2026-11-01 12:00:00+00')",
		"INSERT INTO posts (title, body, img, meta) SELECT ' post ' || g || ' ', repeat('Café ☕ 🎉 https://example.com/ ', 20), '\\x0001ff'::bytea, jsonb_build_object('url', 'https://example.com/' || g) FROM generate_series(1, 3000) g",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + p.User,
		"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO " + p.User,
	} {
		if _, err := p.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return p, Config{User: p.User, Password: cairn.Secret(p.Password), Host: "127.0.0.1", Port: 5432, Database: p.Database, SSLMode: "disable"}
}

func TestDumpAndStats(t *testing.T) {
	p, c := fixture(t)
	ctx := context.Background()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Dump(ctx, c, pw); pw.Close() }()
	pid := waitForDump(t)
	for _, f := range []string{"cmdline", "environ"} {
		b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), f))
		if bytes.Contains(b, []byte(p.Password)) {
			t.Fatalf("password in pg_dump's %s", f)
		}
	}
	dump, err := io.ReadAll(pr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := string(dump)
	for _, want := range []string{"CREATE TABLE public.posts", "COPY public.posts", "🎉", "\\\\x0001ff", "CREATE TRIGGER posts_bi", "CREATE VIEW public.titles", "tab\\there"} {
		if !strings.Contains(s, want) {
			t.Errorf("dump lacks %q", want)
		}
	}
	for _, bad := range []string{"CREATE DATABASE", "\\connect", "OWNER TO", "GRANT "} {
		if strings.Contains(s, bad) {
			t.Errorf("dump holds %q: it must load into another database and role", bad)
		}
	}
	stats, err := Stats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[0].Name != "public.log" || stats[0].Rows != 1 || stats[1].Name != "public.posts" || stats[1].Rows != 3000 || !strings.HasPrefix(stats[1].Checksum, "pgsum1:") {
		t.Errorf("stats = %+v", stats)
	}
	again, _ := Stats(ctx, c)
	if again[1].Checksum != stats[1].Checksum {
		t.Error("checksum of unchanged table differs between two reads")
	}
	if _, err := p.Admin.Exec(ctx, "UPDATE posts SET title = 'changed' WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	changed, _ := Stats(ctx, c)
	if changed[1].Checksum == stats[1].Checksum {
		t.Error("checksum did not change when a row did")
	}
}

func TestDumpFaults(t *testing.T) {
	p, c := fixture(t)
	ctx := context.Background()
	missing := c
	missing.Database += "_nope"
	if err := Dump(ctx, missing, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: check the database name") {
		t.Errorf("missing database: %v", err)
	}
	nobody := c
	nobody.User = "cairn_no_such_role"
	if err := Dump(ctx, nobody, io.Discard); err == nil {
		t.Error("dump as a role that does not exist succeeded")
	}
	down := c
	down.Port = testenv.FreePort()
	if err := Dump(ctx, down, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: check the host and port") {
		t.Errorf("server down: %v", err)
	}

	// A dump killed half-way is an error, not a short dump.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Dump(ctx, c, pw); pw.Close() }()
	io.ReadFull(pr, make([]byte, 1000)) // the keys, then pg_dump's first lines
	pid := waitForDump(t)
	syscall.Kill(pid, syscall.SIGKILL)
	go io.Copy(io.Discard, pr)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("killed dump: %v", err)
	}

	// A backup role that may not read everything is told what to grant.
	if _, err := p.Admin.Exec(ctx, "REVOKE SELECT ON ALL SEQUENCES IN SCHEMA public FROM "+p.User); err != nil {
		t.Fatal(err)
	}
	if err := Dump(ctx, c, io.Discard); err == nil || !strings.Contains(err.Error(), "Try: GRANT pg_read_all_data") {
		t.Errorf("missing privilege: %v", err)
	}
}

// waitForDump finds a running pg_dump started by cairn (PGAPPNAME=cairn).
func waitForDump(t *testing.T) int {
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
			env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if bytes.Contains(b, []byte("pg_dump")) && bytes.Contains(env, []byte("PGAPPNAME=cairn")) {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("pg_dump process not found")
	return 0
}

// A dump loads into another database owned by another role, and the
// per-table row counts and checksums prove the copy equal. A dump that
// fails half-way leaves the target as it was.
func TestDumpLoadRoundTrip(t *testing.T) {
	src, c := fixture(t)
	dst := testenv.NewPostgres(t)
	ctx := context.Background()
	var dump bytes.Buffer
	if err := Dump(ctx, c, &dump); err != nil {
		t.Fatal(err)
	}
	target := Config{User: "postgres", Host: "127.0.0.1", Port: 5432, Database: dst.Database, SSLMode: "disable"}
	if err := Load(ctx, target, bytes.NewReader(dump.Bytes())); err != nil {
		t.Fatal(err)
	}
	want, err := Stats(ctx, Config{User: "postgres", Host: "127.0.0.1", Port: 5432, Database: src.Database, SSLMode: "disable"})
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
	var n int
	if err := dst.Admin.QueryRow(ctx, "SELECT count(*) FROM titles").Scan(&n); err != nil || n != 3000 {
		t.Errorf("view in the copy: %d rows, %v", n, err)
	}

	// Half a dump: nothing of it stays.
	other := testenv.NewPostgres(t)
	half := Config{User: "postgres", Host: "127.0.0.1", Port: 5432, Database: other.Database, SSLMode: "disable"}
	broken := append(dump.Bytes()[:len(dump.Bytes())/2:len(dump.Bytes())/2], []byte("\n\\.\nTHIS IS NOT SQL;\n")...)
	if err := Load(ctx, half, bytes.NewReader(broken)); err == nil {
		t.Fatal("a broken dump loaded")
	}
	var tables int
	other.Admin.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
	if tables != 0 {
		t.Errorf("a failed load left %d tables behind", tables)
	}
}
