package mysql

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sqldump"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// ErrNoDelta means two dumps cannot be turned into one another row by row
// (their schemas differ, a changed table has no primary key or is not
// InnoDB, there are triggers, or too much changed): load the new dump whole.
var ErrNoDelta = cairn.ErrNoDelta

// A Delta is what changed between two dumps of one database made by Dump:
// for each table, the primary keys of the old dump's rows the new one
// lacks (gone, or changed), and the rows of the new dump the old one lacks
// (new, or changed).
type Delta struct {
	Tables  []TableDelta // the tables that changed, in the new dump's order
	Charset string       // the dumps' character set (their SET NAMES)
	Index   *RowIndex    // the new dump's, for the next Diff
}

// TableDelta is one table's part of a Delta.
type TableDelta struct {
	Name   string
	Create string // the table's CREATE TABLE statement, from the new dump
	// Removed are primary keys, `(…)` with the key's values in the
	// dump's own literals, in the order of the key's columns.
	Removed [][]byte
	Added   [][]byte // rows, `(…)` as the dump has them
	// Whole: the table is emptied and Added holds all its rows (it
	// changed on the target's side, so the earlier dump does not say
	// what it holds).
	Whole bool
}

// Rows counts the rows the delta removes and adds.
func (d *Delta) Rows() (removed, added int) {
	for _, t := range d.Tables {
		removed += len(t.Removed)
		added += len(t.Added)
	}
	return removed, added
}

// KeyTable is a CREATE TABLE of the table's primary key columns alone, in
// the key's order: Removed read as rows of it (to rewrite them as a dump).
func (t TableDelta) KeyTable() (string, error) {
	_, names, err := primaryKey(t.Create)
	if err != nil {
		return "", err
	}
	defs := map[string]string{}
	for _, line := range strings.Split(t.Create, "\n")[1:] {
		if trimmed := strings.TrimLeft(line, " "); strings.HasPrefix(trimmed, "`") {
			if name, _, ok := sqlident.CutBackquoted([]byte(trimmed)); ok {
				defs[name] = strings.TrimSuffix(strings.TrimSpace(line), ",")
			}
		}
	}
	lines := make([]string, len(names))
	for i, n := range names {
		lines[i] = "  " + defs[n]
	}
	return "CREATE TABLE " + quoteIdent(t.Name) + " (\n" + strings.Join(lines, ",\n") + "\n)", nil
}

// Rewrite passes the changed rows through filter, as a dump of each
// table (its CREATE TABLE and one INSERT; for the primary keys of removed
// rows, a table of the key's columns alone, since a key holding a URL is
// the rewritten one in the target), and takes the rows back rewritten. It
// returns what filter counted.
func (d *Delta) Rewrite(filter func(in io.Reader, out io.Writer) (int64, error)) (int64, error) {
	var total int64
	for i := range d.Tables {
		t := &d.Tables[i]
		if len(t.Removed) > 0 {
			keys, err := t.KeyTable()
			if err != nil {
				return total, err
			}
			if t.Removed, _, err = rewriteRows(keys, t.Name, t.Removed, filter); err != nil {
				return total, fmt.Errorf("rewrite the changed rows of %s: %w", t.Name, err)
			}
		}
		added, n, err := rewriteRows(t.Create, t.Name, t.Added, filter)
		if err != nil {
			return total, fmt.Errorf("rewrite the changed rows of %s: %w", t.Name, err)
		}
		t.Added, total = added, total+n
	}
	return total, nil
}

// rewriteRows passes rows of one table through filter as a dump.
func rewriteRows(create, table string, rows [][]byte, filter func(in io.Reader, out io.Writer) (int64, error)) ([][]byte, int64, error) {
	if len(rows) == 0 {
		return rows, 0, nil
	}
	var in bytes.Buffer
	in.WriteString(create + ";\nINSERT INTO " + quoteIdent(table) + " VALUES ")
	in.Write(bytes.Join(rows, []byte(",")))
	in.WriteString(";\n")
	var out bytes.Buffer
	n, err := filter(&in, &out)
	if err != nil {
		return nil, 0, err
	}
	var rewritten [][]byte
	err = Rows(&out, func(_ string, row []byte) error {
		rewritten = append(rewritten, bytes.Clone(row))
		return nil
	})
	if err == nil && len(rewritten) != len(rows) {
		err = fmt.Errorf("%d rows in, %d out", len(rows), len(rewritten))
	}
	return rewritten, n, err
}

