package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

// deltaSource makes a database for deltas: keys of one and two columns
// (quoted names among them), values COPY escapes, a table without a key,
// a deferrable foreign key.
func deltaSource(t *testing.T) *testenv.Postgres {
	p := testenv.NewPostgres(t)
	run(t, p,
		`CREATE TABLE posts (id bigserial PRIMARY KEY, body text, img bytea, meta jsonb, at timestamptz, n numeric)`,
		`CREATE TABLE "Term Links" ("Object" text, term int, weight real, PRIMARY KEY ("Object", term))`,
		`CREATE TABLE log (msg text)`,
		`CREATE TABLE comments (id int PRIMARY KEY, post_id bigint REFERENCES posts DEFERRABLE INITIALLY DEFERRED)`,
		`INSERT INTO posts (body, img, meta, at, n) SELECT E'tab\there\nline ' || g || ' \\ back', '\x00ff'::bytea, jsonb_build_object('u', 'https://example.com/' || g), '2026-11-01 12:00:00+00', g / 3.0 FROM generate_series(1, 500) g`,
		`INSERT INTO "Term Links" SELECT 'o' || (g % 7), g, g / 7.0 FROM generate_series(1, 100) g`,
		`INSERT INTO log VALUES ('one'), ('two')`,
		`INSERT INTO comments SELECT g, g FROM generate_series(1, 50) g`,
		`CREATE MATERIALIZED VIEW post_count AS SELECT count(*) AS n FROM posts`,
		`CREATE FUNCTION sig() RETURNS text LANGUAGE sql AS $$ SELECT 'Regards

-- Old Team
' $$`,
	)
	return p
}

