package sqldump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/sqlident"
)

type part struct {
	table string // "" for another line
	text  string
}

func scanAll(in string) ([]part, error) {
	var out []part
	err := Scan(strings.NewReader(in), Handler{
		Row:   func(t string, row []byte) error { out = append(out, part{t, string(row)}); return nil },
		Other: func(line []byte) error { out = append(out, part{"", string(line)}); return nil },
	})
	return out, err
}

func TestScan(t *testing.T) {
	dump := "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE `t` (\n  `id` int\n);\n" +
		"INSERT INTO `t` VALUES (1,'a'),(2,'it''s (not) the end'),(3,'back\\\\slash\\' )');\n" +
		"INSERT INTO `odd``name` VALUES\n(1,NULL),\n(2,'multi\nline'),\n(3,0x00FF);\n" +
		"UNLOCK TABLES;"
	got, err := scanAll(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := []part{
		{"", "-- MariaDB dump"}, {"", "/*!40101 SET NAMES utf8mb4 */;"}, {"", "CREATE TABLE `t` ("}, {"", "  `id` int"}, {"", ");"},
		{"t", "(1,'a')"}, {"t", "(2,'it''s (not) the end')"}, {"t", `(3,'back\\slash\' )')`},
		{"odd`name", "(1,NULL)"}, {"odd`name", "(2,'multi\nline')"}, {"odd`name", "(3,0x00FF)"},
		{"", "UNLOCK TABLES;"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []string{
		"INSERT INTO `t` (`a`) VALUES (1);\n",
		"INSERT INTO `t` VALUES (1,'open);\n",
		"INSERT INTO `t` VALUES (1) junk;\n",
		"INSERT INTO `t VALUES (1);\n",
		"INSERT INTO `t` VALUES (1),\n",
	} {
		if _, err := scanAll(bad); err == nil {
			t.Errorf("Scan(%q) succeeded", bad)
		}
	}
	if _, err := scanAll("INSERT INTO `t` (`a`) VALUES (1);\n"); !errors.Is(err, ErrColumnList) {
		t.Errorf("a column list: %v", err)
	}
	// A handler's error stops the scan and is returned.
	stop := errors.New("stop")
	if err := Scan(strings.NewReader(dump), Handler{Row: func(string, []byte) error { return stop }}); !errors.Is(err, stop) {
		t.Errorf("handler error: %v", err)
	}
}

// A row far longer than the reader's buffer comes whole.
func TestScanLongRow(t *testing.T) {
	big := strings.Repeat("x", 3<<20)
	got, err := scanAll("INSERT INTO `t` VALUES (1,'" + big + "'),(2,'y');\n")
	if err != nil || len(got) != 2 || got[0].text != "(1,'"+big+"')" || got[1].text != "(2,'y')" {
		t.Fatalf("long row: %d parts, %v", len(got), err)
	}
}

// FuzzScan: Scan never panics; rows and other lines put back together
// give the input's data back (identity); and wherever the line-bound
// scanner it replaces (oldScanRows) reads a dump, Scan reads the same.
func FuzzScan(f *testing.F) {
	for _, s := range []string{
		"INSERT INTO `t` VALUES (1,'a'),(2,'b');\n",
		"INSERT INTO `t` VALUES\n(1,'a\\'b'),\n(2,'c)d');\n-- end\n",
		"CREATE TABLE `x` (`a` int);\nINSERT INTO `x` VALUES (1);\nINSERT INTO `x` VALUES (2,'x''y');\n",
		"INSERT INTO `t` VALUES (1,'\\\\'),(2,'');\n",
		"INSERT INTO `t` VALUES (1, 'a\nb');\n",
		"INSERT INTO `a``b` VALUES (0x00,NULL,-1.5e3);\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := scanAll(in)
		if err != nil {
			return
		}
		for _, p := range got {
			if p.table != "" && (!strings.HasPrefix(p.text, "(") || !strings.HasSuffix(p.text, ")")) {
				t.Fatalf("row %q is not (…)", p.text)
			}
			if !strings.Contains(in, p.text) {
				t.Fatalf("part %q is not in the input", p.text)
			}
		}
		var old []part
		oldErr := oldScanRows(strings.NewReader(in), func(table string, row []byte) error {
			old = append(old, part{table, string(row)})
			return nil
		}, func(line []byte) { old = append(old, part{"", string(line)}) })
		if oldErr == nil && fmt.Sprint(old) != fmt.Sprint(got) {
			t.Fatalf("the old scanner read\n%q\nScan read\n%q", old, got)
		}
	})
}

// oldScanRows is the line-bound scanner of mysql/delta.go that Scan
// replaces, kept to hold Scan to it.
func oldScanRows(r io.Reader, row func(table string, row []byte) error, other func(line []byte)) error {
	in := bufio.NewReaderSize(r, 1<<20)
	table := ""
	for n := 1; ; n++ {
		line, err := in.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if table == "" {
			if !bytes.HasPrefix(line, insertInto) {
				other(line)
				continue
			}
			name, rest, ok := sqlident.CutBackquoted(line[len("INSERT INTO "):])
			i := bytes.Index(rest, []byte("VALUES"))
			if !ok || i < 0 || bytes.HasPrefix(rest, []byte(" (")) {
				return fmt.Errorf("line %d: an INSERT cairn cannot read", n)
			}
			table, line = name, rest[i+len("VALUES"):]
		}
		done, err := oldSplitRows(line, func(r []byte) error { return row(table, r) })
		if err != nil {
			return err
		}
		if done {
			table = ""
		}
	}
}

func oldSplitRows(p []byte, fn func(row []byte) error) (bool, error) {
	for i := 0; ; {
		for ; i < len(p); i++ {
			if c := p[i]; c == ';' {
				return true, nil
			} else if c == '(' {
				break
			} else if c != ' ' && c != ',' && c != '\t' {
				return false, fmt.Errorf("unexpected %q between rows", c)
			}
		}
		if i == len(p) {
			return false, nil
		}
		start := i
		for i++; ; {
			j := bytes.IndexAny(p[i:], "')")
			if j < 0 {
				return false, errors.New("a row is cut off at the end of its line")
			}
			i += j
			if p[i] == ')' {
				i++
				break
			}
			for i++; ; {
				k := bytes.IndexByte(p[i:], '\'')
				if k < 0 {
					return false, errors.New("a string is not closed on its line")
				}
				if b := bytes.IndexByte(p[i:i+k], '\\'); b >= 0 {
					i += b + 2
					continue
				}
				i += k + 1
				break
			}
		}
		if err := fn(p[start:i]); err != nil {
			return false, err
		}
	}
}

func BenchmarkScan(b *testing.B) {
	var dump bytes.Buffer
	for i := 0; i < 200; i++ {
		dump.WriteString("INSERT INTO `wp_posts` VALUES ")
		for j := 0; j < 500; j++ {
			if j > 0 {
				dump.WriteByte(',')
			}
			fmt.Fprintf(&dump, "(%d,'%s','it\\'s a \\\"post\\\" (%d)',NULL,0x00FF)", j, strings.Repeat("lorem ipsum ", 20), j)
		}
		dump.WriteString(";\n")
	}
	b.SetBytes(int64(dump.Len()))
	for b.Loop() {
		n := 0
		if err := Scan(bytes.NewReader(dump.Bytes()), Handler{Row: func(string, []byte) error { n++; return nil }}); err != nil || n != 100000 {
			b.Fatal(n, err)
		}
	}
}

// FuzzCounter: the counter counts, whatever the chunks, what Scan reads
// wherever Scan reads the dump.
func FuzzCounter(f *testing.F) {
	f.Add("INSERT INTO `t` VALUES (1,'a'),(2,'b\\'');\n-- x\nINSERT INTO `u``v` VALUES ('(');\n", 3)
	f.Add("INSERT INTO `t` VALUES\n(1,'a\nb'),\n(2,'c');\nINSERT INTO `t` (`a`) VALUES (9);\n", 1)
	f.Add("INSERT INTO `t` (`a`, `b``)`) VALUES (9,'S'),\n(8,')');\nINSERT INTO `t` (`VALUES`) VALUES (1);\n", 2)
	f.Fuzz(func(t *testing.T, in string, chunk int) {
		chunk = 1 + abs(chunk)%64
		c := NewCounter()
		for b := []byte(in); len(b) > 0; b = b[min(chunk, len(b)):] {
			c.Write(b[:min(chunk, len(b))])
		}
		whole := NewCounter()
		whole.Write([]byte(in))
		if fmt.Sprint(c.Counts()) != fmt.Sprint(whole.Counts()) {
			t.Fatalf("in chunks of %d: %v, whole: %v", chunk, c.Counts(), whole.Counts())
		}
		scanned := map[string]int64{}
		columns := func(string, []string) error { return nil }
		if err := Scan(strings.NewReader(in), Handler{Row: func(t string, _ []byte) error { scanned[t]++; return nil }, Columns: columns}); err != nil {
			return
		}
		if fmt.Sprint(scanned) != fmt.Sprint(whole.Counts()) {
			t.Fatalf("Scan read %v, the counter counted %v", scanned, whole.Counts())
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func TestFields(t *testing.T) {
	got, err := Fields([]byte(`(1,'a,b','it''s',NULL,'\\',0x00)`), -1)
	want := []string{"1", "'a,b'", "'it''s'", "NULL", `'\\'`, "0x00"}
	if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("Fields = %q, %v; want %q", got, err, want)
	}
	if got, _ := Fields([]byte(`(1,'a',3)`), 2); len(got) != 2 || string(got[1]) != "'a'" {
		t.Errorf("the first 2 fields: %q", got)
	}
	for _, bad := range []string{"", "1,2", "(1,'open)"} {
		if _, err := Fields([]byte(bad), -1); err == nil {
			t.Errorf("Fields(%q) succeeded", bad)
		}
	}
}

// FuzzFields: on every row Scan reads, Fields never fails, and its
// fields joined by commas are the row's inside.
func FuzzFields(f *testing.F) {
	f.Add("INSERT INTO `t` VALUES (1,'a,b','it''s'),(2,'\\\\',NULL);\n", 2)
	f.Fuzz(func(t *testing.T, in string, n int) {
		n = n%8 - 1
		Scan(strings.NewReader(in), Handler{Row: func(_ string, row []byte) error {
			all, err := Fields(row, -1)
			if err != nil {
				t.Fatalf("Fields(%q): %v", row, err)
			}
			if got := string(bytes.Join(all, []byte(","))); got != string(row[1:len(row)-1]) {
				t.Fatalf("Fields(%q) joined = %q", row, got)
			}
			if some, err := Fields(row, n); err != nil || n >= 0 && len(some) > n || n < 0 && len(some) != len(all) {
				t.Fatalf("Fields(%q, %d) = %q, %v", row, n, some, err)
			}
			return nil
		}})
	})
}
