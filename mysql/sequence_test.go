package mysql

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// A dump with one of MariaDB's sequences (named by a table's DEFAULT) is
// refused on both paths, the target as it was and nothing left beside or
// inside it: swapped in, the table's DEFAULT would stay bound to the
// scratch database's sequence, and the site's inserts fail. (Snapshots of
// such a database are whole; the restore is what cannot be done yet.)
func TestReplaceSequence(t *testing.T) {
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE SEQUENCE order_no START WITH 1000",
		"CREATE TABLE orders (id INT PRIMARY KEY DEFAULT NEXTVAL(order_no), what TEXT)",
		"INSERT INTO orders (what) VALUES ('a'), ('b'), ('c')",
	)
	d := dump(t, src.Database)
	want, err := Stats(context.Background(), root(src.Database))
	if err != nil {
		t.Fatal(err)
	}
	for _, inPlace := range []bool{false, true} {
		dst := target(t)
		before := targetState(t, dst)
		err := Replace(context.Background(), root(dst.Database), bytes.NewReader(d), strict(tablesOnly(want)), ReplaceOptions{InPlace: inPlace})
		if err == nil || !strings.Contains(err.Error(), "sequence") || !strings.Contains(err.Error(), "Try:") {
			t.Fatalf("in place %v: %v", inPlace, err)
		}
		if after := targetState(t, dst); after != before {
			t.Errorf("in place %v: target changed:\n%s\n%s", inPlace, before, after)
		}
		if left := append(sideDatabases(t, dst, dst.Database), scratchTables(t, dst, dst.Database)...); len(left) > 0 {
			t.Errorf("in place %v: left: %v", inPlace, left)
		}
	}
}

// A system-versioned table (MariaDB: TABLE_TYPE 'SYSTEM VERSIONED') is a
// table like any: the restore swaps it in, on both paths, with the dump's
// rows (its history is not in a dump).
func TestReplaceSystemVersioned(t *testing.T) {
	src := testenv.NewMariaDB(t)
	execAll(t, src.Admin,
		"CREATE TABLE prices (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
		"INSERT INTO prices VALUES (1, 10), (2, 20)",
		"UPDATE prices SET v = 11 WHERE id = 1",
	)
	d := dump(t, src.Database)
	for _, inPlace := range []bool{false, true} {
		dst := target(t)
		execAll(t, dst.Admin,
			"CREATE TABLE prices (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
			"INSERT INTO prices VALUES (1, 99)",
		)
		want, _ := Stats(context.Background(), root(src.Database))
		if err := Replace(context.Background(), root(dst.Database), bytes.NewReader(d), strict(blankSums(tablesOnly(want))), ReplaceOptions{InPlace: inPlace}); err != nil {
			t.Fatalf("in place %v: %v", inPlace, err)
		}
		var rows, v1 int
		dst.Admin.QueryRow("SELECT COUNT(*), COALESCE(SUM(v * (id = 1)), 0) FROM prices").Scan(&rows, &v1)
		if rows != 2 || v1 != 11 {
			t.Errorf("in place %v: prices has %d rows, v(1) = %d; want the dump's 2 rows, 11", inPlace, rows, v1)
		}
	}
}

// blankSums drops checksums (a system-versioned table's differ: its
// history rows are not dumped).
func blankSums(s []TableStat) []TableStat {
	out := append([]TableStat(nil), s...)
	for i := range out {
		out[i].Checksum = ""
	}
	return out
}