// Diff computes the delta from the dump old gives to the one newer
// streams, reading each once, side by side: the old dump (from the
// repository, faster than a dump tool writes) is hashed row by row, with
// each row's primary key kept; each table's rows in the stream are checked
// against the old ones once the old dump is past that table (tables come
// in the same order in both), so that the stream is held up as little as
// it can be. It keeps about 16 bytes and the primary key of each old row,
// 8 bytes of each new row, and the new or changed rows up to limit bytes:
// beyond that it returns ErrNoDelta, as it does when the dumps' schemas
// (everything but rows) differ or hold triggers or system-versioned
// tables, or when a table that changed has no primary key. The tables in
// whole are taken whole from the new dump (their rows count towards
// limit).
func Diff(ctx context.Context, openOld func() (io.ReadCloser, error), index *RowIndex, newer io.Reader, whole map[string]bool, limit int64) (*Delta, error) {
	old := readOld(ctx, openOld, index)
	newSchema := newDumpSchema()
	ix := &indexer{schema: newSchema, tables: map[string]*IndexTable{}}
	newHashes := map[string][]uint64{}
	candidates := map[string][]candidate{}
	var kept int64
	var table string
	var ot *oldTable // the current table's rows in the earlier dump, or nil
	var n int        // bytes of the current table's rows read so far
	err := scanRows(newer, func(t string, row []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t != table {
			table, n = t, 0
			var err error
			if ot, err = old.table(t); err != nil {
				return err
			}
		}
		if n += len(row); ot != nil {
			old.keepUp(ot, n)
		}
		h := rowHash(row)
		ix.row(t, row, h)
		newHashes[t] = append(newHashes[t], h)
		if whole[t] {
			if kept += int64(len(row)); kept > limit+lagBytes {
				return fmt.Errorf("%w: more than %d bytes of rows to load", ErrNoDelta, limit)
			}
			candidates[t] = append(candidates[t], candidate{h, bytes.Clone(row)})
			return nil
		}
		if ot != nil && ot.has(h) {
			return nil
		}
		// Not among the earlier rows read so far: new, changed, or not
		// read yet (sorted out at the end).
		candidates[t] = append(candidates[t], candidate{h, bytes.Clone(row)})
		if kept += int64(len(row)); kept > limit+lagBytes {
			// Drop the candidates the earlier dump has shown since,
			// waiting for it to finish this table if need be.
			prune := func() {
				kept = 0
				for name, cs := range candidates {
					ot, _ := old.table(name)
					cs = slices.DeleteFunc(cs, func(c candidate) bool { return !whole[name] && ot != nil && ot.has(c.h) })
					for _, c := range cs {
						kept += int64(len(c.row))
					}
					candidates[name] = cs
				}
			}
			if prune(); kept > limit && ot != nil {
				old.keepUp(ot, math.MaxInt)
				prune()
			}
			if kept > limit {
				return fmt.Errorf("%w: more than %d bytes of rows changed", ErrNoDelta, limit)
			}
		}
		return nil
	}, newSchema.line)
	if err != nil {
		old.abandon()
		return nil, err
	}
	if err := old.wait(); err != nil {
		return nil, err
	}
	switch {
	case old.schema.sum != newSchema.sum:
		return nil, fmt.Errorf("%w: the schema changed", ErrNoDelta)
	case newSchema.triggers:
		return nil, fmt.Errorf("%w: the database has triggers", ErrNoDelta)
	case newSchema.versioned:
		return nil, fmt.Errorf("%w: the database has system-versioned tables", ErrNoDelta)
	}
	return assemble(old, newSchema, ix, newHashes, candidates, whole, limit)
}

