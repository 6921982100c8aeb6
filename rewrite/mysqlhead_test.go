package rewrite

import (
	"bytes"
	"reflect"
	"testing"
)

func TestParseInsertHead(t *testing.T) {
	tests := []struct {
		line  string
		table string
		cols  []string
		rest  string
	}{
		{"INSERT INTO t VALUES ('x');", "t", nil, "('x');"},
		{"insert into wp_options values('x');", "wp_options", nil, "('x');"},
		{`INSERT INTO "wp_posts" VALUES ('x');`, "wp_posts", nil, "('x');"},
		{"INSERT INTO `wp`.`wp_posts` VALUES ('x');", "wp_posts", nil, "('x');"},
		{`INSERT INTO wp."posts" (ID, "guid", ` + "`post_content`" + `) VALUES (1,'a','b');`, "posts", []string{"ID", "guid", "post_content"}, "(1,'a','b');"},
		{"INSERT IGNORE INTO t VALUES (1);", "t", nil, "(1);"},
		{"INSERT LOW_PRIORITY IGNORE INTO t VALUES (1);", "t", nil, "(1);"},
		{"REPLACE INTO `t` (a) VALUE (1);", "t", []string{"a"}, "(1);"},
		{"INSERT INTO t VALUES\n", "t", nil, ""},
	}
	for _, tt := range tests {
		h, ok := parseInsertHead([]byte(tt.line))
		if !ok || h.table != tt.table || !reflect.DeepEqual(h.cols, tt.cols) || tt.line[h.n:] != tt.rest {
			t.Errorf("parseInsertHead(%q) = %+v %v, rest %q; want %s %v %q", tt.line, h, ok, tt.line[min(h.n, len(tt.line)):], tt.table, tt.cols, tt.rest)
		}
	}
	for _, bad := range []string{"INSERT INTO t SELECT * FROM u;", "INSERT INTO t (a, b\n", "UPDATE t SET a='x';", "INSERT INTO VALUES (1);", "INSERTED t", "INSERT INTO t VALUESX (1)"} {
		if h, ok := parseInsertHead([]byte(bad)); ok {
			t.Errorf("parseInsertHead(%q) = %+v, want not ok", bad, h)
		}
	}
}

// TestMySQLOtherInserts: INSERTs not in mysqldump's form are rewritten,
// and a data statement holding a match that is still not understood is
// reported with its line.
func TestMySQLOtherInserts(t *testing.T) {
	in := "CREATE TABLE `wp_posts` (\n  `ID` bigint(20) NOT NULL,\n  `guid` varchar(255),\n  `post_content` longtext\n) ENGINE=InnoDB;\n" +
		"INSERT INTO wp_posts VALUES (1,'https://example.com/?p=1','see https://example.com/');\n" +
		"INSERT INTO `wp`.\"wp_posts\" (post_content, guid) VALUES ('https://example.com/a','https://example.com/?p=2'),\n('https://example.com/b','x');\n" +
		"INSERT IGNORE INTO t VALUES ('https://example.com') ON DUPLICATE KEY UPDATE v='https://example.com';\n" +
		"UPDATE wp_options SET option_value='https://example.com' WHERE option_name='home';\n" +
		"INSERT INTO t SELECT 'no match here';\n" +
		"INSERT INTO t2\nSELECT 'https://example.com';\n"
	want := "CREATE TABLE `wp_posts` (\n  `ID` bigint(20) NOT NULL,\n  `guid` varchar(255),\n  `post_content` longtext\n) ENGINE=InnoDB;\n" +
		"INSERT INTO wp_posts VALUES (1,'https://example.com/?p=1','see https://staging.example.com/');\n" +
		"INSERT INTO `wp`.\"wp_posts\" (post_content, guid) VALUES ('https://staging.example.com/a','https://example.com/?p=2'),\n('https://staging.example.com/b','x');\n" +
		"INSERT IGNORE INTO t VALUES ('https://staging.example.com') ON DUPLICATE KEY UPDATE v='https://staging.example.com';\n" +
		"UPDATE wp_options SET option_value='https://example.com' WHERE option_name='home';\n" +
		"INSERT INTO t SELECT 'no match here';\n" +
		"INSERT INTO t2\nSELECT 'https://example.com';\n"
	got, rep := rewriteMySQL(t, stage, in)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	wantPlaces := []Place{{Line: 10, Reason: "holds a match but is not understood: passed through unchanged"},
		{Table: "t2", Line: 12, Reason: "holds a match but is not understood: passed through unchanged"}}
	if !reflect.DeepEqual(rep.Unparsed, wantPlaces) || rep.UnparsedMatches != 2 {
		t.Errorf("unparsed = %+v (%d), want %+v", rep.Unparsed, rep.UnparsedMatches, wantPlaces)
	}
}

func FuzzParseInsertHead(f *testing.F) {
	for _, s := range []string{"INSERT INTO t VALUES (1);", "INSERT INTO `a`.\"b\" (c, `d`) VALUE (1)", "REPLACE LOW_PRIORITY INTO x VALUES\n", "insert into t(a)values(1)"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		h, ok := parseInsertHead(line)
		if !ok {
			return
		}
		if h.n > len(line) || h.table == "" && !bytes.Contains(line, []byte("``")) && !bytes.Contains(line, []byte(`""`)) {
			t.Fatalf("parseInsertHead(%q) = %+v", line, h)
		}
	})
}
