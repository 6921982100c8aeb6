package rewrite

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fuzzDumps seeds the dump fuzzers with the corpus and small cases.
func fuzzDumps(f *testing.F, dialect string, extra ...string) {
	for _, c := range corpus {
		if c.dialect == dialect && c.input == "" {
			if b, err := os.ReadFile(filepath.Join("testdata", "corpus", c.name, "input.sql")); err == nil {
				f.Add(b)
			}
		}
	}
	for _, e := range extra {
		f.Add([]byte(e))
	}
}

func fuzzDump(t *testing.T, dialect string, in []byte) {
	// Small buffers: the long-line paths get exercised, and runs are fast.
	defer func(n int) { lineBuffer = n }(lineBuffer)
	lineBuffer = 64
	run := func(pairs []Pair, in []byte) []byte {
		w, err := New(Config{Pairs: pairs})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if dialect == "postgres" {
			_, err = w.Postgres(bytes.NewReader(in), &out)
		} else {
			_, err = w.MySQL(bytes.NewReader(in), &out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	// A pair that does not occur is the identity, byte for byte.
	if !bytes.Contains(in, []byte("nowhere")) {
		if out := run([]Pair{{"https://nowhere.invalid", "https://x.invalid"}}, in); !bytes.Equal(out, in) {
			t.Fatalf("identity rewrite changed the dump:\n%q\n%q", in, out)
		}
	}
	// Rewriting twice is rewriting once.
	pairs := []Pair{{"https://example.com", "https://staging.example.com"}}
	once := run(pairs, in)
	if twice := run(pairs, once); !bytes.Equal(once, twice) {
		t.Fatalf("not idempotent:\n%q\n%q\n%q", in, once, twice)
	}
}

func FuzzMySQL(f *testing.F) {
	fuzzDumps(f, "mysql",
		"INSERT INTO `t` VALUES (1,'https://example.com','a:1:{s:1:\\\"u\\\";s:19:\\\"https://example.com\\\";}'),(2,_binary 'x',0x00);\n",
		"INSERT INTO `t` VALUES\n('it\\'s https://example.com'),\n('\\\\');\n",
		"CREATE TABLE `t` (\n  `guid` text\n) ENGINE=InnoDB;\nINSERT INTO `t` VALUES ('https://example.com');\n")
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDump(t, "mysql", in) })
}

func FuzzPostgres(f *testing.F) {
	fuzzDumps(f, "postgres",
		"COPY public.t (id, v) FROM stdin;\n1\thttps://example.com\\tx\n2\t\\N\n\\.\n",
		"INSERT INTO public.t VALUES (1, 'it''s https://example.com', E'x');\n")
	f.Fuzz(func(t *testing.T, in []byte) { fuzzDump(t, "postgres", in) })
}