// candidate is a row of the newer dump that may be new or changed.
type candidate struct {
	h   uint64
	row []byte
}

// readOld reads the earlier dump's rows, from its index if there is one,
// else from the dump itself, in a goroutine of its own.
func readOld(ctx context.Context, openOld func() (io.ReadCloser, error), index *RowIndex) *oldRows {
	if index != nil {
		return fromIndex(index)
	}
	old := newOldRows()
	go func() {
		r, err := openOld()
		if err == nil {
			err = old.read(ctx, r)
			r.Close()
		}
		if err != nil {
			err = fmt.Errorf("read the earlier dump: %w", err)
		}
		old.finish(err)
	}()
	return old
}

// assemble makes the delta once both dumps are read: per table, the rows
// the earlier dump has and the newer lacks, and the candidates it lacks.
func assemble(old *oldRows, newSchema *dumpSchema, ix *indexer, newHashes map[string][]uint64, candidates map[string][]candidate, whole map[string]bool, limit int64) (*Delta, error) {
	d := &Delta{Charset: newSchema.charset, Index: ix.index()}
	var changed int64
	for _, name := range newSchema.tables {
		if whole[name] {
			var rows [][]byte
			for _, c := range candidates[name] {
				rows = append(rows, c.row)
			}
			d.Tables = append(d.Tables, TableDelta{Name: name, Create: newSchema.creates[name], Added: rows, Whole: true})
			continue
		}
		hs := newHashes[name]
		slices.Sort(hs)
		removed, err := old.missingFrom(name, hs)
		if err != nil {
			return nil, err
		}
		var added [][]byte
		for _, c := range candidates[name] {
			if t := old.tables[name]; t == nil || !t.has(c.h) {
				added = append(added, c.row)
				if changed += int64(len(c.row)); changed > limit {
					return nil, fmt.Errorf("%w: more than %d bytes of rows changed", ErrNoDelta, limit)
				}
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		create := newSchema.creates[name]
		if !strings.Contains(create, "ENGINE=InnoDB") {
			return nil, fmt.Errorf("%w: table %s is not InnoDB", ErrNoDelta, name)
		}
		d.Tables = append(d.Tables, TableDelta{Name: name, Create: create, Removed: removed, Added: added})
	}
	return d, nil
}

// oldRows holds the earlier dump's rows as hashes and primary keys, read
// by one goroutine while another waits for the tables it needs.
type oldRows struct {
	mu       sync.Mutex
	changed  *sync.Cond // a table is complete, or reading ended
	schema   *dumpSchema
	tables   map[string]*oldTable
	current  string // the table being read
	done     bool
	err      error
	abandons chan struct{} // closed when the reader need not go on
}

// oldTable is one table of the earlier dump.
type oldTable struct {
	complete  bool     // guarded by oldRows.mu
	published int      // rows in seen; guarded by oldRows.mu
	bytes     int      // bytes of the rows published; guarded by oldRows.mu
	read      int      // bytes of the rows read (the reader's)
	keyPos    []int    // primary key columns; nil: no primary key
	hashes    []uint64 // of the rows, in dump order (the reader's)
	keys      []uint32 // keys[i]…keys[i+1]: row i's key in arena
	arena     []byte
	seenMu    sync.RWMutex
	seen      map[uint64]struct{} // the hashes published so far
}

// has tells whether a row of this hash was among the rows published.
func (t *oldTable) has(h uint64) bool {
	t.seenMu.RLock()
	_, ok := t.seen[h]
	t.seenMu.RUnlock()
	return ok
}

// lagBytes is how far the stream may run ahead of the earlier dump in one
// table (bytes of rows); what it reads meanwhile is kept until the end.
const lagBytes = 4 << 20

func newOldRows() *oldRows {
	o := &oldRows{schema: newDumpSchema(), tables: map[string]*oldTable{}, abandons: make(chan struct{})}
	o.changed = sync.NewCond(&o.mu)
	return o
}

// read reads the earlier dump.
func (o *oldRows) read(ctx context.Context, r io.Reader) error {
	var t *oldTable
	return scanRows(r, func(name string, row []byte) error {
		select {
		case <-o.abandons:
			return context.Canceled
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t == nil || name != o.current {
			o.complete()
			t = &oldTable{keys: []uint32{0}, seen: map[uint64]struct{}{}}
			t.keyPos, _, _ = primaryKey(o.schema.creates[name])
			o.mu.Lock()
			o.tables[name], o.current = t, name
			o.mu.Unlock()
		}
		t.hashes = append(t.hashes, rowHash(row))
		t.read += len(row)
		if t.keyPos != nil {
			var ok bool
			if t.arena, ok = appendKey(t.arena, row, t.keyPos); !ok {
				t.keyPos = nil // the table cannot be changed by key
			}
		}
		t.keys = append(t.keys, uint32(len(t.arena)))
		if len(t.hashes)%1024 == 0 {
			o.publish(t)
		}
		return nil
	}, o.schema.line)
}

// publish makes the rows read so far of t visible to the stream's side.
func (o *oldRows) publish(t *oldTable) {
	o.mu.Lock()
	from := t.published
	o.mu.Unlock()
	t.seenMu.Lock()
	for _, h := range t.hashes[from:] {
		t.seen[h] = struct{}{}
	}
	t.seenMu.Unlock()
	o.mu.Lock()
	t.published, t.bytes = len(t.hashes), t.read
	o.changed.Broadcast()
	o.mu.Unlock()
}

// complete marks the table being read complete.
func (o *oldRows) complete() {
	o.mu.Lock()
	t := o.tables[o.current]
	o.mu.Unlock()
	if t == nil {
		return
	}
	o.publish(t)
	o.mu.Lock()
	t.complete = true
	o.changed.Broadcast()
	o.mu.Unlock()
}

// finish ends reading, with its error if any.
func (o *oldRows) finish(err error) {
	o.complete()
	o.mu.Lock()
	o.done, o.err = true, err
	o.changed.Broadcast()
	o.mu.Unlock()
}

// abandon tells the reader to stop.
func (o *oldRows) abandon() { close(o.abandons) }

// table waits until the earlier dump's reading has reached table name,
// and returns it; nil when the earlier dump has no such table.
func (o *oldRows) table(name string) (*oldTable, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		if t := o.tables[name]; t != nil {
			return t, nil
		}
		if o.done {
			return nil, o.err
		}
		o.changed.Wait()
	}
}

// keepUp waits while the stream, n bytes into t's rows, runs more than
// lagBytes ahead of the earlier dump in that table.
func (o *oldRows) keepUp(t *oldTable, n int) {
	o.mu.Lock()
	for n > t.bytes+lagBytes && !t.complete && !o.done {
		o.changed.Wait()
	}
	o.mu.Unlock()
}

// wait waits until the earlier dump is read.
func (o *oldRows) wait() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for !o.done {
		o.changed.Wait()
	}
	return o.err
}

// missingFrom returns the primary keys of table name's rows whose hashes
// newHashes (sorted) lacks.
func (o *oldRows) missingFrom(name string, newHashes []uint64) ([][]byte, error) {
	t := o.tables[name]
	if t == nil {
		return nil, nil
	}
	var keys [][]byte
	for i, h := range t.hashes {
		if _, ok := slices.BinarySearch(newHashes, h); ok {
			continue
		}
		if t.keyPos == nil {
			return nil, fmt.Errorf("%w: table %s changed and has no primary key cairn can use", ErrNoDelta, name)
		}
		keys = append(keys, t.arena[t.keys[i]:t.keys[i+1]])
	}
	return keys, nil
}

// dumpSchema sums up a dump's lines other than rows: comments aside, two
// dumps whose sums agree have the same tables, columns, keys, views,
// routines and triggers.
type dumpSchema struct {
	h         xxhash.Digest
	sum       uint64
	tables    []string          // in dump order
	creates   map[string]string // table → CREATE TABLE
	create    []byte            // the CREATE TABLE being read
	triggers  bool
	versioned bool   // a table WITH SYSTEM VERSIONING
	charset   string // of the rows: the dump's SET NAMES
}

func newDumpSchema() *dumpSchema {
	s := &dumpSchema{creates: map[string]string{}, charset: "utf8mb4"}
	s.h.Reset()
	return s
}

// setNamesRE matches the dump's character set line.
var setNamesRE = regexp.MustCompile(`^/\*!40101 SET NAMES ([a-z0-9_]+) \*/;$`)

// autoIncrementRE matches a table's AUTO_INCREMENT option.
var autoIncrementRE = regexp.MustCompile(` AUTO_INCREMENT=[0-9]+`)

func (s *dumpSchema) line(line []byte) {
	if bytes.HasPrefix(line, []byte("--")) || len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if bytes.HasPrefix(line, []byte(") ENGINE=")) {
		// The counter moves with rows; ApplyDelta sets it.
		line = autoIncrementRE.ReplaceAll(line, nil)
	}
	s.h.Write(line)
	s.h.Write([]byte{'\n'})
	s.sum = s.h.Sum64()
	if bytes.Contains(line, []byte(" TRIGGER ")) {
		s.triggers = true
	}
	if bytes.Contains(line, []byte("WITH SYSTEM VERSIONING")) {
		s.versioned = true
	}
	if m := setNamesRE.FindSubmatch(line); m != nil {
		s.charset = string(m[1])
	}
	switch {
	case s.create != nil:
		s.create = append(append(s.create, '\n'), line...)
		if bytes.HasSuffix(line, []byte(";")) {
			create := string(s.create[:len(s.create)-1])
			if name, _, ok := sqlident.CutBackquoted([]byte(create[len("CREATE TABLE "):])); ok {
				s.tables = append(s.tables, name)
				s.creates[name] = create
			}
			s.create = nil
		}
	case bytes.HasPrefix(line, []byte("CREATE TABLE `")):
		s.create = append([]byte(nil), line...)
	}
}

// Rows reads a dump made by Dump and calls fn for each row of its INSERT
// statements, `(…)`, valid during the call only.
func Rows(r io.Reader, fn func(table string, row []byte) error) error { return scanRows(r, fn, nil) }

// scanRows reads a dump made by Dump and calls row for each row of its
// INSERT statements, `(…)` (valid during the call only), and other for
// each other line (if not nil), through the one dump tokenizer.
func scanRows(r io.Reader, row func(table string, row []byte) error, other func(line []byte)) error {
	h := sqldump.Handler{Row: row}
	if other != nil {
		h.Other = func(line []byte) error { other(line); return nil }
	}
	err := sqldump.Scan(r, h)
	if errors.Is(err, sqldump.ErrColumnList) {
		// Generated or invisible columns: rows are not whole.
		return fmt.Errorf("%w: %v", ErrNoDelta, err)
	}
	return err
}

// nextRow skips what stands between rows from p[i] on and returns where
// the next row's '(' is, or len(p) when the line ends first, or done at
// the statement's ';'. (The loader's; to be the tokenizer's.)
func nextRow(p []byte, i int) (int, bool, error) {
	for ; i < len(p); i++ {
		switch p[i] {
		case ' ', ',', '\t':
		case ';':
			return i, true, nil
		case '(':
			return i, false, nil
		default:
			return i, false, fmt.Errorf("unexpected %q between rows", p[i])
		}
	}
	return i, false, nil
}

// skipString returns where the string literal starting at p[i] ends.
func skipString(p []byte, i int) (int, error) {
	for i++; ; {
		j := bytes.IndexByte(p[i:], '\'')
		if j < 0 {
			return i, errors.New("a string is not closed on its line")
		}
		if k := bytes.IndexByte(p[i:i+j], '\\'); k >= 0 {
			i += k + 2
			continue
		}
		return i + j + 1, nil
	}
}

// leadingFields cuts a row `(a,'b',…)` into its first n literals (n < 0: all).
func leadingFields(row []byte, n int) ([][]byte, error) {
	p := row[1 : len(row)-1]
	var out [][]byte
	start := 0
	for i := 0; i <= len(p) && len(out) != n; {
		if i == len(p) || p[i] == ',' {
			out = append(out, p[start:i])
			i++
			start = i
			continue
		}
		if p[i] == '\'' {
			var err error
			if i, err = skipString(p, i); err != nil {
				return nil, err
			}
			continue
		}
		i++
	}
	return out, nil
}

// primaryKey reads the positions of a table's primary key columns from its
// CREATE TABLE, with the columns' names.
func primaryKey(create string) (pos []int, names []string, err error) {
	var cols []string
	for _, line := range strings.Split(create, "\n")[1:] {
		line = strings.TrimLeft(line, " ")
		if strings.HasPrefix(line, "`") {
			name, _, ok := sqlident.CutBackquoted([]byte(line))
			if !ok {
				return nil, nil, fmt.Errorf("%w: a column cairn cannot read", ErrNoDelta)
			}
			cols = append(cols, name)
			continue
		}
		key, ok := strings.CutPrefix(line, "PRIMARY KEY (")
		if !ok {
			continue
		}
		for _, part := range strings.Split(key[:strings.LastIndex(key, ")")], ",") {
			name, rest, ok := sqlident.CutBackquoted([]byte(strings.TrimSpace(part)))
			if !ok || len(rest) > 0 { // a prefix key: (`a`(10))
				return nil, nil, fmt.Errorf("%w: a primary key cairn cannot use", ErrNoDelta)
			}
			i := slices.Index(cols, name)
			if i < 0 {
				return nil, nil, fmt.Errorf("%w: primary key column %s not found", ErrNoDelta, name)
			}
			pos, names = append(pos, i), append(names, name)
		}
	}
	if len(pos) == 0 {
		return nil, nil, fmt.Errorf("%w: a table has no primary key", ErrNoDelta)
	}
	return pos, names, nil
}

// ApplyDelta writes d into the database c names in one transaction: each
// table's removed rows are deleted by primary key, then its added rows
// inserted; before the commit every changed table must hold the number of
// rows want gives it (else nothing is written: ErrNoDelta and
// cairn.ErrMismatch); before gives the tables' counts before, where the
// caller knows them (a large table is then not counted). Rows are
// written as d has them: rewrite them first if need be. Readers see the
// database before or after, never between. The tables must be InnoDB and
// without triggers (Diff makes sure).
//
// With a guard (UPDATE_TIMEs, as UpdateTimes gave them when the caller
// decided those tables still held the delta's base), the transaction is
// rolled back with ErrNoDelta should any of those tables have changed
// since.
//
// Its statements wait at most lockWait (0: DefaultLockWait) for the
// metadata lock of a table another session holds (its ALTER TABLE of
// the AUTO_INCREMENT counters takes one): the site's queries on that
// table, queued behind it, wait no longer.
func ApplyDelta(ctx context.Context, c Config, d *Delta, want, before map[string]int64, guard map[string]string, lockWait time.Duration) (err error) {
	db, err := c.open()
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w%s", c, err, hint(err.Error()))
	}
	defer conn.Close()
	// The dump's own session settings.
	for _, q := range append(d.session(), "SET SESSION lock_wait_timeout = "+lockWaitSeconds(lockWait)) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback() //nolint:errcheck
		}
	}()
	for _, t := range d.Tables {
		if err := applyTable(ctx, tx, t, want, before); err != nil {
			return err
		}
	}
	if guard != nil {
		if err := unchangedSince(ctx, tx, c.Database, guard); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", c, err)
	}
	// Each changed table's AUTO_INCREMENT counter as the new dump has it
	// (a statement of its own: DDL would end the transaction).
	for _, t := range d.Tables {
		if m := autoIncrementRE.FindString(t.Create); m != "" {
			if _, err := conn.ExecContext(ctx, "ALTER TABLE "+quoteIdent(t.Name)+m); err != nil {
				return fmt.Errorf("the rows are in place, but setting the AUTO_INCREMENT counter of %s failed: %w", t.Name, err)
			}
		}
	}
	return nil
}

