// Package rewrite replaces URLs and paths inside SQL dumps as they stream
// by, without breaking what the application stored: PHP-serialized values
// get their byte lengths recomputed (through nesting and double
// serialization), JSON-escaped and URL-encoded spellings are rewritten
// too, matches respect host boundaries, and a second run changes nothing.
// It reads MySQL/MariaDB dumps (extended INSERTs) and PostgreSQL plain
// dumps (COPY and INSERT); everything it does not rewrite passes through
// byte for byte. Memory stays bounded whatever the dump's size and line
// length: values larger than MaxValue pass through unchanged (reported).
package rewrite

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path"
	"sort"
	"strconv"
)

// MaxValue is the largest value rewritten; a larger one passes through as
// it is and is reported as unsafe if it holds a match.
const MaxValue = 8 << 20

// lineBuffer holds a whole line of a dump when it fits: such a line
// passes through in one piece when it holds no match. Longer lines are
// read in pieces. (A variable so that the fuzzers can make every line long.)
var lineBuffer = 4 << 20

// Config says what to rewrite.
type Config struct {
	Pairs []Pair
	Options
	// SkipColumns are column names never rewritten (nil: WordPress's
	// guid, which must not change once published).
	SkipColumns []string
	// Tables limits the rewrite to tables matching these wildcards
	// (path.Match syntax); ExcludeTables leaves those matching out.
	Tables, ExcludeTables []string
}

// Report tells what a rewrite did.
type Report struct {
	Counts   []Count // values changed, per table and column
	Unsafe   []Place // values holding a match that were left as they were
	Unparsed []Place // statements passed through without being understood
	// UnparsedMatches counts the data statements that held a match and
	// were passed through unchanged, not understood.
	UnparsedMatches int64
	// Dropped counts Unsafe and Unparsed places not listed (past 1000).
	Dropped           int64
	Lines             int64
	BytesIn, BytesOut int64
}

// Count is what a rewrite changed in one column.
type Count struct {
	Table        string `json:"table"`
	Column       string `json:"column"`
	Values       int64  `json:"values"`  // values changed
	Replacements int64  `json:"matches"` // matches replaced
}

// Place is one value or statement a rewrite reports.
type Place struct {
	Table  string `json:"table"`
	Column string `json:"column,omitempty"`
	Line   int64  `json:"line"` // 1-based line of the dump where it starts
	Reason string `json:"reason"`
}

const maxPlaces = 1000

// Rewriter rewrites dumps with one Config. It is not safe for concurrent
// use.
type Rewriter struct {
	cfg    Config
	r      *replacer
	skip   map[string]bool
	counts map[[2]string]*Count
	report Report
	// visit, in tests, sees every unescaped value that may match.
	visit func(v []byte)
}

// New checks cfg and returns its Rewriter.
func New(cfg Config) (*Rewriter, error) {
	if len(cfg.Pairs) == 0 {
		return nil, errNoPairs
	}
	for _, p := range cfg.Pairs {
		if p.From == "" {
			return nil, errEmptyFrom
		}
	}
	for _, pat := range append(append([]string(nil), cfg.Tables...), cfg.ExcludeTables...) {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, errBadPattern(pat)
		}
	}
	skip := cfg.SkipColumns
	if skip == nil {
		skip = []string{"guid"}
	}
	w := &Rewriter{cfg: cfg, r: newReplacer(cfg.Pairs, cfg.Options), skip: map[string]bool{}, counts: map[[2]string]*Count{}}
	for _, c := range skip {
		w.skip[c] = true
	}
	return w, nil
}

