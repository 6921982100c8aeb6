// Package database opens an environment's databases by their DSNs
// (mysql://, mariadb://, postgres://, postgresql://, sqlite:///path) and
// gives the engines one face, cairn.Database. It adds what every engine
// needs the same way: per-table stats that agree with the dump, taken from
// the dump stream itself while the engine's own stats run beside it.
package database

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/postgres"
	"github.com/cairn-backup/cairn/rewrite"
	"github.com/cairn-backup/cairn/sqlite"
)

// Options tune how databases are replaced.
type Options struct {
	// TerminateSessions lets a restore end the other sessions that keep
	// it from swapping the target (PostgreSQL: those connected to it;
	// MySQL/MariaDB: those holding its tables), instead of refusing.
	TerminateSessions bool
	// LockWait bounds each wait of a swap for the target's locks (MySQL
	// and MariaDB lock_wait_timeout, PostgreSQL lock_timeout): the site's
	// queries never wait behind it longer. 0 is DefaultLockWait.
	LockWait time.Duration
	// Beneath are directories a site's user may change (the
	// environments' files): a SQLite database is never replaced through
	// a link at or below one of them.
	Beneath []string
	// Tunnels reach the servers of DSNs that name an SSH host
	// (?ssh=user@host:port); nil refuses them.
	Tunnels Tunnels
}

// Tunnels reach database servers through SSH hosts (package sshfs's Pool
// does, as ssh -L: nothing is run on the host).
type Tunnels interface {
	// Forward returns a local address (host:port) whose connections lead
	// to addr (host:port as the SSH host l sees it), for the run.
	Forward(ctx context.Context, l cairn.Location, addr string) (string, error)
}

// DefaultLockWait is how long a swap waits at most, each time, for the
// sessions using the target's tables (the engines' own default).
const DefaultLockWait = mysql.DefaultLockWait

// Open returns the database a DSN names. It connects to nothing yet. A
// DSN's ssh=[user@]host[:port] option names the SSH host its server is
// reached through: its host and port are as that host sees them
// (127.0.0.1:3306 is the web server's own MariaDB).
func Open(d cairn.DSN, o Options) (cairn.Database, error) {
	dsn, via, err := splitSSH(d.Reveal())
	if err != nil {
		return nil, err
	}
	scheme, _, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a database DSN. Try: mysql://user:pass@host/db, postgres://user:pass@host/db or sqlite:///path/to/file.db", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	switch strings.ToLower(scheme) {
	case "mysql", "mariadb":
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		if via != nil && c.Socket != "" {
			return nil, fmt.Errorf("%w: %s: a socket is not reached through SSH. Try: the server's host and port as the SSH host sees them (127.0.0.1:3306)", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
		}
		return mysqlDB{c, o, via}, nil
	case "postgres", "postgresql":
		c, err := postgres.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		if via != nil && strings.HasPrefix(c.Host, "/") {
			return nil, fmt.Errorf("%w: %s: a socket is not reached through SSH. Try: the server's host and port as the SSH host sees them (127.0.0.1:5432)", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
		}
		return postgresDB{c, o, via}, nil
	case "sqlite", "sqlite3":
		if via != nil {
			return nil, fmt.Errorf("%w: %s: a SQLite file on another host cannot be dumped through SSH. Try: snapshot it on that host, or leave it out", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
		}
		c, err := sqlite.ParseDSN(strings.Replace(dsn, "sqlite3://", "sqlite://", 1))
		if err != nil {
			return nil, err
		}
		return sqliteDB{c, o}, nil
	}
	return nil, fmt.Errorf("%w: %s: unknown database engine %q (known: mysql, mariadb, postgres, postgresql, sqlite)", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), scheme)
}

// counter is a RowCounter of one engine.
type counter interface {
	io.Writer
	Counts() []cairn.TableStat
}

// countParts has each part's rows counted as it streams: counted gives
// parts' writers through counters of their own, counts sums what they
// counted, per table.
func countParts(parts func(n int) []io.Writer, newCounter func() counter) (counted func(n int) []io.Writer, counts func() []cairn.TableStat) {
	var counters []counter
	counted = func(n int) []io.Writer {
		ws := parts(n)
		for i, w := range ws {
			k := newCounter()
			counters, ws[i] = append(counters, k), countedPart{w, k}
		}
		return ws
	}
	counts = func() []cairn.TableStat {
		sum := map[string]int64{}
		for _, k := range counters {
			for _, t := range k.Counts() {
				sum[t.Name] += t.Rows
			}
		}
		return cairn.TableCounts(sum)
	}
	return counted, counts
}

// countedPart is a part's writer with its counter beside: its Close is
// the writer's (see cairn.PartedDumper).
type countedPart struct {
	w io.Writer
	k counter
}

func (p countedPart) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		return n, err
	}
	return p.k.Write(b)
}

