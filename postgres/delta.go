package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/copytext"
	"github.com/cairn-backup/cairn/internal/rowindex"
)

// A clone onto a PostgreSQL database that the last clone loaded loads
// only the rows that changed (see clone/delta.go), as one for MySQL does:
// Diff compares the new dump with the one that clone loaded row by row
// (each row of a COPY block is one line), ApplyDelta deletes the rows
// gone by primary key and copies in the new ones, in one transaction.
//
// What proves a table still holds what the last clone left is its rows'
// xmin, the transaction that wrote each: a table no transaction wrote
// since (no row inserted or updated: those are new row versions, with new
// xmins) and that lost no row (the count per xmin is the same) holds the
// same rows (see fingerprints). Unlike InnoDB's UPDATE_TIME it is exact
// and survives restarts, at the cost of reading each table.
//
// A delta needs every foreign key DEFERRABLE and without ON DELETE or ON
// UPDATE actions (what Django makes): rows are deleted and copied in table
// by table, the checks deferred to the commit, and no cascade may touch
// a table the delta does not. Triggers, rules, large objects, or a changed
// table without a primary key mean the whole dump is loaded, as the first
// time.

// ErrNoDelta: see cairn.ErrNoDelta.
var ErrNoDelta = cairn.ErrNoDelta

// keyHeader starts the lines Dump writes ahead of pg_dump's output, one
// per table with a primary key: `-- cairn primary key: public.t (id)`.
// pg_dump writes the keys after the rows; a delta needs them as the rows
// stream. A header that the dump's own ADD CONSTRAINT … PRIMARY KEY does
// not bear out (the schema changed between the two reads) is not used.
const keyHeader = "-- cairn primary key: "

// cairnEnd ends what cairn writes to follow a dump (the rows changed
// since, the tables dumped again): what it ends is complete, as pg_dump's
// own last line says of a dump.
const cairnEnd = cairnStart + "end of the changes since the dump above"

// cairnStart starts every line cairn writes to follow a dump.
const cairnStart = "-- cairn: "

// TableInfo is what a dump says of one table's rows.
type TableInfo struct {
	Quoted  string   // schema.table as the dump writes it
	Cols    string   // the COPY's column list, verbatim: `(id, "Name")`
	Key     []int    // the primary key's fields in each row; nil: no usable key
	KeyCols []string // their names, quoted
}

// RowIndex is what Diff needs of an earlier dump: its schema, and each
// table's rows as hashes and primary keys, in dump order.
type RowIndex struct {
	Schema IndexSchema
	Tables map[string]*IndexTable
}

// IndexSchema is a dump's schema as Diff compares it (see dumpSchema).
type IndexSchema struct {
	Sum    uint64
	Tables []string // as Stats names them (see tableName), in dump order
	Info   map[string]TableInfo
	Unsafe string // why rows cannot be changed in place; "" when they can
}

// IndexTable is one table's rows (keys: COPY lines of the key's columns).
type IndexTable = rowindex.Table

// indexFormat names the layout of a written index.
const indexFormat = "cairn postgres row index 1"

// WriteTo writes the index, compressed.
func (x *RowIndex) WriteTo(w io.Writer) (int64, error) {
	return 0, rowindex.Write(w, indexFormat, x)
}

// ReadRowIndex reads an index WriteTo wrote.
func ReadRowIndex(r io.Reader) (*RowIndex, error) {
	var x RowIndex
	if err := rowindex.Read(r, indexFormat, &x); err != nil {
		return nil, err
	}
	return &x, rowindex.Check(x.Tables)
}

