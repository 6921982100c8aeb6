package mysql

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// toolDump writes rows the way mariadb-dump does: a row a line, a new
// statement whenever one passes limit bytes.
func toolDump(rows []string, limit int) string {
	var b strings.Builder
	b.WriteString("-- header\nLOCK TABLES `t` WRITE;\n")
	size := 0
	for i, r := range rows {
		if size == 0 {
			b.WriteString("INSERT INTO `t` VALUES\n")
		}
		b.WriteString(r)
		size += len(r)
		if size >= limit || i == len(rows)-1 {
			b.WriteString(";\n")
			size = 0
		} else {
			b.WriteString(",\n")
		}
	}
	b.WriteString("UNLOCK TABLES;\n")
	return b.String()
}

func cut(t *testing.T, in string, piece int) string {
	var out bytes.Buffer
	c := newCutter(&out)
	for p := []byte(in); len(p) > 0; {
		n := min(piece, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// After one row grows, the tool's statements all end elsewhere; cut, the
// two dumps differ around that row only; the rows are the same, in the
// same order, however the dump is cut into writes.
func TestCutterEndsStatementsByContent(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var rows []string
	for i := 0; i < 30000; i++ {
		rows = append(rows, fmt.Sprintf("(%d,'%s')", i, strings.Repeat("x", 50+rng.Intn(200))))
	}
	before := toolDump(rows, 64<<10)
	rows[100] = strings.Replace(rows[100], "'x", "'"+strings.Repeat("edited ", 500)+"x", 1)
	after := toolDump(rows, 64<<10)
	if commonSuffix(before, after) > len(after)/2 {
		t.Fatalf("the tool's statements did not move: the test shows nothing")
	}
	cb, ca := cut(t, before, 1<<20), cut(t, after, 1<<20)
	if n := len(ca) - commonSuffix(cb, ca); n > 64<<10 {
		t.Errorf("cut dumps differ over their last %d bytes", n)
	}
	if got := cut(t, after, 7); got != ca {
		t.Errorf("cutting in 7-byte writes gives another dump")
	}
	var got []string
	if err := Rows(strings.NewReader(ca), func(_ string, r []byte) error {
		got = append(got, string(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(rows, "\n") {
		t.Errorf("rows changed by cutting")
	}
	if statements := strings.Count(ca, "INSERT INTO"); statements < 2 || statements > 20 { // about one a MiB
		t.Errorf("%d statements for %d KiB of rows", statements, len(ca)>>10)
	}
}

// Dumps written a statement a line pass through as they are.
func TestCutterOneLineDumps(t *testing.T) {
	in := "-- x\nINSERT INTO `t` VALUES (1,'a'),(2,'b;\\n');\nINSERT INTO `t` VALUES (3,'c');\nUNLOCK TABLES;\n"
	if got := cut(t, in, 3); got != in {
		t.Errorf("got\n%s", got)
	}
}

func commonSuffix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}