// applyTable deletes a table's removed rows by primary key and inserts its
// added rows, in tx, then checks its row count against want: counted,
// unless the count before is known (in before) or the table was emptied,
// and every statement changed the rows it named.
func applyTable(ctx context.Context, tx *sql.Tx, t TableDelta, want, before map[string]int64) error {
	var deleted, inserted int64
	exec := func(q string) error {
		res, err := tx.ExecContext(ctx, q)
		if err != nil {
			return fmt.Errorf("change table %s: %w%s", t.Name, err, hint(err.Error()))
		}
		n, err := res.RowsAffected()
		if strings.HasPrefix(q, "DELETE") {
			deleted += n
		} else {
			inserted += n
		}
		return err
	}
	if err := t.statements(exec); err != nil {
		return err
	}
	// Counting a large table reads all of it: the count follows from the
	// one before when every row named was there to delete, and went in.
	n, known := before[t.Name]
	if t.Whole {
		n, known, deleted = 0, true, 0 // emptied
	}
	if known && deleted == int64(len(t.Removed)) && inserted == int64(len(t.Added)) {
		n += inserted - deleted
	} else if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(t.Name)).Scan(&n); err != nil {
		return fmt.Errorf("count rows of %s: %w", t.Name, err)
	}
	if w, ok := want[t.Name]; !ok || n != w {
		return fmt.Errorf("%w (%w): table %s would hold %d rows, the snapshot %d; nothing was changed", ErrNoDelta, cairn.ErrMismatch, t.Name, n, w)
	}
	return nil
}

