package mysql

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

// ErrNoDelta means two dumps cannot be turned into one another row by row
// (their schemas differ, a changed table has no primary key or is not
// InnoDB, there are triggers, or too much changed): load the new dump whole.
var ErrNoDelta = errors.New("no row-by-row delta")

// A Delta is what changed between two dumps of one database made by Dump:
// for each table, the rows of the old dump the new one lacks (gone, or
// changed) and the rows of the new dump the old one lacks (new, or
// changed). Rows are the dump's own text, `(…)`.
type Delta struct {
	Tables []TableDelta // the tables that changed, in the new dump's order
}

// TableDelta is one table's part of a Delta.
type TableDelta struct {
	Name           string
	Create         string // the table's CREATE TABLE statement, from the new dump
	Removed, Added [][]byte
}

// Rows counts the rows the delta removes and adds.
func (d *Delta) Rows() (removed, added int) {
	for _, t := range d.Tables {
		removed += len(t.Removed)
		added += len(t.Added)
	}
	return removed, added
}

// Diff computes the delta from the dump openOld gives to the one newer
// streams, which openNew gives again once it has streamed (the first pass
// keeps up with the stream: it only hashes rows). It reads each dump
// twice, the two side by side, keeps 8 bytes per row of each, and the
// changed rows up to limit bytes of them: beyond that it returns
// ErrNoDelta, as it does when the dumps' schemas (everything but rows)
// differ or hold triggers.
func Diff(ctx context.Context, openOld, openNew func() (io.ReadCloser, error), newer io.Reader, limit int64) (*Delta, error) {
	seed := maphash.MakeSeed()
	var oldSet, newSet map[string][]uint64
	var oldSchema, newSchema *dumpSchema
	err := both(
		func() (err error) {
			newSet, newSchema, err = hashRows(ctx, seed, newer)
			return err
		},
		func() error {
			old, err := openOld()
			if err != nil {
				return err
			}
			defer old.Close()
			if oldSet, oldSchema, err = hashRows(ctx, seed, old); err != nil {
				return fmt.Errorf("read the earlier dump: %w", err)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	if oldSchema.sum != newSchema.sum {
		return nil, fmt.Errorf("%w: the schema changed", ErrNoDelta)
	}
	if newSchema.triggers {
		return nil, fmt.Errorf("%w: the database has triggers", ErrNoDelta)
	}
	if newSchema.versioned {
		return nil, fmt.Errorf("%w: the database has system-versioned tables", ErrNoDelta)
	}
	var mu sync.Mutex
	var kept int64
	// changed collects the rows of the dump open gives that other lacks.
	changed := func(open func() (io.ReadCloser, error), other map[string][]uint64, to map[string][][]byte) func() error {
		return func() error {
			r, err := open()
			if err != nil {
				return err
			}
			defer r.Close()
			return scanRows(r, func(table string, row []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if _, ok := slices.BinarySearch(other[table], maphash.Bytes(seed, row)); ok {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if kept += int64(len(row)); kept > limit {
					return fmt.Errorf("%w: more than %d bytes of rows changed", ErrNoDelta, limit)
				}
				to[table] = append(to[table], bytes.Clone(row))
				return nil
			}, nil)
		}
	}
	removed, added := map[string][][]byte{}, map[string][][]byte{}
	if err := both(changed(openOld, newSet, removed), changed(openNew, oldSet, added)); err != nil {
		return nil, err
	}
	d := &Delta{}
	for _, name := range newSchema.tables {
		if len(added[name]) == 0 && len(removed[name]) == 0 {
			continue
		}
		create := newSchema.creates[name]
		if !strings.Contains(create, "ENGINE=InnoDB") {
			return nil, fmt.Errorf("%w: table %s is not InnoDB", ErrNoDelta, name)
		}
		d.Tables = append(d.Tables, TableDelta{Name: name, Create: create, Removed: removed[name], Added: added[name]})
	}
	return d, nil
}

// hashRows hashes every row of a dump, per table (sorted), and sums up its
// schema.
func hashRows(ctx context.Context, seed maphash.Seed, r io.Reader) (map[string][]uint64, *dumpSchema, error) {
	all := map[string][]uint64{}
	schema := newDumpSchema()
	err := scanRows(r, func(table string, row []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		all[table] = append(all[table], maphash.Bytes(seed, row))
		return nil
	}, schema.line)
	for _, hs := range all {
		slices.Sort(hs)
	}
	return all, schema, err
}

// both runs f and g side by side and returns the first error.
func both(f, g func() error) error {
	errs := make(chan error, 1)
	go func() { errs <- g() }()
	err := f()
	return errors.Join(err, <-errs)
}

// dumpSchema sums up a dump's lines other than rows: comments aside, two
// dumps whose sums agree have the same tables, columns, keys, views,
// routines and triggers.
type dumpSchema struct {
	h         maphash.Hash
	sum       uint64
	tables    []string          // in dump order
	creates   map[string]string // table → CREATE TABLE
	create    []byte            // the CREATE TABLE being read
	triggers  bool
	versioned bool // a table WITH SYSTEM VERSIONING
}

func newDumpSchema() *dumpSchema {
	s := &dumpSchema{creates: map[string]string{}}
	s.h.SetSeed(schemaSeed)
	return s
}

var schemaSeed = maphash.MakeSeed()

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
	s.h.WriteByte('\n')
	s.sum = s.h.Sum64()
	if bytes.Contains(line, []byte(" TRIGGER ")) {
		s.triggers = true
	}
	if bytes.Contains(line, []byte("WITH SYSTEM VERSIONING")) {
		s.versioned = true
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
// each other line (if not nil).
func scanRows(r io.Reader, row func(table string, row []byte) error, other func(line []byte)) error {
	lines := lineReader{in: bufio.NewReaderSize(r, 1<<20)}
	table := ""
	for {
		line, err := lines.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if table == "" {
			if !bytes.HasPrefix(line, insertPrefix) {
				if other != nil {
					other(line)
				}
				continue
			}
			name, rest, ok := sqlident.CutBackquoted(line[len("INSERT INTO "):])
			i := bytes.Index(rest, []byte("VALUES"))
			if !ok || i < 0 {
				return fmt.Errorf("line %d: an INSERT cairn cannot read", lines.n)
			}
			if bytes.HasPrefix(rest, []byte(" (")) {
				// Generated or invisible columns: rows are not whole.
				return fmt.Errorf("%w: table %s is dumped with a column list", ErrNoDelta, name)
			}
			table, line = name, rest[i+len("VALUES"):]
		}
		done, err := splitRows(line, func(r []byte) error { return row(table, r) })
		if err != nil {
			return fmt.Errorf("line %d: %w", lines.n, err)
		}
		if done {
			table = ""
		}
	}
}

// splitRows calls fn for each row on one line of an INSERT's values and
// reports whether the statement ended. Values hold no parentheses outside
// strings, so a row ends at the first ')' outside quotes.
func splitRows(p []byte, fn func(row []byte) error) (done bool, err error) {
	for i := 0; ; {
		if i, done, err = nextRow(p, i); done || err != nil || i == len(p) {
			return done, err
		}
		start := i
		for i++; ; {
			j := bytes.IndexAny(p[i:], "')")
			if j < 0 {
				return false, errors.New("a row is cut off at the end of its line")
			}
			i += j
			if p[i] == ')' {
				i++
				break
			}
			if i, err = skipString(p, i); err != nil {
				return false, err
			}
		}
		if err := fn(p[start:i]); err != nil {
			return false, err
		}
	}
}

// nextRow skips what stands between rows from p[i] on and returns where
// the next row's '(' is, or len(p) when the line ends first, or done at
// the statement's ';'.
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

// splitFields cuts a row `(a,'b',…)` into its literals.
func splitFields(row []byte) ([][]byte, error) {
	p := row[1 : len(row)-1]
	var out [][]byte
	start := 0
	for i := 0; i <= len(p); {
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
// cairn.ErrMismatch). Rows are
// written as d has them: rewrite them first if need be. Readers see the
// database before or after, never between. The tables must be InnoDB and
// without triggers (Diff makes sure).
//
// With a guard (each table's UPDATE_TIME, as UpdateTimes gave it when the
// caller decided the database still held the delta's base), the
// transaction is rolled back with ErrNoDelta should any table have changed
// since.
func ApplyDelta(ctx context.Context, c Config, d *Delta, want map[string]int64, guard map[string]string) (err error) {
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
	for _, q := range []string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'", "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO'", "SET foreign_key_checks = 0"} {
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
		if err := applyTable(ctx, tx, t, want); err != nil {
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
// added rows, in tx, then checks its row count against want.
func applyTable(ctx context.Context, tx *sql.Tx, t TableDelta, want map[string]int64) error {
	const batch = 1 << 20 // bytes of SQL a statement
	pos, names, err := primaryKey(t.Create)
	if err != nil {
		return err
	}
	keyCols := make([]string, len(names))
	for i, n := range names {
		keyCols[i] = quoteIdent(n)
	}
	del := "DELETE FROM " + quoteIdent(t.Name) + " WHERE (" + strings.Join(keyCols, ",") + ") IN ("
	var q strings.Builder
	end := ")"
	flush := func() error {
		if q.Len() == 0 {
			return nil
		}
		q.WriteString(end)
		_, err := tx.ExecContext(ctx, q.String())
		q.Reset()
		if err != nil {
			return fmt.Errorf("change table %s: %w%s", t.Name, err, hint(err.Error()))
		}
		return nil
	}
	for _, row := range t.Removed {
		fields, err := splitFields(row)
		if err != nil || len(fields) <= slices.Max(pos) {
			return fmt.Errorf("%w: a row of %s cairn cannot read", ErrNoDelta, t.Name)
		}
		if q.Len() == 0 {
			q.WriteString(del)
		} else {
			q.WriteByte(',')
		}
		q.WriteByte('(')
		for i, p := range pos {
			if i > 0 {
				q.WriteByte(',')
			}
			q.Write(fields[p])
		}
		q.WriteByte(')')
		if q.Len() > batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	end = ""
	for _, row := range t.Added {
		if q.Len() == 0 {
			q.WriteString("INSERT INTO " + quoteIdent(t.Name) + " VALUES ")
		} else {
			q.WriteByte(',')
		}
		q.Write(row)
		if q.Len() > batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(t.Name)).Scan(&n); err != nil {
		return fmt.Errorf("count rows of %s: %w", t.Name, err)
	}
	if w, ok := want[t.Name]; !ok || n != w {
		return fmt.Errorf("%w (%w): table %s would hold %d rows, the snapshot %d; nothing was changed", ErrNoDelta, cairn.ErrMismatch, t.Name, n, w)
	}
	return nil
}

// unchangedSince fails with ErrNoDelta when a table of the schema changed
// since guard's UPDATE_TIMEs were read.
func unchangedSince(ctx context.Context, tx *sql.Tx, schema string, guard map[string]string) error {
	rows, err := tx.QueryContext(ctx, "SELECT TABLE_NAME, COALESCE(DATE_FORMAT(UPDATE_TIME, '%Y-%m-%d %H:%i:%s'), '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", schema)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, at string
		if err := rows.Scan(&name, &at); err != nil {
			return err
		}
		if g, ok := guard[name]; !ok || g != at {
			return fmt.Errorf("%w: table %s changed meanwhile", ErrNoDelta, name)
		}
	}
	return rows.Err()
}

// UpdateTimes returns when each base table of the database c names last
// changed (InnoDB's UPDATE_TIME, to the second), as the server can vouch
// for it: "" where it cannot (the server restarted since, or the table
// changed in the current second, which a later change could share). It
// waits, up to a little over two seconds, for the current second to pass
// when a table changed in it.
func UpdateTimes(ctx context.Context, c Config) (map[string]string, error) {
	db, err := c.open()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for try := 0; ; try++ {
		rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME, COALESCE(DATE_FORMAT(UPDATE_TIME, '%Y-%m-%d %H:%i:%s'), ''), UPDATE_TIME IS NOT NULL AND UPDATE_TIME >= NOW() FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", c.Database)
		if err != nil {
			return nil, fmt.Errorf("%s: %w%s", c, err, hint(err.Error()))
		}
		times, recent := map[string]string{}, false
		for rows.Next() {
			var name, at string
			var now bool
			if err := rows.Scan(&name, &at, &now); err != nil {
				rows.Close()
				return nil, err
			}
			if now {
				at, recent = "", true
			}
			times[name] = at
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if !recent || try == 25 {
			return times, nil
		}
		select { // until the server's clock is past that second
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