func (p countedPart) Close() error {
	if c, ok := p.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// dumpWithStats runs dump into w through count while stats runs beside it,
// and returns one stat per table: its rows as counted in the dump (so they
// agree with the dump even while the application writes), and the
// engine's checksum when the engine counted the same rows at its moment.
// Empty tables, which the dump holds no rows of, come from stats (which
// may leave large tables uncounted, Rows -1).
func dumpWithStats(ctx context.Context, w io.Writer, count counter,
	dump func(context.Context, io.Writer) error,
	stats func(context.Context) ([]cairn.TableStat, error)) ([]cairn.TableStat, error) {
	return statsBeside(ctx, count.Counts, func(ctx context.Context) error { return dump(ctx, io.MultiWriter(w, count)) }, stats)
}

// statsBeside is dumpWithStats of a dump that counts its rows itself
// (counts says what it counted once it ended): a dump in parts.
func statsBeside(ctx context.Context, counts func() []cairn.TableStat,
	dump func(context.Context) error,
	stats func(context.Context) ([]cairn.TableStat, error)) ([]cairn.TableStat, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		stats []cairn.TableStat
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := stats(sctx)
		ch <- result{s, err}
	}()
	if err := dump(ctx); err != nil {
		cancel()
		<-ch
		return nil, err
	}
	res := <-ch
	if res.err != nil {
		return nil, fmt.Errorf("table stats: %w", res.err)
	}
	counted := map[string]int64{}
	all := counts()
	for _, c := range all {
		counted[c.Name] = c.Rows
	}
	out := make([]cairn.TableStat, 0, len(res.stats))
	seen := map[string]bool{}
	for _, s := range res.stats {
		seen[s.Name] = true
		t := cairn.TableStat{Name: s.Name, Rows: counted[s.Name]}
		if s.Rows == t.Rows {
			t.Checksum = s.Checksum
		}
		out = append(out, t)
	}
	for _, c := range all {
		if !seen[c.Name] { // created while the dump ran
			out = append(out, c)
		}
	}
	return out, nil
}

type mysqlDB struct {
	c   mysql.Config
	o   Options
	via *cairn.Location // the SSH host its server is reached through; nil: none
}

func (d mysqlDB) Engine() string { return "mysql" }
func (d mysqlDB) Name() string   { return d.c.Database }
func (d mysqlDB) String() string { return withSSH(d.c.String(), d.via) }

// conn is the server's settings as this machine reaches it: through a
// tunnel, when it is behind an SSH host.
func (d mysqlDB) conn(ctx context.Context) (mysql.Config, error) {
	c := d.c
	var err error
	c.Host, c.Port, err = reach(ctx, d.o, d.via, c.Host, c.Port)
	return c, err
}

func (d mysqlDB) Dump(ctx context.Context, w io.Writer) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := dumpWithStats(ctx, w, mysql.NewRowCounter(),
		func(ctx context.Context, w io.Writer) error { return mysql.Dump(ctx, c, w) },
		func(ctx context.Context) ([]cairn.TableStat, error) {
			s, err := mysql.Checksums(ctx, c)
			return mysql.Plain(s), err
		})
	return stats, tunnelled(err, d.via, c.Host, c.Port, d.c.Host, d.c.Port)
}

var _ cairn.PartedDumper = mysqlDB{}

// DumpParts is Dump on the DSN's connections (?connections=, else
// mysql.DumpConnections) at once, inside one consistent snapshot (see
// mysql.DumpParts); each part's rows are counted as it streams.
func (d mysqlDB) DumpParts(ctx context.Context, parts func(n int) []io.Writer) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	counted, counts := countParts(parts, func() counter { return mysql.NewRowCounter() })
	stats, err := statsBeside(ctx, counts,
		func(ctx context.Context) error {
			_, err := mysql.DumpParts(ctx, c, c.DumpConnections(), counted)
			return err
		},
		func(ctx context.Context) ([]cairn.TableStat, error) {
			s, err := mysql.Checksums(ctx, c)
			return mysql.Plain(s), err
		})
	return stats, tunnelled(err, d.via, c.Host, c.Port, d.c.Host, d.c.Port)
}