// statements gives the statements that delete the table's removed rows
// by primary key (or all its rows, when it is loaded whole) and insert its
// added ones, in batches of about a MiB.
func (t TableDelta) statements(emit func(string) error) error {
	if t.Whole {
		if err := emit("DELETE FROM " + quoteIdent(t.Name)); err != nil {
			return err
		}
	} else {
		// Rows told apart by their hashes alone need a key: without one
		// a table may hold the same row twice.
		_, names, err := primaryKey(t.Create)
		if err != nil {
			return err
		}
		keyCols := make([]string, len(names))
		for i, n := range names {
			keyCols[i] = quoteIdent(n)
		}
		if len(t.Removed) > 0 {
			del := "DELETE FROM " + quoteIdent(t.Name) + " WHERE (" + strings.Join(keyCols, ",") + ") IN ("
			if err := batches(del, t.Removed, ")", emit); err != nil {
				return err
			}
		}
	}
	return batches("INSERT INTO "+quoteIdent(t.Name)+" VALUES ", t.Added, "", emit)
}

// batches emits head, items joined by commas, then tail, in statements of
// about a MiB of SQL each.
func batches(head string, items [][]byte, tail string, emit func(string) error) error {
	var q strings.Builder
	for i, item := range items {
		if q.Len() == 0 {
			q.WriteString(head)
		} else {
			q.WriteByte(',')
		}
		q.Write(item)
		if q.Len() < 1<<20 && i < len(items)-1 {
			continue
		}
		q.WriteString(tail)
		if err := emit(q.String()); err != nil {
			return err
		}
		q.Reset()
	}
	return nil
}

