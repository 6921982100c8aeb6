package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sidedb"
)

// ErrMismatch means a loaded copy does not match the snapshot's statistics.
var ErrMismatch = cairn.ErrMismatch

// Replace makes the database c names hold the dump, safely: the dump is
// loaded into a scratch database beside it and checked by verify (row
// counts, and checksums where both sides have one); only then are the
// tables swapped in with one atomic RENAME TABLE (the target's own moved
// to a holding database, or, those with triggers, renamed aside within
// it), and the views, triggers, routines and events recreated around them (MySQL cannot move those
// between databases). Until the swap, any failure or cancellation leaves
// the target exactly as it was and removes the scratch database.
//
// The swap is the one step that waits for the site's sessions (for the
// metadata locks on the target's tables), and it waits at most
// o.LockWait each time, o.Attempts times: the site's queries, queued
// behind it, never wait longer than that. When it cannot take the
// tables, the error (ErrInUse) names the sessions holding them.
func Replace(ctx context.Context, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions) (err error) {
	return replace(ctx, c, dump, nil, verify, o)
}

// ReplaceParts is Replace of a dump in parts (see DumpParts): into a
// scratch database the parts load at once, each on its own connections
// (the last part's views wait for every other part's tables); inside the
// target (see inPlace) they load one after the other.
func ReplaceParts(ctx context.Context, c Config, parts []io.Reader, verify cairn.Verify, o ReplaceOptions) error {
	return replace(ctx, c, io.MultiReader(parts...), parts, verify, o)
}

// replace is Replace, of dump, or of its parts when there are some.
func replace(ctx context.Context, c Config, dump io.Reader, parts []io.Reader, verify cairn.Verify, o ReplaceOptions) (err error) {
	srv := c
	srv.Database = ""
	db, err := srv.open()
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w%s", c, err, hint(err.Error()))
	}
	charset, collation := "utf8mb4", "utf8mb4_general_ci"
	db.QueryRowContext(ctx, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.Database).Scan(&charset, &collation) //nolint:errcheck // absent target: defaults

	if err := dropLeftovers(ctx, db, c.Database); err != nil {
		return err
	}
	if o.InPlace {
		return replaceInPlace(ctx, db, c, dump, verify, o)
	}
	scratch, old := sidedb.Name(c.Database, "new"), sidedb.Name(c.Database, "old")
	create := fmt.Sprintf(" CHARACTER SET %s COLLATE %s", charset, collation)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(scratch)+create); err != nil {
		if accessDenied(err) {
			// Rights on the target database only: its own tables it is.
			return replaceInPlace(ctx, db, c, dump, verify, o)
		}
		return fmt.Errorf("create scratch database %s: %w", scratch, err)
	}
	swapped := false
	defer func() {
		// Cleanup must run even when ctx is cancelled.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db.ExecContext(cctx, "DROP DATABASE IF EXISTS "+quoteIdent(scratch)) //nolint:errcheck
		if swapped && err == nil {
			db.ExecContext(cctx, "DROP DATABASE IF EXISTS "+quoteIdent(old)) //nolint:errcheck
		}
	}()

	sc := c
	sc.Database = scratch
	load := func() error { return Load(ctx, sc, dump) }
	if len(parts) > 1 {
		load = func() error { return loadParts(ctx, sc, parts) }
	}
	if err := load(); err != nil {
		return err
	}
	if err := check(ctx, sc, verify); err != nil {
		return err
	}
	if err := refuseSequences(ctx, db, scratch); err != nil {
		return err
	}
	objs, err := objects(ctx, db, scratch)
	if err != nil {
		return err
	}
	if err := dropMovable(ctx, db, scratch, objs, nil); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(c.Database)+create); err != nil {
		return fmt.Errorf("create %s: %w", c.Database, err)
	}
	current, err := objects(ctx, db, c.Database)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(old)+create); err != nil {
		return fmt.Errorf("create holding database %s: %w", old, err)
	}
	sw, err := newSwapper(ctx, db, c, o)
	if err != nil {
		db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+quoteIdent(old)) //nolint:errcheck
		return err
	}
	defer sw.close()
	// The one statement that waits for the site's sessions: until it
	// has run the target is untouched.
	aside, err := sw.swap(ctx, c.Database, scratch, old)
	if err != nil {
		db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+quoteIdent(old)) //nolint:errcheck
		return err
	}
	swapped = true
	// From here the new tables are live: finish, whatever ctx says.
	fctx := context.Background()
	if err := sw.putAside(fctx, c.Database, old, aside, current); err != nil {
		return fmt.Errorf("%w. The new tables are in place; the previous ones are kept in database %s, or as %s_* in %s", err, old, asidePrefix, c.Database)
	}
	if err := recreate(fctx, c, scratch, c.Database, objs, sw.lockWait); err != nil {
		return fmt.Errorf("%w. The new tables are in place; the previous ones are kept in database %s", err, old)
	}
	return nil
}

