package mysql

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-backup/cairn"
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
	// Counters are the AUTO_INCREMENT counters to set once the rows are
	// in: of the tables that changed, and of those whose counter moved
	// while their rows did not.
	Counters []TableCounter
}

// TableCounter is a table's AUTO_INCREMENT counter as the new dump has it.
type TableCounter struct {
	Table  string
	Option string // " AUTO_INCREMENT=n", to follow ALTER TABLE t
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
