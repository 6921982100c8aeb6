package mysql

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func root(db string) Config { return Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: db} }

// sideDatabases lists scratch and holding databases left beside target.
func sideDatabases(t *testing.T, m *testenv.MariaDB, target string) []string {
	rows, err := m.Admin.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", target+"_cairn_%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

// sourceDump dumps the fixture (plus a routine) and records its stats.
func sourceDump(t *testing.T) ([]byte, []TableStat) {
	src, _ := fixture(t)
	if _, err := src.Admin.Exec("CREATE PROCEDURE count_posts() SELECT COUNT(*) FROM posts"); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := Dump(context.Background(), root(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	want, err := Stats(context.Background(), root(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	return dump.Bytes(), want
}

// target makes a database with content of its own, to be replaced.
func target(t *testing.T) *testenv.MariaDB {
	dst := testenv.NewMariaDB(t)
	for _, q := range []string{
		"CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(20))",
		"INSERT INTO posts VALUES (1, 'old')",
		"CREATE TRIGGER old_trg BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = 'x'",
		"CREATE TABLE stale (x INT)",
		"CREATE VIEW old_view AS SELECT * FROM stale",
	} {
		if _, err := dst.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return dst
}

func targetState(t *testing.T, dst *testenv.MariaDB) string {
	st, err := Stats(context.Background(), root(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range st {
		b.WriteString(s.Name + ":" + s.Checksum + ";")
	}
	var trg string
	dst.Admin.QueryRow("SELECT GROUP_CONCAT(TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", dst.Database).Scan(&trg)
	return b.String() + "triggers:" + trg
}

func TestReplace(t *testing.T) {
	dump, want := sourceDump(t)
	dst := target(t)
	ctx := context.Background()
	if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, root(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after replace: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("table %s: %+v, want %+v", want[i].Name, got[i], want[i])
		}
	}
	checkObjects(t, dst)
	if left := sideDatabases(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("side databases left: %v", left)
	}
}

// Staging: the dump's objects were defined by another user (root); an
// application user without SUPER can still load and replace it.
func TestReplaceAsApplicationUser(t *testing.T) {
	dump, want := sourceDump(t)
	dst := target(t)
	if _, err := dst.Admin.Exec("GRANT ALL PRIVILEGES ON *.* TO '" + dst.User + "'@'%'"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Admin.Exec("REVOKE SUPER, SET USER ON *.* FROM '" + dst.User + "'@'%'"); err != nil {
		t.Fatal(err)
	}
	app := Config{User: dst.User, Password: cairnSecret(dst.Password), Host: "127.0.0.1", Port: 3306, Database: dst.Database}
	if err := Replace(context.Background(), app, bytes.NewReader(dump), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	var definer string
	dst.Admin.QueryRow("SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", dst.Database).Scan(&definer)
	if !strings.HasPrefix(definer, dst.User+"@") {
		t.Errorf("trigger definer %q, want the loading user", definer)
	}
}

// checkObjects checks, after a replace of target(t) by sourceDump(t),
// that the snapshot's trigger, view and procedure work in the target and
// the target's own are gone.
func checkObjects(t *testing.T, dst *testenv.MariaDB) {
	t.Helper()
	if _, err := dst.Admin.Exec("INSERT INTO posts (title) VALUES ('  padded  ')"); err != nil {
		t.Fatal(err)
	}
	var title string
	dst.Admin.QueryRow("SELECT title FROM posts ORDER BY id DESC LIMIT 1").Scan(&title)
	if title != "padded" {
		t.Errorf("trigger not recreated: title %q", title)
	}
	var n int
	if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM titles").Scan(&n); err != nil || n != 401 {
		t.Errorf("view titles: %d, %v", n, err)
	}
	if _, err := dst.Admin.Exec("CALL count_posts()"); err != nil {
		t.Errorf("procedure not recreated: %v", err)
	}
	for _, gone := range []string{"stale", "old_view"} {
		if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM " + gone).Scan(&n); err == nil {
			t.Errorf("%s survived the replace", gone)
		}
	}
}

// strict verifies a loaded copy against want, checksums included.
func strict(want []TableStat) cairn.Verify { return cairn.Expect(Plain(want), nil) }

// sourceState fingerprints everything a restore elsewhere must leave as it
// was: every table's checksum, the schema (views, triggers, routines,
// events, their definitions and times) and the database's character set.
func sourceState(t *testing.T, m *testenv.MariaDB) string {
	t.Helper()
	ctx := context.Background()
	st, err := Stats(ctx, root(m.Database))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range st {
		fmt.Fprintf(&b, "%s:%d:%s;", s.Name, s.Rows, s.Checksum)
	}
	schema, err := Schema(ctx, root(m.Database))
	if err != nil {
		t.Fatal(err)
	}
	var cs, coll string
	m.Admin.QueryRow("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", m.Database).Scan(&cs, &coll)
	var trg string
	m.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", m.Database).Scan(&trg)
	return b.String() + " schema:" + schema + " charset:" + cs + "/" + coll + " triggers:" + trg
}

// objectCounts counts a database's views, triggers, routines and events.
func objectCounts(t *testing.T, m *testenv.MariaDB, db string) string {
	var v, tr, r, e int
	m.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?", db).Scan(&v)
	m.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", db).Scan(&tr)
	m.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?", db).Scan(&r)
	m.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", db).Scan(&e)
	return fmt.Sprintf("views %d, triggers %d, routines %d, events %d", v, tr, r, e)
}

// Objects whose dump names the source database (a trigger created as
// src.trg, bodies writing to src.log, the dump's ALTER DATABASE src lines
// around routines made under another character set) are recreated in the
// restored copy only: the source is left byte for byte as it was, the
// copy's objects act on the copy, and a rollback onto the source works.
func TestReplaceNeverWritesToTheSource(t *testing.T) {
	src := testenv.NewMariaDB(t)
	s := "`" + src.Database + "`"
	for _, q := range []string{
		"CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, m VARCHAR(50))",
		"INSERT INTO t VALUES (1, 1), (2, 2)",
		"CREATE TRIGGER " + src.Database + ".trg AFTER INSERT ON " + src.Database + ".t FOR EACH ROW INSERT INTO " + src.Database + ".log (m) VALUES ('trigger')",
		"CREATE VIEW " + s + ".v AS SELECT " + s + ".t.id FROM " + s + ".t",
		"CREATE PROCEDURE " + src.Database + ".p() INSERT INTO " + src.Database + ".log (m) VALUES ('procedure')",
		"CREATE FUNCTION " + s + ".f() RETURNS INT RETURN (SELECT COUNT(*) FROM " + src.Database + ".t)",
		"CREATE EVENT " + src.Database + ".e ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO " + src.Database + ".log (m) VALUES ('event')",
		// The routines were made under another character set: the dump
		// switches the database's around each of them.
		"ALTER DATABASE " + s + " CHARACTER SET latin1",
	} {
		if _, err := src.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ctx := context.Background()
	var dump bytes.Buffer
	if err := Dump(ctx, root(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	want, err := Stats(ctx, root(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	before := sourceState(t, src)
	wantObjects := objectCounts(t, src, src.Database)

	dst := target(t)
	if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump.Bytes()), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := sourceState(t, src); after != before {
		t.Errorf("the restore elsewhere changed the source:\nbefore %s\nafter  %s", before, after)
	}
	if got := objectCounts(t, dst, dst.Database); got != wantObjects {
		t.Errorf("copy has %s, want %s", got, wantObjects)
	}
	// The copy's trigger and procedure write to the copy's log.
	if _, err := dst.Admin.Exec("INSERT INTO t VALUES (3, 3)"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Admin.Exec("CALL p()"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM log").Scan(&n); err != nil || n != 2 {
		t.Errorf("copy's log has %d rows (%v), want 2", n, err)
	}
	if err := dst.Admin.QueryRow("SELECT f()").Scan(&n); err != nil || n != 3 {
		t.Errorf("copy's f() = %d (%v), want 3", n, err)
	}
	if after := sourceState(t, src); after != before {
		t.Errorf("the copy's objects wrote to the source:\nbefore %s\nafter  %s", before, after)
	}
	var body string
	dst.Admin.QueryRow("SELECT EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", dst.Database).Scan(&body)
	if strings.Contains(body, src.Database) {
		t.Errorf("copy's event names the source: %s", body)
	}

	// A rollback onto the source itself.
	if err := Replace(ctx, root(src.Database), bytes.NewReader(dump.Bytes()), strict(want), ReplaceOptions{}); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := objectCounts(t, src, src.Database); got != wantObjects {
		t.Errorf("after the rollback the source has %s, want %s", got, wantObjects)
	}
	if _, err := src.Admin.Exec("INSERT INTO t VALUES (3, 3)"); err != nil {
		t.Fatal(err)
	}
	if err := src.Admin.QueryRow("SELECT COUNT(*) FROM log").Scan(&n); err != nil || n != 1 {
		t.Errorf("after the rollback the trigger wrote %d rows (%v), want 1", n, err)
	}
	for _, db := range []*testenv.MariaDB{src, dst} {
		if left := sideDatabases(t, db, db.Database); len(left) > 0 {
			t.Errorf("side databases left: %v", left)
		}
	}
}

// A load's trace is told its tables' UPDATE_TIMEs before the swap, once
// the second of its last change is over: a write of the site's right
// after the swap (here: as soon as the new rows show) moves them, on
// both paths (scratch database, scratch tables in place).
func TestReplaceTracesTimesAsLoaded(t *testing.T) {
	dump, want := sourceDump(t)
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("in place %v", inPlace), func(t *testing.T) {
			dst := target(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var traced map[string]string
			trace := &cairn.LoadTrace{Swapping: func(times map[string]string) { traced = times }}
			wrote := make(chan error, 1)
			go func() {
				// The site writes the moment the load is live.
				for ctx.Err() == nil {
					var n int
					if dst.Admin.QueryRow("SELECT COUNT(*) FROM posts").Scan(&n); n > 1 {
						_, err := dst.Admin.Exec("UPDATE posts SET title = 'site' WHERE id = 1")
						wrote <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
				wrote <- ctx.Err()
			}()
			err := Replace(cairn.WithLoadTrace(ctx, trace), root(dst.Database), bytes.NewReader(dump), strict(tablesOnly(want)), ReplaceOptions{InPlace: inPlace})
			if err != nil {
				t.Fatal(err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			now, _, err := UpdateTimes(ctx, root(dst.Database), true)
			if err != nil {
				t.Fatal(err)
			}
			if traced["posts"] == "" || len(traced) != len(now) {
				t.Fatalf("traced %v, the database has %v", traced, now)
			}
			if traced["posts"] >= now["posts"] {
				t.Errorf("posts: traced %s, and after the site's write %s: want it earlier", traced["posts"], now["posts"])
			}
		})
	}
}
