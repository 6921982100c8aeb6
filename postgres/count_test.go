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
		`GRANT USAGE ON SCHEMA "My Schema" TO ` + p.User,
		`GRANT SELECT ON ALL TABLES IN SCHEMA "My Schema", public TO ` + p.User,
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
		for i := range stats {
			if got[i].Name != stats[i].Name || got[i].Rows != stats[i].Rows {
				t.Errorf("chunk %d: %+v, server says %+v", chunk, got[i], stats[i])
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