// session is the session settings the dumps' rows need.
func (d *Delta) session() []string {
	charset := cmp.Or(d.Charset, "utf8mb4")
	return []string{"SET NAMES " + charset, "SET time_zone = '+00:00'", "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO'", "SET foreign_key_checks = 0"}
}

// WriteSQL writes the delta as SQL that does what ApplyDelta does (without
// its checks), to follow the earlier dump: the two load as the new one.
func (d *Delta) WriteSQL(w io.Writer) error {
	bw := bufio.NewWriter(w)
	emit := func(q string) error {
		bw.WriteString(q)
		_, err := bw.WriteString(";\n")
		return err
	}
	bw.WriteString("-- cairn: the rows that changed since the dump above\n")
	for _, q := range d.session() {
		emit(q) //nolint:errcheck // bufio's error is sticky: Flush returns it
	}
	for _, t := range d.Tables {
		if err := t.statements(emit); err != nil {
			return err
		}
		if m := autoIncrementRE.FindString(t.Create); m != "" {
			emit("ALTER TABLE " + quoteIdent(t.Name) + m) //nolint:errcheck // as above
		}
	}
	emit("SET foreign_key_checks = 1") //nolint:errcheck // as above
	return bw.Flush()
}

// unchangedSince fails with ErrNoDelta when a table guard names changed
// since guard's UPDATE_TIMEs were read.
func unchangedSince(ctx context.Context, tx *sql.Tx, schema string, guard map[string]string) error {
	times, _, err := tableTimes(ctx, tx, schema, false)
	if err != nil {
		return err
	}
	for name, at := range times {
		if g, ok := guard[name]; ok && g != at {
			return fmt.Errorf("%w: table %s changed meanwhile", ErrNoDelta, name)
		}
	}
	return nil
}

