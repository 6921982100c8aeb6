package sqldump

import "bytes"

// Counter counts the rows of each table in a dump written through it (a
// tee beside the dump's way into the repository), by the same syntax as
// Scan, pushed in chunks cut anywhere. Unlike Scan it never fails: a
// statement it cannot read (an INSERT naming its columns, say) is skipped
// to the end of its line, where reading starts afresh.
type Counter struct {
	counts map[string]int64
	st     counterState
	head   []byte // the current line's start, while undecided
	table  string
	quoted bool
	escape bool
}

type counterState int

const (
	atLine   counterState = iota // reading a line's first bytes
	skipping                     // ignoring the rest of a line
	between                      // in an INSERT, between rows
	inRow                        // in an INSERT, inside a row
)

// maxHead bounds the start of a line kept to read an INSERT's table name.
const maxHead = 4096

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{counts: map[string]int64{}} }

// Counts returns the rows seen, per table.
func (c *Counter) Counts() map[string]int64 { return c.counts }

// Write counts the rows in p; it never fails.
func (c *Counter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch c.st {
		case skipping:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			c.st, c.head = atLine, c.head[:0]
			p = p[i+1:]
		case atLine:
			b := p[0]
			p = p[1:]
			if b == '\n' {
				c.head = c.head[:0]
				continue
			}
			c.head = append(c.head, b)
			c.decide()
		case between:
			p = c.between(p)
		case inRow:
			p = c.row(p)
		}
	}
	return n, nil
}

// decide reads INSERT INTO `name` VALUES at a line's start, or gives the
// line up.
func (c *Counter) decide() {
	h := c.head
	if k := min(len(h), len(insertInto)); !bytes.Equal(h[:k], insertInto[:k]) || len(h) > maxHead {
		c.st = skipping
		return
	}
	if len(h) <= len(insertInto) {
		return
	}
	var name []byte
	rest := h[len(insertInto):]
	i := 0
	for ; i < len(rest); i++ {
		if rest[i] != '`' {
			name = append(name, rest[i])
			continue
		}
		if i+1 == len(rest) {
			return // `` or the name's end: the next byte tells
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
	const values = " VALUES"
	if k := min(len(tail), len(values)); string(tail[:k]) != values[:k] || len(name) == 0 {
		c.st = skipping
		return
	}
	if len(tail) == len(values) {
		c.st, c.table = between, string(name)
	}
}

// between steps over what stands between rows: blanks, commas, ends of
// line; a '(' starts a row, a ';' ends the statement.
func (c *Counter) between(p []byte) []byte {
	for i, b := range p {
		switch b {
		case ' ', ',', '\t', '\n', '\r':
		case '(':
			c.counts[c.table]++
			c.st, c.quoted, c.escape = inRow, false, false
			return p[i+1:]
		default: // ';' ends the statement; anything else cannot be read
			c.st = skipping
			return p[i:]
		}
	}
	return nil
}

// row steps through a row to its closing parenthesis, jumping between
// the bytes that matter.
func (c *Counter) row(p []byte) []byte {
	for len(p) > 0 {
		if c.escape {
			c.escape = false
			p = p[1:]
			continue
		}
		j := indexEither(p, '\'', ')')
		if c.quoted {
			j = indexEither(p, '\'', '\\')
		}
		if j < 0 {
			return nil
		}
		switch p[j] {
		case '\\':
			c.escape = true
		case '\'':
			c.quoted = !c.quoted
		default:
			c.st = between
			return p[j+1:]
		}
		p = p[j+1:]
	}
	return p
}
