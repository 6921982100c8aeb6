package sqlite

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

func TestRowCounter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	sh(t, path, `CREATE TABLE "a ""b"(x); INSERT INTO "a ""b" VALUES(1),(2);
		CREATE TABLE c(y TEXT); INSERT INTO c VALUES(char(10)||'INSERT INTO c VALUES(1);'||char(13)), ('x');
		CREATE TABLE empty(z);`)
	var dump bytes.Buffer
	if err := Dump(context.Background(), Config{Path: path}, &dump); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 4096, dump.Len()} {
		c := NewRowCounter()
		for b := dump.Bytes(); len(b) > 0; b = b[min(chunk, len(b)):] {
			c.Write(b[:min(chunk, len(b))])
		}
		got := c.Counts()
		if len(got) != 2 || got[0] != (TableStat{Name: `a "b`, Rows: 2}) || got[1] != (TableStat{Name: "c", Rows: 2}) {
			t.Errorf("chunk %d: counts = %+v", chunk, got)
		}
	}
}

func TestRowCounterMatchesStats(t *testing.T) {
	src := source(t)
	c := NewRowCounter()
	if err := Dump(context.Background(), src, c); err != nil {
		t.Fatal(err)
	}
	stats, err := Stats(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, s := range c.Counts() {
		got[s.Name] = s.Rows
	}
	for _, s := range stats {
		if got[s.Name] != s.Rows {
			t.Errorf("table %s: counted %d rows, Stats says %d", s.Name, got[s.Name], s.Rows)
		}
	}
}
