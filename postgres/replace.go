package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/sidedb"
)

// ErrMismatch means a loaded copy does not match the snapshot's statistics.
var ErrMismatch = cairn.ErrMismatch

// ErrInUse means other sessions are connected to the database to replace.
var ErrInUse = cairn.ErrInUse

// ReplaceOptions tune Replace.
type ReplaceOptions struct {
	// Terminate ends other sessions connected to the target at the swap,
	// instead of refusing to swap while there are any.
	Terminate bool
	// LockWait bounds each wait of the swap's renames for a lock on the
	// target database (lock_timeout): an open transaction elsewhere that
	// commented on or altered it, a CREATE DATABASE copying it. Without a
	// bound, new connections to the site's database queue behind the
	// rename for as long. 0 is DefaultLockWait; the wait is tried three
	// times, a second apart.
	LockWait time.Duration
	// InPlace restores inside the target database even when a scratch
	// database could be made (see replaceInPlace): what a restore does
	// for a user without CREATEDB.
	InPlace bool
}

// DefaultLockWait is the swap's bound when ReplaceOptions gives none.
const DefaultLockWait = 5 * time.Second

// Replace makes the database c names hold the dump, safely: the dump is
// loaded (in one transaction, as the target's owner, so the application's
// role keeps owning its tables) into a scratch database, checked against
// verify, and only then swapped in by renaming databases. Until the swap any
// failure or cancellation leaves the target as it was and removes the
// scratch database. c's user needs CREATEDB and must own the target or be
// a superuser.
func Replace(ctx context.Context, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions) error {
	return replace(ctx, c, dump, nil, verify, o)
}

// ReplaceParts is Replace of a dump in parts (see DumpParts), loaded into
// the scratch database by its parts: the schema, then the two parts of
// rows at once (each in a transaction of its own, its tables truncated
// there first so that COPY … FREEZE may write them frozen), then the
// keys and indexes. In place (see replaceInPlace), or of another number
// of parts, the parts load one after the other.
func ReplaceParts(ctx context.Context, c Config, parts []io.Reader, verify cairn.Verify, o ReplaceOptions) error {
	return replace(ctx, c, io.MultiReader(parts...), parts, verify, o)
}

