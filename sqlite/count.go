package sqlite

import (
	"bytes"
	"strings"

	"github.com/cairn-backup/cairn"
)

// RowCounter counts each table's rows in a sqlite3 .dump stream as it is
// written through it: one `INSERT INTO t VALUES(…);` line per row. The
// dump escapes newlines inside values (replace(…,'\n',char(10))), so
// every such line starts a row. Only the start of each line is kept.
type RowCounter struct {
	counts map[string]int64
	head   []byte // the current line's first bytes
}

const headMax = 4096

// NewRowCounter returns an empty counter.
func NewRowCounter() *RowCounter { return &RowCounter{counts: map[string]int64{}} }

// Write counts rows in p; it never fails.
func (c *RowCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := headMax - len(c.head); room > 0 {
			c.head = append(c.head, part[:min(room, len(part))]...)
		}
		if i < 0 {
			break
		}
		c.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (c *RowCounter) endLine() {
	if t, ok := insertTable(string(c.head)); ok {
		c.counts[t]++
	}
	c.head = c.head[:0]
}

// insertTable reads the table name of an INSERT INTO line.
func insertTable(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "INSERT INTO ")
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(rest, `"`) {
		name, _, ok := strings.Cut(rest, " ")
		return name, ok
	}
	var b strings.Builder
	for i := 1; i < len(rest); i++ {
		if rest[i] != '"' {
			b.WriteByte(rest[i])
			continue
		}
		if i+1 < len(rest) && rest[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), true
	}
	return "", false
}

// Counts returns the rows seen per table, in table name order.
func (c *RowCounter) Counts() []TableStat { return cairn.TableCounts(c.counts) }
