package mysql

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/testenv"
)

func dump(t *testing.T, db string) []byte {
	var b bytes.Buffer
	if err := Dump(context.Background(), root(db), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func rowCounts(t *testing.T, db string) map[string]int64 {
	st, err := Stats(context.Background(), root(db))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, s := range st {
		m[s.Name] = s.Rows
	}
	return m
}

// A copy loaded from one dump, given the delta to a later dump, becomes
// that later dump's database exactly (per-table checksums), in one
// transaction; a count that does not match changes nothing. The earlier
// dump followed by the delta as SQL loads as the later one too. The dumps
// are in the binary character set, with latin1 values changed.
func TestDiffAndApply(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	if _, err := src.Admin.Exec("DROP TABLE inet"); err != nil {
		t.Fatal(err)
	}
	before := dump(t, src.Database)
	if !bytes.Contains(before, []byte("SET NAMES binary")) {
		t.Fatal("the fixture is not dumped in binary")
	}
	dst := testenv.NewMariaDB(t)
	if err := Load(ctx, root(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"UPDATE every SET vc = CONCAT(vc, ' (edited, it''s \\\\ new)'), bl = UNHEX('00FF27') WHERE id % 300 = 1",
		"DELETE FROM every WHERE id IN (5, 6, 2999)",
		"INSERT INTO every (id, vc, lt) VALUES (5000, 'new\trow', 'https://example.com/')",
		"UPDATE indexed SET u = 'z' WHERE id = 2",
		"UPDATE every SET lat = 'Ålborg Ø' WHERE id = 8",
	} {
		if _, err := src.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	after := dump(t, src.Database)
	d, err := Diff(ctx, opener(before), nil, bytes.NewReader(after), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// The earlier dump's index, written and read back, gives the same
	// delta without the dump; the delta's index of the later dump is what
	// indexing it gives.
	index, err := IndexDump(ctx, bytes.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	var stored bytes.Buffer
	if _, err := index.WriteTo(&stored); err != nil {
		t.Fatal(err)
	}
	if index, err = ReadRowIndex(&stored); err != nil {
		t.Fatal(err)
	}
	noDump := func() (io.ReadCloser, error) { return nil, errors.New("the dump was read") }
	fromIndex, err := Diff(ctx, noDump, index, bytes.NewReader(after), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromIndex.Tables, d.Tables) {
		t.Errorf("the delta from the index differs from the delta from the dump")
	}
	if afterIndex, err := IndexDump(ctx, bytes.NewReader(after)); err != nil || !reflect.DeepEqual(afterIndex, d.Index) {
		t.Errorf("the delta's index of the later dump differs from indexing it (%v)", err)
	}
	var names []string
	for _, tb := range d.Tables {
		names = append(names, tb.Name)
	}
	if removed, added := d.Rows(); !slices.Equal(names, []string{"every", "indexed"}) || removed != 10+3+1+1 || added != 10+1+1+1 || d.Charset != "binary" {
		t.Fatalf("delta: tables %v, %d rows removed, %d added", names, removed, added)
	}

	wrong := rowCounts(t, src.Database)
	wrong["every"]++
	stateBefore := targetState(t, dst)
	if _, err := ApplyDelta(ctx, root(dst.Database), d, wrong, nil, nil, 0); !errors.Is(err, cairn.ErrMismatch) {
		t.Fatalf("a count that does not match: %v", err)
	}
	// Counts known before stand for counting (a large table is read
	// whole to be counted): a wrong one is caught all the same.
	counted := rowCounts(t, dst.Database)
	wrongBefore := maps.Clone(counted)
	wrongBefore["every"]--
	if _, err := ApplyDelta(ctx, root(dst.Database), d, rowCounts(t, src.Database), wrongBefore, nil, 0); !errors.Is(err, cairn.ErrMismatch) {
		t.Fatalf("a count before that does not match: %v", err)
	}
	if got := targetState(t, dst); got != stateBefore {
		t.Fatalf("a failed delta changed the target:\n%s\n%s", got, stateBefore)
	}

	if _, err := ApplyDelta(ctx, root(dst.Database), d, rowCounts(t, src.Database), nil, map[string]string{"every": "2000-01-01 00:00:00"}, 0); !errors.Is(err, ErrNoDelta) {
		t.Fatalf("a table changed since the guard was taken: %v", err)
	}
	if got := targetState(t, dst); got != stateBefore {
		t.Fatalf("a failed delta changed the target")
	}
	guard, _, err := UpdateTimes(ctx, root(dst.Database), false)
	if err != nil {
		t.Fatal(err)
	}
	applied, err := ApplyDelta(ctx, root(dst.Database), d, rowCounts(t, src.Database), counted, guard, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A change another session makes the moment the delta is in shows:
	// the delta's second was over before the tables were let go.
	for name, at := range applied {
		if at == "" {
			t.Errorf("table %s: no time as the delta left it", name)
		}
	}
	if _, err := dst.Admin.Exec("UPDATE every SET vc = vc WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Admin.Exec("INSERT INTO every (id) VALUES (1000000)"); err != nil {
		t.Fatal(err)
	}
	now, _, err := UpdateTimes(ctx, root(dst.Database), true)
	if err != nil {
		t.Fatal(err)
	}
	if now["every"] <= applied["every"] {
		t.Errorf("a change right after the delta left UPDATE_TIME at %q, the delta's %q", now["every"], applied["every"])
	}
	if _, err := dst.Admin.Exec("DELETE FROM every WHERE id = 1000000"); err != nil {
		t.Fatal(err)
	}
	want, _ := Stats(ctx, root(src.Database))
	got, _ := Stats(ctx, root(dst.Database))
	if !slices.Equal(got, want) {
		t.Errorf("copy applied the delta %+v\nsource %+v", got, want)
	}

	var sql bytes.Buffer
	if err := d.WriteSQL(&sql); err != nil {
		t.Fatal(err)
	}
	chained := testenv.NewMariaDB(t)
	if err := Load(ctx, root(chained.Database), io.MultiReader(bytes.NewReader(before), &sql)); err != nil {
		t.Fatal(err)
	}
	if got, _ := Stats(ctx, root(chained.Database)); !slices.Equal(got, want) {
		t.Errorf("earlier dump + delta SQL %+v\nsource %+v", got, want)
	}
}

// A table changed in the current second gets that second at once when the
// time is wanted to note a state, with how long until a change of the
// caller's own would show; asked to vouch for it, UpdateTimes waits the
// second out first.
func TestUpdateTimes(t *testing.T) {
	m := testenv.NewMariaDB(t)
	ctx := context.Background()
	if _, err := m.Admin.Exec("CREATE TABLE t (id int PRIMARY KEY) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	var noted map[string]string
	var quiet time.Duration
	for i := 2; ; i++ { // until the insert and the read share a second
		if _, err := m.Admin.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
		var err error
		if noted, quiet, err = UpdateTimes(ctx, root(m.Database), true); err != nil {
			t.Fatal(err)
		}
		if quiet > 0 || i == 5 {
			break
		}
	}
	if noted["t"] == "" || quiet <= 0 || quiet > time.Second+coarseClock {
		t.Fatalf("noted %q, quiet %v: want the current second, and under a second to wait", noted["t"], quiet)
	}
	start := time.Now()
	check, left, err := UpdateTimes(ctx, root(m.Database), false)
	if err != nil {
		t.Fatal(err)
	}
	if check["t"] != noted["t"] || left != 0 || time.Since(start) < quiet-100*time.Millisecond {
		t.Errorf("vouched %q (left %v) after %v, want %q once the second was over", check["t"], left, time.Since(start), noted["t"])
	}
	if _, err := m.Admin.Exec("INSERT INTO t VALUES (100)"); err != nil {
		t.Fatal(err)
	}
	later, _, err := UpdateTimes(ctx, root(m.Database), true)
	if err != nil {
		t.Fatal(err)
	}
	if later["t"] <= noted["t"] {
		t.Errorf("a change after quiet has passed shows as %q, noted %q: want later", later["t"], noted["t"])
	}
}

// Dumps whose schemas differ, or that hold triggers, have no delta; nor
// does a changed table without a primary key, or a delta over the limit.
func TestNoDelta(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	before := dump(t, src.Database)
	for _, c := range []struct{ name, q string }{
		{"schema", "ALTER TABLE indexed ADD COLUMN extra INT"},
		{"trigger", "CREATE TRIGGER tr BEFORE INSERT ON indexed FOR EACH ROW SET NEW.s = 'x'"},
	} {
		if _, err := src.Admin.Exec(c.q); err != nil {
			t.Fatal(err)
		}
		_, err := Diff(ctx, opener(before), nil, bytes.NewReader(dump(t, src.Database)), nil, 1<<20)
		if !errors.Is(err, ErrNoDelta) {
			t.Errorf("%s: %v", c.name, err)
		}
		before = dump(t, src.Database)
	}
	if _, err := src.Admin.Exec("DROP TRIGGER tr"); err != nil {
		t.Fatal(err)
	}
	before = dump(t, src.Database)
	if _, err := src.Admin.Exec("UPDATE every SET lt = REPEAT('x', 2000)"); err != nil {
		t.Fatal(err)
	}
	if _, err := Diff(ctx, opener(before), nil, bytes.NewReader(dump(t, src.Database)), nil, 1<<20); !errors.Is(err, ErrNoDelta) {
		t.Errorf("over the limit: %v", err)
	}
	before = dump(t, src.Database)
	if _, err := src.Admin.Exec("INSERT INTO gen (a, s) VALUES (3, 'y')"); err != nil {
		t.Fatal(err)
	}
	d, err := Diff(ctx, opener(before), nil, bytes.NewReader(dump(t, src.Database)), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dst := testenv.NewMariaDB(t)
	if err := Load(ctx, root(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyDelta(ctx, root(dst.Database), d, rowCounts(t, src.Database), nil, nil, 0); !errors.Is(err, ErrNoDelta) {
		t.Errorf("no primary key: %v", err)
	}

	// A table dumped with a column list (MySQL's mysqldump does so for
	// generated columns) has no delta either: its rows are not whole.
	listed := bytes.ReplaceAll(before, []byte("INSERT INTO `every` VALUES"), []byte("INSERT INTO `every` (`id`) VALUES"))
	if _, err := Diff(ctx, opener(before), nil, bytes.NewReader(listed), nil, 1<<20); !errors.Is(err, ErrNoDelta) {
		t.Errorf("column list: %v", err)
	}
}

// The schema fingerprint moves with what a dump holds besides rows, not
// with the rows; DumpTables dumps the tables named only.
func TestSchemaAndDumpTables(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	c := root(src.Database)
	first, err := Schema(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Admin.Exec("INSERT INTO indexed VALUES (9, 'q', 'w')"); err != nil {
		t.Fatal(err)
	}
	if again, _ := Schema(ctx, c); again != first {
		t.Errorf("a new row changed the schema fingerprint")
	}
	for _, q := range []string{
		"ALTER TABLE indexed ADD COLUMN extra INT",
		"ALTER TABLE indexed ADD INDEX (extra)",
		"CREATE VIEW v AS SELECT 1 AS one",
		"CREATE PROCEDURE p() SELECT 1",
		"CREATE TRIGGER tr BEFORE INSERT ON gen FOR EACH ROW SET NEW.s = 'x'",
		"ALTER TABLE gen COMMENT 'changed'",
	} {
		if _, err := src.Admin.Exec(q); err != nil {
			t.Fatal(err)
		}
		next, err := Schema(ctx, c)
		if err != nil || next == first {
			t.Errorf("%s: fingerprint unchanged (%v)", q, err)
		}
		first = next
	}
	var b bytes.Buffer
	if err := DumpTables(ctx, c, &b, []string{"indexed"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte("CREATE TABLE `indexed`")) || bytes.Contains(b.Bytes(), []byte("CREATE TABLE `every`")) {
		t.Errorf("DumpTables(indexed) holds other tables, or not indexed")
	}
}

// A delta's ALTER TABLE of a counter waits for a table a site's session
// holds at most its bound, instead of the server's day, during which the
// site's queries on that table would queue behind it.
func TestApplyDeltaLockWaitIsBounded(t *testing.T) {
	src := loadFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := src.Admin.Exec("DROP TABLE inet"); err != nil {
		t.Fatal(err)
	}
	before := dump(t, src.Database)
	dst := testenv.NewMariaDB(t)
	if err := Load(ctx, root(dst.Database), bytes.NewReader(before)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Admin.Exec("UPDATE every SET vc = 'edited' WHERE id = 7"); err != nil {
		t.Fatal(err)
	}
	d, err := Diff(ctx, opener(before), nil, bytes.NewReader(dump(t, src.Database)), nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// The new dump's counter, as a dump of a table whose last rows were
	// deleted has it: the delta sets it by ALTER TABLE.
	if len(d.Tables) != 1 || len(d.Counters) != 1 || d.Counters[0].Table != "every" {
		t.Fatalf("delta: %+v, counters %+v", d.Tables, d.Counters)
	}
	d.Counters[0].Option = " AUTO_INCREMENT=99999"
	holder, err := dst.Admin.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for _, q := range []string{"BEGIN", "SELECT COUNT(*) FROM every"} {
		if _, err := holder.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err = ApplyDelta(ctx, root(dst.Database), d, rowCounts(t, src.Database), nil, nil, time.Second)
	if err == nil || !strings.Contains(err.Error(), "Lock wait timeout") || time.Since(start) > 10*time.Second {
		t.Fatalf("ApplyDelta with the table held = %v after %s", err, time.Since(start))
	}
}

// Rows told apart by their hashes alone: a table without a key that lost
// a copy of a row it held twice changed. A routine's body that changed on
// a line that reads like a comment changed the schema.
func TestDiffKeylessCopiesAndRoutineBodies(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE TABLE log (a int, b text)",
		"INSERT INTO log VALUES (1, 'x'), (1, 'x'), (2, 'y')",
		"CREATE PROCEDURE sig() BEGIN\n-- Old Team\nSELECT 1;\nEND")
	before := dump(t, src.Database)
	execAll(t, src.Admin, "DELETE FROM log WHERE a = 1 LIMIT 1")
	lost := dump(t, src.Database)
	if _, err := Diff(ctx, opener(before), nil, bytes.NewReader(lost), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "log changed and has no primary key") {
		t.Errorf("a keyless table lost a copy of a row: %v", err)
	}
	execAll(t, src.Admin, "DROP PROCEDURE sig", "CREATE PROCEDURE sig() BEGIN\n-- New Team\nSELECT 1;\nEND")
	if _, err := Diff(ctx, opener(lost), nil, bytes.NewReader(dump(t, src.Database)), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "the schema changed") {
		t.Errorf("a routine's body changed: %v", err)
	}
}

// A database of more rows than a delta compares in memory gets no delta
// and no row index (its clones load it whole).
func TestDeltaRowBound(t *testing.T) {
	ctx := context.Background()
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t SELECT seq FROM seq_1_to_500")
	before := dump(t, src.Database)
	defer func(n int) { cairn.DeltaRows = n }(cairn.DeltaRows)
	cairn.DeltaRows = 100
	if _, err := IndexDump(ctx, bytes.NewReader(before)); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "more than 100 rows") {
		t.Errorf("index of too many rows: %v", err)
	}
	if _, err := Diff(ctx, opener(before), nil, bytes.NewReader(before), nil, 1<<20); !errors.Is(err, ErrNoDelta) || !strings.Contains(err.Error(), "more than 100 rows") {
		t.Errorf("delta of too many rows: %v", err)
	}
}

// Two tables whose names a case-insensitive collation takes for equal
// (`Case`, `case`) give the fingerprint one order, whatever order the
// server lists them in (a swap changes it).
func TestSchemaCaseNames(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	c := root(src.Database)
	for _, q := range []string{"CREATE TABLE `Case` (id INT PRIMARY KEY)", "CREATE TABLE `case` (id INT PRIMARY KEY, v INT)"} {
		if _, err := src.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	first, err := Schema(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		for _, q := range []string{"CREATE TABLE `Case_x` LIKE `Case`", "RENAME TABLE `Case` TO `Case_y`, `Case_x` TO `Case`", "DROP TABLE `Case_y`",
			"CREATE TABLE `case_x` LIKE `case`", "RENAME TABLE `case` TO `case_y`, `case_x` TO `case`", "DROP TABLE `case_y`"} {
			if _, err := src.Admin.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if again, _ := Schema(ctx, c); again != first {
			t.Fatalf("after renames %d the fingerprint moved", i)
		}
	}
}