// dumpSchema sums up a dump's lines other than rows: comments, sequence
// values and psql's \restrict lines aside, two dumps whose sums agree have
// the same tables, columns, keys, indexes, views, functions and triggers.
type dumpSchema struct {
	h          xxhash.Digest
	tables     []string
	info       map[string]*TableInfo
	headerKeys map[string]string // quoted table → `(cols)`, from keyHeader lines
	dumpKeys   map[string]string // quoted table → `(cols)`, from ADD CONSTRAINT … PRIMARY KEY
	alter      string            // the table of the ALTER TABLE ONLY line just read
	setvals    []string          // the dump's sequence values, as statements
	refreshes  []string          // its REFRESH MATERIALIZED VIEW statements
	unsafe     string
}

func newDumpSchema() *dumpSchema {
	s := &dumpSchema{info: map[string]*TableInfo{}, headerKeys: map[string]string{}, dumpKeys: map[string]string{}}
	s.h.Reset()
	return s
}

func (s *dumpSchema) sum() uint64 { return s.h.Sum64() }

// line takes a line of the dump that is not a row; literal tells that it
// begins inside a string or a function's body (see sqlText), where every
// line counts. Elsewhere every line counts but cairn's own, psql's
// \restrict pair (a new key each dump), the sequences' values (which move
// with the rows: ApplyDelta sets them), pg_dump's comments and blank
// lines: those name and space out what the statements hold, in an order
// that follows how a dump in parts shared the tables out (by size, so
// that it may differ from one dump to the next).
func (s *dumpSchema) line(line []byte, literal bool) {
	l := string(line)
	if literal {
		s.h.WriteString(l) //nolint:errcheck // a hash never fails
		s.h.Write([]byte{'\n'})
		return
	}
	if rest, ok := strings.CutPrefix(l, keyHeader); ok {
		if table, cols, ok := cutList(rest); ok {
			s.headerKeys[table] = cols
		}
		return
	}
	if strings.HasPrefix(l, cairnStart) || strings.HasPrefix(l, `\restrict `) || strings.HasPrefix(l, `\unrestrict `) ||
		strings.HasPrefix(l, "--") || strings.TrimSpace(l) == "" {
		return
	}
	alter := s.alter
	s.alter = ""
	if strings.HasPrefix(l, "SELECT pg_catalog.setval(") {
		s.setvals = append(s.setvals, l)
		return
	}
	s.h.WriteString(l) //nolint:errcheck // a hash never fails
	s.h.Write([]byte{'\n'})
	switch {
	case strings.HasPrefix(l, "ALTER TABLE ONLY "):
		s.alter = strings.TrimPrefix(l, "ALTER TABLE ONLY ")
	case alter != "" && strings.HasPrefix(strings.TrimSpace(l), "ADD CONSTRAINT ") && strings.Contains(l, " PRIMARY KEY ("):
		_, rest, _ := strings.Cut(l, " PRIMARY KEY ")
		if cols, ok := leadingList(rest); ok {
			s.dumpKeys[alter] = cols
		}
	case strings.HasPrefix(l, "REFRESH MATERIALIZED VIEW "):
		s.refreshes = append(s.refreshes, strings.TrimSuffix(l, ";"))
	}
	if s.unsafe == "" {
		s.unsafe = unsafeLine(l)
	}
}

// leadingList returns the parenthesized list s starts with, `(a, "b)")`.
func leadingList(s string) (string, bool) {
	if !strings.HasPrefix(s, "(") {
		return "", false
	}
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == ')' && !quoted:
			return s[:i+1], true
		}
	}
	return "", false
}

// unsafeLine says why a schema line rules out changing rows in place, or "".
func unsafeLine(l string) string {
	switch {
	case strings.HasPrefix(l, "CREATE TRIGGER ") || strings.HasPrefix(l, "CREATE CONSTRAINT TRIGGER "):
		return "the database has triggers"
	case strings.HasPrefix(l, "CREATE RULE ") || strings.HasPrefix(l, "CREATE OR REPLACE RULE "):
		return "the database has rules"
	case strings.HasPrefix(l, "SELECT pg_catalog.lo_create("):
		return "the database has large objects"
	case strings.Contains(l, " FOREIGN KEY (") && (!strings.Contains(l, " DEFERRABLE") || strings.Contains(l, " NOT DEFERRABLE") ||
		strings.Contains(l, " ON DELETE ") || strings.Contains(l, " ON UPDATE ")):
		return "a foreign key is not DEFERRABLE, or has ON DELETE or ON UPDATE actions"
	}
	return ""
}

