package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-backup/cairn"
)

// ApplyDelta writes d into the database c names in one transaction: each
// table's removed rows are deleted by primary key, then its added rows
// copied in, foreign keys checked at the commit; before the commit every
// changed table must hold the number of rows want gives it (else nothing
// is written: ErrNoDelta and cairn.ErrMismatch); before gives the tables'
// counts before, where the caller knows them (a large table is then not
// counted). Rows are written as d has them: rewrite them first if need
// be. Readers see the database before or after, never between. The
// materialized views are refreshed and the sequences set to the new
// dump's values before the commit (a sequence, which a rollback leaves
// as it is, is put back should the commit not happen).
//
// With a guard (fingerprints, as UpdateTimes gave them when the caller
// decided those tables still held the delta's base), the tables are
// locked against writes (reads go on) and the transaction fails with
// ErrNoDelta, changing nothing, should any of them have changed since;
// ApplyDelta then returns every table's fingerprint as of the commit
// (carried forward from the guard's reading by the rows deleted and
// copied in: no table is read again). Each lock is waited for at most
// lockWait (0: DefaultLockWait).
func ApplyDelta(ctx context.Context, c Config, d *Delta, want, before map[string]int64, guard map[string]string, lockWait time.Duration) (after map[string]string, err error) {
	conn, err := c.connectAsDump(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after a commit, a no-op
	if lockWait <= 0 {
		lockWait = DefaultLockWait
	}
	for _, q := range []string{fmt.Sprintf("SET LOCAL lock_timeout = %d", lockWait.Milliseconds()), "SET CONSTRAINTS ALL DEFERRED"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
	}
	var groups map[string]xminCounts
	var xid string
	if guard != nil {
		if groups, err = unchangedSince(ctx, tx, guard); err != nil {
			return nil, err
		}
		if err := tx.QueryRow(ctx, "SELECT (txid_current() % 4294967296)::text").Scan(&xid); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
	}
	for _, t := range d.tables {
		gone, err := applyTable(ctx, tx, t, want, before)
		if err != nil {
			return nil, err
		}
		if g, ok := groups[t.Name]; ok {
			groups[t.Name] = g.after(gone, t.Whole, xid, int64(len(t.Added)))
		}
	}
	for _, q := range d.refreshes {
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", c, q, err)
		}
	}
	// The sequences are set before the commit, the tables still locked:
	// a write waiting for them takes its next value after the new one.
	// A sequence is not rolled back with the transaction: should it not
	// commit, the values are put back.
	undo, err := setSequences(ctx, tx, d.setvals)
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		tx.Rollback(context.Background()) //nolint:errcheck // the connection takes statements again
		for _, q := range undo {
			conn.Exec(context.Background(), q) //nolint:errcheck // the error to tell is the commit's
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			return nil, fmt.Errorf("%w: the rows changed break a foreign key (%s); nothing was changed", ErrNoDelta, pe.Message)
		}
		return nil, fmt.Errorf("%s: commit: %w", c, err)
	}
	if groups == nil {
		return nil, nil
	}
	after = map[string]string{}
	for name, g := range groups {
		after[name] = g.print()
	}
	return after, nil
}

// connectAsDump connects to c in the session settings of a dump's rows.
func (c Config) connectAsDump(ctx context.Context) (*pgx.Conn, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range session {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Close(context.Background())
			return nil, fmt.Errorf("%s: %w", c, err)
		}
	}
	return conn, nil
}

// setSequences runs the dump's setval statements in tx, and returns those
// that put the sequences back as they were.
func setSequences(ctx context.Context, tx pgx.Tx, setvals []string) (undo []string, err error) {
	for _, q := range setvals {
		// SELECT pg_catalog.setval('public.t_id_seq', 42, true);
		args := strings.TrimSuffix(strings.TrimPrefix(q, "SELECT pg_catalog.setval("), ");")
		seq, _, _ := strings.Cut(args, ", ")
		var last int64
		var called bool
		if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+strings.Trim(seq, "'")).Scan(&last, &called); err != nil {
			return undo, fmt.Errorf("read sequence %s: %w", seq, err)
		}
		undo = append(undo, fmt.Sprintf("SELECT pg_catalog.setval(%s, %d, %t)", seq, last, called))
		if _, err := tx.Exec(ctx, q); err != nil {
			return undo, fmt.Errorf("set sequence %s: %w", seq, err)
		}
	}
	return undo, nil
}

