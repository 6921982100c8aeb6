package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
)

// schemaQueries read what a database's dump says besides its rows: its
// tables and views, their columns, keys and checks, routines, triggers
// and events. Row counts, sizes, times and AUTO_INCREMENT counters are
// left out: they move with the rows. Names are ordered byte by byte: two
// that a case-insensitive collation takes for equal (`Case`, `case`)
// would come in any order, and the fingerprint with them.
var schemaQueries = []string{
	`SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME`,
	`SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE,
		CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, COLUMN_COMMENT, GENERATION_EXPRESSION
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME, ORDINAL_POSITION`,
	`SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, INDEX_TYPE, COMMENT
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME, BINARY INDEX_NAME, SEQ_IN_INDEX`,
	`SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
		FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME, BINARY CONSTRAINT_NAME, ORDINAL_POSITION`,
	`SELECT CONSTRAINT_NAME, TABLE_NAME, UPDATE_RULE, DELETE_RULE
		FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME, BINARY CONSTRAINT_NAME`,
	`SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
		FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME, BINARY CONSTRAINT_NAME`,
	`SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE
		FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY BINARY TABLE_NAME`,
	`SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS,
		SECURITY_TYPE, SQL_MODE, ROUTINE_COMMENT, LAST_ALTERED
		FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY ROUTINE_TYPE, BINARY ROUTINE_NAME`,
	`SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, CREATED
		FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY BINARY TRIGGER_NAME`,
	`SELECT EVENT_NAME, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STATUS, LAST_ALTERED
		FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY BINARY EVENT_NAME`,
}

// Schema returns a fingerprint of everything of the database c names that
// its dump holds besides rows (see schemaQueries): two equal fingerprints
// mean the same tables, columns, keys, views, routines, triggers and
// events.
func Schema(ctx context.Context, c Config) (string, error) {
	db, err := c.open()
	if err != nil {
		return "", err
	}
	defer db.Close()
	h := sha256.New()
	for _, q := range schemaQueries {
		if err := hashRows(ctx, db, q, h); err != nil {
			return "", fmt.Errorf("%s: read its schema: %w%s", c, err, hint(err.Error()))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashRows writes every value of q's rows to h, each with its length (and
// NULL told apart from empty).
func hashRows(ctx context.Context, db *sql.DB, q string, h interface{ Write([]byte) (int, error) }) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for _, v := range vals {
			if v == nil {
				h.Write([]byte("N;")) //nolint:errcheck // a hash never fails
				continue
			}
			fmt.Fprintf(h, "%d:", len(v))
			h.Write(v) //nolint:errcheck
		}
		h.Write([]byte("\n")) //nolint:errcheck
	}
	h.Write([]byte("--\n")) //nolint:errcheck
	return rows.Err()
}
