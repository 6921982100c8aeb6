package postgres

import (
	"bytes"
	"strings"

	"github.com/cairn-backup/cairn"
)

// RowCounter counts each table's rows in a pg_dump plain-format stream as
// it is written through it: the data lines of every COPY … FROM stdin;
// block up to its \. line. The counts come from the dump's own snapshot.
// Tables are named schema.table, unquoted, as Stats names them.
type RowCounter struct {
	counts map[string]int64
	inCopy bool
	table  string
	line   []byte // the current line's first bytes (up to 4 KiB)
	text   sqlText
	lit    bool // the current line begins inside a literal (see sqlText)
}

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
		if !c.inCopy {
			c.text.write(p[:len(part)+min(1, len(p)-len(part))])
		}
		if room := 4096 - len(c.line); room > 0 {
			c.line = append(c.line, part[:min(room, len(part))]...)
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
	line := c.line
	c.line = c.line[:0]
	if c.inCopy {
		if string(line) == `\.` {
			c.inCopy = false
			return
		}
		c.counts[c.table]++
		return
	}
	lit := c.lit
	c.lit = c.text.literal()
	if !lit && bytes.HasPrefix(line, []byte("COPY ")) && bytes.HasSuffix(line, []byte(" FROM stdin;")) {
		if name, ok := copyTable(string(line[len("COPY "):])); ok {
			c.inCopy, c.table = true, name
			c.counts[name] += 0
		}
	}
}

// copyTable reads the (possibly quoted) schema.table at the start of s.
func copyTable(s string) (string, bool) {
	var parts []string
	for {
		var part string
		if strings.HasPrefix(s, `"`) {
			end := 1
			var b strings.Builder
			for end < len(s) {
				if s[end] == '"' {
					if end+1 < len(s) && s[end+1] == '"' {
						b.WriteByte('"')
						end += 2
						continue
					}
					break
				}
				b.WriteByte(s[end])
				end++
			}
			if end >= len(s) {
				return "", false
			}
			part, s = b.String(), s[end+1:]
		} else {
			end := strings.IndexAny(s, ". (")
			if end < 0 {
				return "", false
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		if !strings.HasPrefix(s, ".") {
			break
		}
		s = s[1:]
	}
	return strings.Join(parts, "."), len(parts) == 2
}

// Counts returns the rows seen per table, in table name order.
func (c *RowCounter) Counts() []TableStat { return cairn.TableCounts(c.counts) }