// selected tells whether a table is rewritten.
func (w *Rewriter) selected(table string) bool {
	if len(w.cfg.Tables) > 0 {
		ok := false
		for _, p := range w.cfg.Tables {
			if m, _ := path.Match(p, table); m {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range w.cfg.ExcludeTables {
		if m, _ := path.Match(p, table); m {
			return false
		}
	}
	return true
}

// rewriteValue rewrites one unescaped value of table.column, counting
// what it did; it returns nil when the value stays as it is.
func (w *Rewriter) rewriteValue(dst, v []byte, table, column string, line int64) []byte {
	if w.skip[column] {
		return nil
	}
	if !w.r.mayMatch(v) {
		if w.r.hidesMatch(v) {
			w.place(&w.report.Unsafe, Place{Table: table, Column: column, Line: line, Reason: "base64-encoded data holds a match: left as it is"})
		}
		return nil
	}
	if w.visit != nil {
		w.visit(v)
		return nil
	}
	out, res := w.r.value(dst, v, 0)
	if res.unsafe > 0 {
		w.place(&w.report.Unsafe, Place{Table: table, Column: column, Line: line, Reason: "looks PHP-serialized but does not parse, or holds data of unknown format"})
	}
	if res.replaced == 0 {
		return nil
	}
	c := w.counts[[2]string{table, column}]
	if c == nil {
		c = &Count{Table: table, Column: column}
		w.counts[[2]string{table, column}] = c
	}
	c.Values++
	c.Replacements += int64(res.replaced)
	return out
}

func (w *Rewriter) place(list *[]Place, p Place) {
	if len(*list) >= maxPlaces {
		w.report.Dropped++
		return
	}
	*list = append(*list, p)
}

// finish returns the report of the dump just rewritten, and resets.
func (w *Rewriter) finish() *Report {
	rep := w.report
	for _, c := range w.counts {
		rep.Counts = append(rep.Counts, *c)
	}
	sort.Slice(rep.Counts, func(i, j int) bool {
		a, b := rep.Counts[i], rep.Counts[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		return a.Column < b.Column
	})
	w.report, w.counts = Report{}, map[[2]string]*Count{}
	return &rep
}

// columnName names a column by its position when its name is unknown.
func columnName(cols []string, i int) string {
	if i < len(cols) {
		return cols[i]
	}
	return "#" + strconv.Itoa(i+1)
}

// piece is a dump's next piece: a whole line, or a part of a line longer
// than the buffer.
type piece struct {
	b     []byte
	start bool // the piece starts a line
	whole bool // the piece is a whole line
	end   bool // the piece ends its line
}

// stream reads a dump in pieces and hands each to handle, which writes to
// the output; atEnd runs after the last piece. It counts lines and bytes
// and returns the report.
func (w *Rewriter) stream(in io.Reader, out io.Writer, handle func(*countingWriter, piece), atEnd func()) (*Report, error) {
	cr := &countingReader{r: in}
	br := bufio.NewReaderSize(cr, lineBuffer)
	buf := bufio.NewWriterSize(out, 256<<10)
	bw := &countingWriter{w: buf}
	long := false // inside a line longer than the buffer
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			p := piece{b: b, start: !long}
			long = errors.Is(err, bufio.ErrBufferFull)
			p.whole, p.end = p.start && !long, !long
			if p.start {
				w.report.Lines++
			}
			handle(bw, p)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	atEnd()
	if bw.err != nil {
		return nil, bw.err
	}
	if err := buf.Flush(); err != nil {
		return nil, err
	}
	w.report.BytesIn, w.report.BytesOut = cr.n, bw.n
	return w.finish(), nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countingWriter counts bytes and keeps the first error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Dialect is the SQL a dump is written in.
type Dialect int

const (
	MySQL    Dialect = iota // mysqldump's and mariadb-dump's INSERTs
	Postgres                // pg_dump's COPY and INSERTs, and SQLite's INSERTs
)

// Detect tells a dump's dialect from its first bytes (a few KiB):
// pg_dump's header or COPY, else MySQL's.
func Detect(head []byte) Dialect {
	for _, mark := range []string{"PostgreSQL database dump", "\nCOPY ", "SET standard_conforming_strings"} {
		if bytes.Contains(head, []byte(mark)) {
			return Postgres
		}
	}
	return MySQL
}

// Dump rewrites a dump in dialect d (see MySQL and Postgres).
func (w *Rewriter) Dump(d Dialect, in io.Reader, out io.Writer) (*Report, error) {
	if d == MySQL {
		return w.MySQL(in, out)
	}
	return w.Postgres(in, out)
}

// Replacements counts the replacements a report holds.
func (r *Report) Replacements() int64 {
	var n int64
	for _, c := range r.Counts {
		n += c.Replacements
	}
	return n
}
