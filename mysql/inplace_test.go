package mysql

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

// ownDatabaseOnly grants dst's user everything on its database and
// nothing else, as shared and managed hosting do, and returns its config.
func ownDatabaseOnly(t *testing.T, dst *testenv.MariaDB) Config {
	t.Helper()
	if _, err := dst.Admin.Exec("GRANT ALL PRIVILEGES ON `" + dst.Database + "`.* TO '" + dst.User + "'@'%'"); err != nil {
		t.Fatal(err)
	}
	return Config{User: dst.User, Password: cairnSecret(dst.Password), Host: "127.0.0.1", Port: 3306, Database: dst.Database}
}

// scratchTables lists the tables of the scratch prefix left in db.
func scratchTables(t *testing.T, m *testenv.MariaDB, db string) []string {
	t.Helper()
	rows, err := m.Admin.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND (TABLE_NAME LIKE 'cairn\\_new\\_%' OR TABLE_NAME LIKE 'cairn\\_old\\_%')", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		if scratchRE.MatchString(n) || strings.HasPrefix(n, asidePrefix+"_") {
			out = append(out, n)
		}
	}
	return out
}

// tablesOnly is what a snapshot records of a database: its tables' stats,
// not its views'.
func tablesOnly(stats []TableStat) []TableStat {
	return slices.DeleteFunc(slices.Clone(stats), func(s TableStat) bool { return s.View })
}