// xminCounts are a table's rows per xmin.
type xminCounts map[string]int64

// print sums the counts up as fingerprints has them.
func (g xminCounts) print() string {
	var parts []string
	var total int64
	for xmin, n := range g {
		parts, total = append(parts, xmin+":"+strconv.FormatInt(n, 10)), total+n
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d rows, %016x", total, xxhash.Sum64String(strings.Join(parts, ",")))
}

// after is g once the rows gone (per xmin) are deleted (or all of them,
// whole) and added rows copied in by transaction xid.
func (g xminCounts) after(gone xminCounts, whole bool, xid string, added int64) xminCounts {
	next := xminCounts{}
	if !whole {
		for xmin, n := range g {
			if n -= gone[xmin]; n > 0 {
				next[xmin] = n
			}
		}
	}
	if added > 0 {
		next[xid] += added
	}
	return next
}

// applyTable deletes a table's removed rows by primary key and copies in
// its added rows, in tx, then checks its row count against want: counted,
// unless the count before is known (in before) or the table was emptied,
// and every statement changed the rows it named. It returns the rows
// deleted per xmin.
func applyTable(ctx context.Context, tx pgx.Tx, t TableDelta, want, before map[string]int64) (xminCounts, error) {
	var deleted int64
	gone := xminCounts{}
	err := t.deleteStatements(func(q string) error {
		if t.Whole {
			_, err := tx.Exec(ctx, q)
			return err
		}
		rows, err := tx.Query(ctx, q+" RETURNING xmin::text")
		if err != nil {
			return err
		}
		var xmin string
		_, err = pgx.ForEachRow(rows, []any{&xmin}, func() error {
			gone[xmin]++
			deleted++
			return nil
		})
		return err
	})
	var inserted int64
	if err == nil && len(t.Added) > 0 {
		var tag pgconn.CommandTag
		tag, err = tx.Conn().PgConn().CopyFrom(ctx, &lines{rows: t.Added}, "COPY "+t.Quoted+" "+t.Cols+" FROM STDIN")
		inserted = tag.RowsAffected()
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23") {
			// A key or check the rows as the delta has them break: the
			// whole dump, loaded afresh, does not.
			return nil, fmt.Errorf("%w: changing table %s row by row fails (%s)", ErrNoDelta, t.Name, pe.Message)
		}
		return nil, fmt.Errorf("change table %s: %w", t.Name, err)
	}
	n, known := before[t.Name]
	if t.Whole {
		n, known, deleted = 0, true, 0 // emptied
	}
	if known && deleted == int64(len(t.Removed)) && inserted == int64(len(t.Added)) {
		n += inserted - deleted
	} else if err := tx.QueryRow(ctx, "SELECT count(*) FROM ONLY "+t.Quoted).Scan(&n); err != nil {
		return nil, fmt.Errorf("count rows of %s: %w", t.Name, err)
	}
	if w, ok := want[t.Name]; !ok || n != w {
		return nil, fmt.Errorf("%w (%w): table %s would hold %d rows, the snapshot %d; nothing was changed", ErrNoDelta, cairn.ErrMismatch, t.Name, n, w)
	}
	return gone, nil
}

// lines reads rows as lines.
type lines struct {
	rows [][]byte
	off  int
	nl   bool
}

