package sqldump

import "bytes"

// Counter counts the rows of each table in a dump written through it (a
// tee beside the dump's way into the repository), by the same syntax as
// Scan, pushed in chunks cut anywhere, INSERTs that name their columns
// included. Unlike Scan it never fails: a statement it cannot read is
// skipped to the end of its line, where reading starts afresh.
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

// maxHead bounds the start of a line kept to read an INSERT's head (its
// table's name and columns).
const maxHead = 256 << 10

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

// decide reads the head of an INSERT (see InsertHead) at a line's start,
// or gives the line up. The head is read again only when it may have
// just ended, at the S of VALUES.
func (c *Counter) decide() {
	h := c.head
	if len(h) <= len(insertInto) {
		if !bytes.Equal(h, insertInto[:len(h)]) {
			c.st = skipping
		}
		return
	}
	if len(h) > maxHead {
		c.st = skipping
		return
	}
	if h[len(h)-1] != 'S' {
		return
	}
	if table, _, rest, err := InsertHead(h); err == nil && len(rest) == 0 {
		c.st, c.table = between, table
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
