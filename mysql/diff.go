package mysql

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

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
	rows := 0
	err := scanRows(newer, func(t string, row []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rows++; rows > cairn.DeltaRows {
			return errTooManyRows()
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

// errTooManyRows ends a delta (or a row index) of a database too large
// to compare in memory (see cairn.DeltaRows).
func errTooManyRows() error {
	return fmt.Errorf("%w: more than %d rows to compare (the whole dump is loaded instead, within cairn's memory bound)", ErrNoDelta, cairn.DeltaRows)
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
			// Rows told apart by their hashes alone miss a table without a
			// key that lost or gained a copy of a row it holds twice.
			if t := old.tables[name]; t == nil || t.keyPos != nil || sameRows(t.hashes, hs) {
				continue
			}
			return nil, keyless(name, newSchema.creates[name])
		}
		create := newSchema.creates[name]
		if !strings.Contains(create, "ENGINE=InnoDB") {
			return nil, fmt.Errorf("%w: table %s is not InnoDB", ErrNoDelta, name)
		}
		d.Tables = append(d.Tables, TableDelta{Name: name, Create: create, Removed: removed, Added: added})
	}
	d.Counters = counters(old.schema.creates, newSchema, d.Tables)
	return d, nil
}

// counters are the AUTO_INCREMENT counters to set after the rows: each
// table's as the new dump has it, where it moved since the old dump (rows
// inserted and deleted again leave the rows as they were, but not the
// counter) or the table changed.
func counters(oldCreates map[string]string, newSchema *dumpSchema, changed []TableDelta) []TableCounter {
	var cs []TableCounter
	for _, name := range newSchema.tables {
		c := counterOf(newSchema.creates[name])
		if c == "" {
			continue
		}
		if c != counterOf(oldCreates[name]) || slices.ContainsFunc(changed, func(t TableDelta) bool { return t.Name == name }) {
			cs = append(cs, TableCounter{Table: name, Option: c})
		}
	}
	return cs
}

// counterOf is a table's AUTO_INCREMENT option from its CREATE TABLE:
// " AUTO_INCREMENT=n", " AUTO_INCREMENT=1" for a table with such a
// column whose counter has not moved (the dump writes none), "" for a
// table without one.
func counterOf(create string) string {
	if m := autoIncrementRE.FindString(create); m != "" {
		return m
	}
	for _, line := range strings.Split(create, "\n") {
		if strings.HasPrefix(line, "  `") && strings.Contains(line, " AUTO_INCREMENT") {
			return " AUTO_INCREMENT=1"
		}
	}
	return ""
}

// sameRows tells whether two dumps hold a table's rows (hashes; sorted,
// the new ones) as many times each.
func sameRows(old, sortedNew []uint64) bool {
	return len(old) == len(sortedNew) && slices.Equal(slices.Sorted(slices.Values(old)), sortedNew)
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
	rows := 0
	return scanRows(r, func(name string, row []byte) error {
		select {
		case <-o.abandons:
			return context.Canceled
		default:
		}
		if rows++; rows > cairn.DeltaRows {
			return errTooManyRows()
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
			return nil, keyless(name, o.schema.creates[name])
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
	body      bool   // inside a DELIMITER ;; block: routines, triggers
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
	// The dump's comments are left out (they hold its time and the
	// server's version), but not lines of a routine's or trigger's body
	// (between DELIMITER ;; and DELIMITER ;) that look like them.
	switch string(line) {
	case "DELIMITER ;;":
		s.body = true
	case "DELIMITER ;":
		s.body = false
	}
	if !s.body && (bytes.HasPrefix(line, []byte("--")) || len(bytes.TrimSpace(line)) == 0) {
		return
	}
	summed := line
	if bytes.HasPrefix(line, []byte(") ENGINE=")) {
		// The counter moves with rows; ApplyDelta sets it.
		summed = autoIncrementRE.ReplaceAll(line, nil)
	}
	s.h.Write(summed)
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