// tableTimes reads the UPDATE_TIME of each base table of schema, "" for
// one the server cannot vouch for: unknown, or changed in the current
// second, which a later change could share (unless note). left is what
// remains of that second on the server's clock, when some table changed in
// it.
func tableTimes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string, note bool) (times map[string]string, left time.Duration, err error) {
	// The second is the one InnoDB's clock may still be in (see
	// coarseClock).
	rows, err := q.QueryContext(ctx, "SELECT TABLE_NAME, COALESCE(DATE_FORMAT(UPDATE_TIME, '%Y-%m-%d %H:%i:%s'), ''), "+
		"UPDATE_TIME IS NOT NULL AND UPDATE_TIME >= DATE_FORMAT(NOW(6) - INTERVAL ? MICROSECOND, '%Y-%m-%d %H:%i:%s'), "+
		"1000000 - MICROSECOND(NOW(6) - INTERVAL ? MICROSECOND) "+
		"FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
		coarseClock.Microseconds(), coarseClock.Microseconds(), schema)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	times = map[string]string{}
	for rows.Next() {
		var name, at string
		var now bool
		var micros int64
		if err := rows.Scan(&name, &at, &now, &micros); err != nil {
			return nil, 0, err
		}
		if now {
			left = time.Duration(micros)*time.Microsecond + coarseClock
			if !note {
				at = ""
			}
		}
		times[name] = at
	}
	return times, left, rows.Err()
}

// coarseClock is how far behind the server's NOW() the clock InnoDB
// stamps UPDATE_TIME with may lag (time(), the kernel's coarse clock,
// moves once a tick): a change made this soon after a second began may
// still be stamped with the second before.
const coarseClock = 50 * time.Millisecond

// UpdateTimes returns when each base table of the database c names last
// changed (InnoDB's UPDATE_TIME, to the second), as the server can vouch
// for it: "" where it cannot (the server restarted since, or the table
// changed in the current second, which a later change could share: then
// the second is waited out once, and the table asked about again).
//
// With note, to note a state just written, a table changed in the current
// second gets that second at once, and quiet is what remains of it: a
// change the caller makes itself before quiet has passed would not move
// UPDATE_TIME, so one that must show waits that long first. Changes by
// others within that second cannot be told apart, waiting or not.
func UpdateTimes(ctx context.Context, c Config, note bool) (times map[string]string, quiet time.Duration, err error) {
	db, err := c.open()
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	for try := 0; ; try++ {
		times, quiet, err = tableTimes(ctx, db, c.Database, note)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w%s", c, err, hint(err.Error()))
		}
		if note || quiet == 0 || try == 1 {
			return times, quiet, nil
		}
		select {
		case <-time.After(quiet):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}
