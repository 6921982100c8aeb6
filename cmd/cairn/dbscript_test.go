package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/postgres"
	"github.com/cairn-backup/cairn/sqlite"
)

// The database commands of the end-to-end scripts work on the real
// servers the test command starts (MariaDB at 127.0.0.1:3306 as root
// without a password, PostgreSQL at 127.0.0.1:5432 as postgres, trust).
// Every database and user they create is uniquely named and dropped when
// the script ends.

func hexID(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck
	return hex.EncodeToString(b)
}

func requireServer(ts *testscript.TestScript, what string, err error) {
	if err != nil {
		ts.Fatalf("%s is required: %v. Run ./scripts/test, which installs and starts it", what, err)
	}
}

func mariaRoot(ts *testscript.TestScript, db string) *sql.DB {
	c := driver.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", "127.0.0.1:3306", db
	c.Collation, c.MultiStatements = "utf8mb4_general_ci", true
	conn, err := driver.NewConnector(c)
	ts.Check(err)
	return sql.OpenDB(conn)
}

// mariaFixture holds the hard cases: a table without a primary key, a
// view, a trigger, binary data, emoji, zero dates (loaded back under the
// server's default strict SQL mode) and a 16 MB row.
const mariaFixture = `
CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), body LONGTEXT, img BLOB) CHARACTER SET utf8mb4;
CREATE TABLE log (msg TEXT, at DATETIME, d DATE);
CREATE TABLE empty_table (x INT);
CREATE VIEW titles AS SELECT id, title FROM posts;
CREATE TRIGGER posts_bi BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = TRIM(NEW.title);
SET SESSION sql_mode = '';
INSERT INTO log VALUES ('zero dates', '0000-00-00 00:00:00', '0000-00-00'), ('emoji 🎉', NOW(), CURDATE());
INSERT INTO posts (title, body, img) SELECT CONCAT(' post ', seq, ' '), REPEAT('Café ☕ 🎉 it''s "https://example.com/" ', 20), UNHEX('0001FF275C0D0A') FROM seq_1_to_400;
`

// mariadb NAME [empty]: a database with the fixture (or empty), and a
// read-only backup user. Sets NAME (the database), NAME_DSN (the backup
// user's DSN, password included; NAME_USER and NAME_PASS its parts) and
// NAME_ROOT (root's DSN).
func cmdMariaDB(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: mariadb NAME [empty]")
	}
	root := mariaRoot(ts, "")
	requireServer(ts, "MariaDB on 127.0.0.1:3306", root.Ping())
	var packet int64
	ts.Check(root.QueryRow("SELECT @@GLOBAL.max_allowed_packet").Scan(&packet))
	if packet < 64<<20 { // a 16 MB row is a 32 MB hex statement
		_, err := root.Exec("SET GLOBAL max_allowed_packet = 67108864")
		ts.Check(err)
	}
	db, user, pass := "cairn_s_"+hexID(5), "cairn_b_"+hexID(4), "pw"+hexID(8)
	for _, q := range []string{
		"CREATE DATABASE " + db + " CHARACTER SET utf8mb4",
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, pass),
		fmt.Sprintf("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON %s.* TO '%s'@'%%'", db, user),
	} {
		_, err := root.Exec(q)
		ts.Check(err)
	}
	ts.Defer(func() {
		root.Exec("DROP DATABASE IF EXISTS " + db)
		rows, err := root.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", db+"\\_%") // side and derived databases
		if err == nil {
			var side []string
			for rows.Next() {
				var s string
				rows.Scan(&s)
				side = append(side, s)
			}
			rows.Close()
			for _, s := range side {
				root.Exec("DROP DATABASE IF EXISTS `" + s + "`")
			}
		}
		root.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user))
		root.Close()
	})
	if len(args) < 2 || args[1] != "empty" {
		in := mariaRoot(ts, db)
		defer in.Close()
		_, err := in.Exec(mariaFixture)
		ts.Check(err)
		_, err = in.Exec("INSERT INTO posts (title, body) VALUES ('sixteen megabytes', REPEAT('0123456789abcdef', 1048576))")
		ts.Check(err)
	}
	name := strings.ToUpper(args[0])
	ts.Setenv(name, db)
	ts.Setenv(name+"_USER", user)
	ts.Setenv(name+"_PASS", pass)
	ts.Setenv(name+"_DSN", fmt.Sprintf("mysql://%s:%s@127.0.0.1:3306/%s", user, pass, db))
	ts.Setenv(name+"_ROOT", "mysql://root@127.0.0.1:3306/"+db)
}

