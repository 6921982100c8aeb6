package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/cairn-backup/cairn"
)

// ErrInUse means other sessions hold the target's tables, so the swap
// could not take them within its bound.
var ErrInUse = cairn.ErrInUse

// DefaultLockWait is how long the swap waits at most, each time, for the
// sessions using the target's tables: the site's own queries, queued
// behind the swap, wait no longer than that.
const DefaultLockWait = 5 * time.Second

// ReplaceOptions tune Replace.
type ReplaceOptions struct {
	// LockWait bounds each of the swap's waits for the target's tables
	// (the swap session's lock_wait_timeout, in whole seconds); 0 is
	// DefaultLockWait. A server's default is a day, during which every
	// query of the site on those tables would wait behind the swap.
	LockWait time.Duration
	// Attempts is how many times the swap waits so, a second apart (in
	// which the site's queries go on), before it gives up; 0 is 3.
	Attempts int
	// Terminate kills the sessions that hold the target's tables when a
	// wait runs out, then tries again, instead of giving up.
	Terminate bool
	// InPlace loads into scratch tables inside the target database even
	// when a scratch database beside it could be made (see inPlace):
	// what a restore does for a user with rights on the target only.
	InPlace bool
}

// asidePrefix names the target's previous tables with triggers for the
// moment they are renamed aside inside the target, triggers and all (a
// table with triggers cannot move to another database).
const asidePrefix = "cairn_old"

// swapper runs the swap on one session whose lock waits are bounded.
type swapper struct {
	db       *sql.DB
	conn     *sql.Conn
	id       int64 // its connection id, never taken for a holder
	lockWait time.Duration
	attempts int
	kill     bool
	hold     string          // the holding database swap moves tables to, if any
	moved    map[string]bool // the target's tables rename moved there, under their own names
	target   Config
	// views are the target's views the swap renamed aside, by name:
	// they move in the one RENAME with the tables, so that the swap waits
	// for (and is refused by) a session using a view as one using a
	// table, and no view is dropped, after the swap, under a session's
	// lock. They are dropped by their aside names.
	views map[string]string
	// blind is set when the user may not see other users' sessions (no
	// PROCESS privilege): holders finds none of theirs.
	blind bool
}

