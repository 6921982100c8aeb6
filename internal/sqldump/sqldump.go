// Package sqldump reads MySQL and MariaDB dumps (mysqldump and
// mariadb-dump output) as a stream, by the dump's own syntax: each
// INSERT's rows are cut at their parentheses outside quoted strings
// (single-quoted, with backslash escapes and doubled quotes), whatever the
// lines, so a row may hold raw newlines and a statement may put its rows
// on one line or one a line (MariaDB 10.11+). Everything outside INSERT
// statements is handed over line by line.
//
// It is the one tokenizer of such dumps: row counting, cutting, loading,
// deltas and rewrite are to read dumps through it (see the package's
// fuzz tests, which hold it to the scanners it replaces).
package sqldump

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-backup/cairn/internal/sqlident"
)

// ErrColumnList means an INSERT names its columns (generated or invisible
// columns): its rows are not whole rows of the table. Scan returns it
// when its handler takes no column lists.
var ErrColumnList = errors.New("an INSERT names its columns")

// Handler receives a dump's parts. Slices are valid during the call only.
type Handler struct {
	// Row is called for each row of an INSERT INTO `table` VALUES
	// statement, `(…)` as the dump writes it.
	Row func(table string, row []byte) error
	// Columns, if not nil, is called before the rows of an INSERT that
	// names its columns (`INSERT INTO t (a, b) VALUES`, as a dump of a
	// table with invisible or generated columns has them), with those
	// columns; the rows that follow hold those columns alone. Without
	// it, such an INSERT stops Scan with ErrColumnList.
	Columns func(table string, cols []string) error
	// Other is called for each line outside INSERT statements, without
	// its end of line; nil ignores them.
	Other func(line []byte) error
}

var insertInto = []byte("INSERT INTO `")

// Scan reads the dump r to its end, calling h. An error from h stops it
// and is returned; so is a dump it cannot read (with its line number).
func Scan(r io.Reader, h Handler) error {
	s := scanner{in: bufio.NewReaderSize(r, 1<<20), h: h}
	return s.run()
}

type scanner struct {
	in   *bufio.Reader
	h    Handler
	line int    // the current line's number, from 1
	long []byte // a line longer than in's buffer, gathered
	row  []byte // the row being read
}

func (s *scanner) run() error {
	for {
		line, err := s.readLine()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(line, insertInto) {
			if s.h.Other != nil {
				if err := s.h.Other(trimEOL(line)); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.insert(line); err != nil {
			return err
		}
	}
}

// insert reads the INSERT statement whose first line is line.
func (s *scanner) insert(line []byte) error {
	name, cols, rest, err := InsertHead(line)
	switch {
	case err != nil:
		return s.errorf("%v", err)
	case cols != nil && s.h.Columns == nil:
		return fmt.Errorf("line %d: table %s: %w", s.line, name, ErrColumnList)
	case cols != nil:
		if err := s.h.Columns(name, cols); err != nil {
			return err
		}
	}
	p := rest
	for {
		i, done, err := NextRow(p, 0)
		switch {
		case err != nil:
			return s.errorf("%v of %s", err, name)
		case done:
			return nil // what follows on the line is not data
		case i == len(p):
			if p, err = s.readLine(); err != nil {
				if errors.Is(err, io.EOF) {
					return s.errorf("the dump ends inside an INSERT into %s", name)
				}
				return err
			}
			continue
		}
		if p, err = s.readRow(p[i:]); err != nil {
			return err
		}
		if err := s.h.Row(name, s.row); err != nil {
			return err
		}
	}
}

// readRow gathers the row starting at p[0] == '(' (reading further lines
// if it spans them) into s.row and returns what follows it. It jumps from
// one byte that matters to the next: outside strings a quote or the
// closing parenthesis, inside them a quote or a backslash.
func (s *scanner) readRow(p []byte) ([]byte, error) {
	s.row = s.row[:0]
	quoted := false
	i := 1
	for {
		j := indexEither(p[i:], '\'', ')')
		if quoted {
			j = indexEither(p[i:], '\'', '\\')
		}
		if j < 0 || quoted && p[i+j] == '\\' && i+j+1 == len(p) {
			// The row goes on at the next line (an escape at the line's
			// end escapes its newline).
			s.row = append(s.row, p...)
			var err error
			if p, err = s.readLine(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil, s.errorf("the dump ends inside a row")
				}
				return nil, err
			}
			i = 0
			if j >= 0 { // the escaped byte is this line's first
				i = 1
			}
			continue
		}
		i += j
		switch c := p[i]; {
		case c == '\\':
			i += 2 // the escaped byte
		case c == '\'':
			quoted = !quoted // a doubled quote closes and opens again
			i++
		default: // ')' outside strings
			s.row = append(s.row, p[:i+1]...)
			return p[i+1:], nil
		}
	}
}

// readLine returns the next line with its end of line, valid until the
// next call.
func (s *scanner) readLine() ([]byte, error) {
	s.long = s.long[:0]
	for {
		b, err := s.in.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.long = append(s.long, b...)
			continue
		}
		if err != nil && (len(b) == 0 && len(s.long) == 0 || !errors.Is(err, io.EOF)) {
			return nil, err
		}
		s.line++
		if len(s.long) > 0 {
			s.long = append(s.long, b...)
			return s.long, nil
		}
		return b, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{s.line}, args...)...)
}

