package mysql

import (
	"bytes"

	"github.com/cairn-backup/cairn"
)

// RowCounter counts the rows of each table in a mysqldump stream as it is
// written through it (tee the dump into it). Counts taken this way come
// from the dump's own consistent view, whatever the server did meanwhile.
// It reads the dump's INSERT statements, `INSERT INTO `t` VALUES (…),(…);`
// on one line or with one row a line (MariaDB 10.11+), minding quoted
// strings and backslash escapes; other lines are skipped.
type RowCounter struct {
	counts map[string]int64
	st     counterState
	head   []byte // the current line's start, while undecided
	table  string
	depth  int
	quote  byte // the quote of the string we are in, or 0
	escape bool
}

type counterState int

const (
	inHead   counterState = iota // reading a line's first bytes
	inSkip                       // ignoring the rest of a line
	inValues                     // inside an INSERT's values
)

// NewRowCounter returns an empty counter.
func NewRowCounter() *RowCounter { return &RowCounter{counts: map[string]int64{}} }

var (
	insertPrefix = []byte("INSERT INTO `")
	valuesWord   = []byte(" VALUES") // then a space, or (MariaDB 10.11+) a newline
)

// Write counts rows in p; it never fails. It skips whole stretches of a
// dump at once (the rest of a line, the inside of a string), so it keeps
// up with the dump tool.
func (c *RowCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch c.st {
		case inSkip:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			c.st, c.head = inHead, c.head[:0]
			p = p[i+1:]
		case inHead:
			b := p[0]
			p = p[1:]
			if b == '\n' {
				c.head = c.head[:0]
				continue
			}
			c.head = append(c.head, b)
			c.decide()
		case inValues:
			if c.quote != 0 {
				p = c.inString(p)
				continue
			}
			c.value(p[0])
			p = p[1:]
		}
	}
	return n, nil
}

// inString skips the inside of a quoted string up to its closing quote,
// minding backslash escapes, and returns what follows.
func (c *RowCounter) inString(p []byte) []byte {
	for len(p) > 0 {
		if c.escape {
			c.escape = false
			p = p[1:]
			continue
		}
		q := bytes.IndexByte(p, c.quote)
		if q < 0 {
			q = len(p)
		}
		if bs := bytes.IndexByte(p[:q], '\\'); bs >= 0 {
			c.escape = true
			p = p[bs+1:]
			continue
		}
		if q == len(p) {
			return nil
		}
		c.quote = 0
		return p[q+1:]
	}
	return p
}

// decide reads INSERT INTO `name` VALUES at the line's start, or gives up
// on the line.
func (c *RowCounter) decide() {
	h := c.head
	if n := min(len(h), len(insertPrefix)); !bytes.Equal(h[:n], insertPrefix[:n]) || len(h) > 4096 {
		c.st = inSkip
		return
	}
	if len(h) <= len(insertPrefix) {
		return
	}
	rest := h[len(insertPrefix):]
	var name []byte
	i := 0
	for ; i < len(rest); i++ {
		if rest[i] != '`' {
			name = append(name, rest[i])
			continue
		}
		if i+1 == len(rest) {
			return // is it `` or the end? more bytes will tell
		}
		if rest[i+1] != '`' {
			break
		}
		name = append(name, '`')
		i++
	}
	if i >= len(rest) {
		return
	}
	tail := rest[i+1:]
	if n := min(len(tail), len(valuesWord)); !bytes.Equal(tail[:n], valuesWord[:n]) {
		c.st = inSkip
		return
	}
	if len(tail) == len(valuesWord) {
		c.st, c.table, c.depth, c.quote, c.escape = inValues, string(name), 0, 0, false
	}
}

// value steps through an INSERT's value list.
func (c *RowCounter) value(b byte) {
	switch {
	case c.quote != 0:
		switch {
		case c.escape:
			c.escape = false
		case b == '\\':
			c.escape = true
		case b == c.quote:
			c.quote = 0
		}
	case b == '\'' || b == '"':
		c.quote = b
	case b == '(':
		if c.depth == 0 {
			c.counts[c.table]++
		}
		c.depth++
	case b == ')':
		c.depth--
	case b == ';' && c.depth == 0:
		c.st = inSkip // the statement's end; the line ends after it
	}
}

// Counts returns the rows seen per table, in table name order.
func (c *RowCounter) Counts() []cairn.TableStat { return cairn.TableCounts(c.counts) }
