package postgres

import (
	"strings"
	"testing"
)

// Each line of the SQL below is marked with whether it begins inside a
// literal (L) or not (.), as PostgreSQL's lexer would have it.
func TestSQLTextLiterals(t *testing.T) {
	marked := `. SET standard_conforming_strings = on;
. CREATE FUNCTION public.gen() RETURNS text LANGUAGE plpgsql AS $_$
L BEGIN
L   RETURN 'COPY public.t (a) FROM stdin;
L COPY public.t (a) FROM stdin;
L \.
L \restrict abc
L $x$ and $ not a tag $1';
L END $_$;
. COMMENT ON TABLE public.t IS 'it''s
L COPY public.t (a) FROM stdin;
L ''quoted'' across';
. SELECT E'a \' still in
L and \\';
. SELECT 'not E: \';
. CREATE TABLE "odd
L COPY x FROM stdin;
L ""name" (a int); -- a ' comment
. /* a /* nested
L */ still comment
L */ SELECT $$
L $notend$ $$, $tag$ x $tag$, a$b, $1;
. SELECT date'C:\', 1, some'x\';
. SET standard_conforming_strings = off;
. SELECT 'a \' b
L ';
. COPY public.t (a) FROM stdin;
`
	var s sqlText
	for n, line := range strings.SplitAfter(marked, "\n") {
		if line == "" {
			continue
		}
		want := line[0] == 'L'
		if got := s.literal(); got != want {
			t.Errorf("line %d %q: literal() = %v, want %v", n+1, line[2:], got, want)
		}
		// Bytes at a time, as a stream cuts them.
		for i := range len(line) - 2 {
			s.write([]byte{line[2+i]})
		}
	}
}

func TestCopyLines(t *testing.T) {
	var j copyLines
	var got []string
	for _, l := range []string{"SET x = 1;", `COPY public."new`, `li""ne" ("a`, `b") FROM stdin;`, `COPY public.t (a) FROM stdin;`, `COPY "x" ("y""") FROM stdin;`} {
		if whole, done := j.take([]byte(l)); done {
			got = append(got, string(whole))
		} else if !j.open() {
			t.Fatalf("%q: not done, yet not open", l)
		}
	}
	want := []string{"SET x = 1;", "COPY public.\"new\nli\"\"ne\" (\"a\nb\") FROM stdin;", `COPY public.t (a) FROM stdin;`, `COPY "x" ("y""") FROM stdin;`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