// replace is Replace, of dump, or by its parts if parts is a dump in
// parts.
func replace(ctx context.Context, c Config, dump io.Reader, parts []io.Reader, verify cairn.Verify, o ReplaceOptions) (err error) {
	maint := c
	maint.Database = "postgres"
	conn, err := maint.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	owner, encoding, collate, ctype := c.User, "UTF8", "", ""
	exists := true
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
		FROM pg_database WHERE datname = $1`, c.Database).Scan(&owner, &encoding, &collate, &ctype)
	if errors.Is(err, pgx.ErrNoRows) {
		exists, err = false, nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", c, err)
	}
	if exists && o.InPlace {
		return replaceInPlace(ctx, c, dump, verify, o, owner)
	}
	if err := dropLeftovers(ctx, conn, c.Database); err != nil {
		return err
	}
	scratch, old := sidedb.Name(c.Database, "new"), sidedb.Name(c.Database, "old")
	create := "CREATE DATABASE " + ident(scratch) + " OWNER " + ident(owner) + " TEMPLATE template0 ENCODING " + literal(encoding)
	if collate != "" {
		create += " LC_COLLATE " + literal(collate) + " LC_CTYPE " + literal(ctype)
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		var pe *pgconn.PgError
		if exists && errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege: no CREATEDB
			return replaceInPlace(ctx, c, dump, verify, o, owner)
		}
		return fmt.Errorf("create scratch database %s: %w", scratch, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn.Exec(cctx, "DROP DATABASE IF EXISTS "+ident(scratch)+" WITH (FORCE)") //nolint:errcheck
	}()

	sc := c
	sc.Database = scratch
	var known map[string]TableStat // taken during the load
	if len(parts) == 4 {
		if known, err = loadParts(ctx, sc, owner, parts); err != nil {
			return err
		}
	} else if err := loadAs(ctx, sc, owner, dump); err != nil {
		return err
	}
	if err := check(ctx, sc, verify, known); err != nil {
		return err
	}
	// Renaming the database keeps its rows' xmins: its tables'
	// fingerprints now are what the load left.
	cairn.TraceSwapping(ctx, func() (map[string]string, error) {
		prints, _, err := UpdateTimes(ctx, sc)
		return prints, err
	})
	ourSessionsGone(ctx, conn, scratch)
	if !exists {
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(scratch)+" RENAME TO "+ident(c.Database)); err != nil {
			return fmt.Errorf("rename %s to %s: %w", scratch, c.Database, err)
		}
		return nil
	}
	if err := renameAway(ctx, conn, c.Database, old, o); err != nil {
		return err
	}
	// From here finish whatever ctx says: the target is renamed away.
	fctx := context.Background()
	if _, err := conn.Exec(fctx, "ALTER DATABASE "+ident(scratch)+" RENAME TO "+ident(c.Database)); err != nil {
		if _, rerr := conn.Exec(fctx, "ALTER DATABASE "+ident(old)+" RENAME TO "+ident(c.Database)); rerr != nil {
			return fmt.Errorf("swap %s: %w; putting the old database back failed too (%v): it is %s now", c.Database, err, rerr, old)
		}
		return fmt.Errorf("swap %s: %w (the old database is back in place)", c.Database, err)
	}
	// The previous database as it was renamed away (no session was
	// left on it): what the site wrote to it up to the swap.
	cairn.TraceReplaced(ctx, func() (map[string]string, error) {
		oc := c
		oc.Database = old
		prints, _, err := UpdateTimes(ctx, oc) // given up, as the user may: the swap is done
		return prints, err
	})
	if _, err := conn.Exec(fctx, "DROP DATABASE "+ident(old)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("the new database is in place, but dropping the previous one (%s) failed: %w", old, err)
	}
	return nil
}

// renameAway renames the target to old once no other session is
// connected to it, waiting for a lock on it at most the bound each time.
func renameAway(ctx context.Context, conn *pgx.Conn, db, old string, o ReplaceOptions) error {
	wait := o.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET lock_timeout = %d", wait.Milliseconds())); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), "RESET lock_timeout") //nolint:errcheck
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if err := makeIdle(ctx, conn, db, o.Terminate); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "ALTER DATABASE "+ident(db)+" RENAME TO "+ident(old))
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55P03" { // lock_not_available
			if err != nil {
				return fmt.Errorf("swap %s: %w", db, err)
			}
			return nil
		}
		if attempt == attempts {
			return lockHolders(ctx, conn, db, wait, attempts)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // the site's connections go on
		}
	}
}

// ourSessionsGone waits, a little, until the server has ended the
// sessions cairn had on db and closed: the backends end after their
// clients go, and a rename that finds one still there sleeps a tenth of a
// second before it looks again.
func ourSessionsGone(ctx context.Context, conn *pgx.Conn, db string) {
	for range 500 { // a second at most
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db).Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// lockHolders is the error of a swap that could not lock the target,
// naming the sessions that hold locks on it.
func lockHolders(ctx context.Context, conn *pgx.Conn, db string, wait time.Duration, attempts int) error {
	rows, err := conn.Query(ctx, `SELECT a.pid, coalesce(a.usename, ''), coalesce(host(a.client_addr), 'local'), coalesce(a.datname, ''),
		coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.xact_start)::int, 0), coalesce(a.query, '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.granted AND l.locktype = 'object' AND l.classid = 'pg_database'::regclass
		AND l.objid = (SELECT oid FROM pg_database WHERE datname = $1) AND l.pid <> pg_backend_pid()
		ORDER BY a.pid`, db)
	var held []string
	if err == nil {
		for rows.Next() {
			var pid, secs int
			var user, host, dbname, state, q string
			if rows.Scan(&pid, &user, &host, &dbname, &state, &secs, &q) == nil {
				if len(q) > 100 {
					q = q[:100] + "…"
				}
				held = append(held, fmt.Sprintf("session %d (%s@%s, database %s, %s, in a transaction for %ds, last query %q)", pid, user, host, dbname, state, secs, q))
			}
		}
		rows.Close()
	}
	msg := fmt.Sprintf("%v: another session holds a lock on database %s (an open transaction that altered or commented on it, or a CREATE DATABASE copying it), so the swap could not rename it (waited %s, %d times; connections to it waited no longer than that each time). It was left as it was", ErrInUse, db, wait, attempts)
	if len(held) > 0 {
		msg += ". Holding it:\n  " + strings.Join(held, "\n  ")
	}
	return &inUseError{msg + "\nTry: end that transaction (pg_terminate_backend(PID) ends the session) and restore again, or --lock-wait to wait longer"}
}

// schemaHolders is the error of an in-place restore whose schema renames
// could not lock what they needed within wait, naming the sessions that
// hold locks on the target's tables or schemas.
func schemaHolders(ctx context.Context, conn *pgx.Conn, db string, wait time.Duration) error {
	rows, err := conn.Query(ctx, `SELECT DISTINCT a.pid, coalesce(a.usename, ''), coalesce(host(a.client_addr), 'local'),
		coalesce(a.state, ''), coalesce(extract(epoch FROM now() - a.xact_start)::int, 0), coalesce(a.query, '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.granted AND l.pid <> pg_backend_pid() AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND (l.locktype = 'relation' AND l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%')
		OR l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass)
		ORDER BY a.pid`)
	var held []string
	if err == nil {
		for rows.Next() {
			var pid, secs int
			var user, host, state, q string
			if rows.Scan(&pid, &user, &host, &state, &secs, &q) == nil {
				if len(q) > 100 {
					q = q[:100] + "…"
				}
				held = append(held, fmt.Sprintf("session %d (%s@%s, %s, in a transaction for %ds, last query %q)", pid, user, host, state, secs, q))
			}
		}
		rows.Close()
	}
	msg := fmt.Sprintf("%v: other sessions hold locks on the tables of %s (open transactions that read or wrote them), so its schemas could not be swapped within %s. It was left as it was (the load's transaction is rolled back)", ErrInUse, db, wait)
	if len(held) > 0 {
		msg += ". Holding them:\n  " + strings.Join(held, "\n  ")
	} else {
		msg += "; no session holding them could be seen (a role that is not a superuser sees only its own sessions' queries)"
	}
	return &inUseError{msg + "\nTry: end those transactions (pg_terminate_backend(PID) ends a session) and restore again, or --lock-wait to wait longer"}
}

// inUseError is ErrInUse with its own message.
type inUseError struct{ msg string }

func (e *inUseError) Error() string { return e.msg }
func (e *inUseError) Unwrap() error { return ErrInUse }

// makeIdle refuses, or ends, other sessions on db.
func makeIdle(ctx context.Context, conn *pgx.Conn, db string, terminate bool) error {
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !terminate {
		return fmt.Errorf("%w: %d other session(s) are connected to %s, so it was left as it was. Try: stop the application (or its workers) first, or let cairn end those sessions", ErrInUse, n, db)
	}
	_, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)
	return err
}

// dropLeftovers drops the scratch databases a killed restore of target
// left behind. The caller holds the target's restore lock.
func dropLeftovers(ctx context.Context, conn *pgx.Conn, target string) error {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", sidedb.Like(target, "new"))
	if err != nil {
		return fmt.Errorf("look for scratch databases left beside %s: %w", target, err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for scratch databases left beside %s: %w", target, err)
	}
	for _, s := range left {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(s)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop scratch database %s left by an interrupted restore: %w", s, err)
		}
	}
	return nil
}

// check verifies c's tables, those of known as they are there.
func check(ctx context.Context, c Config, verify cairn.Verify, known map[string]TableStat) error {
	got, err := statsBut(ctx, c, true, known)
	if err != nil {
		return err
	}
	return verify(withOldNames(got))
}

func ident(s string) string   { return pgx.Identifier{s}.Sanitize() }
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// loadAs loads dump into c as owner (objects are created by the owner, as
// in the original database), its backslash commands (\connect…) refused:
// it loads into c and nowhere else.
func loadAs(ctx context.Context, c Config, owner string, dump io.Reader) error {
	setRole := strings.NewReader("SET ROLE " + ident(owner) + ";\n")
	if psql, err := runtool.Find("apt-get install postgresql-client", "psql"); err == nil {
		r := restricted(ctx, psql, dump)
		defer r.Close() // ends its filter should psql stop reading early
		dump = r
	}
	return Load(ctx, c, io.MultiReader(setRole, dump))
}

// loadParts loads a dump in parts (see DumpParts) into the scratch
// database c: the schema, the two parts of rows at once (by cairn: see
// loadRows), each followed by its tables' keys and indexes, then the rest
// of the schema after the data (see postData). It returns the stats of
// the tables the parts held, taken once their indexes were built (see
// afterRows).
func loadParts(ctx context.Context, c Config, owner string, parts []io.Reader) (map[string]TableStat, error) {
	if err := loadSchema(ctx, c, owner, parts[0]); err != nil {
		return nil, fmt.Errorf("the schema: %w", err)
	}
	text, err := io.ReadAll(io.LimitReader(parts[3], postDataMax+1))
	if err != nil {
		return nil, fmt.Errorf("the keys and indexes: %w", err)
	}
	post := splitPostData("") // too large to read ahead: all of it after the rows, as it comes
	if len(text) <= postDataMax {
		post = splitPostData(string(text))
	}
	after := newAfterRows(post, c, owner, 2)
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts[1:3] {
		g.Go(func() error {
			conn, tables, err := rowsOn(gctx, c, owner, p)
			after.loaded(tables, err)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background()) //nolint:errcheck // ending the session ends what it runs
			return after.work(gctx, conn)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("the rows: %w", err)
	}
	rest := post.rest()
	if len(text) > postDataMax {
		rest = io.MultiReader(bytes.NewReader(text), parts[3])
	}
	if err := loadSchema(ctx, c, owner, rest); err != nil {
		return nil, fmt.Errorf("the keys and indexes: %w", err)
	}
	return after.stats, nil
}
