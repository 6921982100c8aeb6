package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cairn-backup/cairn/mysql"
)

// dbobjects DSN: a MySQL/MariaDB database's character set and its views,
// triggers, routines and events with their definitions, one per line, for
// cmp (what SHOW TRIGGERS, SHOW CREATE VIEW… show).
func cmdDBObjects(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: dbobjects DSN")
	}
	c, err := mysql.ParseDSN(args[0])
	ts.Check(err)
	root := mariaRoot(ts, c.Database)
	defer root.Close()
	for _, q := range []string{
		"SELECT 'charset', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
		"SELECT 'view', TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 2",
		"SELECT 'trigger', TRIGGER_NAME, CONCAT_WS(' ', ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_STATEMENT, CREATED) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 2",
		"SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME, CONCAT_WS(' ', ROUTINE_DEFINITION, LAST_ALTERED) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 2",
		"SELECT 'event', EVENT_NAME, CONCAT_WS(' ', EVENT_DEFINITION, STATUS, LAST_ALTERED) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 2",
	} {
		rows, err := root.Query(q, c.Database)
		ts.Check(err)
		for rows.Next() {
			var kind, name, def string
			ts.Check(rows.Scan(&kind, &name, &def))
			fmt.Fprintf(ts.Stdout(), "%s %s: %s\n", kind, name, strings.ReplaceAll(def, "\n", " "))
		}
		ts.Check(rows.Err())
		rows.Close()
	}
}

// dbhold DSN TABLE: open a session as the administrator that reads TABLE
// in a transaction and keeps it open (a metadata lock on it) until the
// script ends; sets HOLDER to the session's id.
func cmdDBHold(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: dbhold DSN TABLE")
	}
	c, err := mysql.ParseDSN(args[0])
	ts.Check(err)
	db := mariaRoot(ts, c.Database)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	ts.Check(err)
	ts.Defer(func() { conn.Close(); db.Close() })
	var id int64
	ts.Check(conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id))
	for _, q := range []string{"BEGIN", "SELECT COUNT(*) FROM `" + args[1] + "`"} {
		var r *sql.Rows
		r, err = conn.QueryContext(ctx, q)
		ts.Check(err)
		r.Close()
	}
	ts.Setenv("HOLDER", strconv.FormatInt(id, 10))
	waitLocked(ts, c.Database, args[1])
}

// waitlocked DB TABLE: wait until another session holds a lock on TABLE
// of the MariaDB database DB (or, with pg:DB, an ACCESS EXCLUSIVE lock on
// the PostgreSQL table), so that a script relies on no sleep.
func cmdWaitLocked(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitlocked [pg:]DB TABLE")
	}
	if db, ok := strings.CutPrefix(args[0], "pg:"); ok {
		waitPGLocked(ts, db, args[1])
		return
	}
	waitLocked(ts, args[0], args[1])
}

// waitPGLocked waits until a session holds an ACCESS EXCLUSIVE lock on
// table of database.
func waitPGLocked(ts *testscript.TestScript, database, table string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+database+"?sslmode=disable")
	ts.Check(err)
	defer conn.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var held bool
		ts.Check(conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks WHERE relation = to_regclass($1) AND mode = 'AccessExclusiveLock' AND granted)`, table).Scan(&held))
		if held {
			return
		}
	}
	ts.Fatalf("no session came to hold a lock on %s.%s", database, table)
}

// waitLocked probes TABLE with a LOCK TABLES … WRITE bounded to a second:
// it times out only while another session holds a lock on the table.
func waitLocked(ts *testscript.TestScript, database, table string) {
	db := mariaRoot(ts, database)
	defer db.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		conn, err := db.Conn(ctx)
		ts.Check(err)
		_, err = conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 1")
		ts.Check(err)
		_, err = conn.ExecContext(ctx, "LOCK TABLES `"+table+"` WRITE")
		if err == nil {
			conn.ExecContext(ctx, "UNLOCK TABLES") //nolint:errcheck
		}
		conn.Close()
		var me *driver.MySQLError
		if errors.As(err, &me) && me.Number == 1205 { // lock wait timeout: held
			return
		}
		if err != nil && !errors.As(err, &me) {
			ts.Fatalf("probe the lock of %s.%s: %v", database, table, err)
		}
	}
	ts.Fatalf("no session came to hold a lock on %s.%s", database, table)
}

// waitproc WORD...: wait until a process whose command line holds every
// WORD runs.
func cmdWaitProc(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && e.Name() != strconv.Itoa(os.Getpid()) && containsAll(strings.ReplaceAll(string(b), "\x00", " "), args) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("no process matching %q appeared", args)
}

// nosecret [-procs] [DIR...] -- SECRET...: no file under any DIR holds any
// SECRET (nor its URL-encoded form); with -procs, no process's command
// line holds one.
func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	var dirs, secrets []string
	procs := false
	for i, a := range args {
		if a == "--" {
			dirs, secrets = args[:i], args[i+1:]
		}
	}
	if len(secrets) == 0 {
		ts.Fatalf("usage: nosecret [-procs] [DIR...] -- SECRET...")
	}
	holds := func(b []byte) string {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(url.QueryEscape(s))) {
				return s
			}
		}
		return ""
	}
	for _, d := range dirs {
		if d == "-procs" {
			procs = true
			continue
		}
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && holds(b) != "" {
				ts.Fatalf("%s holds a password", p)
			}
			return nil
		})
	}
	if !procs {
		return
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue // the test binary itself holds the secrets as script variables
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if holds(b) != "" {
			ts.Fatalf("process %s has a password on its command line: %s", e.Name(), bytes.ReplaceAll(firstLine(b), []byte{0}, []byte{' '}))
		}
	}
}

func firstLine(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
