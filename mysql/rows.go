package mysql

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cairn-backup/cairn/internal/sqldump"
	"github.com/cairn-backup/cairn/internal/sqlident"
)

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

// tableOf reads the table's name from its CREATE TABLE.
func tableOf(create string) string {
	name, _, _ := sqlident.CutBackquoted([]byte(strings.TrimPrefix(create, "CREATE TABLE ")))
	return name
}

// leadingFields cuts a row `(a,'b',…)` into its first n literals (n < 0:
// all), through the one dump tokenizer.
func leadingFields(row []byte, n int) ([][]byte, error) { return sqldump.Fields(row, n) }

// inexactKeyTypes are the column types whose values a dump's literal
// does not find again by equality (a FLOAT's 1.1 is not the stored
// single-precision value; a BIT's literal is a number or a string by
// context): a row keyed by one cannot be deleted by its key.
var inexactKeyTypes = map[string]bool{"float": true, "double": true, "real": true, "bit": true}

// errInexactKey is primaryKey's error for a key of an inexact type.
var errInexactKey = errors.New("has a primary key of type")

// keyless is the error for a table that changed and has no primary key
// cairn can delete its rows by.
func keyless(name, create string) error {
	if _, _, err := primaryKey(create); errors.Is(err, errInexactKey) {
		return err
	}
	return fmt.Errorf("%w: table %s changed and has no primary key cairn can use", ErrNoDelta, name)
}

// primaryKey reads the positions of a table's primary key columns from its
// CREATE TABLE, with the columns' names.
func primaryKey(create string) (pos []int, names []string, err error) {
	var cols, types []string
	for _, line := range strings.Split(create, "\n")[1:] {
		line = strings.TrimLeft(line, " ")
		if strings.HasPrefix(line, "`") {
			name, def, ok := sqlident.CutBackquoted([]byte(line))
			if !ok {
				return nil, nil, fmt.Errorf("%w: a column cairn cannot read", ErrNoDelta)
			}
			typ, _, _ := strings.Cut(strings.TrimSpace(string(def)), " ")
			typ, _, _ = strings.Cut(typ, "(")
			cols, types = append(cols, name), append(types, strings.ToLower(typ))
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
			if inexactKeyTypes[types[i]] {
				return nil, nil, fmt.Errorf("%w: table %s %w %s, whose rows cairn cannot find by key", ErrNoDelta, tableOf(create), errInexactKey, types[i])
			}
			pos, names = append(pos, i), append(names, name)
		}
	}
	if len(pos) == 0 {
		return nil, nil, fmt.Errorf("%w: a table has no primary key", ErrNoDelta)
	}
	return pos, names, nil
}
