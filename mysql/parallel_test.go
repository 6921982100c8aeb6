package mysql

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// inParts dumps c on conns connections into one buffer per part, and
// returns their concatenation and how many parts there were.
func inParts(t *testing.T, c Config, conns int) (dump []byte, parts int, why string) {
	t.Helper()
	bufs, why := partsOf(t, c, conns)
	var all bytes.Buffer
	for _, b := range bufs {
		all.Write(b.Bytes())
	}
	return all.Bytes(), len(bufs), why
}

// partsOf dumps c on conns connections, a buffer per part.
func partsOf(t *testing.T, c Config, conns int) ([]*bytes.Buffer, string) {
	t.Helper()
	var bufs []*bytes.Buffer
	why, err := DumpParts(context.Background(), c, conns, func(n int) []io.Writer {
		ws := make([]io.Writer, n)
		for i := range ws {
			b := &bytes.Buffer{}
			bufs, ws[i] = append(bufs, b), b
		}
		return ws
	})
	if err != nil {
		t.Fatal(err)
	}
	return bufs, why
}

// sharedParts dumps db on n connections (the DSN asking for them),
// failing unless the dump is in n parts.
func sharedParts(t *testing.T, db string, n int) []*bytes.Buffer {
	t.Helper()
	c := root(db)
	c.Connections = n
	bufs, why := partsOf(t, c, n)
	if len(bufs) != n {
		t.Fatalf("%d parts (%s), want %d", len(bufs), why, n)
	}
	return bufs
}

// readersOf reads each of bufs afresh.
func readersOf(bufs []*bytes.Buffer) []io.Reader {
	out := make([]io.Reader, len(bufs))
	for i, b := range bufs {
		out[i] = bytes.NewReader(b.Bytes())
	}
	return out
}

