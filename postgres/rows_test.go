package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// A part of rows loads as psql would load it: statements run, each COPY's
// rows (a line longer than any buffer among them, whose rest starts as the
// end of rows nearly does) after a truncation of its table, pg_dump's \restrict
// pair and a large object's BEGIN and COMMIT dropped.
func TestLoadRows(t *testing.T) {
	p := testenv.NewPostgres(t)
	ctx := context.Background()
	if _, err := p.Admin.Exec(ctx, `CREATE TABLE "odd * name" ("x.y" int, note text); CREATE SEQUENCE s; INSERT INTO "odd * name" VALUES (99, 'stale')`); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 1<<20-2) // the buffer fills just before an escaped backslash
	part := "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n" +
		"SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\n\n" +
		"-- Data for Name: odd * name\n--\n\n" +
		"COPY public.\"odd * name\" (\"x.y\", note) FROM stdin;\n1\ttab\\there\n2\t" + long + "\\\\.\n3\t\\N\n\\.\n\n" +
		"BEGIN;\nSELECT pg_catalog.setval('public.s',\n  42, true);\nCOMMIT;\n\n\\unrestrict abc\n"
	if _, err := loadRows(ctx, asPostgres(p.Database), "postgres", strings.NewReader(part)); err != nil {
		t.Fatal(err)
	}
	if got := query(t, p.Database, `SELECT string_agg("x.y" || ':' || coalesce(length(note), -1), ',' ORDER BY "x.y") FROM "odd * name"`); got != "1:8,2:1048576,3:-1" {
		t.Errorf("rows: %s", got)
	}
	if got := query(t, p.Database, `SELECT note FROM "odd * name" WHERE "x.y" = 1`); got != "tab\there" {
		t.Errorf("an escape: %q", got)
	}
	if got := query(t, p.Database, `SELECT last_value::text FROM s`); got != "42" {
		t.Errorf("the sequence: %s", got)
	}
}

// A part that is cut short, or holds what no part of rows holds, loads
// nothing: the table keeps its rows.
func TestLoadRowsRefuses(t *testing.T) {
	p := testenv.NewPostgres(t)
	ctx := context.Background()
	if _, err := p.Admin.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	rows := "COPY public.t (x) FROM stdin;\n1\n2\n"
	for name, part := range map[string]string{
		"cut inside the rows":          rows,
		"cut inside a line":            rows + "3",
		"cut inside a statement":       rows + "\\.\nSELECT pg_catalog.setval('s',\n",
		"a psql command":               rows + "\\.\n\\connect other\n",
		"a statement of no rows":       rows + "\\.\nDROP TABLE t;\n",
		"a failing statement":          rows + "\\.\nSELECT pg_catalog.setval('nosuch', 1, true);\n",
		"a row the table refuses":      "COPY public.t (x) FROM stdin;\nnot a number\n\\.\n",
		"a COPY of no such table":      "COPY public.nosuch (x) FROM stdin;\n1\n\\.\n",
		"a transaction's own ROLLBACK": rows + "\\.\nROLLBACK;\n",
	} {
		if _, err := loadRows(ctx, asPostgres(p.Database), "postgres", strings.NewReader(part)); err == nil {
			t.Errorf("%s: loaded", name)
		}
		if got := query(t, p.Database, `SELECT string_agg(x::text, ',') FROM t`); got != "7" {
			t.Errorf("%s: the table holds %s", name, got)
		}
	}
}

// A part of schema runs over the wire, pg_dump's \restrict pair dropped,
// in one transaction (a failing statement, named by its line, leaves
// nothing); one holding a psql command goes to psql, which refuses it.
func TestLoadSchema(t *testing.T) {
	p := testenv.NewPostgres(t)
	ctx := context.Background()
	c := asPostgres(p.Database)
	if err := loadSchema(ctx, c, "postgres", strings.NewReader("\\restrict k1\nCREATE TABLE a (x int);\nCREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\nSELECT 'x;\\n'\n$$;\n\\unrestrict k1\n")); err != nil {
		t.Fatal(err)
	}
	if got := query(t, p.Database, "SELECT f()"); got != `x;\n` {
		t.Errorf("the function: %q", got)
	}
	// The dump says how to read its strings, whatever the session would.
	asPostgresExecIn(t, p.Database, "ALTER DATABASE "+p.Database+" SET standard_conforming_strings = off")
	if err := loadSchema(ctx, c, "postgres", strings.NewReader("SET standard_conforming_strings = on;\nCREATE TABLE e (p text DEFAULT 'C:\\new');\n")); err != nil {
		t.Fatal(err)
	}
	asPostgresExecIn(t, p.Database, "INSERT INTO e DEFAULT VALUES")
	if got := query(t, p.Database, "SELECT p FROM e"); got != `C:\new` {
		t.Errorf("a default read with standard_conforming_strings off: %q", got)
	}
	err := loadSchema(ctx, c, "postgres", strings.NewReader("CREATE TABLE b (x int);\n\nCREATE TABLE c (x nosuchtype);\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3 of the schema") {
		t.Errorf("a failing statement: %v", err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	err = loadSchema(ctx, c, "postgres", strings.NewReader("CREATE TABLE d (x int);\n\\! touch "+marker+"\n"))
	if err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Errorf("a psql command: %v", err)
	}
	if _, serr := os.Stat(marker); serr == nil {
		t.Error("the schema ran a shell command")
	}
	if got := query(t, p.Database, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"); got != "a,e" {
		t.Errorf("tables: %s", got)
	}
}
