package postgres

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// A dump in parts (DumpParts) is four pg_dumps of one snapshot, the one a
// control connection exports (pg_export_snapshot, held open until every
// pg_dump has ended; each takes it with --snapshot): the schema before the
// data (--section=pre-data, cairn's key header ahead of it), the rows in
// two parts at once (--section=data: the largest tables, about half the
// data, by --table, and everything else by --exclude-table-data), and the
// schema after the data (--section=post-data: keys, indexes, constraints,
// triggers). Their outputs one after the other are a plain dump that psql
// loads in one transaction, as Dump's: the parts' own \restrict lines are
// each dropped (see filterCopies).

// DumpConnections is how many pg_dumps read a database's rows at once.
const DumpConnections = 2

// partedMin is the least data worth dumping in parts (unless the DSN
// asks for parts: ?connections=2).
const partedMin = 32 << 20

// DumpParts is Dump on two connections at once, inside one snapshot (see
// above). parts(n) gives the n writers; why says, when the dump is one
// part only, why (too small, one table, or ?connections=1).
func DumpParts(ctx context.Context, c Config, parts func(n int) []io.Writer) (why string, err error) {
	if c.Connections == 1 {
		return "one connection asked for", Dump(ctx, c, parts(1)[0])
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", c, err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", c, err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read only
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return "", fmt.Errorf("dump %s: export a snapshot: %w", c, err)
	}
	big, size, tables, err := largestHalf(ctx, tx)
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", c, err)
	}
	if size < partedMin && c.Connections == 0 || tables < 2 {
		tx.Rollback(context.Background()) //nolint:errcheck // Dump takes its own snapshot
		return "smaller than 32 MiB, or one table", Dump(ctx, c, parts(1)[0])
	}
	keys, err := primaryKeys(ctx, c)
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", c, err)
	}
	ws := parts(4)
	at := "--snapshot=" + snapshot
	var only, others []string
	for _, t := range big {
		only, others = append(only, "--table="+t), append(others, "--exclude-table-data="+t)
	}
	args := [][]string{
		{at, "--section=pre-data"},
		append([]string{at, "--section=data"}, others...),
		append([]string{at, "--section=data", "--strict-names"}, only...),
		{at, "--section=post-data"},
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range ws {
		g.Go(func() error {
			out := w
			if i == 0 {
				out = &prefixed{w: w, prefix: keys}
			}
			if err := pgDump(gctx, c, out, args[i]...); err != nil {
				return err
			}
			return closePart(w)
		})
	}
	return "", g.Wait()
}

// closePart closes a part's writer that is an io.Closer, its part written
// whole (see cairn.PartedDumper).
func closePart(w io.Writer) error {
	if c, ok := w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// largestHalf lists, in q's snapshot, the largest ordinary tables that
// hold about half the data (as pg_dump patterns), with the data's size
// and the number of tables. Tables of extensions are left to the rest.
// A table another session holds ACCESS EXCLUSIVE (a migration's ALTER
// TABLE) is sized by the planner's estimate, which needs no lock: the
// dump's pg_dumps wait for it, as one pg_dump would, not this query.
func largestHalf(ctx context.Context, q querier) (big []string, total int64, tables int, err error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname,
			CASE WHEN EXISTS (SELECT FROM pg_locks l WHERE l.relation = c.oid AND l.mode = 'AccessExclusiveLock' AND l.granted)
			THEN c.relpages::bigint * current_setting('block_size')::bigint ELSE pg_relation_size(c.oid) END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 3 DESC, 1, 2`)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("list the tables: %w", err)
	}
	type table struct {
		pattern string
		size    int64
	}
	var all []table
	for rows.Next() {
		var schema, name string
		var size int64
		if err := rows.Scan(&schema, &name, &size); err != nil {
			rows.Close()
			return nil, 0, 0, err
		}
		all, total = append(all, table{pattern(schema) + "." + pattern(name), size}), total+size
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, 0, err
	}
	var half int64
	for _, t := range all[:max(0, len(all)-1)] { // the rest keeps a table at least
		if half > 0 && half+t.size > total/2 {
			continue
		}
		big, half = append(big, t.pattern), half+t.size
	}
	return big, total, len(all), nil
}

// pattern is a name as a pg_dump pattern that matches it alone: in
// double quotes, where * ? . and the like are plain characters, with its
// own double quotes doubled.
func pattern(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
