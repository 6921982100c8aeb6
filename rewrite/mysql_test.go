package rewrite

import (
	"bytes"
	"strings"
	"testing"
)

func rewriteMySQL(t *testing.T, cfg Config, dump string) (string, *Report) {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := w.MySQL(strings.NewReader(dump), &out)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), rep
}

var stage = Config{Pairs: []Pair{{"https://example.com", "https://staging.example.com"}}}

func TestMySQLDump(t *testing.T) {
	head := "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE `wp_posts` (\n  `ID` bigint(20) NOT NULL,\n  `post_content` longtext,\n  `guid` varchar(255),\n  PRIMARY KEY (`ID`)\n) ENGINE=InnoDB;\n"
	ser := `a:1:{s:4:\"home\";s:19:\"https://example.com\";}`
	serOut := `a:1:{s:4:\"home\";s:27:\"https://staging.example.com\";}`
	for _, layout := range []struct{ name, sep, nl string }{{"one line", " ", ""}, {"row a line", "\n", "\n"}} {
		in := head + "INSERT INTO `wp_posts` VALUES" + layout.sep +
			"(1,'see https://example.com/ and it\\'s \\\\ fine','https://example.com/?p=1')," + layout.nl +
			"(2,'" + ser + "','https://example.com/?p=2')," + layout.nl +
			"(3,'no match; here (really)',NULL);\n" +
			"INSERT INTO `other` VALUES (1,'https://example.com');\n-- https://example.com in a comment\n"
		want := head + "INSERT INTO `wp_posts` VALUES" + layout.sep +
			"(1,'see https://staging.example.com/ and it\\'s \\\\ fine','https://example.com/?p=1')," + layout.nl +
			"(2,'" + serOut + "','https://example.com/?p=2')," + layout.nl +
			"(3,'no match; here (really)',NULL);\n" +
			"INSERT INTO `other` VALUES (1,'https://staging.example.com');\n-- https://example.com in a comment\n"
		got, rep := rewriteMySQL(t, stage, in)
		if got != want {
			t.Errorf("%s:\n got %q\nwant %q", layout.name, got, want)
		}
		if len(rep.Counts) != 2 || rep.Counts[0] != (Count{"other", "#2", 1, 1}) || rep.Counts[1] != (Count{"wp_posts", "post_content", 2, 2}) {
			t.Errorf("%s: counts %+v", layout.name, rep.Counts)
		}
		again, rep2 := rewriteMySQL(t, stage, got)
		if again != got || len(rep2.Counts) != 0 {
			t.Errorf("%s: second run changed %+v", layout.name, rep2.Counts)
		}
		// A pair that never occurs is the identity, byte for byte.
		same, _ := rewriteMySQL(t, Config{Pairs: []Pair{{"https://nowhere.invalid", "https://x"}}}, in)
		if same != in {
			t.Errorf("%s: identity changed the dump", layout.name)
		}
		// Tables can be left out.
		only, _ := rewriteMySQL(t, Config{Pairs: stage.Pairs, ExcludeTables: []string{"wp_*"}}, in)
		if !strings.Contains(only, "(1,'see https://example.com/") || !strings.Contains(only, "(1,'https://staging.example.com')") {
			t.Errorf("%s: exclude wp_*:\n%s", layout.name, only)
		}
	}
}

func TestMySQLEscapes(t *testing.T) {
	in := "INSERT INTO `t` VALUES ('\\0\\Z\\n\\r\\\"\\'\\\\ https://example.com \\%',_binary 'https://example.com',0x68747470733A2F2F6578616D706C652E636F6D);\n"
	want := "INSERT INTO `t` VALUES ('\\0\\Z\\n\\r\\\"\\'\\\\ https://staging.example.com \\\\%',_binary 'https://example.com',0x68747470733A2F2F6578616D706C652E636F6D);\n"
	if got, _ := rewriteMySQL(t, stage, in); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

// A dump in the binary character set holds binary columns as strings:
// their bytes are never rewritten, whatever they hold.
func TestMySQLBinaryColumns(t *testing.T) {
	create := "CREATE TABLE `t` (\n" +
		"  `id` int(11) NOT NULL,\n" +
		"  `b` blob DEFAULT NULL,\n" +
		"  `v` varbinary(64) DEFAULT NULL,\n" +
		"  `c` char(40) CHARACTER SET binary COLLATE binary DEFAULT NULL,\n" +
		"  `s` text DEFAULT NULL COMMENT ' CHARACTER SET binary',\n" +
		"  `l` longblob DEFAULT NULL,\n" +
		"  PRIMARY KEY (`id`)\n" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
	url := "'https://example.com'"
	in := create + "INSERT INTO `t` VALUES\n(1," + url + "," + url + "," + url + "," + url + "," + url + "),\n(2,NULL,'',NULL,'x https://example.com/a','\\0https://example.com');\n"
	want := create + "INSERT INTO `t` VALUES\n(1," + url + "," + url + "," + url + ",'https://staging.example.com'," + url + "),\n(2,NULL,'',NULL,'x https://staging.example.com/a','\\0https://example.com');\n"
	if got, _ := rewriteMySQL(t, stage, in); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

func TestMySQLLongLines(t *testing.T) {
	big := strings.Repeat("x", 6<<20)
	in := "INSERT INTO `t` VALUES ('" + big + " https://example.com'),('https://example.com');\n"
	want := "INSERT INTO `t` VALUES ('" + big + " https://staging.example.com'),('https://staging.example.com');\n"
	if got, _ := rewriteMySQL(t, stage, in); got != want {
		t.Errorf("long line: %d bytes, want %d", len(got), len(want))
	}
	huge := strings.Repeat("y", MaxValue+1)
	in = "INSERT INTO `t` VALUES ('" + huge + " https://example.com'),('https://example.com');\n"
	got, rep := rewriteMySQL(t, stage, in)
	if got != "INSERT INTO `t` VALUES ('"+huge+" https://example.com'),('https://staging.example.com');\n" || len(rep.Unsafe) != 1 {
		t.Errorf("value over MaxValue: unsafe %+v", rep.Unsafe)
	}
}