// copyStart reads a `COPY schema.table (cols) FROM stdin;` line.
func (s *dumpSchema) copyStart(line []byte) (string, *TableInfo, bool) {
	l := string(line)
	if !strings.HasPrefix(l, "COPY ") || !strings.HasSuffix(l, " FROM stdin;") {
		return "", nil, false
	}
	name, ok := copyTable(l[len("COPY "):])
	if !ok {
		return "", nil, false
	}
	quoted, cols, ok := cutList(strings.TrimSuffix(l[len("COPY "):], " FROM stdin;"))
	if !ok {
		return "", nil, false
	}
	info := &TableInfo{Quoted: quoted, Cols: cols}
	if key, ok := s.headerKeys[quoted]; ok {
		names := splitQuoted(strings.TrimSuffix(strings.TrimPrefix(key, "("), ")"))
		all := splitQuoted(strings.TrimSuffix(strings.TrimPrefix(cols, "("), ")"))
		for _, n := range names {
			i := slices.Index(all, n)
			if i < 0 {
				info.Key = nil
				break
			}
			info.Key = append(info.Key, i)
		}
		if info.Key != nil {
			info.KeyCols = names
		}
	}
	s.tables = append(s.tables, name)
	s.info[name] = info
	return name, info, true
}

// verified tells whether table's key header is borne out by the dump's
// own primary key.
func (s *dumpSchema) verified(name string) bool {
	info := s.info[name]
	return info != nil && info.Key != nil && s.headerKeys[info.Quoted] == s.dumpKeys[info.Quoted]
}