func (l *lines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && len(l.rows) > 0 {
		if l.nl {
			p[n], l.nl = '\n', false
			n++
			l.rows, l.off = l.rows[1:], 0
			continue
		}
		c := copy(p[n:], l.rows[0][l.off:])
		n, l.off = n+c, l.off+c
		l.nl = l.off == len(l.rows[0])
	}
	if n == 0 && len(l.rows) == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// querier is a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// UpdateTimes gives each table's fingerprint (see Fingerprints), in the
// shape cairn.Incremental has it: a change shows at once.
func UpdateTimes(ctx context.Context, c Config) (map[string]string, time.Duration, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	groups, err := fingerprints(ctx, tx, false)
	if err != nil {
		return nil, 0, err
	}
	prints := map[string]string{}
	for name, g := range groups {
		prints[name] = g.print()
	}
	return prints, 0, nil
}

// fingerprints reads what each table's rows are, by the transactions that
// wrote them: its row count per xmin (see the top of delta.go), summed up
// as a string, for every ordinary table (named schema.table, as Stats
// names them). With lock, the tables are first locked against writes.
func fingerprints(ctx context.Context, q querier, lock bool) (map[string]xminCounts, error) {
	tables, err := listTables(ctx, q)
	if err != nil {
		return nil, err
	}
	// Large objects have no rows to tell their changes by.
	var objects bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_largeobject_metadata)").Scan(&objects); err != nil {
		return nil, fmt.Errorf("look for large objects: %w", err)
	}
	if objects {
		return nil, fmt.Errorf("%w: the database has large objects", ErrNoDelta)
	}
	if lock && len(tables) > 0 {
		quoted := make([]string, 0, len(tables))
		for _, t := range tables {
			quoted = append(quoted, t.quoted)
		}
		if _, err := q.Exec(ctx, "LOCK TABLE ONLY "+strings.Join(quoted, ", ")+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available
				// A whole load swaps tables in without waiting on them.
				return nil, fmt.Errorf("%w: another session holds a lock on a table, in the way of changing rows in place (%s)", ErrNoDelta, pe.Message)
			}
			return nil, fmt.Errorf("lock the tables: %w", err)
		}
	}
	all := map[string]xminCounts{}
	for _, t := range tables {
		rows, err := q.Query(ctx, "SELECT xmin::text, count(*) FROM ONLY "+t.quoted+" GROUP BY xmin")
		if err != nil {
			return nil, fmt.Errorf("read table %s: %w", t.name, err)
		}
		g := xminCounts{}
		var xmin string
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&xmin, &n}, func() error { g[xmin] = n; return nil }); err != nil {
			return nil, fmt.Errorf("read table %s: %w", t.name, err)
		}
		all[t.name] = g
	}
	return all, nil
}

type table struct{ quoted, name string }

// listTables lists the ordinary tables, as Stats does.
func listTables(ctx context.Context, q querier) ([]table, error) {
	rows, err := q.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname), `+nameSQL("n", "c")+`
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.quoted, &t.name)
	})
}

// unchangedSince locks the tables and fails with ErrNoDelta when one
// guard names changed since guard's fingerprints were read; it returns
// every table's rows per xmin.
func unchangedSince(ctx context.Context, tx pgx.Tx, guard map[string]string) (map[string]xminCounts, error) {
	groups, err := fingerprints(ctx, tx, true)
	if err != nil {
		return nil, err
	}
	for name, g := range groups {
		if print, ok := guard[name]; ok && print != g.print() {
			return nil, fmt.Errorf("%w: table %s changed meanwhile", ErrNoDelta, name)
		}
	}
	return groups, nil
}

// Schema fingerprints all a dump of the database holds besides rows and
// sequence values: pg_dump's schema, summed up as Diff sums a dump's.
func Schema(ctx context.Context, c Config) (string, error) {
	s := newDumpSchema()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- scanDump(ctx, pr, s, func(string, *TableInfo, []byte) error { return nil })
		pr.Close()
	}()
	err := pgDump(ctx, c, pw, "--schema-only")
	pw.CloseWithError(err)
	if serr := <-done; err == nil {
		err = serr
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%016x", s.sum()), nil
}

