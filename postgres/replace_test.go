package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func asPostgres(db string) Config {
	return Config{User: "postgres", Host: "127.0.0.1", Port: 5432, Database: db, SSLMode: "disable"}
}

func query(t *testing.T, db, q string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var out string
	if err := conn.QueryRow(ctx, q, args...).Scan(&out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func sourceDump(t *testing.T) ([]byte, []TableStat) {
	src, _ := fixture(t)
	var dump bytes.Buffer
	if err := Dump(context.Background(), asPostgres(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	want, err := Stats(context.Background(), asPostgres(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	return dump.Bytes(), want
}

// pgTarget makes a database owned by its own role, with content of its own.
func pgTarget(t *testing.T) *testenv.Postgres {
	dst := testenv.NewPostgres(t)
	ctx := context.Background()
	for _, q := range []string{
		"ALTER DATABASE " + dst.Database + " OWNER TO " + dst.User,
		"CREATE TABLE stale (x int)",
		"INSERT INTO stale VALUES (1)",
	} {
		if _, err := dst.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return dst
}

func state(t *testing.T, db string) string {
	st, err := Stats(context.Background(), asPostgres(db))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range st {
		b.WriteString(s.Name + ":" + s.Checksum + ";")
	}
	return b.String()
}

func sideDBs(t *testing.T, target string) string {
	return query(t, "postgres", "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database WHERE datname LIKE $1", target+"_cairn_%")
}

func TestReplace(t *testing.T) {
	dump, want := sourceDump(t)
	dst := pgTarget(t)
	ctx := context.Background()
	before := state(t, dst.Database)

	// dst.Admin is connected: by default cairn refuses and changes nothing.
	err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "Try:") {
		t.Fatalf("replace while in use: %v", err)
	}
	if after := state(t, dst.Database); after != before || sideDBs(t, dst.Database) != "" {
		t.Fatalf("a refused replace changed something: %s, side %s", after, sideDBs(t, dst.Database))
	}

	if err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{Terminate: true}); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, asPostgres(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after replace %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("table %s: %+v, want %+v", want[i].Name, got[i], want[i])
		}
	}
	if owner := query(t, dst.Database, "SELECT tableowner FROM pg_tables WHERE tablename = 'posts'"); owner != dst.User {
		t.Errorf("posts owned by %s, want the application's role %s", owner, dst.User)
	}
	if owner := query(t, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", dst.Database); owner != dst.User {
		t.Errorf("database owned by %s, want %s", owner, dst.User)
	}
	if n := query(t, dst.Database, "SELECT count(*)::text FROM titles"); n != "3000" {
		t.Errorf("view: %s rows", n)
	}
	if s := sideDBs(t, dst.Database); s != "" {
		t.Errorf("side databases left: %s", s)
	}
}

// strict verifies a loaded copy against want, checksums included.
func strict(want []TableStat) cairn.Verify { return cairn.Expect(want, nil) }

// A transaction elsewhere holding a lock on the target database makes
// the swap's rename give up within its bound, naming the session; the
// target is left as it was.
func TestReplaceLockedIsBounded(t *testing.T) {
	dump, want := sourceDump(t)
	dst := pgTarget(t)
	dst.Admin.Close(context.Background())
	before := state(t, dst.Database)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	holder, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	var pid int
	holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
	for _, q := range []string{"BEGIN", "COMMENT ON DATABASE " + ident(dst.Database) + " IS 'held'"} {
		if _, err := holder.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	err = Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: time.Second})
	took := time.Since(start)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("session %d (postgres@", pid)) || !strings.Contains(err.Error(), "Try:") {
		t.Fatalf("Replace = %v", err)
	}
	if took > 20*time.Second {
		t.Errorf("Replace took %s", took)
	}
	if after := state(t, dst.Database); after != before {
		t.Errorf("target changed:\nbefore %s\nafter  %s", before, after)
	}
	if s := sideDBs(t, dst.Database); s != "" {
		t.Errorf("side databases left: %s", s)
	}
	holder.Exec(ctx, "ROLLBACK")
	if err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: time.Second}); err != nil {
		t.Fatalf("once the lock is gone: %v", err)
	}
}

