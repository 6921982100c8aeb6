package mysql

import (
	"bufio"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn"
)

// ApplyDelta writes d into the database c names in one transaction: each
// table's removed rows are deleted by primary key, then its added rows
// inserted; before the commit every changed table must hold the number of
// rows want gives it (else nothing is written: ErrNoDelta and
// cairn.ErrMismatch); before gives the tables' counts before, where the
// caller knows them (a large table is then not counted). Rows are
// written as d has them: rewrite them first if need be. The tables must
// be InnoDB and without triggers (Diff makes sure).
//
// The tables it writes are locked (LOCK TABLES … WRITE) from before the
// first change until the second of the commit is over: other sessions
// see them before or after, never between, and a change of theirs comes
// after that second, so that it moves UPDATE_TIME past the one after
// returns. after is each table's UPDATE_TIME as the delta left it: read
// under the lock for the tables written, the guard's for the others.
//
// With a guard (UPDATE_TIMEs, as UpdateTimes gave them when the caller
// decided those tables still held the delta's base), the transaction is
// rolled back with ErrNoDelta should any of those tables have changed
// since.
//
// Its statements wait at most lockWait (0: DefaultLockWait) for the
// tables another session holds: the site's queries on those tables,
// queued behind it, wait no longer.
func ApplyDelta(ctx context.Context, c Config, d *Delta, want, before map[string]int64, guard map[string]string, lockWait time.Duration) (after map[string]string, err error) {
	db, err := c.open()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w%s", c, err, hint(err.Error()))
	}
	defer conn.Close()
	wait := lockWaitSeconds(lockWait)
	// The dump's own session settings; no START TRANSACTION, which would
	// release the table locks: the transaction begins with the first
	// change, under autocommit off.
	for _, q := range append(d.session(), "SET SESSION lock_wait_timeout = "+wait, "SET SESSION innodb_lock_wait_timeout = "+wait, "SET SESSION autocommit = 0") {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
	}
	written := d.written()
	if len(written) > 0 {
		locks := make([]string, len(written))
		for i, t := range written {
			locks[i] = quoteIdent(t) + " WRITE"
		}
		if _, err := conn.ExecContext(ctx, "LOCK TABLES "+strings.Join(locks, ", ")); err != nil {
			var me *driver.MySQLError
			switch {
			case errors.As(err, &me) && (me.Number == 1044 || me.Number == 1142):
				return nil, fmt.Errorf("%w: %s may not lock tables (%v)", ErrNoDelta, c, err)
			case isLockWait(err):
				// A session of the site's holds a table: the whole load's
				// swap waits for it, names it, and may end it (see
				// ReplaceOptions).
				return nil, fmt.Errorf("%w: a table the delta changes is in use (%v)", ErrNoDelta, err)
			}
			return nil, fmt.Errorf("%s: lock the tables the delta changes: %w%s", c, err, hint(err.Error()))
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES") //nolint:errcheck // the connection's end unlocks too
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // the connection's end rolls back too
		}
	}()
	for _, t := range d.Tables {
		if err := applyTable(ctx, conn, t, want, before); err != nil {
			return nil, err
		}
	}
	if guard != nil {
		if err := unchangedSince(ctx, conn, c.Database, guard); err != nil {
			return nil, err
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("%s: commit: %w", c, err)
	}
	// The AUTO_INCREMENT counters as the new dump has them (statements
	// of their own: DDL would end the transaction).
	for _, tc := range d.Counters {
		if _, err := conn.ExecContext(ctx, "ALTER TABLE "+quoteIdent(tc.Table)+tc.Option); err != nil {
			return nil, fmt.Errorf("the rows are in place, but setting the AUTO_INCREMENT counter of %s failed: %w", tc.Table, err)
		}
	}
	if len(written) == 0 {
		return maps.Clone(guard), nil
	}
	// The second of the commit waited out under the lock.
	times, err := settledTimes(ctx, conn, c.Database)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, nil //nolint:nilerr // the delta is in; the caller reads the times itself
	}
	for t, at := range guard {
		if !slices.Contains(written, t) {
			times[t] = at
		}
	}
	return times, nil
}

// written are the tables d changes, its counters' included, sorted.
func (d *Delta) written() []string {
	var ts []string
	for _, t := range d.Tables {
		ts = append(ts, t.Name)
	}
	for _, c := range d.Counters {
		ts = append(ts, c.Table)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// execQuerier is a connection or a transaction.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// applyTable deletes a table's removed rows by primary key and inserts its
// added rows, in tx, then checks its row count against want: counted,
// unless the count before is known (in before) or the table was emptied,
// and every statement changed the rows it named.
func applyTable(ctx context.Context, tx execQuerier, t TableDelta, want, before map[string]int64) error {
	var deleted, inserted int64
	exec := func(q string) error {
		res, err := tx.ExecContext(ctx, q)
		var me *driver.MySQLError
		switch {
		case errors.As(err, &me) && (me.Number == 1062 || me.Number == 1586):
			// A row the delta adds is there already: the table does not
			// hold the delta's base.
			return fmt.Errorf("%w: table %s: %v", ErrNoDelta, t.Name, err)
		case isLockWait(err):
			return fmt.Errorf("%w: table %s is in use (%v)", ErrNoDelta, t.Name, err)
		}
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
	}
	for _, c := range d.Counters {
		emit("ALTER TABLE " + quoteIdent(c.Table) + c.Option) //nolint:errcheck // as above
	}
	emit("SET foreign_key_checks = 1") //nolint:errcheck // as above
	return bw.Flush()
}

// unchangedSince fails with ErrNoDelta when a table guard names changed
// since guard's UPDATE_TIMEs were read.
func unchangedSince(ctx context.Context, tx execQuerier, schema string, guard map[string]string) error {
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
		"FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN "+tableTypes,
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
