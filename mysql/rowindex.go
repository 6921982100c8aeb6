package mysql

import (
	"context"
	"io"
	"slices"

	"github.com/cairn-backup/cairn/internal/rowindex"
	"github.com/cespare/xxhash/v2"
)

// RowIndex is what Diff needs of an earlier dump: its schema, and each
// table's rows as hashes and primary keys, in dump order. Diff gives the
// new dump's with the delta, so that the next Diff need not read that dump
// again; IndexDump makes one from a dump.
type RowIndex struct {
	Schema IndexSchema
	Tables map[string]*IndexTable
}

// IndexSchema is a dump's schema as Diff compares it (see dumpSchema).
type IndexSchema struct {
	Sum                 uint64
	Tables              []string
	Creates             map[string]string
	Triggers, Versioned bool
	Charset             string
}

// IndexTable is one table's rows.
type IndexTable = rowindex.Table

// rowHash is the hash rows are told apart by, the same in every process
// (indexes are kept between runs).
func rowHash(row []byte) uint64 { return xxhash.Sum64(row) }

// indexFormat names the layout of a written index.
const indexFormat = "cairn row index 1"

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

// IndexDump reads a dump made by Dump into a RowIndex.
func IndexDump(ctx context.Context, r io.Reader) (*RowIndex, error) {
	o := newOldRows()
	err := o.read(ctx, r)
	o.finish(err)
	if err != nil {
		return nil, err
	}
	return o.index(), nil
}

// index turns the rows read into a RowIndex.
func (o *oldRows) index() *RowIndex {
	s := o.schema
	x := &RowIndex{Schema: IndexSchema{Sum: s.sum, Tables: s.tables, Creates: s.creates, Triggers: s.triggers, Versioned: s.versioned, Charset: s.charset},
		Tables: map[string]*IndexTable{}}
	for name, t := range o.tables {
		x.Tables[name] = &IndexTable{NoKey: t.keyPos == nil, Hashes: t.hashes, Keys: t.keys, Arena: t.arena}
	}
	return x
}

// fromIndex makes the earlier dump's rows those of an index, all read.
func fromIndex(x *RowIndex) *oldRows {
	o := newOldRows()
	s := x.Schema
	o.schema = &dumpSchema{sum: s.Sum, tables: s.Tables, creates: s.Creates, triggers: s.Triggers, versioned: s.Versioned, charset: s.Charset}
	for name, it := range x.Tables {
		t := &oldTable{hashes: it.Hashes, keys: it.Keys, arena: it.Arena, seen: make(map[uint64]struct{}, len(it.Hashes)), read: 0}
		if !it.NoKey {
			t.keyPos = []int{} // not used past reading: the keys are in the arena
		}
		o.tables[name] = t
		o.publish(t)
		t.complete = true
	}
	o.done = true
	return o
}

// appendKey appends row's primary key, `(…)` of the fields at keyPos, to
// arena; false when the row has fewer fields.
func appendKey(arena, row []byte, keyPos []int) ([]byte, bool) {
	fields, err := leadingFields(row, slices.Max(keyPos)+1)
	if err != nil || len(fields) <= slices.Max(keyPos) {
		return arena, false
	}
	arena = append(arena, '(')
	for i, p := range keyPos {
		if i > 0 {
			arena = append(arena, ',')
		}
		arena = append(arena, fields[p]...)
	}
	return append(arena, ')'), true
}

// indexer collects a dump's rows as an IndexTable per table, as Diff
// reads the new dump.
type indexer struct {
	schema *dumpSchema
	tables map[string]*IndexTable
	cur    *IndexTable
	name   string
	keyPos []int
}

func (ix *indexer) row(name string, row []byte, h uint64) {
	if ix.cur == nil || name != ix.name {
		ix.cur = &IndexTable{Keys: []uint32{0}}
		ix.tables[name], ix.name = ix.cur, name
		ix.keyPos, _, _ = primaryKey(ix.schema.creates[name])
		ix.cur.NoKey = ix.keyPos == nil
	}
	t := ix.cur
	t.Hashes = append(t.Hashes, h)
	if !t.NoKey {
		var ok bool
		if t.Arena, ok = appendKey(t.Arena, row, ix.keyPos); !ok {
			t.NoKey = true
		}
	}
	t.Keys = append(t.Keys, uint32(len(t.Arena)))
}

func (ix *indexer) index() *RowIndex {
	s := ix.schema
	return &RowIndex{Schema: IndexSchema{Sum: s.sum, Tables: s.tables, Creates: s.creates, Triggers: s.triggers, Versioned: s.versioned, Charset: s.charset},
		Tables: ix.tables}
}