// cutList cuts `schema."Table (x)" (a, "B")` into the table and the
// column list, at the first " (" outside quotes.
func cutList(s string) (table, cols string, ok bool) {
	quoted := false
	for i := 0; i+1 < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case !quoted && s[i] == ' ' && s[i+1] == '(':
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// splitQuoted splits `a, "B, c"` into its identifiers, quotes kept.
func splitQuoted(s string) []string {
	out := splitOutsideQuotes(s, ',')
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// splitOutsideQuotes splits s at each sep outside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// scanDump reads a pg_dump plain dump line by line: each row of a COPY
// block goes to row with its table, every other line to s.
func scanDump(ctx context.Context, r io.Reader, s *dumpSchema, row func(name string, info *TableInfo, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	var long []byte
	var name string
	var info *TableInfo
	var text sqlText // a line inside a literal starts no COPY
	var copies copyLines
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				return errors.New("the dump is cut short inside a line")
			}
			line = line[:len(line)-1]
			switch {
			case info != nil && string(line) == `\.`:
				info = nil
			case info != nil:
				if err := row(name, info, line); err != nil {
					return err
				}
			default:
				lit := text.literal()
				text.write(line)
				text.write(newline)
				if lit && !copies.open() {
					s.line(line, true)
					break
				}
				whole, done := copies.take(line)
				var ok bool
				if done {
					if name, info, ok = s.copyStart(whole); !ok {
						s.line(whole, false)
					}
				}
			}
		}
		if err != nil {
			if info != nil {
				return fmt.Errorf("the dump is cut short inside the rows of %s", name)
			}
			return nil
		}
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

var newline = []byte{'\n'}

// errTooManyRows ends a delta (or a row index) of a database too large
// to compare in memory (see cairn.DeltaRows).
func errTooManyRows() error {
	return fmt.Errorf("%w: more than %d rows to compare (the whole dump is loaded instead, within cairn's memory bound)", ErrNoDelta, cairn.DeltaRows)
}

// rowHash is the hash rows are told apart by, the same in every process
// (indexes are kept between runs).
func rowHash(row []byte) uint64 { return xxhash.Sum64(row) }

// appendKey appends row's primary key, the fields at key joined by tabs
// (a COPY line of the key's columns), to arena; false when the row has
// fewer fields.
func appendKey(arena, row []byte, key []int) ([]byte, bool) {
	last := slices.Max(key)
	fields := make([][]byte, 0, last+1)
	for rest := row; len(fields) <= last; {
		f, after, found := bytes.Cut(rest, []byte{'\t'})
		fields = append(fields, f)
		if !found {
			break
		}
		rest = after
	}
	if len(fields) <= last {
		return arena, false
	}
	for i, k := range key {
		if i > 0 {
			arena = append(arena, '\t')
		}
		arena = append(arena, fields[k]...)
	}
	return arena, true
}

// indexer collects a dump's rows as an IndexTable per table.
type indexer struct {
	schema *dumpSchema
	tables map[string]*IndexTable
}

func newIndexer(s *dumpSchema) *indexer { return &indexer{schema: s, tables: map[string]*IndexTable{}} }

func (ix *indexer) row(name string, info *TableInfo, row []byte, h uint64) {
	t := ix.tables[name]
	if t == nil {
		t = &IndexTable{Keys: []uint32{0}, NoKey: info.Key == nil}
		ix.tables[name] = t
	}
	t.Hashes = append(t.Hashes, h)
	if !t.NoKey {
		var ok bool
		if t.Arena, ok = appendKey(t.Arena, row, info.Key); !ok {
			t.NoKey = true
		}
	}
	t.Keys = append(t.Keys, uint32(len(t.Arena)))
}

// index is the index of the dump read, once all of it is.
func (ix *indexer) index() *RowIndex {
	s := ix.schema
	x := &RowIndex{Schema: IndexSchema{Sum: s.sum(), Tables: s.tables, Info: map[string]TableInfo{}, Unsafe: s.unsafe}, Tables: ix.tables}
	for _, name := range s.tables {
		info := *s.info[name]
		if !s.verified(name) {
			info.Key, info.KeyCols = nil, nil
		}
		x.Schema.Info[name] = info
		t := ix.tables[name]
		if t == nil {
			t = &IndexTable{Keys: []uint32{0}}
			ix.tables[name] = t
		}
		if info.Key == nil {
			t.NoKey, t.Arena, t.Keys = true, nil, make([]uint32, len(t.Hashes)+1)
		}
	}
	return x
}

// IndexDump reads a dump made by Dump into a RowIndex.
func IndexDump(ctx context.Context, r io.Reader) (*RowIndex, error) {
	ix := newIndexer(newDumpSchema())
	rows := 0
	err := scanDump(ctx, r, ix.schema, func(name string, info *TableInfo, row []byte) error {
		if rows++; rows > cairn.DeltaRows {
			return errTooManyRows()
		}
		ix.row(name, info, row, rowHash(row))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ix.index(), nil
}

// A Delta is what changed between two dumps of one database made by Dump:
// for each table, the primary keys of the old dump's rows the new one
// lacks (gone, or changed), and the rows of the new dump the old one lacks
// (new, or changed). It is a cairn.Changes.
type Delta struct {
	tables    []TableDelta // the tables that changed, in the new dump's order
	setvals   []string     // the new dump's sequence values
	refreshes []string     // its materialized views, refreshed as a whole load does
	index     *RowIndex    // the new dump's, for the next Diff
}

// TableDelta is one table's part of a Delta.
type TableDelta struct {
	Name string // as Stats names it (see tableName)
	TableInfo
	Removed [][]byte // primary keys: COPY lines of the key's columns
	Added   [][]byte // rows: COPY lines
	// Whole: the table is emptied and Added holds all its rows (it
	// changed on the target's side, so the earlier dump does not say
	// what it holds).
	Whole bool
}

// Rows counts the rows the delta removes and adds.
func (d *Delta) Rows() (removed, added int) {
	for _, t := range d.tables {
		removed += len(t.Removed)
		added += len(t.Added)
	}
	return removed, added
}

// Tables names the tables that changed.
func (d *Delta) Tables() []string {
	names := make([]string, len(d.tables))
	for i, t := range d.tables {
		names[i] = t.Name
	}
	return names
}

// Index is the new dump's row index.
func (d *Delta) Index() cairn.RowIndex {
	if d.index == nil {
		return nil
	}
	return d.index
}

// Diff computes the delta from an earlier dump (index, or when nil the
// dump openOld gives, read first) to the one newer streams. It keeps 8
// bytes and the primary key of each earlier row, 8 bytes of each new row,
// and the new or changed rows up to limit bytes: beyond that it returns
// ErrNoDelta, as it does when the dumps' schemas (everything but rows and
// sequence values) differ, or rule out changing rows in place, or a table
// that changed has no primary key. The tables in whole are taken whole
// from the new dump (their rows count towards limit).
func Diff(ctx context.Context, openOld func() (io.ReadCloser, error), index *RowIndex, newer io.Reader, whole map[string]bool, limit int64) (*Delta, error) {
	if index == nil {
		r, err := openOld()
		if err != nil {
			return nil, fmt.Errorf("read the earlier dump: %w", err)
		}
		index, err = IndexDump(ctx, r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("read the earlier dump: %w", err)
		}
	}
	s := newDumpSchema()
	ix := newIndexer(s)
	olds := map[string]*oldRows{}
	kept := map[string][][]byte{}
	var n int64
	rows := 0
	err := scanDump(ctx, newer, s, func(name string, info *TableInfo, row []byte) error {
		if rows++; rows > cairn.DeltaRows {
			return errTooManyRows()
		}
		h := rowHash(row)
		ix.row(name, info, row, h)
		if !whole[name] {
			old, ok := olds[name]
			if !ok {
				old = newOldRows(index.Tables[name])
				olds[name] = old
			}
			if old.has(h) {
				return nil
			}
		}
		if n += int64(len(row)); n > limit {
			return fmt.Errorf("%w: more than %d bytes of rows changed", ErrNoDelta, limit)
		}
		kept[name] = append(kept[name], bytes.Clone(row))
		return nil
	})
	if err != nil {
		return nil, err
	}
	newIndex := ix.index()
	switch {
	case index.Schema.Sum != newIndex.Schema.Sum:
		return nil, fmt.Errorf("%w: the schema changed", ErrNoDelta)
	case newIndex.Schema.Unsafe != "":
		return nil, fmt.Errorf("%w: %s", ErrNoDelta, newIndex.Schema.Unsafe)
	}
	d := &Delta{setvals: s.setvals, refreshes: s.refreshes, index: newIndex}
	for _, name := range newIndex.Schema.Tables {
		td := TableDelta{Name: name, TableInfo: newIndex.Schema.Info[name], Added: kept[name], Whole: whole[name]}
		if !td.Whole {
			old := index.Tables[name]
			found := olds[name]
			if found == nil { // no rows in the new dump
				found = newOldRows(old)
			}
			for i := range old.Hashes {
				if !found.kept(i) {
					td.Removed = append(td.Removed, old.Arena[old.Keys[i]:old.Keys[i+1]])
				}
			}
			keyed := !old.NoKey && td.Key != nil // then no row is there twice
			if len(td.Removed) == 0 && len(td.Added) == 0 && (keyed || sameRows(old.Hashes, slices.Sorted(slices.Values(newIndex.Tables[name].Hashes)))) {
				continue
			}
			if !keyed {
				return nil, fmt.Errorf("%w: table %s changed and has no primary key cairn can use", ErrNoDelta, name)
			}
		}
		d.tables = append(d.tables, td)
	}
	return d, nil
}

// oldRows finds a new dump's rows of a table among the earlier dump's
// (by their hashes), in the order the two mostly share: a table's rows
// as stored, where an UPDATE moves only the rows it wrote. The row
// expected next is tried first, then the few after it; only a row not
// found so is looked up among all (sorted once, on the first such row).
type oldRows struct {
	hashes []uint64
	next   int    // where the next new row is looked for first
	found  []bool // hashes[i] was a new row's, found in order
	sorted []uint64
	missed map[uint64]struct{} // the new rows' hashes not found in order
}

// lookahead is how far past the expected row a new row is looked for in
// order: rows deleted or updated away since the earlier dump.
const lookahead = 8

func newOldRows(t *IndexTable) *oldRows {
	o := &oldRows{missed: map[uint64]struct{}{}}
	if t != nil {
		o.hashes, o.found = t.Hashes, make([]bool, len(t.Hashes))
	}
	return o
}

// has tells whether a new row of hash h is one of the earlier rows.
func (o *oldRows) has(h uint64) bool {
	for i := o.next; i < len(o.hashes) && i < o.next+lookahead; i++ {
		if o.hashes[i] == h {
			o.found[i], o.next = true, i+1
			return true
		}
	}
	o.missed[h] = struct{}{}
	if o.sorted == nil {
		o.sorted = slices.Sorted(slices.Values(o.hashes))
	}
	_, ok := slices.BinarySearch(o.sorted, h)
	return ok
}

// kept tells, once the new dump is read, whether earlier row i is in it:
// found in order, or its hash among those not found in order. (Of rows
// there several times, as in a table without a key, a copy fewer in the
// new dump counts as removed.)
func (o *oldRows) kept(i int) bool {
	if o.found[i] {
		return true
	}
	_, ok := o.missed[o.hashes[i]]
	return ok
}

// sameRows tells whether a table's rows (hashes; sorted, the new ones)
// are the same in both dumps, as many times each: rows told apart by
// their hashes alone miss a table without a key that lost or gained a
// copy of a row it holds twice.
func sameRows(old, sortedNew []uint64) bool {
	if len(old) != len(sortedNew) {
		return false
	}
	return slices.Equal(slices.Sorted(slices.Values(old)), sortedNew)
}

// Rewrite passes the changed rows through filter, as a dump of each
// table (a COPY of its rows; for the primary keys of removed rows, a COPY
// of the key's columns alone, since a key holding a URL is the rewritten
// one in the target), and takes the rows back rewritten. It returns what
// filter counted.
func (d *Delta) Rewrite(filter func(in io.Reader, out io.Writer) (int64, error)) (int64, error) {
	var total int64
	for i := range d.tables {
		t := &d.tables[i]
		var err error
		var n int64
		if t.Removed, n, err = rewriteRows(t.Quoted, "("+strings.Join(t.KeyCols, ", ")+")", t.Removed, filter); err != nil {
			return total, fmt.Errorf("rewrite the changed rows of %s: %w", t.Name, err)
		}
		total += n
		if t.Added, n, err = rewriteRows(t.Quoted, t.Cols, t.Added, filter); err != nil {
			return total, fmt.Errorf("rewrite the changed rows of %s: %w", t.Name, err)
		}
		total += n
	}
	return total, nil
}

// rewriteRows passes rows of one table through filter as a dump.
func rewriteRows(quoted, cols string, rows [][]byte, filter func(in io.Reader, out io.Writer) (int64, error)) ([][]byte, int64, error) {
	if len(rows) == 0 {
		return rows, 0, nil
	}
	var in bytes.Buffer
	writeCopy(&in, quoted, cols, rows)
	var out bytes.Buffer
	n, err := filter(&in, &out)
	if err != nil {
		return nil, 0, err
	}
	var rewritten [][]byte
	err = scanDump(context.Background(), &out, newDumpSchema(), func(_ string, _ *TableInfo, row []byte) error {
		rewritten = append(rewritten, bytes.Clone(row))
		return nil
	})
	if err == nil && len(rewritten) != len(rows) {
		err = fmt.Errorf("%d rows in, %d out", len(rows), len(rewritten))
	}
	return rewritten, n, err
}

// writeCopy writes rows as a COPY block of psql's.
func writeCopy(w io.Writer, quoted, cols string, rows [][]byte) {
	fmt.Fprintf(w, "COPY %s %s FROM stdin;\n", quoted, cols)
	for _, r := range rows {
		w.Write(r)            //nolint:errcheck // bufio's or bytes.Buffer's: sticky, or none
		w.Write([]byte{'\n'}) //nolint:errcheck // as above
	}
	io.WriteString(w, "\\.\n") //nolint:errcheck // as above
}

// deleteStatements emits the statements that delete the table's removed
// rows by primary key (or all its rows, when it is loaded whole), in
// batches of about a MiB of SQL each.
func (t TableDelta) deleteStatements(emit func(string) error) error {
	if t.Whole {
		return emit("DELETE FROM ONLY " + t.Quoted)
	}
	if len(t.Removed) == 0 {
		return nil
	}
	head := "DELETE FROM ONLY " + t.Quoted + " WHERE " + t.KeyCols[0] + " IN ("
	if len(t.KeyCols) > 1 {
		head = "DELETE FROM ONLY " + t.Quoted + " WHERE (" + strings.Join(t.KeyCols, ", ") + ") IN ("
	}
	var q strings.Builder
	for i, key := range t.Removed {
		if q.Len() == 0 {
			q.WriteString(head)
		} else {
			q.WriteString(", ")
		}
		q.WriteString(keyLiteral(key, len(t.KeyCols)))
		if q.Len() < 1<<20 && i < len(t.Removed)-1 {
			continue
		}
		q.WriteString(")")
		if err := emit(q.String()); err != nil {
			return err
		}
		q.Reset()
	}
	return nil
}

// keyLiteral turns a key (a COPY line of n fields) into SQL: `'v'`, or
// `('v1', 'v2')` for several columns; the literals take the columns' types.
func keyLiteral(key []byte, n int) string {
	var b strings.Builder
	if n > 1 {
		b.WriteByte('(')
	}
	for i, f := range bytes.Split(key, []byte{'\t'}) {
		if i > 0 {
			b.WriteString(", ")
		}
		if string(f) == `\N` {
			b.WriteString("NULL")
			continue
		}
		b.WriteString(literal(string(copytext.Unescape(nil, f))))
	}
	if n > 1 {
		b.WriteByte(')')
	}
	return b.String()
}

// session is the session settings a dump's rows are read and written in
// (pg_dump's own).
var session = []string{"SET client_encoding = 'UTF8'", "SET standard_conforming_strings = on",
	"SELECT pg_catalog.set_config('search_path', '', false)", "SET DateStyle = ISO", "SET IntervalStyle = postgres",
	"SET extra_float_digits = 3", "SET xmloption = content", "SET row_security = off"}

// WriteSQL writes the delta as SQL that does what ApplyDelta does (without
// its checks), to follow the earlier dump in psql's one transaction: the
// two load as the new one.
func (d *Delta) WriteSQL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	emit := func(q string) error {
		bw.WriteString(q)
		_, err := bw.WriteString(";\n")
		return err
	}
	bw.WriteString(cairnStart + "the rows that changed since the dump above\n")
	for _, q := range append(session, "SET CONSTRAINTS ALL DEFERRED") {
		emit(q) //nolint:errcheck // bufio's error is sticky: Flush returns it
	}
	for _, t := range d.tables {
		if err := t.deleteStatements(emit); err != nil {
			return err
		}
		if len(t.Added) > 0 {
			writeCopy(bw, t.Quoted, t.Cols, t.Added)
		}
	}
	for _, q := range d.refreshes {
		emit(q) //nolint:errcheck // as above
	}
	for _, q := range d.setvals {
		bw.WriteString(q + "\n")
	}
	bw.WriteString(cairnEnd + "\n")
	return bw.Flush()
}