func newSwapper(ctx context.Context, db *sql.DB, c Config, o ReplaceOptions) (*swapper, error) {
	s := &swapper{db: db, lockWait: o.LockWait, attempts: o.Attempts, kill: o.Terminate, target: c}
	if s.lockWait <= 0 {
		s.lockWait = DefaultLockWait
	}
	if s.attempts <= 0 {
		s.attempts = 3
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	q := "SET SESSION lock_wait_timeout = " + lockWaitSeconds(s.lockWait)
	if _, err := conn.ExecContext(ctx, q); err != nil {
		conn.Close()
		return nil, fmt.Errorf("swap into %s: %s: %w", c.Database, q, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&s.id); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *swapper) close() { s.conn.Close() }

// lockWaitSeconds is d for lock_wait_timeout: whole seconds, at least 1.
func lockWaitSeconds(d time.Duration) string {
	if d <= 0 {
		d = DefaultLockWait
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// swap renames, in one RENAME TABLE, the target's tables out of the way
// and the scratch tables into the target: other sessions see the old set
// or the new one. A table goes to the holding database old under its own
// name, or, if it has triggers (which cannot move to another database),
// aside inside the target under an asidePrefix name. It returns the names
// of those put aside (old name → aside name). It waits for the
// target's tables at most the bound each attempt; when every attempt ran
// out, the target is as it was and the error names the sessions holding
// its tables.
func (s *swapper) swap(ctx context.Context, target, scratch, old string) (map[string]string, error) {
	s.hold = old
	cur, err := names(ctx, s.db, baseTables, target)
	if err != nil {
		return nil, err
	}
	tables, err := names(ctx, s.db, baseTables, scratch)
	if err != nil {
		return nil, err
	}
	next := make([]move, len(tables))
	for i, t := range tables {
		next[i] = move{from: quoteIdent(scratch) + "." + quoteIdent(t), to: t}
	}
	if err := traceSwap(ctx, s.db, scratch, func(t string) string { return t }); err != nil {
		return nil, err
	}
	return s.rename(ctx, target, cur, next)
}

// baseTables lists a schema's tables.
const baseTables = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN " + tableTypes

// tableTypes are the TABLE_TYPEs of tables that hold rows: MariaDB's
// system-versioned tables are of their own type (a swap that left them
// out kept the target's old ones, silently).
const tableTypes = "('BASE TABLE', 'SYSTEM VERSIONED')"

// move is a table swapped into the target: from (a qualified, quoted
// name) becomes the target's table to.
type move struct{ from, to string }

// rename is swap's RENAME TABLE: the target's tables cur and its views
// aside, the tables next in.
func (s *swapper) rename(ctx context.Context, target string, cur []string, next []move) (map[string]string, error) {
	tag := make([]byte, 4)
	rand.Read(tag) //nolint:errcheck
	aside := map[string]string{}
	var parts []string
	triggered := map[string]bool{}
	if s.hold != "" {
		t, err := names(ctx, s.db, "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ?", target)
		if err != nil {
			return nil, err
		}
		for _, n := range t {
			triggered[n] = true
		}
	}
	s.moved = map[string]bool{}
	for i, t := range cur {
		if s.hold != "" && !triggered[t] {
			// Straight to the holding database: its foreign keys'
			// names (a database's own, unlike InnoDB's generated
			// t_ibfk_N) are free for the new tables'.
			s.moved[t] = true
			parts = append(parts, quoteIdent(target)+"."+quoteIdent(t)+" TO "+quoteIdent(s.hold)+"."+quoteIdent(t))
			continue
		}
		aside[t] = fmt.Sprintf("%s_%s_%d", asidePrefix, hex.EncodeToString(tag), i)
		parts = append(parts, quoteIdent(target)+"."+quoteIdent(t)+" TO "+quoteIdent(target)+"."+quoteIdent(aside[t]))
	}
	views, err := names(ctx, s.db, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", target)
	if err != nil {
		return nil, err
	}
	s.views = map[string]string{}
	for i, v := range views {
		s.views[v] = fmt.Sprintf("%s_%s_v%d", asidePrefix, hex.EncodeToString(tag), i)
		parts = append(parts, quoteIdent(target)+"."+quoteIdent(v)+" TO "+quoteIdent(target)+"."+quoteIdent(s.views[v]))
	}
	for _, m := range next {
		parts = append(parts, m.from+" TO "+quoteIdent(target)+"."+quoteIdent(m.to))
	}
	if len(parts) == 0 {
		return aside, nil
	}
	stmt := "RENAME TABLE " + strings.Join(parts, ", ")
	var held []session
	for attempt := 1; ; attempt++ {
		_, err := s.conn.ExecContext(ctx, stmt)
		if err == nil {
			traceReplaced(ctx, s.db, target, aside, s.hold, s.moved)
			return aside, nil
		}
		if ctx.Err() != nil {
			return s.cancelled(ctx, target, next, aside)
		}
		if !isLockWait(err) {
			return nil, fmt.Errorf("swap tables into %s: %w", target, err)
		}
		if held, err = s.holders(ctx, target); err != nil {
			return nil, err
		}
		if s.kill && len(held) > 0 {
			if err := s.terminate(ctx, held); err != nil {
				return nil, err
			}
		}
		if attempt == s.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second): // the site's queued queries run
		}
	}
	return nil, s.inUse(target, held)
}

// cancelled stops a RENAME that the server may still be waiting to run
// (the driver only dropped the connection), and tells whether it ran.
func (s *swapper) cancelled(ctx context.Context, target string, next []move, aside map[string]string) (map[string]string, error) {
	bg, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.db.ExecContext(bg, "KILL QUERY "+strconv.FormatInt(s.id, 10)) //nolint:errcheck // it may have ended
	if len(next) == 0 {
		return nil, ctx.Err()
	}
	var n int
	q := "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
	if err := s.db.QueryRowContext(bg, q, target, next[0].to).Scan(&n); err == nil && n == 1 {
		if len(aside) == 0 {
			return aside, nil
		}
		for _, tmp := range aside {
			if s.db.QueryRowContext(bg, q, target, tmp).Scan(&n) == nil && n == 1 {
				return aside, nil // swapped just before the cancel: finish
			}
			break
		}
		for t := range s.moved {
			if s.db.QueryRowContext(bg, q, s.hold, t).Scan(&n) == nil && n == 1 {
				return aside, nil // swapped just before the cancel: finish
			}
			break
		}
	}
	return nil, ctx.Err()
}

// isLockWait tells a lock wait that ran out (ER_LOCK_WAIT_TIMEOUT).
func isLockWait(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && me.Number == 1205
}

// session is another connection to the server, from its processlist.
type session struct {
	id                   int64
	user, host, db, cmd  string
	time                 int64
	state, info          string
	inTransaction, exact bool
}

func (p session) String() string {
	s := fmt.Sprintf("session %d (%s@%s", p.id, p.user, p.host)
	if p.db != "" {
		s += ", database " + p.db
	}
	s += fmt.Sprintf(", %s for %ds", p.cmd, p.time)
	if p.inTransaction {
		s += ", in a transaction"
	}
	if p.state != "" {
		s += ", state " + strconvQuote(p.state)
	}
	if p.info != "" {
		s += ", running " + strconvQuote(snippet([]byte(p.info)))
	}
	return s + ")"
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// holders lists the sessions that hold locks on the target's tables:
// exactly, from information_schema.METADATA_LOCK_INFO, where the server
// has the metadata_lock_info plugin; else the sessions whose current
// database is the target or whose running statement names it, running a
// statement or idle inside a transaction. Sessions
// waiting for those locks themselves (the site's queued queries) and
// cairn's own are left out.
func (s *swapper) holders(ctx context.Context, target string) ([]session, error) {
	base := `SELECT p.ID, p.USER, p.HOST, COALESCE(p.DB, ''), p.COMMAND, p.TIME, COALESCE(p.STATE, ''), COALESCE(p.INFO, ''),
		EXISTS (SELECT 1 FROM information_schema.INNODB_TRX x WHERE x.trx_mysql_thread_id = p.ID)
		FROM information_schema.PROCESSLIST p
		WHERE p.ID <> CONNECTION_ID() AND p.ID <> ? AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Killed')
		AND COALESCE(p.STATE, '') NOT LIKE 'Waiting for table metadata lock%' AND `
	var seen int
	if s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ('PROCESS', 'SUPER')").Scan(&seen) == nil {
		s.blind = seen == 0
	}
	exact := base + `p.ID IN (SELECT THREAD_ID FROM information_schema.METADATA_LOCK_INFO WHERE TABLE_SCHEMA = ?)`
	list, err := s.sessions(ctx, exact, true, s.id, target)
	if err == nil {
		return list, nil
	}
	like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(target) + "%"
	// An idle session outside a transaction holds no metadata lock.
	guess := base + `(p.DB = ? OR p.INFO LIKE ?) AND (p.COMMAND <> 'Sleep' OR EXISTS (SELECT 1 FROM information_schema.INNODB_TRX x WHERE x.trx_mysql_thread_id = p.ID))`
	return s.sessions(ctx, guess, false, s.id, target, like)
}

func (s *swapper) sessions(ctx context.Context, q string, exact bool, args ...any) ([]session, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []session
	for rows.Next() {
		p := session{exact: exact}
		if err := rows.Scan(&p.id, &p.user, &p.host, &p.db, &p.cmd, &p.time, &p.state, &p.info, &p.inTransaction); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// terminate kills the sessions (KILL CONNECTION): their open transactions
// are rolled back, their clients see the connection lost.
func (s *swapper) terminate(ctx context.Context, held []session) error {
	for _, p := range held {
		if _, err := s.db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(p.id, 10)); err != nil {
			var me *driver.MySQLError
			if errors.As(err, &me) && me.Number == 1094 { // gone already
				continue
			}
			return fmt.Errorf("end %s: %w. Try: grant this user CONNECTION ADMIN (or SUPER) to end other users' sessions, or end them yourself", p, err)
		}
	}
	// A killed session lets its locks go once its thread has noticed and
	// rolled back, which on a busy server can take longer than a lock
	// wait: the next attempt waits for it (within bounds).
	ids := make([]string, len(held))
	for i, p := range held {
		ids[i] = strconv.FormatInt(p.id, 10)
	}
	q := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + strings.Join(ids, ", ") + ")"
	wctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	for {
		var n int
		if err := s.db.QueryRowContext(wctx, q).Scan(&n); err != nil || n == 0 {
			return ctx.Err()
		}
		select {
		case <-wctx.Done():
			return ctx.Err() // nil when only the wait is over
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killWait bounds the wait for killed sessions to end.
const killWait = 10 * time.Second

// inUse is the error of a swap that could not take the target's tables.
func (s *swapper) inUse(target string, held []session) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: other sessions hold the tables of %s, so the swap could not take them (waited %s, %d times; the site's queries waited no longer than that each time). The database was left as it was",
		ErrInUse, target, time.Duration(mustAtoi(lockWaitSeconds(s.lockWait)))*time.Second, s.attempts)
	switch {
	case len(held) == 0 && s.blind:
		b.WriteString(". No session holding them could be seen: without the PROCESS privilege, this user sees only its own sessions (an administrative user's SHOW PROCESSLIST shows the others)")
	case len(held) == 0:
		b.WriteString(". No session was found using it by name: a session connected to another database may hold its tables in an open transaction (see SHOW PROCESSLIST, or install the metadata_lock_info plugin)")
	default:
		b.WriteString(". Holding them")
		if !held[0].exact {
			b.WriteString(" (sessions using the database; the server has no metadata_lock_info plugin to tell exactly)")
		}
		b.WriteString(":")
		for _, p := range held {
			b.WriteString("\n  " + p.String())
		}
	}
	b.WriteString("\nTry: end those transactions (or stop the application, its workers and cron jobs) and restore again; or --lock-wait to wait longer; or --terminate-sessions to have cairn kill them")
	return &inUseError{msg: b.String()}
}

// inUseError is ErrInUse with its own message.
type inUseError struct{ msg string }

func (e *inUseError) Error() string { return e.msg }
func (e *inUseError) Unwrap() error { return ErrInUse }

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// putAside finishes a swap: the target's previous triggers, views,
// routines and events are dropped and its previous tables, renamed aside,
// moved to the holding database old (no other session uses their aside
// names).
func (s *swapper) putAside(ctx context.Context, target, old string, aside map[string]string, current objectSet) error {
	if err := s.dropObjects(ctx, target, current, s.views); err != nil {
		return err
	}
	var parts []string
	for name, tmp := range aside {
		parts = append(parts, quoteIdent(target)+"."+quoteIdent(tmp)+" TO "+quoteIdent(old)+"."+quoteIdent(name))
	}
	if len(parts) == 0 {
		return nil
	}
	if _, err := s.conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(parts, ", ")); err != nil {
		return fmt.Errorf("move the previous tables to %s: %w", old, err)
	}
	return nil
}