// loaded loads dump into a new database and returns its stats.
func loaded(t *testing.T, dump []byte) ([]TableStat, *testenv.MariaDB) {
	t.Helper()
	dst := testenv.NewMariaDB(t)
	ctx := context.Background()
	if err := Load(ctx, root(dst.Database), bytes.NewReader(dump)); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, root(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	return got, dst
}

// A dump on several connections loads into the same database as one on
// one connection: every table's checksum, the view (made after every
// table), the trigger, the routine and the event.
func TestDumpPartsMatchesOne(t *testing.T) {
	src, _ := fixture(t)
	execAll(t, src.Admin,
		"CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(100))",
		"INSERT INTO big SELECT seq, CONCAT('row ', seq) FROM seq_1_to_20000",
		"CREATE TABLE zz_last (id INT PRIMARY KEY)",
		"INSERT INTO zz_last SELECT seq FROM seq_1_to_100",
		"CREATE VIEW a_first_view AS SELECT b.id, z.id AS z FROM big b JOIN zz_last z USING (id)",
		"CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x",
		"CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM log WHERE at < NOW() - INTERVAL 1 YEAR",
	)
	want, err := Stats(context.Background(), root(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := loaded(t, dump(t, src.Database))
	if !slices.Equal(one, want) {
		t.Fatalf("the dump on one connection loads as %+v, want %+v", one, want)
	}
	c := root(src.Database)
	c.Connections = 3
	d, parts, why := inParts(t, c, 3)
	if parts != 3 || why != "" {
		t.Fatalf("%d parts (%s), want 3", parts, why)
	}
	got, dst := loaded(t, d)
	if !slices.Equal(got, want) {
		t.Errorf("the dump in parts loads as %+v, want %+v", got, want)
	}
	var fn, ev, trg int
	dst.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()").Scan(&fn)
	dst.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()").Scan(&ev)
	dst.Admin.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()").Scan(&trg)
	if fn != 1 || ev != 1 || trg != 1 {
		t.Errorf("routines %d, events %d, triggers %d; want one of each", fn, ev, trg)
	}
	if n := bytes.Count(d, []byte(" FUNCTION `twice`(")); n != 1 {
		t.Errorf("the routine is in the dump %d times", n)
	}

	// The parts loaded at once, the view (on tables of two parts) made
	// after them, into a target that had tables of its own.
	bufs, _ := partsOf(t, c, 3)
	into := target(t)
	if err := ReplaceParts(context.Background(), root(into.Database), readersOf(bufs), strict(tablesOnly(want)), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := Stats(context.Background(), root(into.Database)); err != nil || !slices.Equal(got, want) {
		t.Errorf("the parts loaded at once: %+v (%v), want %+v", got, err, want)
	}
	var joined int
	if err := into.Admin.QueryRow("SELECT COUNT(*) FROM a_first_view").Scan(&joined); err != nil || joined != 100 {
		t.Errorf("the view: %d rows, %v", joined, err)
	}
}

// The parts see one moment of the database: rows written in pairs, one
// in each of two tables by one transaction, while the dump runs, are in
// the dump in pairs (the two tables being in different parts).
func TestDumpPartsConsistent(t *testing.T) {
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE TABLE a (id INT PRIMARY KEY, pad VARCHAR(200))",
		"CREATE TABLE b (id INT PRIMARY KEY, pad VARCHAR(200))",
		"INSERT INTO a SELECT seq, REPEAT('x', 200) FROM seq_1_to_30000",
		"INSERT INTO b SELECT seq, REPEAT('x', 200) FROM seq_1_to_30000",
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Add(1)
	go func() { // the site: each pair in one transaction
		defer wg.Done()
		for id := 100000; ctx.Err() == nil; id++ {
			tx, err := src.Admin.BeginTx(ctx, nil)
			if err != nil {
				return
			}
			tx.Exec("INSERT INTO a VALUES (?, 'pair')", id) //nolint:errcheck
			tx.Exec("INSERT INTO b VALUES (?, 'pair')", id) //nolint:errcheck
			if tx.Commit() == nil {
				written.Add(1)
			}
		}
	}()
	c := root(src.Database)
	c.Connections = 2
	for round := 0; round < 3; round++ {
		d, parts, why := inParts(t, c, 2)
		if parts != 2 {
			t.Fatalf("%d parts (%s)", parts, why)
		}
		_, dst := loaded(t, d)
		var onlyA, onlyB, pairs int
		dst.Admin.QueryRow("SELECT COUNT(*) FROM a WHERE id NOT IN (SELECT id FROM b)").Scan(&onlyA)
		dst.Admin.QueryRow("SELECT COUNT(*) FROM b WHERE id NOT IN (SELECT id FROM a)").Scan(&onlyB)
		dst.Admin.QueryRow("SELECT COUNT(*) FROM a WHERE pad = 'pair'").Scan(&pairs)
		if onlyA != 0 || onlyB != 0 {
			t.Errorf("round %d: %d rows of a without their b, %d of b without their a (%d pairs dumped)", round, onlyA, onlyB, pairs)
		}
	}
	cancel()
	wg.Wait()
	if written.Load() == 0 {
		t.Fatal("the site wrote nothing while the dumps ran")
	}
}

// A user that may not stop commits (no RELOAD: a read-only backup user)
// gets the dump on one connection, whole, and is told why.
func TestDumpPartsWithoutReload(t *testing.T) {
	src, ro := fixture(t)
	if _, err := src.Admin.Exec("CREATE TABLE other (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ro.Connections = 2
	d, parts, why := inParts(t, ro, 2)
	if parts != 1 || !strings.Contains(why, "RELOAD") {
		t.Fatalf("%d parts, why %q", parts, why)
	}
	want, _ := Stats(context.Background(), root(src.Database))
	if got, _ := loaded(t, d); !slices.Equal(got, want) {
		t.Errorf("loads as %+v, want %+v", got, want)
	}
}

// A database too small to share, or of one table, is dumped on one
// connection unless its DSN asks for more.
func TestDumpPartsSmall(t *testing.T) {
	src, _ := fixture(t)
	if _, parts, why := inParts(t, root(src.Database), 2); parts != 1 || why == "" {
		t.Errorf("a small database: %d parts (%q)", parts, why)
	}
	one := testenv.NewMariaDB(t)
	one.Admin.Exec("CREATE TABLE only_one (id INT)") //nolint:errcheck
	c := root(one.Database)
	c.Connections = 4
	if _, parts, why := inParts(t, c, 4); parts != 1 || why == "" {
		t.Errorf("one table: %d parts (%q)", parts, why)
	}
}

// Table names that read like the tool's options, or like the markers the
// dump and the load look for, are dumped and loaded as any other.
func TestDumpPartsOddNames(t *testing.T) {
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE TABLE `--where=0` (id INT PRIMARY KEY)",
		"INSERT INTO `--where=0` VALUES (1), (2)",
		"CREATE TABLE `-- Final view structure for view x` (id INT PRIMARY KEY, v VARCHAR(40))",
		"INSERT INTO `-- Final view structure for view x` VALUES (1, ' structure for ')",
		"CREATE TABLE a (id INT PRIMARY KEY)",
		"INSERT INTO a SELECT seq FROM seq_1_to_100",
	)
	want, _ := Stats(context.Background(), root(src.Database))
	bufs := sharedParts(t, src.Database, 2)
	var all bytes.Buffer
	for _, b := range bufs {
		all.Write(b.Bytes())
	}
	if got, _ := loaded(t, all.Bytes()); !slices.Equal(got, want) {
		t.Errorf("the dump in parts loads as %+v, want %+v", got, want)
	}
	into := target(t)
	if err := ReplaceParts(context.Background(), root(into.Database), readersOf(bufs), strict(tablesOnly(want)), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Tables linked by a foreign key, in different parts, load by parts
// every time: a part's LOCK TABLES would reach the other part's table
// (LOCK TABLES is left out of loads beside others).
func TestReplacePartsForeignKeyAcross(t *testing.T) {
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE TABLE parent (id INT PRIMARY KEY, v VARCHAR(100))",
		"INSERT INTO parent SELECT seq, REPEAT('p', 100) FROM seq_1_to_20000",
		"CREATE TABLE zchild (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES parent(id) ON DELETE CASCADE)",
		"INSERT INTO zchild SELECT seq, seq FROM seq_1_to_10",
	)
	want, _ := Stats(context.Background(), root(src.Database))
	bufs := sharedParts(t, src.Database, 2)
	into := target(t)
	for i := 0; i < 15; i++ {
		if err := ReplaceParts(context.Background(), root(into.Database), readersOf(bufs), strict(tablesOnly(want)), ReplaceOptions{}); err != nil {
			t.Fatalf("restore %d: %v", i, err)
		}
	}
}

// A dump tool that does not begin its snapshot in time (here the real
// one, held back before it starts) ends the parallel attempt: commits
// resume after the wait, nothing of it reaches the parts, and the dump
// is the single tool's, whole.
func TestDumpPartsToolSlowToStart(t *testing.T) {
	src, _ := fixture(t)
	for _, q := range []string{"CREATE TABLE other (id INT PRIMARY KEY)", "CREATE TABLE more (id INT PRIMARY KEY)"} {
		if _, err := src.Admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	real, err := exec.LookPath("mariadb-dump")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	// The parts but the last are dumped with --skip-routines.
	os.WriteFile(filepath.Join(bin, "mariadb-dump"), []byte("#!/bin/sh\ncase \"$*\" in *--skip-routines*) exec sleep 30;; esac\nexec "+real+" \"$@\"\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	defer func(w time.Duration) { startWait = w }(startWait)
	startWait = 2 * time.Second
	c := root(src.Database)
	c.Connections = 3 // two parts held back
	start := time.Now()
	bufs, why := partsOf(t, c, 3)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the dump took %v", took)
	}
	if !strings.Contains(why, "did not all begin") {
		t.Errorf("why %q", why)
	}
	var all bytes.Buffer
	for _, b := range bufs {
		all.Write(b.Bytes())
	}
	want, _ := Stats(context.Background(), root(src.Database))
	if got, _ := loaded(t, all.Bytes()); !slices.Equal(got, want) {
		t.Errorf("loads as %+v, want %+v", got, want)
	}
	if _, err := src.Admin.Exec("INSERT INTO other VALUES (1)"); err != nil {
		t.Errorf("the site's write after the dump: %v", err)
	}
}
