package mysql

import (
	"bufio"
	"bytes"
	"hash/crc32"
	"io"

	"github.com/cairn-backup/cairn/internal/sqldump"
)

// cutter re-cuts the INSERT statements of a dump written a row a line
// (MariaDB 10.11+) so that where one statement ends depends on the rows
// around it alone. The dump tool ends a statement when it reaches a size,
// so one row that grows or shrinks moves the end of every statement after
// it, and every content-defined chunk of the rest of the table changes
// with them: a snapshot after a one-row edit stored most of the table
// again. cutter ends a statement after a row whose checksum falls under a
// bar that grows with the row's size (about one MiB of rows a statement),
// or once a statement reaches cutMax. The SQL means the same. Other lines,
// and dumps written a statement a line, pass through as they are. The
// dump's lines are told apart by the dump tokenizer (sqldump.Lines).
type cutter struct {
	lines sqldump.Lines // the dump tokenizer's lines, fed by Write
	w     *bufio.Writer
	table []byte // the INSERT head of the table whose rows come, or nil
	open  bool   // a statement is open: its last row awaits "," or ";"
	size  int    // bytes in the open statement
	err   error
}

// cutMax is the largest statement cutter makes (unless a row is larger):
// well under the max_allowed_packet of servers as configured by default.
const cutMax = 8 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newCutter(w io.Writer) *cutter {
	c := &cutter{w: bufio.NewWriterSize(w, 1<<20)}
	c.lines.Line = c.line
	return c
}

func (c *cutter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, _ := c.lines.Write(p) // its error is c.err
	// What came in goes out before the next Write: the dump tool is held
	// back by a slow reader, as without cutter.
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return n, c.err
}

// Close writes what is left.
func (c *cutter) Close() error {
	_ = c.lines.Close() // its error is c.err
	c.closeStatement()
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

func (c *cutter) write(b []byte) {
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
}

func (c *cutter) closeStatement() {
	if c.open {
		c.write([]byte(";\n"))
		c.open = false
	}
}

// line handles one line, its "\n" included.
func (c *cutter) line(kind sqldump.LineKind, l []byte) error {
	switch kind {
	case sqldump.RowLine:
		// A row, "(…),\n", or the tool's last of a statement, "(…);\n":
		// the next head of the same table is then merged.
		body := bytes.TrimSuffix(l, []byte("\n"))
		c.row(body[:len(body)-1])
	case sqldump.RowsHead:
		if c.open && bytes.Equal(l, c.table) {
			return c.err // the tool's next statement of the same table: merged
		}
		c.closeStatement()
		c.table = append(c.table[:0:0], l...)
	default:
		c.closeStatement()
		c.table = nil
		c.write(l)
	}
	return c.err
}

// row writes one row (without its "," or ";"), opening a statement if
// none is, and ends the statement after it where the row says so.
func (c *cutter) row(r []byte) {
	if c.open {
		c.write([]byte(",\n"))
	} else {
		c.write(c.table)
		c.open, c.size = true, len(c.table)
	}
	c.write(r)
	c.size += len(r) + 2
	// The bar: a row of n bytes ends a statement with chance n / 1 MiB.
	if uint64(crc32.Checksum(r, castagnoli)) < uint64(len(r))<<12 || c.size >= cutMax {
		c.closeStatement()
	}
}
