package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dumpParts dumps c in parts, and returns them.
func dumpParts(t *testing.T, ctx context.Context, c Config) ([]*bytes.Buffer, string) {
	t.Helper()
	var bufs []*bytes.Buffer
	why, err := DumpParts(ctx, c, func(n int) []io.Writer {
		ws := make([]io.Writer, n)
		for i := range ws {
			bufs = append(bufs, &bytes.Buffer{})
			ws[i] = bufs[i]
		}
		return ws
	})
	if err != nil {
		t.Fatal(err)
	}
	return bufs, why
}

// joined is the parts one after the other, as the repository gives a
// dump in parts to one reader.
func joined(parts []*bytes.Buffer) io.Reader {
	rs := make([]io.Reader, len(parts))
	for i, p := range parts {
		rs[i] = bytes.NewReader(p.Bytes())
	}
	return io.MultiReader(rs...)
}

// A dump in parts, its parts one after the other, loads what the
// database holds (rows and checksums of every table, the view, the
// trigger, the sequence), as one pg_dump's does; a small one is one part.
func TestDumpPartsMatchesOne(t *testing.T) {
	src, _ := fixture(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE tags (id int PRIMARY KEY, post int REFERENCES posts (id), name text)",
		"INSERT INTO tags SELECT g, 1 + g % 3000, 'tag ' || g FROM generate_series(1, 5000) g",
		`CREATE TABLE "odd * name" ("x.y" int)`,
		`INSERT INTO "odd * name" SELECT generate_series(1, 7)`,
	} {
		if _, err := src.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Another session's temporary table is no table of the dump's (it
	// cannot be dumped: naming it would fail the dump).
	if _, err := src.Admin.Exec(ctx, "CREATE TEMPORARY TABLE scratch_work (x int)"); err != nil {
		t.Fatal(err)
	}
	c := asPostgres(src.Database)
	want, err := Stats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if parts, why := dumpParts(t, ctx, c); len(parts) != 1 || why == "" {
		t.Fatalf("a small database: %d parts (%s)", len(parts), why)
	}
	c.Connections = 2 // parts, whatever the size
	parts, why := dumpParts(t, ctx, c)
	if len(parts) != 4 {
		t.Fatalf("%d parts (%s)", len(parts), why)
	}
	if !bytes.Contains(parts[2].Bytes(), []byte("COPY public.posts ")) || bytes.Contains(parts[1].Bytes(), []byte("COPY public.posts ")) {
		t.Errorf("the largest table is not in the second data part alone")
	}
	for _, inPlace := range []bool{false, true} {
		dst := pgTarget(t)
		if inPlace {
			// A session of the target's with a temporary table: the load's
			// count in place cannot read it, nor is it the dump's.
			if _, err := dst.Admin.Exec(ctx, "CREATE TEMPORARY TABLE site_work (x int)"); err != nil {
				t.Fatal(err)
			}
		}
		if err := Replace(ctx, asPostgres(dst.Database), joined(parts), strict(want), ReplaceOptions{Terminate: true, InPlace: inPlace}); err != nil {
			t.Fatalf("in place %v: %v", inPlace, err)
		}
		got, err := Stats(ctx, asPostgres(dst.Database))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("in place %v: restored %v\nwant %v", inPlace, got, want)
		}
		if v := query(t, dst.Database, "SELECT count(*)::text FROM titles"); v != "3000" {
			t.Errorf("in place %v: the view gives %s rows", inPlace, v)
		}
		// Keys and indexes, built beside the rows, are all there.
		schema := `SELECT coalesce(string_agg(d, E'\n' ORDER BY d), '') FROM (
		SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public'
		UNION ALL SELECT conrelid::regclass || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal) x`
		if got, want := query(t, dst.Database, schema), query(t, src.Database, schema); got != want || !strings.Contains(got, "PRIMARY KEY") {
			t.Errorf("keys and indexes:\n%s\nwant\n%s", got, want)
		}
		asPostgresExecIn(t, dst.Database, "INSERT INTO posts (title) VALUES ('  trimmed  ')")
		if v := query(t, dst.Database, "SELECT title FROM posts WHERE id = 3001"); v != "trimmed" {
			t.Errorf("in place %v: the trigger and the sequence: %q", inPlace, v)
		}
	}
}

// The parts are of one moment: rows written in one transaction to two
// tables in different parts, while the parts are dumped, are in both or
// in neither.
func TestDumpPartsConsistent(t *testing.T) {
	src, _ := fixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// pairs the largest table, so that the two tables are dumped apart.
	for _, q := range []string{"CREATE TABLE pairs (id int PRIMARY KEY, pad text)",
		"INSERT INTO pairs SELECT -g, repeat('y', 500) FROM generate_series(1, 20000) g"} {
		if _, err := src.Admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := src.Admin.Begin(ctx)
			if err != nil {
				return
			}
			tx.Exec(ctx, "INSERT INTO pairs VALUES ($1, repeat('x', 500))", i)         //nolint:errcheck
			tx.Exec(ctx, "INSERT INTO log VALUES ($1, now())", fmt.Sprint("pair ", i)) //nolint:errcheck
			tx.Commit(ctx)                                                             //nolint:errcheck
		}
	}()
	time.Sleep(200 * time.Millisecond)
	for round := range 3 {
		c := asPostgres(src.Database)
		c.Connections = 2
		parts, _ := dumpParts(t, ctx, c)
		all := ""
		for _, p := range parts {
			all += p.String()
		}
		if !strings.Contains(parts[2].String(), "COPY public.pairs ") || !strings.Contains(parts[1].String(), "COPY public.log ") {
			t.Fatalf("round %d: pairs and log are not in parts of their own", round)
		}
		a := copyRows(all, "public.pairs") - 20000
		b := strings.Count(copyBlock(all, "public.log"), "pair ")
		if a != b || a == 0 {
			t.Errorf("round %d: %d rows in pairs, %d pairs in log", round, a, b)
		}
	}
	close(stop)
	wg.Wait()
}