const pgFixture = `
CREATE TABLE posts (id serial PRIMARY KEY, title text, body text, img bytea);
CREATE TABLE log (msg text, at timestamptz);
CREATE TABLE empty_table (x int);
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, total numeric(10,2));
CREATE VIEW titles AS SELECT id, title FROM posts;
CREATE FUNCTION trim_title() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.title := trim(NEW.title); RETURN NEW; END $$;
CREATE TRIGGER posts_bi BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trim_title();
INSERT INTO log VALUES ('emoji 🎉 and a tab	and \backslash', now()), ('line
break', NULL);
INSERT INTO posts (title, body, img) SELECT ' post ' || i || ' ', repeat('Café ☕ 🎉 it''s "https://example.com/" ', 20), '\x0001ff275c0d0a'::bytea FROM generate_series(1, 400) i;
INSERT INTO posts (title, body) VALUES ('sixteen megabytes', repeat('0123456789abcdef', 1048576));
INSERT INTO shop.orders SELECT i, i * 1.5 FROM generate_series(1, 50) i;
`

// postgres NAME [empty]: like mariadb, on PostgreSQL. The backup role can
// only read; NAME_ROOT is the postgres superuser's DSN, NAME_PASS the
// backup role's password.
func cmdPostgres(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: postgres NAME [empty]")
	}
	ctx := context.Background()
	root, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	requireServer(ts, "PostgreSQL on 127.0.0.1:5432", err)
	db, user, pass := "cairn_s_"+hexID(5), "cairn_b_"+hexID(4), "pw"+hexID(8)
	for _, q := range []string{"CREATE DATABASE " + db, "CREATE ROLE " + user + " LOGIN PASSWORD '" + pass + "'"} {
		_, err := root.Exec(ctx, q)
		ts.Check(err)
	}
	ts.Defer(func() {
		root.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		rows, _ := root.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", db+`\_cairn\_%`)
		side, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, s := range side {
			root.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s}.Sanitize()+" WITH (FORCE)")
		}
		root.Exec(ctx, "DROP ROLE IF EXISTS "+user)
		root.Close(ctx)
	})
	in, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	ts.Check(err)
	defer in.Close(ctx)
	if len(args) < 2 || args[1] != "empty" {
		_, err = in.Exec(ctx, pgFixture)
		ts.Check(err)
	}
	_, err = in.Exec(ctx, "GRANT USAGE ON SCHEMA public TO "+user+"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+user+
		"; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO "+user)
	ts.Check(err)
	if len(args) < 2 || args[1] != "empty" {
		_, err = in.Exec(ctx, "GRANT USAGE ON SCHEMA shop TO "+user+"; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO "+user)
		ts.Check(err)
	}
	name := strings.ToUpper(args[0])
	ts.Setenv(name, db)
	ts.Setenv(name+"_USER", user)
	ts.Setenv(name+"_DSN", fmt.Sprintf("postgres://%s:%s@127.0.0.1:5432/%s?sslmode=disable", user, pass, db))
	ts.Setenv(name+"_PASS", pass)
	ts.Setenv(name+"_ROOT", "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
}

// dbstats [-site] DSN: every table's rows and checksum (the engine's own
// CHECKSUM TABLE, md5 over ordered rows, or counts for SQLite), one per
// line, for cmp. With -site, only the tables the site uses: scratch
// tables a killed restore left (cairn_new_…, which the next one drops)
// are not listed.
func cmdDBStats(ts *testscript.TestScript, neg bool, args []string) {
	site := len(args) == 2 && args[0] == "-site"
	if site {
		args = args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: dbstats [-site] DSN")
	}
	stats, err := engineStats(args[0])
	if site {
		stats = slices.DeleteFunc(stats, func(s cairn.TableStat) bool { return strings.HasPrefix(s.Name, "cairn_new_") })
	}
	if neg {
		if err == nil {
			ts.Fatalf("dbstats succeeded")
		}
		return
	}
	ts.Check(err)
	for _, s := range stats {
		fmt.Fprintf(ts.Stdout(), "%s %d %s\n", s.Name, s.Rows, s.Checksum)
	}
}

func engineStats(dsn string) ([]cairn.TableStat, error) {
	ctx := context.Background()
	switch {
	case strings.HasPrefix(dsn, "mysql://"):
		c, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		s, err := mysql.Stats(ctx, c)
		return mysql.Plain(s), err
	case strings.HasPrefix(dsn, "postgres://"):
		c, err := postgres.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return postgres.Stats(ctx, c)
	default:
		c, err := sqlite.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return sqlite.Stats(ctx, c)
	}
}

// dbsql DSN STATEMENT: run a statement as the server's administrator.
func cmdDBSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: dbsql DSN STATEMENT")
	}
	var err error
	if c, perr := mysql.ParseDSN(args[0]); perr == nil {
		root := mariaRoot(ts, c.Database)
		defer root.Close()
		_, err = root.Exec(args[1])
	} else {
		c, perr := postgres.ParseDSN(args[0])
		ts.Check(perr)
		conn, cerr := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/"+c.Database+"?sslmode=disable")
		ts.Check(cerr)
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), args[1])
	}
	if neg != (err != nil) {
		ts.Fatalf("dbsql: %v", err)
	}
}