// A dump with a backslash command (\connect to another database, \! to
// run a shell command) fails the load: nothing is written outside the
// scratch database, the target is as it was, though the dump (as older
// pg_dumps made them) has no \restrict lines of its own; a dump with
// them (today's pg_dump) loads.
func TestReplaceRefusesBackslashCommands(t *testing.T) {
	dump, want := sourceDump(t)
	if !bytes.HasPrefix(bytes.TrimLeft(dump[bytes.Index(dump, []byte("\n\\restrict ")):], "\n"), []byte(`\restrict `)) {
		t.Fatalf("this pg_dump writes no \\restrict line")
	}
	dst := pgTarget(t)
	dst.Admin.Close(context.Background())
	before := state(t, dst.Database)
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "ran")
	leak := "cairn_leak_" + strings.ReplaceAll(dst.Database, "cairn_t_", "")
	for _, evil := range []string{
		"\\connect postgres\nCREATE TABLE " + leak + " (x int);\n",
		"\\! touch " + marker + "\n",
	} {
		// As a dump by a pg_dump older than August 2025 has it: no
		// \restrict lines of its own.
		var tampered []byte
		for _, line := range bytes.SplitAfter(dump, []byte("\n")) {
			if !bytes.HasPrefix(line, []byte(`\restrict `)) && !bytes.HasPrefix(line, []byte(`\unrestrict `)) {
				tampered = append(tampered, line...)
			}
		}
		tampered = bytes.Replace(tampered, []byte("CREATE TABLE"), []byte(evil+"CREATE TABLE"), 1)
		err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(tampered), strict(want), ReplaceOptions{})
		if err == nil || !strings.Contains(err.Error(), "restricted") {
			t.Errorf("a dump with %q: %v", evil, err)
		}
	}
	if n := query(t, "postgres", "SELECT count(*)::text FROM pg_tables WHERE tablename = $1", leak); n != "0" {
		t.Errorf("the dump wrote to another database")
		asPostgresExec(t, "DROP TABLE IF EXISTS "+leak)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the dump ran a shell command")
	}
	if after := state(t, dst.Database); after != before || sideDBs(t, dst.Database) != "" {
		t.Errorf("target changed or side databases left")
	}
	if err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{}); err != nil {
		t.Fatalf("the dump as pg_dump made it: %v", err)
	}
}

func asPostgresExec(t *testing.T, q string) {
	conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err == nil {
		conn.Exec(context.Background(), q)
		conn.Close(context.Background())
	}
}

// A partitioned table and an inheritance parent restore on both paths:
// each table is counted by its own rows (ONLY), as its dump holds them,
// the rows of its partitions or children being theirs.
func TestReplacePartitionedTables(t *testing.T) {
	src := testenv.NewPostgres(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE events (id int, at date) PARTITION BY RANGE (id)",
		"CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (1000)",
		"CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (1000) TO (MAXVALUE)",
		"INSERT INTO events SELECT g, date '2026-01-01' + g % 300 FROM generate_series(1, 2500) g",
		"CREATE TABLE cities (name text)",
		"CREATE TABLE capitals (country text) INHERITS (cities)",
		"INSERT INTO cities VALUES ('Lyon'), ('Porto')",
		"INSERT INTO capitals VALUES ('Paris', 'France')",
	} {
		if _, err := src.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var dump bytes.Buffer
	counted := NewRowCounter()
	if err := Dump(ctx, asPostgres(src.Database), io.MultiWriter(&dump, counted)); err != nil {
		t.Fatal(err)
	}
	want, err := Stats(ctx, asPostgres(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, c := range counted.Counts() {
		rows[c.Name] = c.Rows
	}
	for _, s := range want {
		if s.Rows != rows[s.Name] {
			t.Errorf("%s: %d rows counted by the server, %d in the dump", s.Name, s.Rows, rows[s.Name])
		}
	}
	for _, inPlace := range []bool{false, true} {
		dst := pgTarget(t)
		if err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump.Bytes()), strict(want), ReplaceOptions{InPlace: inPlace, Terminate: true}); err != nil {
			t.Fatalf("in place %v: %v", inPlace, err)
		}
		if n := query(t, dst.Database, "SELECT count(*)::text FROM events"); n != "2500" {
			t.Errorf("in place %v: events has %s rows", inPlace, n)
		}
	}
}

// A traced replace tells, once swapped in, the previous tables'
// fingerprints as they were swapped out (the database renamed away, or in
// place the schemas renamed aside): a table the site wrote to after the
// caller's reading shows changed, the others do not.
func TestReplaceTracesReplaced(t *testing.T) {
	dump, want := sourceDump(t)
	for _, inPlace := range []bool{false, true} {
		dst := pgTarget(t)
		ctx := context.Background()
		c := asPostgres(dst.Database)
		asPostgresExecIn(t, dst.Database, "CREATE TABLE other (x int); INSERT INTO other VALUES (1)")
		before, _, err := UpdateTimes(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		asPostgresExecIn(t, dst.Database, "INSERT INTO stale VALUES (2)")
		var old map[string]string
		tctx := cairn.WithLoadTrace(ctx, &cairn.LoadTrace{Replaced: func(m map[string]string) { old = m }})
		if err := Replace(tctx, c, bytes.NewReader(dump), strict(want), ReplaceOptions{Terminate: true, InPlace: inPlace}); err != nil {
			t.Fatal(err)
		}
		if old == nil {
			t.Fatalf("in place %v: the trace was not told of the previous tables", inPlace)
		}
		if old["public.stale"] == before["public.stale"] || old["public.other"] != before["public.other"] || len(old) != len(before) {
			t.Errorf("in place %v: before %v\nreplaced %v", inPlace, before, old)
		}
	}
}