func run(t *testing.T, p *testenv.Postgres, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := p.Admin.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func pgDumpOf(t *testing.T, db string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Dump(context.Background(), asPostgres(db), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pgOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func countsOf(t *testing.T, db string) map[string]int64 {
	t.Helper()
	st, err := Stats(context.Background(), asPostgres(db))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, s := range st {
		m[s.Name] = s.Rows
	}
	return m
}

func statsOf(t *testing.T, db string) []TableStat {
	t.Helper()
	st, err := Stats(context.Background(), asPostgres(db))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A copy loaded from one dump, given the delta to a later dump, becomes
// that later dump's database exactly (per-table checksums, the sequence),
// in one transaction; the earlier dump followed by the delta as SQL loads
// as the later one too. From the earlier dump's index or from the dump
// itself, the delta is the same.
func TestPostgresDiffAndApply(t *testing.T) {
	ctx := context.Background()
	src := deltaSource(t)
	before := pgDumpOf(t, src.Database)
	if !strings.Contains(string(before), keyHeader+`public."Term Links" ("Object", term)`) {
		t.Fatalf("the dump does not name the keys:\n%.600s", before)
	}
	dst := testenv.NewPostgres(t)
	if err := Load(ctx, asPostgres(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	run(t, src,
		`REFRESH MATERIALIZED VIEW post_count`,
		`UPDATE posts SET body = E'changed\ttab' WHERE id = 7`,
		`DELETE FROM comments WHERE post_id = 9`,
		`DELETE FROM posts WHERE id = 9`,
		`INSERT INTO posts (body) VALUES ('new')`,
		`INSERT INTO comments VALUES (51, 501)`,
		`UPDATE "Term Links" SET weight = 0 WHERE term IN (3, 4)`,
	)
	after := pgDumpOf(t, src.Database)
	index, err := IndexDump(ctx, bytes.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Diff(ctx, nil, index, bytes.NewReader(after), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if removed, added := d.Rows(); removed != 5 || added != 5 || !reflect.DeepEqual(d.Tables(), []string{"public.Term Links", "public.comments", "public.posts"}) {
		t.Fatalf("delta: %d removed, %d added, tables %v", removed, added, d.Tables())
	}
	fromDump, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(after), nil, 1<<20)
	if err != nil || !reflect.DeepEqual(fromDump.tables, d.tables) {
		t.Fatalf("the delta from the dump differs from the one from its index: %v", err)
	}
	var script bytes.Buffer
	if err := d.WriteSQL(&script); err != nil {
		t.Fatal(err)
	}

	// A count that does not match changes nothing.
	was := statsOf(t, dst.Database)
	want := countsOf(t, src.Database)
	wrong := map[string]int64{"public.posts": 1, "public.comments": want["public.comments"], "public.Term Links": want["public.Term Links"]}
	if _, err := ApplyDelta(ctx, asPostgres(dst.Database), d, wrong, nil, nil, 0); !errors.Is(err, ErrNoDelta) || !errors.Is(err, cairn.ErrMismatch) {
		t.Fatalf("apply with a wrong count: %v", err)
	}
	if got := statsOf(t, dst.Database); !reflect.DeepEqual(got, was) {
		t.Fatal("a failed delta changed the database")
	}
	// Guarded, the tables' fingerprints as of the commit come back,
	// carried forward without reading the tables again: they are what
	// reading them gives.
	guard, _, err := UpdateTimes(ctx, asPostgres(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	applied, err := ApplyDelta(ctx, asPostgres(dst.Database), d, want, nil, guard, 0)
	if err != nil {
		t.Fatal(err)
	}
	if now, _, _ := UpdateTimes(ctx, asPostgres(dst.Database)); !reflect.DeepEqual(applied, now) {
		t.Errorf("fingerprints after the delta:\n%v\nread:\n%v", applied, now)
	}
	if got, want := statsOf(t, dst.Database), statsOf(t, src.Database); !reflect.DeepEqual(got, want) {
		t.Errorf("after the delta:\n%v\nwant\n%v", got, want)
	}
	if got := query(t, dst.Database, "SELECT last_value::text FROM posts_id_seq"); got != "501" {
		t.Errorf("sequence at %s, want 501", got)
	}
	// A materialized view is made of the new rows, as a whole load's.
	if got := query(t, dst.Database, "SELECT n::text FROM post_count"); got != "500" {
		t.Errorf("materialized view says %s posts, want 500", got)
	}

	third := testenv.NewPostgres(t)
	if err := Load(ctx, asPostgres(third.Database), io.MultiReader(bytes.NewReader(before), &script)); err != nil {
		t.Fatalf("%v\n%s", err, script.String())
	}
	if got, want := statsOf(t, third.Database), statsOf(t, src.Database); !reflect.DeepEqual(got, want) {
		t.Errorf("the earlier dump and the delta's SQL:\n%v\nwant\n%v", got, want)
	}
}

// A table that changed on the target after its fingerprint was taken
// fails the delta, changing nothing; so does a table without a primary
// key that changed, and a key the header names but the dump's own does
// not bear out.
func TestPostgresDeltaRefusals(t *testing.T) {
	ctx := context.Background()
	src := deltaSource(t)
	before := pgDumpOf(t, src.Database)
	dst := testenv.NewPostgres(t)
	if err := Load(ctx, asPostgres(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	guard, _, err := UpdateTimes(ctx, asPostgres(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	again, _, _ := UpdateTimes(ctx, asPostgres(dst.Database))
	if !reflect.DeepEqual(guard, again) {
		t.Fatalf("fingerprints of an unchanged database differ: %v, %v", guard, again)
	}
	run(t, src, `UPDATE posts SET body = 'x' WHERE id = 1`)
	after := pgDumpOf(t, src.Database)
	d, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(after), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A row deleted on the target, rolled back writes aside.
	tx, _ := dst.Admin.Begin(ctx)
	tx.Exec(ctx, "INSERT INTO log VALUES ('rolled back')")
	tx.Rollback(ctx)
	if now, _, _ := UpdateTimes(ctx, asPostgres(dst.Database)); !reflect.DeepEqual(now, guard) {
		t.Error("a rolled-back write changed a fingerprint")
	}
	run(t, dst, `DELETE FROM comments WHERE id = 50`)
	was := statsOf(t, dst.Database)
	if _, err := ApplyDelta(ctx, asPostgres(dst.Database), d, countsOf(t, src.Database), nil, guard, 0); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "public.comments changed meanwhile") {
		t.Fatalf("apply over a changed table: %v", err)
	}
	if got := statsOf(t, dst.Database); !reflect.DeepEqual(got, was) {
		t.Fatal("a refused delta changed the database")
	}

	run(t, src, `UPDATE log SET msg = 'three' WHERE msg = 'two'`)
	logged := pgDumpOf(t, src.Database)
	if _, err := Diff(ctx, pgOpener(after), nil, bytes.NewReader(logged), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "public.log changed and has no primary key") {
		t.Errorf("a keyless table changed: %v", err)
	}

	run(t, src, `UPDATE posts SET body = 'y' WHERE id = 1`)
	lying := strings.Replace(string(pgDumpOf(t, src.Database)), keyHeader+"public.posts (id)", keyHeader+"public.posts (body)", 1)
	if _, err := Diff(ctx, pgOpener(logged), nil, strings.NewReader(lying), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "public.posts changed and has no primary key") {
		t.Errorf("a key the dump does not bear out: %v", err)
	}

	// A table without a key that gained a copy of a row it holds.
	run(t, src, `INSERT INTO log SELECT * FROM log LIMIT 1`)
	if _, err := Diff(ctx, pgOpener(logged), nil, bytes.NewReader(pgDumpOf(t, src.Database)), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "public.log changed and has no primary key") {
		t.Errorf("a keyless table gained a duplicate row: %v", err)
	}
	// A function's body changed on a line that reads like a comment, or
	// a blank one.
	current := pgDumpOf(t, src.Database)
	run(t, src, `CREATE OR REPLACE FUNCTION sig() RETURNS text LANGUAGE sql AS $$ SELECT 'Regards


-- New Team
' $$`)
	if _, err := Diff(ctx, pgOpener(current), nil, bytes.NewReader(pgDumpOf(t, src.Database)), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "the schema changed") {
		t.Errorf("a function's body changed: %v", err)
	}

	// A dump cut short is an error, not a delta.
	cut := after[:bytes.Index(after, []byte("COPY public.posts"))+200]
	if _, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(cut), nil, 1<<20); err == nil || errors.Is(err, ErrNoDelta) {
		t.Errorf("a cut dump: %v", err)
	}
	// Beyond the limit, no delta.
	if _, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(after), map[string]bool{"public.posts": true}, 1000); !errors.Is(err, ErrNoDelta) {
		t.Errorf("over the limit: %v", err)
	}
}

// A database whose rows cannot be told apart in place gets no
// fingerprints (large objects), or no tables dumped again after a dump of
// it (a foreign key checked at once, a trigger); one whose primary key
// has INCLUDE columns is keyed by its key columns.
func TestPostgresDeltaUnsafe(t *testing.T) {
	ctx := context.Background()
	p := testenv.NewPostgres(t)
	run(t, p,
		`CREATE TABLE parent (id int, v text, PRIMARY KEY (id) INCLUDE (v))`,
		`CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent)`,
		`INSERT INTO parent VALUES (1, 'a')`,
		`INSERT INTO child VALUES (1, 1)`,
	)
	x, err := IndexDump(ctx, bytes.NewReader(pgDumpOf(t, p.Database)))
	if err != nil {
		t.Fatal(err)
	}
	if info := x.Schema.Info["public.parent"]; !reflect.DeepEqual(info.KeyCols, []string{"id"}) {
		t.Errorf("key of a primary key with INCLUDE columns: %+v", info)
	}
	if _, err := DumpTables(ctx, asPostgres(p.Database), io.Discard, []string{"public.parent"}); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "not DEFERRABLE") {
		t.Errorf("tables dumped again under a foreign key checked at once: %v", err)
	}
	var tail bytes.Buffer
	if _, err := DumpTables(ctx, asPostgres(p.Database), &tail, nil); err != nil || !strings.HasSuffix(tail.String(), cairnEnd+"\n") {
		t.Errorf("nothing dumped again: %v\n%s", err, tail.String())
	}
	run(t, p, `SELECT lo_from_bytea(0, 'hello')`)
	if _, _, err := UpdateTimes(ctx, asPostgres(p.Database)); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "large objects") {
		t.Errorf("fingerprints of a database with large objects: %v", err)
	}
}

// What cairn writes to follow a dump must be whole: cut, the load fails.
func TestTailCheck(t *testing.T) {
	dump := "--\n" + dumpEnd + "\n--\n\n"
	rest := cairnStart + "the rows that changed since the dump above\nCOPY public.t (id) FROM stdin;\n1\n"
	for _, tt := range []struct {
		in    string
		whole bool
	}{
		{dump, true},
		{dump + rest + "\\.\n" + cairnEnd + "\n", true},
		{dump + rest, false},
		{dump[:len(dump)-10], false},
	} {
		tl := &tail{r: strings.NewReader(tt.in)}
		io.Copy(io.Discard, tl)
		_, err := tl.check().Read(nil)
		if (err == io.EOF) != tt.whole {
			t.Errorf("%q: %v", tt.in, err)
		}
	}
}

// A database of more rows than a delta compares in memory gets no delta
// and no row index (its clones load it whole).
func TestPostgresDeltaRowBound(t *testing.T) {
	ctx := context.Background()
	src := deltaSource(t)
	before := pgDumpOf(t, src.Database)
	defer func(n int) { cairn.DeltaRows = n }(cairn.DeltaRows)
	cairn.DeltaRows = 100
	if _, err := IndexDump(ctx, bytes.NewReader(before)); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "more than 100 rows") {
		t.Errorf("index of too many rows: %v", err)
	}
	if _, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(before), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "more than 100 rows") {
		t.Errorf("delta of too many rows: %v", err)
	}
}

// A delta whose commit fails (a deferred foreign key broken by a row the
// target gained) changes nothing: rows, and the sequences, which a
// rollback alone would leave set.
func TestPostgresDeltaCommitFails(t *testing.T) {
	ctx := context.Background()
	src := deltaSource(t)
	before := pgDumpOf(t, src.Database)
	dst := testenv.NewPostgres(t)
	if err := Load(ctx, asPostgres(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	run(t, src, `DELETE FROM comments WHERE post_id = 9`, `DELETE FROM posts WHERE id = 9`, `INSERT INTO posts (body) VALUES ('new')`)
	d, err := Diff(ctx, pgOpener(before), nil, bytes.NewReader(pgDumpOf(t, src.Database)), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	run(t, dst, `CREATE TABLE pins (post_id bigint REFERENCES posts DEFERRABLE INITIALLY DEFERRED)`, `INSERT INTO pins VALUES (9)`)
	was := statsOf(t, dst.Database)
	if _, err := ApplyDelta(ctx, asPostgres(dst.Database), d, countsOf(t, src.Database), nil, nil, 0); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "foreign key") {
		t.Fatalf("apply breaking a foreign key: %v", err)
	}
	if got := statsOf(t, dst.Database); !reflect.DeepEqual(got, was) {
		t.Error("a delta whose commit failed changed the rows")
	}
	if got := query(t, dst.Database, "SELECT last_value::text FROM posts_id_seq"); got != "500" {
		t.Errorf("sequence at %s after a failed commit, want 500 as before", got)
	}
}