// DumpTables writes, to follow a dump of the database in one transaction
// of psql's, the named tables' rows (named as Stats names them) as they
// are now, in place of what that dump holds of them, and every sequence's
// value; all read in one snapshot. It returns the tables' row counts.
func DumpTables(ctx context.Context, c Config, w io.Writer, names []string) ([]TableStat, error) {
	conn, err := c.connectAsDump(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if len(names) > 0 {
		why, err := unreplaceable(ctx, tx)
		if err != nil {
			return nil, fmt.Errorf("read the constraints of %s: %w", c, err)
		}
		if why != "" {
			return nil, fmt.Errorf("%w: the tables of %s cannot be replaced after a dump of it: %s", ErrNoDelta, c, why)
		}
	}
	io.WriteString(w, cairnStart+"tables dumped again, in place of what the dump above holds of them\n") //nolint:errcheck // the COPY's writes fail alike
	for _, q := range append(session, "SET CONSTRAINTS ALL DEFERRED") {
		fmt.Fprintf(w, "%s;\n", q)
	}
	var stats []TableStat
	for _, name := range names {
		var quoted, cols string
		err := tx.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname), '(' || string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) || ')'
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
			WHERE `+nameSQL("n", "c")+` = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
			GROUP BY 1`, name).Scan(&quoted, &cols)
		if err != nil {
			return nil, fmt.Errorf("dump table %s of %s: %w", name, c, err)
		}
		fmt.Fprintf(w, "DELETE FROM ONLY %s;\nCOPY %s %s FROM stdin;\n", quoted, quoted, cols)
		counted := &lineCounter{w: w}
		if _, err := tx.Conn().PgConn().CopyTo(ctx, counted, "COPY "+quoted+" "+cols+" TO STDOUT"); err != nil {
			return nil, fmt.Errorf("dump table %s of %s: %w", name, c, err)
		}
		if _, err := io.WriteString(w, "\\.\n"); err != nil {
			return nil, err
		}
		stats = append(stats, TableStat{Name: name, Rows: counted.n})
	}
	if err := writeSetvals(ctx, tx, w); err != nil {
		return nil, fmt.Errorf("dump the sequences of %s: %w", c, err)
	}
	// As the end of a dump does: the views are made of the rows above.
	rows, err := tx.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'm' AND c.relispopulated ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list the materialized views of %s: %w", c, err)
	}
	views, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the materialized views of %s: %w", c, err)
	}
	for _, v := range views {
		fmt.Fprintf(w, "REFRESH MATERIALIZED VIEW %s;\n", v)
	}
	_, err = io.WriteString(w, cairnEnd+"\n")
	return stats, err
}

// unreplaceable says why a table of the database cannot be emptied and
// filled again after a dump of it has made its foreign keys and triggers
// ("" when it can): a foreign key checked at once, or with actions (a
// cascade would reach tables not dumped again), a trigger or a rule
// (they would fire on what the rows' replacement does).
func unreplaceable(ctx context.Context, tx pgx.Tx) (string, error) {
	var why string
	err := tx.QueryRow(ctx, `SELECT CASE
		WHEN EXISTS (SELECT FROM pg_constraint WHERE contype = 'f' AND (NOT condeferrable OR confdeltype <> 'a' OR confupdtype <> 'a')) THEN 'a foreign key is not DEFERRABLE, or has ON DELETE or ON UPDATE actions'
		WHEN EXISTS (SELECT FROM pg_trigger WHERE NOT tgisinternal) THEN 'the database has triggers'
		WHEN EXISTS (SELECT FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN' AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)) THEN 'the database has rules'
		ELSE '' END`).Scan(&why)
	return why, err
}

// writeSetvals writes every sequence's value as pg_dump does.
func writeSetvals(ctx context.Context, tx pgx.Tx, w io.Writer) error {
	rows, err := tx.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		return err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, s := range seqs {
		var last int64
		var called bool
		if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+s).Scan(&last, &called); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "SELECT pg_catalog.setval(%s, %d, %t);\n", literal(s), last, called); err != nil {
			return err
		}
	}
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int64
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += int64(bytes.Count(p, []byte{'\n'}))
	return l.w.Write(p)
}
