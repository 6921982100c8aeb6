package rewrite

import (
	"bytes"
	"io"
	"strings"

	"github.com/cairn-backup/cairn/internal/copytext"
)

// Postgres rewrites a pg_dump plain-format stream: the rows of COPY … FROM
// stdin blocks (text format) and the string literals of INSERT statements
// (pg_dump --inserts). Everything else, function bodies and their
// dollar-quoted strings included, passes through byte for byte.
func (w *Rewriter) Postgres(in io.Reader, out io.Writer) (*Report, error) {
	var cp *copyRows  // inside a COPY block
	var ins *pgInsert // inside an INSERT statement
	columns := map[string][]string{}
	creating := "" // the table whose CREATE TABLE is being read
	handle := func(bw *countingWriter, p piece) {
		switch {
		case cp != nil:
			if p.start && (bytes.Equal(p.b, []byte("\\.\n")) || bytes.Equal(p.b, []byte("\\."))) {
				cp = nil
				bw.Write(p.b)
				return
			}
			if p.start {
				cp.line = w.report.Lines
			}
			cp.piece(p.b, p.whole, p.end)
		case ins != nil:
			ins.piece(p.b, p.whole)
		case p.start && bytes.HasPrefix(p.b, []byte("COPY ")) && bytes.HasSuffix(bytes.TrimRight(p.b, "\n"), []byte(" FROM stdin;")):
			table, cols := copyHeader(string(bytes.TrimRight(p.b, "\n")))
			cp = &copyRows{w: w, out: bw, table: table, cols: cols, pass: !w.selected(table) || !w.selected(unqualified(table))}
			bw.Write(p.b)
		case p.start && bytes.HasPrefix(p.b, []byte("INSERT INTO ")):
			rest := string(p.b[len("INSERT INTO "):])
			table := insertTable(rest)
			cols := columns[table]
			if list, ok := insertColumns(rest[min(len(rest), len(table)):]); ok {
				cols = list
			}
			ins = &pgInsert{w: w, out: bw, table: table, cols: cols, line: w.report.Lines, pass: !w.selected(table) || !w.selected(unqualified(table))}
			ins.piece(p.b, p.whole)
		case p.start && bytes.HasPrefix(p.b, []byte("CREATE TABLE ")) && bytes.HasSuffix(bytes.TrimRight(p.b, "\n"), []byte(" (")):
			creating = unquoteIdent(strings.TrimSuffix(strings.TrimPrefix(string(bytes.TrimRight(p.b, "\n")), "CREATE TABLE "), " ("))
			columns[creating] = nil
			bw.Write(p.b)
		case p.start && creating != "" && bytes.HasPrefix(p.b, []byte("    ")):
			if name := columnIdent(string(p.b[4:])); name != "" {
				columns[creating] = append(columns[creating], name)
			}
			bw.Write(p.b)
		default:
			if p.start && creating != "" && bytes.HasPrefix(p.b, []byte(")")) {
				creating = ""
			}
			bw.Write(p.b)
		}
		if ins != nil && ins.done {
			ins = nil
		}
	}
	atEnd := func() {
		if ins != nil {
			ins.flush()
			w.place(&w.report.Unparsed, Place{Table: ins.table, Line: ins.line, Reason: "the dump ends inside this INSERT statement"})
		}
	}
	return w.stream(in, out, handle, atEnd)
}

// copyHeader reads `COPY schema.table (a, "b c") FROM stdin;`.
func copyHeader(s string) (string, []string) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "COPY "), " FROM stdin;")
	table, list, _ := strings.Cut(s, " (")
	return unquoteIdent(table), splitIdents(strings.TrimSuffix(list, ")"))
}

// insertTable reads the table of `INSERT INTO schema.table …`.
func insertTable(s string) string {
	end := 0
	inQuote := false
	for ; end < len(s); end++ {
		c := s[end]
		if c == '"' {
			inQuote = !inQuote
		}
		if !inQuote && (c == ' ' || c == '(') {
			break
		}
	}
	return unquoteIdent(s[:end])
}

// columnIdent reads the column name at the start of a CREATE TABLE line
// (`name type…` or `"Name" type…`); constraints give "".
func columnIdent(line string) string {
	if strings.HasPrefix(line, `"`) {
		for i := 1; i < len(line); i++ {
			if line[i] == '"' {
				if i+1 < len(line) && line[i+1] == '"' {
					i++
					continue
				}
				return unquoteIdent(line[:i+1])
			}
		}
		return ""
	}
	name, _, _ := strings.Cut(line, " ")
	switch strings.ToUpper(name) {
	case "CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE", "LIKE":
		return ""
	}
	return name
}

// insertColumns reads an INSERT's column list, ` (a, "b") VALUES …`.
func insertColumns(rest string) ([]string, bool) {
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, "(") {
		return nil, false
	}
	end := strings.Index(rest, ") VALUES")
	if end < 0 {
		return nil, false
	}
	return splitIdents(rest[1:end]), true
}

// splitIdents splits `a, "b, c"` into identifiers, unquoted.
func splitIdents(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == ',' && !inQuote:
			out = append(out, unquoteIdent(strings.TrimSpace(cur.String())))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, unquoteIdent(strings.TrimSpace(cur.String())))
	}
	return out
}

// unquoteIdent turns public."My Table" into public.My Table.
func unquoteIdent(s string) string {
	if !strings.Contains(s, `"`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
		}
	}
	return b.String()
}

func unqualified(table string) string {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		return table[i+1:]
	}
	return table
}

// copyRows rewrites the rows of a COPY block: tab-separated fields with
// backslash escapes, \N for NULL, one row a line.
type copyRows struct {
	w     *Rewriter
	out   *countingWriter
	table string
	cols  []string
	pass  bool
	line  int64

	col      int
	val      []byte
	over     bool
	reported bool
	unesc    []byte
	buf      []byte
}

