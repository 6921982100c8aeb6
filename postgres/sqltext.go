package postgres

import "bytes"

// sqlText follows the SQL of a plain dump outside its COPY rows, byte by
// byte as it streams, to tell whether a line begins inside a literal: a
// string, a quoted identifier, a dollar-quoted body (a function's), a
// block comment. There a line `COPY … FROM stdin;`, `\.` or `\restrict
// KEY` is text, not a statement or a psql command. Its zero value is SQL
// at the start of a statement, standard_conforming_strings on (as
// pg_dump writes); a line `SET standard_conforming_strings = off;` makes
// quoted strings take backslash escapes, as psql would.
type sqlText struct {
	in      lexState
	prev    byte   // the byte before, in code or a block comment
	prev2   byte   // and the one before it, in code
	tag     []byte // the dollar quote open, "$tag$", or being read
	matched int    // of tag, in a dollar-quoted body: how much just went by
	depth   int    // of nested block comments
	escapes bool   // '' strings take backslash escapes
	line    []byte // the start of the line, for its SET (up to setMax bytes)
}

type lexState uint8

const (
	inCode         lexState = iota
	inString                // '…'
	inQuoteEnd              // a quote in one: its end, or '' (a quote)
	inEscString             // E'…', or '…' with escapes on
	inEscQuoteEnd           // a quote in one
	inEscape                // the byte after a backslash in one
	inIdent                 // "…"
	inIdentEnd              // a quote in one: its end, or ""
	inTag                   // $tag being read after a $ in code
	inDollar                // $tag$…$tag$
	inLineComment           // -- to the end of the line
	inBlockComment          // /* … */, nested
)

const setMax = 64

// literal tells whether what is written next (a new line) is inside a
// literal or a comment.
func (s *sqlText) literal() bool {
	switch s.in {
	case inCode, inLineComment, inTag, inQuoteEnd, inEscQuoteEnd, inIdentEnd:
		return false
	}
	return true
}

// write follows p.
func (s *sqlText) write(p []byte) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.in {
		case inCode:
			s.code(c)
		case inString:
			if c == '\'' {
				s.in = inQuoteEnd
			}
		case inEscString:
			switch c {
			case '\'':
				s.in = inEscQuoteEnd
			case '\\':
				s.in = inEscape
			}
		case inEscape:
			s.in = inEscString
		case inQuoteEnd, inEscQuoteEnd, inIdentEnd:
			quote, back := byte('\''), inString
			switch s.in {
			case inEscQuoteEnd:
				back = inEscString
			case inIdentEnd:
				quote, back = '"', inIdent
			}
			if c == quote { // doubled: one inside
				s.in = back
				continue
			}
			s.in, s.prev = inCode, quote
			s.code(c)
		case inIdent:
			if c == '"' {
				s.in = inIdentEnd
			}
		case inTag:
			switch {
			case c == '$':
				s.tag = append(s.tag, c)
				s.in, s.matched = inDollar, 0
			case tagChar(c, len(s.tag) == 1):
				s.tag = append(s.tag, c)
			default: // a $ that opens nothing ($1)
				s.in = inCode
				s.code(c)
			}
		case inDollar:
			switch {
			case c == s.tag[s.matched]:
				if s.matched++; s.matched == len(s.tag) {
					s.in, s.prev = inCode, '$'
				}
			case c == '$':
				s.matched = 1
			default:
				s.matched = 0
			}
		case inLineComment:
			if c == '\n' {
				s.in = inCode
				s.code(c)
			}
		case inBlockComment:
			switch {
			case s.prev == '*' && c == '/':
				c = 0
				if s.depth--; s.depth == 0 {
					s.in = inCode
				}
			case s.prev == '/' && c == '*':
				c = 0
				s.depth++
			}
			s.prev = c
		}
	}
}

// code follows c, outside any literal.
func (s *sqlText) code(c byte) {
	if len(s.line) < setMax {
		s.line = append(s.line, c)
	}
	prev, prev2 := s.prev, s.prev2
	s.prev, s.prev2 = c, prev
	switch {
	case c == '\n':
		s.endLine()
	case c == '\'':
		s.in = inString
		if s.escapes || (prev == 'E' || prev == 'e') && !identChar(prev2) {
			s.in = inEscString // E'…'
		}
	case c == '"':
		s.in = inIdent
	case c == '$' && !identChar(prev):
		s.in, s.tag = inTag, append(s.tag[:0], c)
	case c == '-' && prev == '-':
		s.in = inLineComment
	case c == '*' && prev == '/':
		s.in, s.depth, s.prev = inBlockComment, 1, 0
	}
}

// endLine ends a line of code: a SET of standard_conforming_strings
// takes effect.
func (s *sqlText) endLine() {
	l := bytes.TrimSpace(s.line)
	s.line = s.line[:0]
	if v, ok := bytes.CutPrefix(l, []byte("SET standard_conforming_strings = ")); ok {
		s.escapes = bytes.HasPrefix(v, []byte("off"))
	}
}

// tagChar tells whether c may be in a dollar quote's tag (first: its first
// byte, which is no digit).
func tagChar(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || !first && c >= '0' && c <= '9'
}

// identChar tells whether c may be in an unquoted identifier (a $ after
// one is part of it, not a dollar quote).
func identChar(c byte) bool { return tagChar(c, false) || c == '$' }

// copyLines puts together a COPY line of a dump that pg_dump wrote on
// several lines, as it does when a quoted table or column name holds a
// newline: such a line's double quotes are odd in number until the name
// ends. Its zero value holds nothing.
type copyLines struct {
	head []byte // the lines so far, joined by their newlines
	odd  bool   // its double quotes are odd in number: a name goes on
}

// headMax bounds a COPY line put together: pg_dump's longest, 1,600
// columns of 63-byte names quoted, is under 110 KiB.
const headMax = 1 << 20

// open tells whether a COPY line is being put together: the next line
// goes on with it, although it begins inside a quoted name.
func (j *copyLines) open() bool { return j.odd }

// take is given each line of the dump (its newline cut) that begins
// outside any literal, or goes on with the line being put together. It
// returns the line whole, or done false while a COPY's name goes on in
// the next line. The line returned is line itself, or j's own buffer,
// good until the next call.
func (j *copyLines) take(line []byte) (whole []byte, done bool) {
	if !j.odd {
		if !bytes.HasPrefix(line, []byte("COPY ")) || bytes.Count(line, []byte(`"`))%2 == 0 {
			return line, true
		}
		j.head, j.odd = append(j.head[:0], line...), true
		return nil, false
	}
	j.head = append(append(j.head, '\n'), line...)
	if bytes.Count(line, []byte(`"`))%2 == 1 || len(j.head) > headMax {
		j.odd = false
		return j.head, true
	}
	return nil, false
}
