package sqldump

import (
	"bytes"

	"github.com/cairn-backup/cairn/internal/sqlident"
)

// LineKind is what a line of a dump is to Lines.
type LineKind uint8

// The lines of a dump, as Lines tells them.
const (
	// OtherLine is any line but the two below.
	OtherLine LineKind = iota
	// RowsHead is "INSERT INTO `t` VALUES" alone on its line: the head of
	// a statement written a row a line (MariaDB 10.11+).
	RowsHead
	// RowLine is a row of such a statement, "(…)," or "(…);", alone on
	// its line: a line that starts with '(' and ends with "),"  or ");",
	// after a RowsHead and the statement's rows (or another RowsHead).
	// Its bytes are not looked into: the dump tool writes a row on one
	// line (it escapes line breaks), so the line's shape tells.
	RowLine
)

// Lines cuts a dump written to it in chunks cut anywhere into lines, and
// hands each to Line, with its "\n" (the last without one, at Close), and
// its kind. It is the push-mode reader of dumps written a row a line, for
// a tee that re-cuts their statements; Scan reads their rows the same
// wherever the dump is as the dump tool writes it.
type Lines struct {
	// Line receives each line, valid during the call only. An error
	// from it stops Lines and is returned by Write and Close.
	Line    func(kind LineKind, line []byte) error
	partial []byte // the start of a line the last Write did not finish
	inRows  bool   // the last line was a RowsHead or a RowLine
	err     error
}

// Write hands the lines p finishes to Line, and keeps the start of the
// one it does not finish. It fails only with Line's error.
func (s *Lines) Write(p []byte) (int, error) {
	n := len(p)
	if s.err != nil {
		return 0, s.err
	}
	if len(s.partial) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			return n, nil
		}
		s.partial = append(s.partial, p[:i+1]...)
		s.line(s.partial)
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	for s.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			break
		}
		s.line(p[:i+1])
		p = p[i+1:]
	}
	return n, s.err
}

// Close hands the last line to Line if it has no "\n".
func (s *Lines) Close() error {
	if len(s.partial) > 0 && s.err == nil {
		s.line(s.partial)
		s.partial = nil
	}
	return s.err
}

func (s *Lines) line(l []byte) {
	kind := OtherLine
	switch {
	case s.inRows && isRowLine(l):
		kind = RowLine
	case isRowsHead(l):
		kind = RowsHead
	}
	s.inRows = kind != OtherLine
	s.err = s.Line(kind, l)
}

// isRowLine tells whether l is "(…),\n" or "(…);\n" (or without its
// "\n", at the dump's end).
func isRowLine(l []byte) bool {
	if len(l) <= 3 || l[0] != '(' {
		return false
	}
	body := bytes.TrimSuffix(l, []byte("\n"))
	last := body[len(body)-1]
	return (last == ',' || last == ';') && body[len(body)-2] == ')'
}

// isRowsHead tells whether l is "INSERT INTO `t` VALUES\n".
func isRowsHead(l []byte) bool {
	if !bytes.HasPrefix(l, insertInto) {
		return false
	}
	_, rest, ok := sqlident.CutBackquoted(l[len("INSERT INTO "):])
	return ok && bytes.Equal(rest, []byte(" VALUES\n"))
}