// sequenceAdvice is what to do with a dump that has sequences.
const sequenceAdvice = "Try: restore the files with --only files, and the database by hand from a mariadb-dump of the source"

// refuseSequences fails a load that made one of MariaDB's sequences: a
// table's DEFAULT NEXTVAL() is bound, when the table is made, to the
// sequence of the database it is made in (the scratch one), and would
// name a sequence that no longer exists once the tables are swapped in:
// the site's inserts would fail. The target is left as it was.
func refuseSequences(ctx context.Context, db *sql.DB, schema string) error {
	seqs, err := names(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE'", schema)
	if err != nil || len(seqs) == 0 {
		return err
	}
	return fmt.Errorf("%w: the dump has sequences (%s), which cairn cannot swap in yet (a table's DEFAULT NEXTVAL() stays bound to the scratch database's); the target was left as it was. %s", cairn.ErrInvalidArgument, strings.Join(seqs, ", "), sequenceAdvice)
}

// accessDenied tells the server refusing a statement for want of a
// privilege (ER_DBACCESS_DENIED_ERROR, ER_SPECIFIC_ACCESS_DENIED_ERROR,
// ER_TABLEACCESS_DENIED_ERROR).
func accessDenied(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && (me.Number == 1044 || me.Number == 1227 || me.Number == 1142)
}

// dropLeftovers drops the scratch databases a killed restore of target
// left behind. The caller holds the target's restore lock.
func dropLeftovers(ctx context.Context, db *sql.DB, target string) error {
	left, err := names(ctx, db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", sidedb.Like(target, "new"))
	if err != nil {
		return fmt.Errorf("look for scratch databases left beside %s: %w", target, err)
	}
	for _, s := range left {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(s)); err != nil {
			return fmt.Errorf("drop scratch database %s left by an interrupted restore: %w", s, err)
		}
	}
	return nil
}

// check compares a loaded copy with the snapshot's statistics.
func check(ctx context.Context, c Config, verify cairn.Verify) error {
	got, err := stats(ctx, c, true, nil, c.loadConnections())
	if err != nil {
		return err
	}
	return verify(Plain(got))
}

// Plain drops the view flag.
func Plain(stats []TableStat) []cairn.TableStat {
	out := make([]cairn.TableStat, len(stats))
	for i, s := range stats {
		out[i] = cairn.TableStat{Name: s.Name, Rows: s.Rows, Checksum: s.Checksum}
	}
	return out
}

// object is a view, trigger, routine or event with its definition.
type object struct {
	kind, name, create string
}

type objectSet struct {
	tables []string
	others []object // views first, then triggers, routines, events
}

func (s objectSet) routinesAndEvents() []object {
	var out []object
	for _, o := range s.others {
		if o.kind == "PROCEDURE" || o.kind == "FUNCTION" || o.kind == "EVENT" {
			out = append(out, o)
		}
	}
	return out
}

// objects lists a database's base tables and the definitions of its
// other objects.
func objects(ctx context.Context, db *sql.DB, schema string) (objectSet, error) {
	var s objectSet
	q := []struct{ kind, list, show string }{
		{"VIEW", "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", "SHOW CREATE VIEW %s"},
		{"TRIGGER", "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", "SHOW CREATE TRIGGER %s"},
		{"PROCEDURE", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'", "SHOW CREATE PROCEDURE %s"},
		{"FUNCTION", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'", "SHOW CREATE FUNCTION %s"},
		{"EVENT", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", "SHOW CREATE EVENT %s"},
	}
	tables, err := names(ctx, db, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN "+tableTypes+" ORDER BY TABLE_NAME", schema)
	if err != nil {
		return s, err
	}
	s.tables = tables
	for _, k := range q {
		list, err := names(ctx, db, k.list, schema)
		if err != nil {
			return s, err
		}
		for _, name := range list {
			def, err := showCreate(ctx, db, fmt.Sprintf(k.show, quoteIdent(schema)+"."+quoteIdent(name)), k.kind)
			if err != nil {
				return s, fmt.Errorf("read %s %s.%s: %w", strings.ToLower(k.kind), schema, name, err)
			}
			s.others = append(s.others, object{kind: k.kind, name: name, create: def})
		}
	}
	return s, nil
}

func names(ctx context.Context, db *sql.DB, q, schema string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// showCreate returns the CREATE statement from a SHOW CREATE result, whose
// column holding it depends on the kind of object.
func showCreate(ctx context.Context, db *sql.DB, q, kind string) (string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return "", errors.New("no definition")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	want := map[string]string{"VIEW": "Create View", "TRIGGER": "SQL Original Statement", "PROCEDURE": "Create Procedure",
		"FUNCTION": "Create Function", "EVENT": "Create Event"}[kind]
	for i, c := range cols {
		if c == want && vals[i].Valid {
			return vals[i].String, nil
		}
	}
	return "", fmt.Errorf("no %q column", want)
}

// execer is a *sql.DB or one of its sessions.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// dropMovable drops the triggers and views that keep tables from moving.
func dropMovable(ctx context.Context, db execer, schema string, s objectSet, renamed map[string]string) error {
	for _, o := range s.others {
		if o.kind != "VIEW" && o.kind != "TRIGGER" {
			continue
		}
		name := o.name
		if r, ok := renamed[name]; ok && o.kind == "VIEW" {
			name = r
		}
		if _, err := db.ExecContext(ctx, "DROP "+o.kind+" IF EXISTS "+quoteIdent(schema)+"."+quoteIdent(name)); err != nil {
			return fmt.Errorf("drop %s %s.%s: %w", strings.ToLower(o.kind), schema, o.name, err)
		}
	}
	return nil
}

// recreate creates objects, defined in schema from, in schema to. Views
// that depend on views not yet made are retried until nothing moves.
func recreate(ctx context.Context, c Config, from, to string, s objectSet, lockWait time.Duration) error {
	tc := c
	tc.Database = to
	dc := tc.driverConfig()
	dc.Params = map[string]string{"lock_wait_timeout": lockWaitSeconds(lockWait)}
	connector, err := driver.NewConnector(dc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	pending := append([]object(nil), s.others...)
	for len(pending) > 0 {
		var failed []object
		var lastErr error
		for _, o := range pending {
			stmt := strings.ReplaceAll(o.create, quoteIdent(from)+".", quoteIdent(to)+".")
			_, err := conn.ExecContext(ctx, stmt)
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == 1227 {
				// Keeping another user's DEFINER needs SUPER: the object
				// becomes the restoring user's, as a load makes it.
				_, err = conn.ExecContext(ctx, definerRE.ReplaceAllString(stmt, ""))
			}
			if err != nil {
				failed, lastErr = append(failed, o), fmt.Errorf("create %s %s: %w", strings.ToLower(o.kind), o.name, err)
			}
		}
		if len(failed) == len(pending) {
			return lastErr
		}
		pending = failed
	}
	return nil
}
