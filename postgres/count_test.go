package postgres

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestRowCounterOnRealDump(t *testing.T) {
	p, c := fixture(t)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE SCHEMA "My Schema"`,
		`CREATE TABLE "My Schema"."odd ""name""" (s text)`,
		`INSERT INTO "My Schema"."odd ""name""" VALUES (''), (E'\\.'), (E'line\nbreak'), (NULL), ('\.')`,
		`CREATE TABLE empty_one (x int)`,
		// Both a.b.c, were the names not quoted; names on two lines.
		`CREATE SCHEMA a`, `CREATE SCHEMA "a.b"`,
		`CREATE TABLE "a.b".c (x int)`, `INSERT INTO "a.b".c VALUES (1)`,
		`CREATE TABLE a."b.c" (x int)`, `INSERT INTO a."b.c" VALUES (1), (2)`,
		"CREATE TABLE \"new\nline\" (\"a\n\"\"b\" text)", "INSERT INTO \"new\nline\" VALUES ('it''s'), ('\"'), ('$$')",
		`GRANT USAGE ON SCHEMA "My Schema", a, "a.b" TO ` + p.User,
		`GRANT SELECT ON ALL TABLES IN SCHEMA "My Schema", public, a, "a.b" TO ` + p.User,
	} {
		if _, err := p.Admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var dump bytes.Buffer
	if err := Dump(ctx, c, &dump); err != nil {
		t.Fatal(err)
	}
	stats, err := Stats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range stats {
		names[s.Name] = true
	}
	if !names[`"a.b"."c"`] || !names[`"a"."b.c"`] || !names["public.new\nline"] {
		t.Fatalf("stats name the tables %+v", stats)
	}
	for _, chunk := range []int{1, 5, 4096, dump.Len()} {
		rc := NewRowCounter()
		for b := dump.Bytes(); len(b) > 0; {
			n := min(chunk, len(b))
			rc.Write(b[:n])
			b = b[n:]
		}
		got := rc.Counts()
		if len(got) != len(stats) {
			t.Fatalf("chunk %d: counted %+v, server %+v", chunk, got, stats)
		}
		want := map[string]int64{}
		for _, s := range stats {
			want[s.Name] = s.Rows
		}
		for _, g := range got {
			if n, ok := want[g.Name]; !ok || n != g.Rows {
				t.Errorf("chunk %d: %+v, server says %+v", chunk, g, stats)
			}
		}
	}
}

// As a tee target the counter must report every byte written.
func TestRowCounterAsTee(t *testing.T) {
	in := "SET x = 1;\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\nCOPY public.\"U\" (a) FROM stdin;\n\\.\n"
	rc := NewRowCounter()
	out, err := io.ReadAll(io.TeeReader(strings.NewReader(in), rc))
	if err != nil || string(out) != in {
		t.Fatalf("tee: %q, %v", out, err)
	}
	got := rc.Counts()
	if len(got) != 2 || got[0] != (TableStat{Name: "public.U"}) || got[1] != (TableStat{Name: "public.t", Rows: 2}) {
		t.Errorf("counts = %+v", got)
	}
}

func FuzzRowCounter(f *testing.F) {
	f.Add([]byte("COPY public.t (a) FROM stdin;\n1\n\\.\n"))
	f.Add([]byte("COPY \"a\"\"b\".\"c\" (x) FROM stdin;\n\n\\.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := NewRowCounter()
		if n, err := rc.Write(data); n != len(data) || err != nil {
			t.Fatalf("Write = %d, %v; want %d", n, err, len(data))
		}
		rc.Counts()
	})
}

func TestTableNames(t *testing.T) {
	for _, c := range []struct{ schema, table, name string }{
		{"public", "t", "public.t"},
		{"My Schema", `odd "name"`, `"My Schema"."odd ""name"""`},
		{"a.b", "c", `"a.b"."c"`},
		{"a", "b.c", `"a"."b.c"`},
		{"public", "new\nline", "public.new\nline"},
	} {
		if got := tableName(c.schema, c.table); got != c.name {
			t.Errorf("tableName(%q, %q) = %q, want %q", c.schema, c.table, got, c.name)
		}
		if got := splitName(c.name); strings.HasPrefix(c.name, `"`) && (len(got) != 2 || got[0] != c.schema || got[1] != c.table) {
			t.Errorf("splitName(%q) = %q", c.name, got)
		}
	}
	// A snapshot of an earlier version named "a.b".c a.b.c: its stat is
	// found so, unless a."b.c" is there too.
	one := withOldNames([]TableStat{{Name: `"a.b"."c"`, Rows: 1}, {Name: "public.t", Rows: 2}})
	if len(one) != 3 || one[2].Name != "a.b.c" || one[2].Rows != 1 {
		t.Errorf("withOldNames of one: %+v", one)
	}
	two := withOldNames([]TableStat{{Name: `"a.b"."c"`}, {Name: `"a"."b.c"`}, {Name: `"x.y"."z"`}, {Name: "x.y.z"}})
	if len(two) != 4 {
		t.Errorf("withOldNames of two spelled alike: %+v", two)
	}
}