// Fields cuts a row `(a,'b',…)` into its first n literals (n < 0: all),
// at the commas outside quoted strings. The literals are slices of row.
func Fields(row []byte, n int) ([][]byte, error) {
	if len(row) < 2 || row[0] != '(' || row[len(row)-1] != ')' {
		return nil, fmt.Errorf("%.40q is not a row", row)
	}
	p := row[1 : len(row)-1]
	var out [][]byte
	start, quoted := 0, false
	for i := 0; i < len(p) && len(out) != n; i++ {
		switch c := p[i]; {
		case quoted && c == '\\':
			i++ // the escaped byte
		case c == '\'':
			quoted = !quoted
		case !quoted && c == ',':
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, fmt.Errorf("%.40q: a string is not closed", row)
	}
	if len(out) != n {
		out = append(out, p[start:])
	}
	return out, nil
}

// indexEither is bytes.IndexAny(p, string([]byte{a, b})) by two IndexByte
// scans (vectorized), the second only up to where the first stopped:
// IndexAny tests byte by byte, and was a fifth of a snapshot's CPU.
func indexEither(p []byte, a, b byte) int {
	i := bytes.IndexByte(p, a)
	upTo := p
	if i >= 0 {
		upTo = p[:i]
	}
	if j := bytes.IndexByte(upTo, b); j >= 0 {
		return j
	}
	return i
}

// InsertHead reads the head of an INSERT statement: `INSERT INTO `t`
// VALUES`, or `INSERT INTO `t` (`a`, `b`) VALUES`, giving the table, the
// columns named (nil when none are) and what follows VALUES.
func InsertHead(line []byte) (table string, cols []string, rest []byte, err error) {
	table, rest, ok := sqlident.CutBackquoted(bytes.TrimPrefix(line, []byte("INSERT INTO ")))
	if !ok || table == "" {
		return "", nil, nil, errors.New("an INSERT whose table name is empty or not closed")
	}
	if list, ok := bytes.CutPrefix(rest, []byte(" (")); ok {
		cols = []string{}
		for {
			col, after, ok := sqlident.CutBackquoted(list)
			if !ok {
				return "", nil, nil, fmt.Errorf("an INSERT into %s whose column list cairn cannot read", table)
			}
			cols = append(cols, col)
			if list, ok = bytes.CutPrefix(after, []byte(", ")); ok {
				continue
			}
			if rest, ok = bytes.CutPrefix(after, []byte(")")); !ok {
				return "", nil, nil, fmt.Errorf("an INSERT into %s whose column list cairn cannot read", table)
			}
			break
		}
	}
	rest, ok = bytes.CutPrefix(rest, []byte(" VALUES"))
	if !ok {
		return "", nil, nil, fmt.Errorf("an INSERT into %s without VALUES", table)
	}
	return table, cols, rest, nil
}
