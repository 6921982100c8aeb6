package mysql

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/cairn-backup/cairn"
)

func TestRowCounterOnRealDump(t *testing.T) {
	m, c := fixture(t)
	if _, err := m.Admin.Exec("CREATE TABLE `we``ird (name)` (s TEXT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Admin.Exec("INSERT INTO `we``ird (name)` VALUES ('a);(b'), ('it''s'), ('back\\\\slash\\''), ('\\n;('), ('\"')"); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := Dump(context.Background(), c, &dump); err != nil {
		t.Fatal(err)
	}
	stats, err := Stats(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	// Feed the dump in awkward chunk sizes: boundaries fall anywhere.
	for _, chunk := range []int{1, 7, 4096, dump.Len()} {
		rc := NewRowCounter()
		b := dump.Bytes()
		for len(b) > 0 {
			n := min(chunk, len(b))
			rc.Write(b[:n])
			b = b[n:]
		}
		got := map[string]int64{}
		for _, s := range rc.Counts() {
			got[s.Name] = s.Rows
		}
		for _, s := range stats {
			if s.View {
				continue
			}
			if got[s.Name] != s.Rows {
				t.Errorf("chunk %d: table %s counted %d rows, the server says %d", chunk, s.Name, got[s.Name], s.Rows)
			}
		}
	}
}

func FuzzRowCounter(f *testing.F) {
	f.Add([]byte("INSERT INTO `t` VALUES (1,'a'),(2,'b\\'');\n-- x\nINSERT INTO `u``v` VALUES ('(');\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := NewRowCounter()
		rc.Write(data)
		whole := rc.Counts()
		for _, s := range whole {
			if s.Rows < 0 {
				t.Fatalf("negative count for %q", s.Name)
			}
		}
		// Any chunking counts the same.
		for _, size := range []int{1, 3, 17} {
			rc := NewRowCounter()
			for b := data; len(b) > 0; b = b[min(size, len(b)):] {
				rc.Write(b[:min(size, len(b))])
			}
			if got := rc.Counts(); fmt.Sprint(got) != fmt.Sprint(whole) {
				t.Fatalf("in chunks of %d: %v, whole: %v", size, got, whole)
			}
		}
	})
}

func TestRowCounterOneLineFormat(t *testing.T) {
	dump := "-- MySQL dump\n/*!40101 SET NAMES utf8mb4 */;\n" +
		"INSERT INTO `wp_options` VALUES (1,'siteurl','https://example.com','yes'),(2,'blogname','It\\'s (a) blog; really','yes');\n" +
		"INSERT INTO `wp_options` VALUES (3,'x',0x28293B27,'no');\n" +
		"INSERT INTO `empty` VALUES ();\n" +
		"-- INSERT INTO `comment` VALUES (9);\n" +
		"INSERT INTO `t` (`a`, `b`) VALUES (1,'x'),(2,'y');\n" // invisible columns: the dump names them
	rc := NewRowCounter()
	rc.Write([]byte(dump))
	got := rc.Counts()
	want := []cairn.TableStat{{Name: "empty", Rows: 1}, {Name: "t", Rows: 2}, {Name: "wp_options", Rows: 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}