// killproc WORD...: wait for a process whose command line holds every
// WORD (a WORD of the form env:NAME=VALUE: whose environment holds that
// variable, as libpq's tools take the database) and kill it with SIGKILL,
// a moment after it started (a dump dying half-way).
func cmdKillProc(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			if !procMatches(e.Name(), args) {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err == nil && pid != os.Getpid() {
				time.Sleep(100 * time.Millisecond) // let it get going
				ts.Check(syscall.Kill(pid, syscall.SIGKILL))
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("no process matching %q appeared", args)
}

// procMatches tells whether process pid's command line holds every word
// of words, and its environment every env:NAME=VALUE.
func procMatches(pid string, words []string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	if err != nil {
		return false
	}
	var argv []string
	for _, w := range words {
		v, ok := strings.CutPrefix(w, "env:")
		if !ok {
			argv = append(argv, w)
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		if err != nil || !slices.Contains(strings.Split(string(environ), "\x00"), v) {
			return false
		}
	}
	return containsAll(strings.ReplaceAll(string(cmdline), "\x00", " "), argv)
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// waitdb ROOTDSN: wait until a scratch database beside the DSN's database
// exists (a restore is loading).
func cmdWaitDB(ts *testscript.TestScript, neg bool, args []string) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if c, err := mysql.ParseDSN(args[0]); err == nil {
			root := mariaRoot(ts, "")
			root.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE ? OR TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'cairn\\_new\\_%'", c.Database+"\\_cairn\\_new\\_%", c.Database).Scan(&n)
			root.Close()
		} else {
			c, err := postgres.ParseDSN(args[0])
			ts.Check(err)
			conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
			ts.Check(err)
			conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE $1", c.Database+`\_cairn\_new\_%`).Scan(&n)
			conn.Close(context.Background())
		}
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("no scratch database appeared beside %s, nor scratch tables inside", args[0])
}

// nosidedb ROOTDSN: no scratch or holding database is left beside it, nor
// scratch tables inside it.
func cmdNoSideDB(ts *testscript.TestScript, neg bool, args []string) {
	var n int
	if c, err := mysql.ParseDSN(args[0]); err == nil {
		root := mariaRoot(ts, "")
		defer root.Close()
		ts.Check(root.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", c.Database+"\\_cairn\\_%").Scan(&n))
		var tables int
		ts.Check(root.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND (TABLE_NAME LIKE 'cairn\\_new\\_%' OR TABLE_NAME LIKE 'cairn\\_old\\_%')", c.Database).Scan(&tables))
		n += tables
	} else {
		c, err := postgres.ParseDSN(args[0])
		ts.Check(err)
		conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		ts.Check(err)
		defer conn.Close(context.Background())
		ts.Check(conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname LIKE $1", c.Database+`\_cairn\_%`).Scan(&n))
	}
	if n > 0 {
		ts.Fatalf("%d scratch or holding database(s) left beside %s, or scratch tables inside", n, args[0])
	}
}

// expand FILE: replace ${VAR}s in a file by the script's variables.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(os.WriteFile(p, []byte(os.Expand(string(b), ts.Getenv)), 0o644))
}

// dbtrue DSN QUERY: the query, run as the administrator, returns true.
func cmdDBTrue(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: dbtrue DSN QUERY")
	}
	var ok bool
	if c, err := mysql.ParseDSN(args[0]); err == nil {
		root := mariaRoot(ts, c.Database)
		defer root.Close()
		ts.Check(root.QueryRow(args[1]).Scan(&ok))
	} else {
		c, err := postgres.ParseDSN(args[0])
		ts.Check(err)
		conn, err := pgx.Connect(context.Background(), "postgres://postgres@127.0.0.1:5432/"+c.Database+"?sslmode=disable")
		ts.Check(err)
		defer conn.Close(context.Background())
		ts.Check(conn.QueryRow(context.Background(), args[1]).Scan(&ok))
	}
	if ok == neg {
		ts.Fatalf("%s: %v", args[1], ok)
	}
}

// httpserve DIR VAR: serve DIR over HTTP on loopback until the script
// ends, and set VAR to its URL.
func cmdHTTPServe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: httpserve DIR VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	srv := &http.Server{Handler: http.FileServer(http.Dir(ts.MkAbs(args[0]))), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) //nolint:errcheck
	ts.Defer(func() { srv.Close() })
	ts.Setenv(args[1], "http://"+l.Addr().String())
}