// A user with rights on the target database only (it cannot create a
// scratch database beside it) replaces it all the same: the snapshot's
// tables, trigger, view and procedure are there, the target's own are
// gone, and no scratch table nor database is left.
func TestReplaceWithRightsOnTheTargetOnly(t *testing.T) {
	dump, all := sourceDump(t)
	want := tablesOnly(all)
	dst := target(t)
	app := ownDatabaseOnly(t, dst)
	ctx := context.Background()
	db, _ := app.open() // the premise: this user cannot make a database
	_, err := db.Exec("CREATE DATABASE `" + dst.Database + "_probe`")
	db.Close()
	if err == nil || !accessDenied(err) {
		t.Fatalf("the user may create databases (%v): the test proves nothing", err)
	}
	if err := Replace(ctx, app, bytes.NewReader(dump), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, root(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("after replace: %+v, want %+v", got, all)
	}
	checkObjects(t, dst)
	if c := objectCounts(t, dst, dst.Database); c != "views 1, triggers 1, routines 1, events 0" {
		t.Errorf("objects after the replace: %s", c)
	}
	if left := scratchTables(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("scratch tables left: %v", left)
	}
	if left := sideDatabases(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("side databases left: %v", left)
	}
}

// A load that fails half-way (the dump cut inside a table's rows) leaves
// the target exactly as it was, and no scratch table; scratch tables a
// killed run left are dropped by the next.
func TestReplaceInPlaceFailure(t *testing.T) {
	dump, all := sourceDump(t)
	want := tablesOnly(all)
	dst := target(t)
	app := ownDatabaseOnly(t, dst)
	ctx := context.Background()
	before, objs := targetState(t, dst), objectCounts(t, dst, dst.Database)
	cut := dump[:bytes.Index(dump, []byte("INSERT INTO `posts`"))+200]
	err := Replace(ctx, app, bytes.NewReader(cut), strict(want), ReplaceOptions{})
	if err == nil {
		t.Fatal("a cut dump replaced the target")
	}
	if after := targetState(t, dst); after != before || objectCounts(t, dst, dst.Database) != objs {
		t.Errorf("the target changed:\n%s\n%s", before, after)
	}
	if left := scratchTables(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("scratch tables left: %v", left)
	}
	// What a killed run leaves: scratch tables, one referencing another.
	for _, q := range []string{
		"CREATE TABLE cairn_new_0badf00d_0 (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE cairn_new_0badf00d_1 (id INT PRIMARY KEY, p INT, CONSTRAINT cairn_new_0badf00d_fk1 FOREIGN KEY (p) REFERENCES cairn_new_0badf00d_0 (id)) ENGINE=InnoDB",
		"CREATE TABLE cairn_new_keep (x INT)", // not a name cairn gives: the site's own
	} {
		if _, err := dst.Admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong row count: the copy is refused before the swap.
	wrong := append([]TableStat(nil), want...)
	for i := range wrong {
		if wrong[i].Name == "posts" {
			wrong[i].Rows++
		}
	}
	if err := Replace(ctx, app, bytes.NewReader(dump), strict(wrong), ReplaceOptions{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a mismatched copy: %v", err)
	}
	if left := scratchTables(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("scratch tables left after a mismatch: %v", left)
	}
	if after := targetState(t, dst); strings.Replace(after, "cairn_new_keep:0;", "", 1) != before {
		t.Errorf("the target changed on a mismatch:\n%s\n%s", before, after)
	}
}

// Foreign keys come through an in-place load: constraint names are the
// database's, so the scratch tables' get names of their own and, after
// the swap, their own back; the keys still hold.
func TestReplaceInPlaceForeignKeys(t *testing.T) {
	src := testenv.NewMariaDB(t)
	long := strings.Repeat("t", 64) // a table name as long as MySQL takes
	for _, q := range []string{
		"CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE pair (a INT, b INT, PRIMARY KEY (a, b)) ENGINE=InnoDB",
		"CREATE TABLE child (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE) ENGINE=InnoDB",
		"CREATE TABLE " + long + " (id INT PRIMARY KEY, c INT, CONSTRAINT fk_long FOREIGN KEY (c) REFERENCES child (id) ON DELETE CASCADE) ENGINE=InnoDB",
		// a key's column named with the words that end its column list
		"CREATE TABLE odd (id INT PRIMARY KEY, `x) REFERENCES ``y` INT, `k` INT, CONSTRAINT fk_odd FOREIGN KEY (`k`, `x) REFERENCES ``y`) REFERENCES pair (a, b)) ENGINE=InnoDB",
		"INSERT INTO parent VALUES (1), (2)",
		"INSERT INTO child VALUES (10, 1), (20, 2)",
		"INSERT INTO " + long + " VALUES (100, 10)",
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
	want, _ := Stats(ctx, root(src.Database))
	dst := testenv.NewMariaDB(t)
	for _, q := range []string{ // the same schema, other rows: the names are taken
		"CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE child (id INT PRIMARY KEY, pid INT, CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES parent (id)) ENGINE=InnoDB",
		"INSERT INTO parent VALUES (7)",
	} {
		if _, err := dst.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := Replace(ctx, ownDatabaseOnly(t, dst), bytes.NewReader(dump.Bytes()), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	rows, err := dst.Admin.Query("SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY CONSTRAINT_NAME", dst.Database)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var n, tb, ref string
		rows.Scan(&n, &tb, &ref)
		keys = append(keys, n+" "+tb+"->"+ref)
	}
	rows.Close()
	if got := strings.Join(keys, ", "); got != "fk_child_parent child->parent, fk_long "+long+"->child, fk_odd odd->pair" {
		t.Errorf("foreign keys after the replace: %s", got)
	}
	if _, err := dst.Admin.Exec("INSERT INTO child VALUES (30, 99)"); err == nil {
		t.Error("a child without a parent went in: the key does not hold")
	}
	if _, err := dst.Admin.Exec("DELETE FROM parent WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var n int
	dst.Admin.QueryRow("SELECT COUNT(*) FROM child").Scan(&n)
	if n != 1 {
		t.Errorf("ON DELETE CASCADE lost: %d children left", n)
	}
	if left := scratchTables(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("scratch tables left: %v", left)
	}
}

// Rows sent on several connections load the same as on one: every
// table's checksum equal, a trigger made after a table's rows never fired
// on them, and session settings (the dump's character set, its zero
// dates) in force on every connection.
func TestParallelLoadMatchesOne(t *testing.T) {
	src, _ := fixture(t)
	for _, q := range []string{
		"CREATE TABLE big (id INT PRIMARY KEY, k INT, v VARCHAR(100), KEY k (k)) CHARACTER SET latin1",
		"INSERT INTO big SELECT seq, seq % 97, CONCAT('é row ', seq, REPEAT('x', seq % 50)) FROM seq_1_to_12000",
		"CREATE TRIGGER big_bi BEFORE INSERT ON big FOR EACH ROW SET NEW.v = 'fired'",
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
	for _, n := range []int{1, 3} {
		dst := testenv.NewMariaDB(t)
		if _, err := load(ctx, root(dst.Database), bytes.NewReader(dump.Bytes()), true, nil, n); err != nil {
			t.Fatalf("%d connections: %v", n, err)
		}
		got, err := Stats(ctx, root(dst.Database))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d connections: %+v, want %+v", n, got, want)
		}
	}
}

// A dump table named as cairn's scratch tables are is refused, the target
// as it was: once live, the next restore would take it for a leftover.
// A name that only begins like them (cairn_old_x) is the site's own, and
// restored.
func TestReplaceInPlaceRefusesReservedNames(t *testing.T) {
	for _, name := range []string{"cairn_new_deadbeef_3", "cairn_old_deadbeef_2", "cairn_old_deadbeef_v1"} {
		t.Run(name, func(t *testing.T) {
			dst, before, err := replaceInPlaceTable(t, name)
			if err == nil || !strings.Contains(err.Error(), "a name cairn keeps") {
				t.Fatalf("Replace = %v", err)
			}
			if after := targetState(t, dst); after != before {
				t.Errorf("the target changed:\n%s\n%s", before, after)
			}
		})
	}
	dst, _, err := replaceInPlaceTable(t, "cairn_old_x")
	if err != nil {
		t.Fatalf("Replace of cairn_old_x = %v", err)
	}
	if after := targetState(t, dst); !strings.Contains(after, "cairn_old_x:") {
		t.Errorf("cairn_old_x was not restored: %s", after)
	}
}

// replaceInPlaceTable restores, in place, a dump of one table named name
// into a new target, and returns the target, its state before, and what
// Replace returned.
func replaceInPlaceTable(t *testing.T, name string) (*testenv.MariaDB, string, error) {
	src := testenv.NewMariaDB(t)
	if _, err := src.Admin.Exec("CREATE TABLE " + name + " (precious INT)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var dump bytes.Buffer
	if err := Dump(ctx, root(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	dst := target(t)
	before := targetState(t, dst)
	err := Replace(ctx, ownDatabaseOnly(t, dst), bytes.NewReader(dump.Bytes()), func([]cairn.TableStat) error { return nil }, ReplaceOptions{})
	return dst, before, err
}

// A view the user may not make (it reads a database the user has no
// rights on) fails after the swap: the previous tables, kept aside until
// then, are put back with their trigger and view, as if nothing happened.
func TestReplaceInPlaceObjectFailsAfterSwap(t *testing.T) {
	src := testenv.NewMariaDB(t)
	other := testenv.NewMariaDB(t)
	for _, q := range []string{
		"CREATE TABLE " + other.Database + ".par (id INT PRIMARY KEY)",
		"INSERT INTO " + other.Database + ".par VALUES (1), (2)",
		"CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(20))",
		"INSERT INTO posts VALUES (1, 'new'), (2, 'new')",
		"CREATE VIEW pv AS SELECT p.id, o.id AS oid FROM posts p JOIN " + other.Database + ".par o ON o.id = p.id",
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
	want, err := Checksums(ctx, root(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	dst := target(t)
	before, objs := targetState(t, dst), objectCounts(t, dst, dst.Database)
	err = Replace(ctx, ownDatabaseOnly(t, dst), bytes.NewReader(dump.Bytes()), strict(want), ReplaceOptions{})
	if err == nil || !strings.Contains(err.Error(), "put back as it was") {
		t.Fatalf("Replace = %v", err)
	}
	if after := targetState(t, dst); after != before || objectCounts(t, dst, dst.Database) != objs {
		t.Errorf("the target changed:\n%s %s\n%s %s", before, objs, after, objectCounts(t, dst, dst.Database))
	}
	var n int
	if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM old_view").Scan(&n); err != nil {
		t.Errorf("the previous view is gone: %v", err)
	}
	if left := scratchTables(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("scratch tables left: %v", left)
	}
}
