package mysql

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/sqlident"
)

// FuzzCutter: the cutter, reading the dump through the tokenizer's
// Lines, writes what the cutter before it (oldCutter) wrote, byte for
// byte, whatever the input and however it is cut into writes: stored
// dumps deduplicate against those of older snapshots.
func FuzzCutter(f *testing.F) {
	f.Add("-- x\nINSERT INTO `t` VALUES\n(1,'a'),\n(2,'b');\nINSERT INTO `t` VALUES\n(3,'c');\nUNLOCK TABLES;\n", 3, 5)
	f.Add("INSERT INTO `t` VALUES\n(1,'a),\n(2);\r\nINSERT INTO `` VALUES\n(a),(b),\nINSERT INTO `u` VALUES\n", 1, 7)
	f.Add("INSERT INTO `t` VALUES (1),(2);\nINSERT INTO `t` VALUES\n(1),", 64, 1)
	f.Fuzz(func(t *testing.T, in string, a, b int) {
		var got, want bytes.Buffer
		c, old := newCutter(&got), newOldCutter(&want)
		// Two chunk sizes in turn, from 1 to 64 bytes.
		a, b = 1+abs(a)%64, 1+abs(b)%64
		for p, k := []byte(in), 0; len(p) > 0; k++ {
			n := min(len(p), a)
			if k%2 == 1 {
				n = min(len(p), b)
			}
			c.Write(p[:n])
			p = p[n:]
		}
		old.Write([]byte(in))
		c.Close()
		old.Close()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%q cut\n%q\nthe old cutter cut\n%q", in, got.Bytes(), want.Bytes())
		}
	})
}

// On a large dump, where statements end by the rows' checksums and by
// cutMax, the cutter cuts as the old one did.
func TestCutterAsBefore(t *testing.T) {
	var rows []string
	for i := 0; i < 20000; i++ {
		rows = append(rows, fmt.Sprintf("(%d,'%s')", i, strings.Repeat("y", 100+i%300)))
	}
	rows[5] = "(5,'" + strings.Repeat("z", oldCutMax) + "')"
	in := toolDump(rows, 64<<10)
	var want bytes.Buffer
	old := newOldCutter(&want)
	old.Write([]byte(in))
	old.Close()
	if got := cut(t, in, 4093); got != want.String() {
		t.Errorf("the cutter cut another dump than the old one")
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// oldCutter is the cutter before it read the dump through sqldump.Lines
// (mysql/cut.go at ebd999f), kept to hold the cutter to it.
type oldCutter struct {
	w       *bufio.Writer
	partial []byte // the start of a line the last Write did not finish
	table   []byte // the INSERT header of the table whose rows come, or nil
	open    bool   // a statement is open: its last row awaits "," or ";"
	size    int    // bytes in the open statement
	err     error
}

// oldCutMax is the largest statement oldCutter makes (unless a row is larger):
// well under the max_allowed_packet of servers as configured by default.
const oldCutMax = 8 << 20

var oldCastagnoli = crc32.MakeTable(crc32.Castagnoli)

func newOldCutter(w io.Writer) *oldCutter { return &oldCutter{w: bufio.NewWriterSize(w, 1<<20)} }

func (c *oldCutter) Write(p []byte) (int, error) {
	n := len(p)
	if c.err != nil {
		return 0, c.err
	}
	if len(c.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			return n, nil
		}
		c.partial = append(c.partial, p[:i+1]...)
		c.line(c.partial)
		c.partial = c.partial[:0]
		p = p[i+1:]
	}
	for c.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			break
		}
		c.line(p[:i+1])
		p = p[i+1:]
	}
	// What came in goes out before the next Write: the dump tool is held
	// back by a slow reader, as without oldCutter.
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return n, c.err
}

// Close writes what is left.
func (c *oldCutter) Close() error {
	if len(c.partial) > 0 {
		c.line(c.partial)
		c.partial = nil
	}
	c.closeStatement()
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

func (c *oldCutter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *oldCutter) closeStatement() {
	if c.open {
		c.write([]byte(";\n"))
		c.open = false
	}
}

// line handles one line, its "\n" included.
func (c *oldCutter) line(l []byte) {
	if c.table != nil && len(l) > 3 && l[0] == '(' {
		// A row, "(…),\n", or the tool's last of a statement, "(…);\n":
		// the next header of the same table is then merged.
		body := bytes.TrimSuffix(l, []byte("\n"))
		if last := body[len(body)-1]; (last == ',' || last == ';') && body[len(body)-2] == ')' {
			c.row(body[:len(body)-1])
			return
		}
	}
	if header := oldRowHeader(l); header != nil {
		if c.open && bytes.Equal(header, c.table) {
			return // the tool's next statement of the same table: merged
		}
		c.closeStatement()
		c.table = append(c.table[:0:0], header...)
		return
	}
	c.closeStatement()
	c.table = nil
	c.write(l)
}

// row writes one row (without its "," or ";"), opening a statement if
// none is, and ends the statement after it where the row says so.
func (c *oldCutter) row(r []byte) {
	if c.open {
		c.write([]byte(",\n"))
	} else {
		c.write(c.table)
		c.open, c.size = true, len(c.table)
	}
	c.write(r)
	c.size += len(r) + 2
	// The bar: a row of n bytes ends a statement with chance n / 1 MiB.
	if uint64(crc32.Checksum(r, oldCastagnoli)) < uint64(len(r))<<12 || c.size >= oldCutMax {
		c.closeStatement()
	}
}

// oldRowHeader returns l when it is the first line of an INSERT written a row
// a line, "INSERT INTO `t` VALUES\n", else nil.
func oldRowHeader(l []byte) []byte {
	if !bytes.HasPrefix(l, insertPrefix) {
		return nil
	}
	_, rest, ok := sqlident.CutBackquoted(l[len("INSERT INTO "):])
	if !ok || !bytes.Equal(rest, []byte(" VALUES\n")) {
		return nil
	}
	return l
}
