package mysql

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

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
	if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(want)); err != nil {
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
	// The snapshot's trigger, view and procedure work in the target; the
	// target's own are gone.
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
	if left := sideDatabases(t, dst, dst.Database); len(left) > 0 {
		t.Errorf("side databases left: %v", left)
	}
}

func TestReplaceFailuresLeaveTargetUntouched(t *testing.T) {
	dump, want := sourceDump(t)
	dst := target(t)
	before := targetState(t, dst)
	ctx := context.Background()

	wrong := append([]TableStat(nil), want...)
	wrong[0].Rows++
	if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(wrong)); !errors.Is(err, ErrMismatch) {
		t.Errorf("stats mismatch: %v", err)
	}
	half := append(append([]byte(nil), dump[:len(dump)/2]...), []byte("\nTHIS IS NOT SQL;\n")...)
	if err := Replace(ctx, root(dst.Database), bytes.NewReader(half), strict(want)); err == nil {
		t.Error("a broken dump replaced the database")
	}
	// Cancelled (Ctrl-C) in the middle of loading.
	cctx, cancel := context.WithCancel(ctx)
	r := &testenv.CancelAfter{R: bytes.NewReader(dump), N: len(dump) / 3, Cancel: cancel}
	if err := Replace(cctx, root(dst.Database), r, strict(want)); err == nil {
		t.Error("a cancelled load replaced the database")
	}
	if after := targetState(t, dst); after != before {
		t.Errorf("target changed:\nbefore %s\nafter  %s", before, after)
	}
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
	if err := Replace(context.Background(), app, bytes.NewReader(dump), strict(want)); err != nil {
		t.Fatal(err)
	}
	var definer string
	dst.Admin.QueryRow("SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", dst.Database).Scan(&definer)
	if !strings.HasPrefix(definer, dst.User+"@") {
		t.Errorf("trigger definer %q, want the loading user", definer)
	}
}

// strict verifies a loaded copy against want, checksums included.
func strict(want []TableStat) cairn.Verify { return cairn.Expect(Plain(want), nil) }