func (c *copyRows) piece(p []byte, whole, lineEnd bool) {
	if c.pass || (whole && !c.w.r.mayMatch(p) && !c.w.r.mayHideMatch(p)) {
		c.out.Write(p)
		return
	}
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\t\n")
		if i < 0 {
			c.add(p)
			return
		}
		c.add(p[:i])
		c.field()
		c.out.Write(p[i : i+1])
		if p[i] == '\n' {
			c.col = 0
		} else {
			c.col++
		}
		p = p[i+1:]
	}
	if lineEnd && (len(c.val) > 0 || c.over) {
		c.field()
	}
}

func (c *copyRows) add(b []byte) {
	switch {
	case c.over:
		c.out.Write(b)
		if !c.reported && c.w.r.mayMatch(b) {
			c.reported = true
			c.w.place(&c.w.report.Unsafe, Place{Table: c.table, Column: columnName(c.cols, c.col), Line: c.line, Reason: "value larger than 8 MiB: left as it is"})
		}
	case len(c.val)+len(b) > MaxValue:
		c.out.Write(c.val)
		c.out.Write(b)
		c.reported = c.w.r.mayMatch(c.val) || c.w.r.mayMatch(b)
		if c.reported {
			c.w.place(&c.w.report.Unsafe, Place{Table: c.table, Column: columnName(c.cols, c.col), Line: c.line, Reason: "value larger than 8 MiB: left as it is"})
		}
		c.over, c.val = true, c.val[:0]
	default:
		c.val = append(c.val, b...)
	}
}

// field writes the field collected so far, rewritten if need be.
func (c *copyRows) field() {
	if c.over {
		c.over = false
		return
	}
	raw := c.val
	c.val = c.val[:0]
	if bytes.Equal(raw, []byte(`\N`)) {
		c.out.Write(raw)
		return
	}
	c.unesc = copytext.Unescape(c.unesc[:0], raw)
	out := c.w.rewriteValue(c.buf[:0], c.unesc, c.table, columnName(c.cols, c.col), c.line)
	if out == nil {
		c.out.Write(raw)
		return
	}
	c.buf = out
	c.out.Write(copytext.Escape(c.unesc[:0], out))
}

// pgInsert rewrites the string literals of one INSERT statement
// ('…' with ” for a quote, as standard_conforming_strings has them);
// literals may hold newlines, so a statement may span lines.
type pgInsert struct {
	w     *Rewriter
	out   *countingWriter
	table string
	line  int64
	pass  bool
	done  bool

	cols  []string
	depth int
	col   int
	inStr bool
	quote bool // a quote seen inside a string: its end, or the first of ''
	estr  bool // an E'…' string: passed through
	over  bool
	val   []byte
	prev  byte
	buf   []byte
}

func (m *pgInsert) piece(p []byte, whole bool) {
	if m.pass || (whole && !m.inStr && !m.w.r.mayMatch(p) && !m.w.r.mayHideMatch(p)) {
		m.out.Write(p)
		if !m.inStr && bytes.HasSuffix(bytes.TrimRight(p, "\r\n"), []byte(";")) {
			m.done = true
		}
		return
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if m.inStr {
			if m.quote {
				m.quote = false
				if c == '\'' { // '' inside the string
					m.collect(p[i : i+1])
					continue
				}
				m.endString()
				// c is outside the string now: fall through.
			} else {
				if c == '\'' {
					m.quote = true
					continue
				}
				m.collect(p[i : i+1])
				continue
			}
		}
		switch c {
		case '\'':
			m.out.Write([]byte{'\''})
			m.inStr, m.over, m.estr = true, false, m.prev == 'E' || m.prev == 'e'
			m.val = m.val[:0]
			m.prev = c
			continue
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
				m.out.Write(p[i:])
				m.done = true
				return
			}
		}
		m.prev = c
		m.out.Write(p[i : i+1])
	}
	// A quote at the end of a piece waits for the next to tell whether it
	// ends the literal or starts ''.
}

// flush writes a literal cut off by the end of the dump as it was.
func (m *pgInsert) flush() {
	if m.inStr && !m.over {
		m.out.Write(escapePG(nil, m.val))
		if m.quote {
			m.out.Write([]byte{'\''})
		}
	}
	m.val = m.val[:0]
}

func (m *pgInsert) collect(b []byte) {
	switch {
	case m.over:
		m.out.Write(b)
	case len(m.val)+len(b) > MaxValue:
		m.out.Write(escapePG(nil, m.val))
		m.out.Write(b)
		m.over, m.val = true, m.val[:0]
		m.w.place(&m.w.report.Unsafe, Place{Table: m.table, Column: columnName(m.cols, m.col), Line: m.line, Reason: "value larger than 8 MiB: left as it is"})
	default:
		m.val = append(m.val, b...)
	}
}

func (m *pgInsert) endString() {
	m.inStr = false
	if !m.over {
		var out []byte
		if !m.estr {
			out = m.w.rewriteValue(m.buf[:0], m.val, m.table, columnName(m.cols, m.col), m.line)
		}
		if out == nil {
			out = m.val
		} else {
			m.buf = out
		}
		m.out.Write(escapePG(nil, out))
	}
	m.out.Write([]byte{'\''})
	m.prev = '\''
}

// escapePG doubles quotes.
func escapePG(dst, v []byte) []byte {
	if bytes.IndexByte(v, '\'') < 0 {
		return append(dst, v...)
	}
	for _, c := range v {
		if c == '\'' {
			dst = append(dst, '\'', '\'')
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}
