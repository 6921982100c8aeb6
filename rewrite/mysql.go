package rewrite

import (
	"bytes"
	"io"

	"github.com/cairn-backup/cairn/internal/sqldump"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// MySQL rewrites a mysqldump or mariadb-dump stream from in to out. Only
// the string values of INSERT statements are rewritten (one statement on a
// line, or one row a line as MariaDB 10.11+ writes them); CREATE TABLE
// statements name the columns (for SkipColumns and the report) and tell
// which are binary: those are never rewritten (a dump made with the binary
// character set holds them as strings, not hex). A line
// without a match passes through without being parsed: mysqldump escapes
// newlines inside strings, so every line of an INSERT is whole rows.
func (w *Rewriter) MySQL(in io.Reader, out io.Writer) (*Report, error) {
	columns := map[string][]string{}
	binary := map[string][]bool{} // table → which columns are binary
	var creating string           // the table whose CREATE TABLE is being read
	var ins *mysqlInsert          // the INSERT statement being read
	var other *Place              // a data statement not understood, being passed through
	otherMatch := false           // it holds a match
	start := func(bw *countingWriter, p piece, table string, cols []string, head int) {
		bw.Write(p.b[:head])
		bin := binary[table]
		if cols == nil {
			cols = columns[table]
		} else {
			bin = binaryByName(columns[table], binary[table], cols)
		}
		ins = &mysqlInsert{w: w, out: bw, table: table, cols: cols, binCols: bin, line: w.report.Lines, passThrough: !w.selected(table)}
		ins.piece(p.b[head:], p.whole, p.end)
	}
	handle := func(bw *countingWriter, p piece) {
		switch {
		case ins != nil:
			ins.piece(p.b, p.whole, p.end)
		case other != nil:
			// The statement's next line.
		case p.start && bytes.HasPrefix(p.b, insertInto):
			table, rest, ok := sqlident.CutBackquoted(p.b[len(insertInto)-1:])
			if ok && bytes.HasPrefix(rest, valuesKeyword) && len(rest) > len(valuesKeyword) && (rest[len(valuesKeyword)] == ' ' || rest[len(valuesKeyword)] == '\n') {
				start(bw, p, table, nil, len(p.b)-len(rest)+len(valuesKeyword)+1)
				break
			}
			fallthrough
		case p.start && len(p.b) > 0 && (p.b[0]|0x20 == 'i' || p.b[0]|0x20 == 'r' || p.b[0]|0x20 == 'u') && dataStatement(p.b):
			if h, ok := parseInsertHead(p.b); ok {
				start(bw, p, h.table, h.cols, h.n)
				break
			}
			other, otherMatch = &Place{Line: w.report.Lines}, false
			// The table, for the report, of a head whose VALUES is elsewhere.
			if h, ok := parseInsertHead(append(append([]byte(nil), bytes.TrimRight(p.b, " \r\n")...), " VALUES "...)); ok {
				other.Table = h.table
			}
		case p.start && bytes.HasPrefix(p.b, createTable):
			if t, _, ok := sqlident.CutBackquoted(p.b[len(createTable)-1:]); ok {
				creating, columns[t], binary[t] = t, nil, nil
			}
			bw.Write(p.b)
		case p.start && creating != "" && bytes.HasPrefix(p.b, []byte("  `")):
			if c, def, ok := sqlident.CutBackquoted(p.b[2:]); ok {
				columns[creating] = append(columns[creating], c)
				binary[creating] = append(binary[creating], binaryType(def))
			}
			bw.Write(p.b)
		default:
			if p.start && creating != "" && bytes.HasPrefix(p.b, []byte(")")) {
				creating = ""
			}
			bw.Write(p.b)
		}
		if other != nil && ins == nil {
			bw.Write(p.b)
			otherMatch = otherMatch || w.r.mayMatch(p.b) || w.r.mayHideMatch(p.b)
			if p.end && bytes.HasSuffix(bytes.TrimRight(p.b, " \r\n"), []byte(";")) {
				w.unparsed(other, otherMatch)
				other = nil
			}
		}
		if ins != nil && ins.done {
			ins = nil
		}
	}
	atEnd := func() {
		if other != nil {
			w.unparsed(other, otherMatch)
		}
		if ins != nil {
			ins.flush()
			w.place(&w.report.Unparsed, Place{Table: ins.table, Line: ins.line, Reason: "the dump ends inside this INSERT statement"})
		}
	}
	return w.stream(in, out, handle, atEnd)
}

// unparsed reports a data statement passed through without being
// understood, when it holds a match.
func (w *Rewriter) unparsed(p *Place, match bool) {
	if !match {
		return
	}
	w.report.UnparsedMatches++
	p.Reason = "holds a match but is not understood: passed through unchanged"
	w.place(&w.report.Unparsed, *p)
}

// binaryByName tells which of cols are binary, by the table's columns.
func binaryByName(all []string, bin []bool, cols []string) []bool {
	out := make([]bool, len(cols))
	for i, c := range cols {
		for j, a := range all {
			if a == c && j < len(bin) {
				out[i] = bin[j]
			}
		}
	}
	return out
}

// binaryType tells whether a column definition in SHOW CREATE TABLE's
// form (what follows the column's name) is of a binary type.
func binaryType(def []byte) bool {
	def = bytes.TrimLeft(def, " ")
	for _, t := range binaryTypes {
		if bytes.HasPrefix(def, t) {
			return true
		}
	}
	if q := bytes.IndexByte(def, '\''); q >= 0 {
		def = def[:q] // not in a default value or comment
	}
	return bytes.Contains(def, []byte(" CHARACTER SET binary"))
}

var binaryTypes = [][]byte{[]byte("binary("), []byte("varbinary("), []byte("tinyblob"), []byte("blob"), []byte("mediumblob"), []byte("longblob")}

var (
	insertInto    = []byte("INSERT INTO `")
	createTable   = []byte("CREATE TABLE `")
	valuesKeyword = []byte(" VALUES")
)

// mysqlInsert rewrites the values of one INSERT statement, fed in pieces
// of any size: `(…,'…',…),(…);`. Strings are collected (up to MaxValue),
// unescaped, rewritten and escaped again; all else is copied.
type mysqlInsert struct {
	w       *Rewriter
	out     *countingWriter
	table   string
	cols    []string
	binCols []bool // by column: binary, never rewritten
	line    int64

	passThrough bool // copy the statement as it is
	done        bool // the statement's ; was seen

	depth    int  // parentheses
	col      int  // column of the current value
	inStr    bool // inside a quoted string
	escape   bool // after a backslash in a string
	binary   bool // the string is _binary: never rewritten
	over     bool // the string outgrew MaxValue: passing it through
	reported bool // the oversized string was reported
	val      []byte
	prev     [8]byte // the last bytes outside strings, to spot _binary
	unesc    []byte  // the string unescaped
	outBuf   []byte  // the string rewritten
	esc      []byte  // the string rewritten, escaped again
}

// piece takes the next piece of the statement: a whole line (whole), or a
// part of a long one (lineEnd on its last part).
func (m *mysqlInsert) piece(p []byte, whole, lineEnd bool) {
	if m.passThrough || (whole && !m.inStr && !m.w.r.mayMatch(p) && !m.w.r.mayHideMatch(p)) {
		m.out.Write(p)
		if lineEnd && !m.inStr && bytes.HasSuffix(bytes.TrimRight(p, "\r\n"), []byte(";")) {
			m.done = true
		}
		return
	}
	m.feed(p)
}

func (m *mysqlInsert) feed(p []byte) {
	for len(p) > 0 && !m.done {
		if m.inStr {
			p = m.inString(p)
			continue
		}
		i := 0
		for ; i < len(p); i++ {
			b := p[i]
			if b == '\'' {
				break
			}
			switch b {
			case '(':
				m.depth++
				if m.depth == 1 {
					m.col = 0
				}
			case ')':
				m.depth--
			case ',':
				if m.depth == 1 {
					m.col++
				}
			case ';':
				if m.depth == 0 {
					m.done = true
					m.out.Write(p)
					return
				}
			}
			copy(m.prev[:], m.prev[1:])
			m.prev[len(m.prev)-1] = b
		}
		m.out.Write(p[:i])
		if i == len(p) {
			return
		}
		// An opening quote.
		m.out.Write(p[i : i+1])
		m.inStr, m.escape, m.over = true, false, false
		m.binary = bytes.HasSuffix(m.prev[:], []byte("_binary ")) || bytes.HasSuffix(m.prev[:], []byte("_binary")) ||
			m.col < len(m.binCols) && m.binCols[m.col]
		m.val = m.val[:0]
		m.prev = [8]byte{}
		p = p[i+1:]
	}
}

// inString consumes string bytes up to and including the closing quote.
func (m *mysqlInsert) inString(p []byte) []byte {
	end, escaping, _ := sqldump.StringEnd(p, m.escape)
	m.escape = escaping
	body := p
	if end >= 0 {
		body = p[:end]
	}
	switch {
	case m.binary:
		m.out.Write(body)
	case m.over:
		m.out.Write(body)
		if !m.reported && m.w.r.mayMatch(body) {
			m.tooLarge()
		}
	case end >= 0 && len(m.val) == 0:
		m.finish(body) // the whole string is in this piece
	case len(m.val)+len(body) > MaxValue:
		m.out.Write(m.val)
		m.out.Write(body)
		m.reported = false
		if m.w.r.mayMatch(m.val) || m.w.r.mayMatch(body) {
			m.tooLarge()
		}
		m.over, m.val = true, m.val[:0]
	default:
		m.val = append(m.val, body...)
		if end >= 0 {
			m.finish(m.val)
		}
	}
	if end < 0 {
		return nil
	}
	m.out.Write(p[end : end+1])
	m.inStr = false
	return p[end+1:]
}

// tooLarge reports the current value, once.
func (m *mysqlInsert) tooLarge() {
	m.reported = true
	m.w.place(&m.w.report.Unsafe, Place{Table: m.table, Column: columnName(m.cols, m.col), Line: m.line, Reason: "value larger than 8 MiB: left as it is"})
}

// flush writes a string cut off by the end of the dump as it was.
func (m *mysqlInsert) flush() {
	if m.inStr && !m.over {
		m.out.Write(m.val)
	}
	m.val = m.val[:0]
}

// finish writes one complete string's content, rewritten if need be.
func (m *mysqlInsert) finish(raw []byte) {
	col := columnName(m.cols, m.col)
	if m.w.skip[col] || (!m.w.r.mayMatch(raw) && !m.w.r.mayHideMatchValue(raw)) {
		m.out.Write(raw)
		return
	}
	v := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		m.unesc = sqldump.AppendUnescaped(m.unesc[:0], raw)
		v = m.unesc
	}
	out := m.w.rewriteValue(m.outBuf[:0], v, m.table, col, m.line)
	if out == nil {
		m.out.Write(raw)
		return
	}
	m.outBuf = out
	m.esc = sqldump.AppendEscaped(m.esc[:0], out)
	m.out.Write(m.esc)
}