func (d mysqlDB) DumpTables(ctx context.Context, w io.Writer, tables []string) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, t := range tables {
		named[t] = true
	}
	return dumpWithStats(ctx, w, mysql.NewRowCounter(),
		func(ctx context.Context, w io.Writer) error { return mysql.DumpTables(ctx, c, w, tables) },
		func(ctx context.Context) ([]cairn.TableStat, error) {
			s, err := mysql.Checksums(ctx, c)
			s = slices.DeleteFunc(s, func(t mysql.TableStat) bool { return !named[t.Name] })
			return mysql.Plain(s), err
		})
}

func (d mysqlDB) Schema(ctx context.Context) (string, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return "", err
	}
	return mysql.Schema(ctx, c)
}

func (d mysqlDB) Exec(ctx context.Context, sql string) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return mysql.Exec(ctx, c, sql)
}

func (d mysqlDB) Replace(ctx context.Context, dump io.Reader, verify cairn.Verify) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return mysql.Replace(ctx, c, dump, verify, mysql.ReplaceOptions{LockWait: d.o.LockWait, Terminate: d.o.TerminateSessions})
}

var _ cairn.PartedReplacer = mysqlDB{}

func (d mysqlDB) ReplaceParts(ctx context.Context, parts []io.Reader, verify cairn.Verify) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return mysql.ReplaceParts(ctx, c, parts, verify, mysql.ReplaceOptions{LockWait: d.o.LockWait, Terminate: d.o.TerminateSessions})
}

var _ cairn.Incremental = mysqlDB{}

func (d mysqlDB) ApplyDelta(ctx context.Context, ch cairn.Changes, want, before map[string]int64, guard map[string]string) (map[string]string, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	return mysql.ApplyDelta(ctx, c, ch.(mysqlChanges).d, want, before, guard, d.o.LockWait)
}

func (d mysqlDB) UpdateTimes(ctx context.Context, note bool) (map[string]string, time.Duration, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	return mysql.UpdateTimes(ctx, c, note)
}

func (d mysqlDB) IndexDump(ctx context.Context, dump io.Reader) (cairn.RowIndex, error) {
	x, err := mysql.IndexDump(ctx, dump)
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (d mysqlDB) ReadRowIndex(r io.Reader) (cairn.RowIndex, error) {
	x, err := mysql.ReadRowIndex(r)
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (d mysqlDB) Diff(ctx context.Context, openOld func() (io.ReadCloser, error), index cairn.RowIndex, newer io.Reader, whole map[string]bool, limit int64) (cairn.Changes, error) {
	x, _ := index.(*mysql.RowIndex)
	delta, err := mysql.Diff(ctx, openOld, x, newer, whole, limit)
	if err != nil {
		return nil, err
	}
	return mysqlChanges{delta}, nil
}

// mysqlChanges are a mysql.Delta as cairn.Changes.
type mysqlChanges struct{ d *mysql.Delta }

func (c mysqlChanges) Rows() (removed, added int) { return c.d.Rows() }
func (c mysqlChanges) Index() cairn.RowIndex {
	if c.d.Index == nil {
		return nil
	}
	return c.d.Index
}
func (c mysqlChanges) WriteSQL(w io.Writer) error { return c.d.WriteSQL(w) }

func (c mysqlChanges) Tables() []string {
	names := make([]string, len(c.d.Tables))
	for i, t := range c.d.Tables {
		names[i] = t.Name
	}
	return names
}

func (c mysqlChanges) Rewrite(filter func(in io.Reader, out io.Writer) (int64, error)) (int64, error) {
	return c.d.Rewrite(filter)
}

// DialectOf is the SQL dialect of an engine's dumps, for rewrite.
func DialectOf(engine string) rewrite.Dialect {
	if engine == "mysql" {
		return rewrite.MySQL
	}
	return rewrite.Postgres // PostgreSQL, and SQLite's INSERTs
}

type postgresDB struct {
	c   postgres.Config
	o   Options
	via *cairn.Location // see mysqlDB
}

func (d postgresDB) Engine() string { return "postgres" }
func (d postgresDB) Name() string   { return d.c.Database }
func (d postgresDB) String() string { return withSSH(d.c.String(), d.via) }

// conn: see mysqlDB.conn.
func (d postgresDB) conn(ctx context.Context) (postgres.Config, error) {
	c := d.c
	var err error
	c.Host, c.Port, err = reach(ctx, d.o, d.via, c.Host, c.Port)
	return c, err
}

func (d postgresDB) Dump(ctx context.Context, w io.Writer) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := dumpWithStats(ctx, w, postgres.NewRowCounter(),
		func(ctx context.Context, w io.Writer) error { return postgres.Dump(ctx, c, w) },
		func(ctx context.Context) ([]cairn.TableStat, error) { return postgres.Checksums(ctx, c) })
	return stats, tunnelled(err, d.via, c.Host, c.Port, d.c.Host, d.c.Port)
}

var _ cairn.PartedDumper = postgresDB{}

// DumpParts is Dump in parts read at once inside one snapshot (see
// postgres.DumpParts); each part's rows are counted as it streams.
func (d postgresDB) DumpParts(ctx context.Context, parts func(n int) []io.Writer) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	counted, counts := countParts(parts, func() counter { return postgres.NewRowCounter() })
	stats, err := statsBeside(ctx, counts,
		func(ctx context.Context) error {
			_, err := postgres.DumpParts(ctx, c, counted)
			return err
		},
		func(ctx context.Context) ([]cairn.TableStat, error) { return postgres.Checksums(ctx, c) })
	return stats, tunnelled(err, d.via, c.Host, c.Port, d.c.Host, d.c.Port)
}

