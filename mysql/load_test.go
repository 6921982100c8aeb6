package mysql

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// loadFixture holds every column type batches take, with the values a
// converter gets wrong (tabs, backslashes, NUL, Ctrl-Z, quotes, a literal
// \N, empty strings beside NULLs, every byte in a blob, extreme numbers,
// zero dates), enough rows for several INSERT statements, and tables that
// must load by INSERT (BIT and POINT columns, a generated column), and a
// table with secondary indexes (which loads by MariaDB's bulk path).
func loadFixture(t *testing.T) *testenv.MariaDB {
	m := testenv.NewMariaDB(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, q := range []string{
		"SET SESSION sql_mode = ''",
		`CREATE TABLE every (id INT PRIMARY KEY AUTO_INCREMENT, ti TINYINT, su SMALLINT UNSIGNED, mi MEDIUMINT, zf INT(6) UNSIGNED ZEROFILL,
			bu BIGINT UNSIGNED, de DECIMAL(30,10), fl FLOAT, db DOUBLE, ch CHAR(5), vc VARCHAR(300), bi BINARY(4), vb VARBINARY(300),
			tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, tb TINYBLOB, bl BLOB, da DATE, tm TIME(3), dt DATETIME(6), ts TIMESTAMP NULL,
			yr YEAR, en ENUM('a','b c','d''e'), st SET('x','y','z'), js JSON, lat VARCHAR(20) CHARACTER SET latin1) CHARACTER SET utf8mb4`,
		// Types whose binary form is not their text: their database is
		// dumped in utf8mb4 (see binarySafe).
		"CREATE TABLE inet (id INT PRIMARY KEY, uu UUID, i6 INET6)",
		"INSERT INTO inet VALUES (1, '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1'), (2, NULL, NULL)",
		"CREATE TABLE bits (id INT PRIMARY KEY, b BIT(3), p POINT, s VARCHAR(10))",
		"CREATE TABLE gen (a INT, g INT AS (a + 1) VIRTUAL, s VARCHAR(10))",
		"CREATE TABLE indexed (id INT PRIMARY KEY, u VARCHAR(20), s TEXT, UNIQUE KEY (u), KEY (s(10)))",
		"INSERT INTO indexed VALUES (1, 'a', 'tab\there'), (2, 'b', NULL), (3, NULL, '')",
		"INSERT INTO bits VALUES (1, b'101', POINT(1, 2), 'tab\there'), (2, NULL, NULL, NULL)",
		"INSERT INTO gen (a, s) VALUES (1, 'x'), (2, NULL)",
	} {
		if _, err := m.Admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	strs := []string{"tab\there\t", "new\nline\r\n", `back\slash\`, `quote'd "double"`, "nul\x00byte", "ctrl-z\x1a", `\N`, "N", "",
		"emoji 🎉 café", "semi;\n-- comment\n", "0x41", "NULL", `\\N`, "\\'", strings.Repeat("long ", 50)}
	ins := `INSERT INTO every (ti, su, mi, zf, bu, de, fl, db, ch, vc, bi, vb, tt, tx, mt, lt, tb, bl, da, tm, dt, ts, yr, en, st, js, lat)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for i := 0; i < 3000; i++ {
		s := strs[i%len(strs)]
		row := []any{-128 + i%256, 65535 - i, -8388608 + i, i, uint64(18446744073709551615) - uint64(i), "-12345678901234567890.0123456789",
			1.5e-7 * float64(i), -1.7976931348623157e308 / float64(i+1), s[:min(5, len(s))], s, []byte{0, '\t', '\\', byte(i)}, all[:i%256],
			s, s, s, strings.Repeat(s, 100), all[i%256:], all, "0000-00-00", "-838:59:59.999", "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07",
			2155, "d'e", "x,z", `{"a": "b\tc", "u": "https:\/\/example.com"}`, "Ærø"}
		if i%7 == 0 { // NULL in every nullable column
			for k := range row {
				row[k] = nil
			}
		}
		if _, err := m.Admin.Exec(ins, row...); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// Both ways of loading (rows by batches, and the dump's INSERTs as they are)
// give a copy whose per-table checksums are the source's, from the dump as
// mariadb-dump writes it (a row a line) and with all rows of a statement
// on one line (MySQL's mysqldump, older MariaDB); from a dump in utf8mb4
// (the fixture has UUID and INET6 columns) and, without them, from one in
// the binary character set.
func TestLoadEveryType(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	for _, charset := range []string{"utf8mb4", "binary"} {
		if charset == "binary" {
			if _, err := src.Admin.Exec("DROP TABLE inet"); err != nil {
				t.Fatal(err)
			}
		}
		var dump bytes.Buffer
		if err := Dump(ctx, root(src.Database), &dump); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(dump.Bytes(), []byte("SET NAMES "+charset+" */;")) {
			t.Fatalf("the dump is not in %s", charset)
		}
		if bytes.Count(dump.Bytes(), []byte("INSERT INTO `every`")) < 2 {
			t.Fatalf("the fixture fits in one INSERT statement; the test needs several")
		}
		oneLine := bytes.ReplaceAll(bytes.ReplaceAll(dump.Bytes(), []byte("VALUES\n("), []byte("VALUES (")), []byte("),\n("), []byte("),("))
		want, err := Stats(ctx, root(src.Database))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name    string
			dump    []byte
			batched bool
		}{{"batches", dump.Bytes(), true}, {"inserts", dump.Bytes(), false}, {"batches, one-line inserts", oneLine, true}} {
			t.Run(charset+", "+c.name, func(t *testing.T) {
				dst := testenv.NewMariaDB(t)
				batched, err := load(ctx, root(dst.Database), bytes.NewReader(c.dump), c.batched, nil, LoadConnections)
				if err != nil {
					t.Fatal(err)
				}
				wantBatched := []string{"every", "indexed"}
				if charset == "utf8mb4" {
					wantBatched = []string{"every", "indexed", "inet"}
				}
				if c.batched && !slices.Equal(batched, wantBatched) || !c.batched && len(batched) > 0 {
					t.Errorf("tables loaded by batches: %v", batched)
				}
				got, err := Stats(ctx, root(dst.Database))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("copy %+v\nsource %+v", got, want)
				}
			})
		}
	}
}

// A dump cut short, a statement the server refuses and rows that do not
// parse fail with the line and what to do.
func TestLoadBadDumps(t *testing.T) {
	src := loadFixture(t)
	ctx := context.Background()
	var dump bytes.Buffer
	if err := Dump(ctx, root(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	d := dump.Bytes()
	cut := d[:bytes.Index(d, []byte("INSERT INTO `every`"))+5000]
	short := bytes.Replace(d, []byte("INSERT INTO `every` VALUES\n(1,NULL,"), []byte("INSERT INTO `every` VALUES\n(1,"), 1)
	if bytes.Equal(short, d) {
		t.Fatal("the fixture's first row has changed: the test needs its NULLs")
	}
	garbled := bytes.Replace(d, []byte("INSERT INTO `every` VALUES\n("), []byte("INSERT INTO `every` VALUES\n(]"), 1)
	// The same rows twice: the server refuses a batch (a duplicate key).
	first := d[bytes.Index(d, []byte("INSERT INTO `every`")):]
	first = first[:bytes.Index(first, []byte(";\n"))+2]
	twice := bytes.Replace(d, first, append(append([]byte(nil), first...), first...), 1)
	for _, c := range []struct {
		name, dump, want string
	}{
		{"cut in an INSERT", string(cut), "cut short"},
		{"cut in a statement", "CREATE TABLE x (\n  a INT", "cut short"},
		{"syntax", "CREATE TABLE x (;\n", "line 1: Error 1064"},
		{"garbled row", string(garbled), "unexpected literal"},
		{"row short of a field", string(short), "a row has 28 values, the first had 27: the dump is damaged"},
		{"batch refused", string(twice), "load the rows of every: Error 1062"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := testenv.NewMariaDB(t)
			err := Load(ctx, root(dst.Database), strings.NewReader(c.dump))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// On the real dumps of the rewrite corpus (WordPress tables holding every
// hard case: emoji, all escapes, \0 and \Z, serialized and JSON data,
// tables without a primary key), cairn's loader and the mariadb client
// give the same tables, checksum for checksum.
func TestLoadMatchesClient(t *testing.T) {
	files, err := filepath.Glob("../rewrite/testdata/corpus/*-mysql*/*.sql")
	if err != nil || len(files) < 3 {
		t.Fatalf("corpus dumps: %v %v", files, err)
	}
	ctx := context.Background()
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			dump, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := testenv.NewMariaDB(t), testenv.NewMariaDB(t)
			batched, err := load(ctx, root(ours.Database), bytes.NewReader(dump), true, nil, LoadConnections)
			if err != nil {
				t.Fatal(err)
			}
			if len(batched) == 0 {
				t.Errorf("no table went in by batches")
			}
			client := exec.Command("mariadb", "-uroot", "-h127.0.0.1", "--default-character-set=utf8mb4", theirs.Database)
			client.Stdin = bytes.NewReader(dump)
			if out, err := client.CombinedOutput(); err != nil {
				t.Fatalf("mariadb client: %v: %s", err, out)
			}
			got, err := Stats(ctx, root(ours.Database))
			if err != nil {
				t.Fatal(err)
			}
			want, err := Stats(ctx, root(theirs.Database))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("cairn's loader %+v\nmariadb client %+v", got, want)
			}
		})
	}
}