// copyBlock is the data of table's COPY in dump.
func copyBlock(dump, table string) string {
	_, rest, ok := strings.Cut(dump, "COPY "+table+" ")
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, "\n")
	data, _, _ := strings.Cut(rest, "\n\\.\n")
	return data
}

// copyRows counts the rows of table's COPY in dump.
func copyRows(dump, table string) int {
	b := copyBlock(dump, table)
	if b == "" {
		return 0
	}
	return strings.Count(b, "\n") + 1
}

// asPostgresExecIn runs q in database db as postgres.
func asPostgresExecIn(t *testing.T, db, q string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// A dump in parts loads by its parts (the two parts of rows at once, in
// transactions of their own), as the same parts one after the other do;
// a part of rows cut short fails the load and leaves the target as it
// was, nothing beside it.
func TestReplacePartsLoadsAtOnce(t *testing.T) {
	src, _ := fixture(t)
	ctx := context.Background()
	if _, err := src.Admin.Exec(ctx, `CREATE TABLE "odd * name" ("x.y" int); INSERT INTO "odd * name" SELECT generate_series(1, 7);
		CREATE UNIQUE INDEX "odd ON x" ON "odd * name" ("x.y"); CREATE INDEX posts_title ON posts (title);
		CREATE UNIQUE INDEX posts_uid ON posts (id); ALTER TABLE posts CLUSTER ON posts_title;
		ALTER TABLE posts REPLICA IDENTITY USING INDEX posts_uid;
		CREATE TABLE audit (tbl regclass, ty regtype); INSERT INTO audit VALUES ('posts', 'int4');
		ALTER TABLE log ADD COLUMN post int REFERENCES posts (id)`); err != nil {
		t.Fatal(err)
	}
	c := asPostgres(src.Database)
	want, err := Stats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Connections = 2
	parts, _ := dumpParts(t, ctx, c)
	readers := func(cut int) []io.Reader {
		rs := make([]io.Reader, len(parts))
		for i, p := range parts {
			b := p.Bytes()
			if i == cut {
				b = b[:len(b)/2]
			}
			rs[i] = bytes.NewReader(b)
		}
		return rs
	}
	dst := pgTarget(t)
	before := state(t, dst.Database)
	if err := ReplaceParts(ctx, asPostgres(dst.Database), readers(2), strict(want), ReplaceOptions{Terminate: true}); err == nil {
		t.Fatal("a cut part of rows replaced the target")
	}
	if got := state(t, dst.Database); got != before {
		t.Errorf("a failed load changed the target:\n%s", got)
	}
	if s := sideDBs(t, dst.Database); s != "" {
		t.Errorf("left beside the target: %s", s)
	}
	if err := ReplaceParts(ctx, asPostgres(dst.Database), readers(-1), strict(want), ReplaceOptions{Terminate: true}); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, asPostgres(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restored %v\nwant %v", got, want)
	}
	if v := query(t, dst.Database, `SELECT string_agg(c.relname || ':' || i.indisclustered || ':' || i.indisreplident, ',' ORDER BY c.relname)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('posts_title', 'posts_uid')`); v != "posts_title:true:false,posts_uid:false:true" {
		t.Errorf("clustered and replica identity indexes: %s", v)
	}
	asPostgresExecIn(t, dst.Database, "INSERT INTO posts (title) VALUES ('  trimmed  ')")
	if v := query(t, dst.Database, "SELECT title FROM posts WHERE id = 3001"); v != "trimmed" {
		t.Errorf("the trigger and the sequence: %q", v)
	}
}

// A dump in parts shares the tables out by size, so that a table may
// change parts from one dump to the next: the schema's sum, by which a
// delta knows that two dumps hold the same schema, stays the same.
func TestDumpPartsSchemaSumStable(t *testing.T) {
	src, c := fixture(t)
	c.Connections = 2
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := src.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE grows (id int PRIMARY KEY, pad text)")
	exec("GRANT SELECT ON grows TO " + src.User)
	sum := func() (uint64, string) {
		t.Helper()
		parts, why := dumpParts(t, ctx, c)
		if why != "" {
			t.Fatalf("not in parts: %s", why)
		}
		ix, err := IndexDump(ctx, joined(parts))
		if err != nil {
			t.Fatal(err)
		}
		return ix.Schema.Sum, strings.Join(ix.Schema.Tables, ",")
	}
	before, order := sum()
	exec("INSERT INTO grows SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g")
	after, order2 := sum()
	if order == order2 {
		t.Fatalf("the tables' order in the dump did not change (%s): the test proves nothing", order)
	}
	if before != after {
		t.Errorf("the schema's sum changed when the tables changed parts (%s, then %s)", order, order2)
	}
}