func (d postgresDB) Exec(ctx context.Context, sql string) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return postgres.Load(ctx, c, strings.NewReader(sql))
}

func (d postgresDB) Replace(ctx context.Context, dump io.Reader, verify cairn.Verify) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return postgres.Replace(ctx, c, dump, verify, postgres.ReplaceOptions{Terminate: d.o.TerminateSessions, LockWait: d.o.LockWait})
}

var _ cairn.PartedReplacer = postgresDB{}

func (d postgresDB) ReplaceParts(ctx context.Context, parts []io.Reader, verify cairn.Verify) error {
	c, err := d.conn(ctx)
	if err != nil {
		return err
	}
	return postgres.ReplaceParts(ctx, c, parts, verify, postgres.ReplaceOptions{Terminate: d.o.TerminateSessions, LockWait: d.o.LockWait})
}

var _ cairn.Incremental = postgresDB{}

func (d postgresDB) UpdateTimes(ctx context.Context, _ bool) (map[string]string, time.Duration, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	return postgres.UpdateTimes(ctx, c)
}

func (d postgresDB) Schema(ctx context.Context) (string, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return "", err
	}
	return postgres.Schema(ctx, c)
}

func (d postgresDB) DumpTables(ctx context.Context, w io.Writer, tables []string) ([]cairn.TableStat, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	return postgres.DumpTables(ctx, c, w, tables)
}

func (d postgresDB) IndexDump(ctx context.Context, dump io.Reader) (cairn.RowIndex, error) {
	x, err := postgres.IndexDump(ctx, dump)
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (d postgresDB) ReadRowIndex(r io.Reader) (cairn.RowIndex, error) {
	x, err := postgres.ReadRowIndex(r)
	if err != nil {
		return nil, err
	}
	return x, nil
}

func (d postgresDB) Diff(ctx context.Context, openOld func() (io.ReadCloser, error), index cairn.RowIndex, newer io.Reader, whole map[string]bool, limit int64) (cairn.Changes, error) {
	x, _ := index.(*postgres.RowIndex)
	delta, err := postgres.Diff(ctx, openOld, x, newer, whole, limit)
	if err != nil {
		return nil, err
	}
	return delta, nil
}

func (d postgresDB) ApplyDelta(ctx context.Context, ch cairn.Changes, want, before map[string]int64, guard map[string]string) (map[string]string, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	return postgres.ApplyDelta(ctx, c, ch.(*postgres.Delta), want, before, guard, d.o.LockWait)
}

type sqliteDB struct {
	c sqlite.Config
	o Options
}

func (d sqliteDB) Engine() string { return "sqlite" }
func (d sqliteDB) Name() string {
	return strings.TrimSuffix(filepath.Base(d.c.Path), filepath.Ext(d.c.Path))
}
func (d sqliteDB) String() string { return d.c.String() }

func (d sqliteDB) Dump(ctx context.Context, w io.Writer) ([]cairn.TableStat, error) {
	return dumpWithStats(ctx, w, sqlite.NewRowCounter(),
		func(ctx context.Context, w io.Writer) error { return sqlite.Dump(ctx, d.c, w) },
		func(ctx context.Context) ([]cairn.TableStat, error) { return sqlite.Stats(ctx, d.c) })
}

func (d sqliteDB) Exec(ctx context.Context, sql string) error {
	return sqlite.Exec(ctx, d.c, sql)
}

func (d sqliteDB) Replace(ctx context.Context, dump io.Reader, verify cairn.Verify) error {
	return sqlite.Replace(ctx, d.c, dump, verify, sqlite.ReplaceOptions{Beneath: d.o.Beneath})
}
