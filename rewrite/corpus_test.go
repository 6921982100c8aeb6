package rewrite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
	"github.com/cairn-backup/cairn/mysql"
)

// The corpus: real dumps of the hard cases, made by mariadb-dump and
// pg_dump from the fixtures below (go test ./rewrite -run Corpus
// -corpus rebuilds the inputs; -update rewrites the expected outputs,
// which are then reviewed by hand, line by line, before committing).
var (
	rebuild = flag.Bool("corpus", false, "rebuild the corpus inputs from real MariaDB and PostgreSQL dumps")
	update  = flag.Bool("update", false, "write the expected outputs from the current code (review the diff!)")
)

// corpusCase is one directory of testdata/corpus.
type corpusCase struct {
	name    string
	dialect string
	pairs   []Pair
	opts    Options
	fixture fixture
	dumpArg []string
	input   string // another case whose input.sql this one rewrites ("": its own)
}

var corpus = []corpusCase{
	{name: "wordpress-mysql", dialect: "mysql", pairs: wpPairs, fixture: wpMySQL},
	{name: "wordpress-mysql-emails", dialect: "mysql", pairs: wpPairs, opts: Options{Emails: true}, input: "wordpress-mysql"},
	{name: "tld-collision-mysql", dialect: "mysql", pairs: []Pair{{"example.de", "example.dev"}}, fixture: tldMySQL},
	{name: "wordpress-postgres", dialect: "postgres", pairs: wpPairs, fixture: wpPostgres},
	{name: "wordpress-postgres-inserts", dialect: "postgres", pairs: wpPairs, fixture: wpPostgres, dumpArg: []string{"--inserts"}},
}

var wpPairs = []Pair{
	{"https://example.com", "https://staging.example.com"},
	{"example.com", "staging.example.com"},
	{"/var/www/prod", "/srv/staging"},
}

// The fixtures: DDL, then rows inserted with parameters (so that the
// serialized values' lengths are computed, not typed).
type fixture struct {
	ddl  []string
	rows map[string][][]any // table → rows
	// order of the tables' inserts
	tables []string
}

func s(v string) string { return ser(v) } // a serialized PHP string

func arr(kv ...string) string {
	var b strings.Builder
	b.WriteString("a:" + strconv.Itoa(len(kv)/2) + ":{")
	for _, x := range kv {
		b.WriteString(x)
	}
	return b.String() + "}"
}

var wpOptions = [][]any{
	{"siteurl", "https://example.com/wp"},
	{"home", "https://example.com"},
	{"upload_path", "/var/www/prod/wp-content/uploads"},
	{"widget_emoji", arr("i:2;", arr(s("title"), s("Café ☕"), s("text"), s("🎉 https://example.com/ünïcödé")))},
	{"quote_semicolon", arr(s("a"), s(`x";y\";https://example.com`), s("b"), s(`";"`))},
	{"nested", arr(s("inner"), arr(s("url"), s("https://example.com")), s("double"), s(s("https://example.com")))},
	{"object", "O:8:\"stdClass\":3:{" + s("url") + s("https://example.com") + s("\x00*\x00secret") + s("https://example.com") + s("\x00Foo\x00private") + s("https://example.com") + "}"},
	{"refs", "a:3:{i:0;O:8:\"stdClass\":1:{" + s("u") + s("https://example.com") + "}i:1;R:3;i:2;r:2;}"},
	{"floats", "a:4:{i:0;d:0.1000000000000000055511151231257827;i:1;d:1.0E+25;i:2;d:-0;i:3;d:INF;}"},
	{"json_in_serialized", arr(s("json"), s(`{"url":"https:\/\/example.com\/page"}`))},
	{"json_in_json", `{"outer":"{\"url\":\"https:\\\/\\\/example.com\"}"}`},
	{"base64", "aHR0cHM6Ly9leGFtcGxlLmNvbS93cC1jb250ZW50L3VwbG9hZHM="},
	{"text_then_serialized", "Moved to https://example.com " + arr(s("u"), s("https://example.com"))},
	{"broken_serialized", `a:1:{s:3:"url";s:20:"https://example.com";}`},
	{"custom_object", `C:8:"MyCustom":21:{x:https://example.com}`},
	{"enum", "a:2:{i:0;E:11:\"Suit:Hearts\";i:1;" + s("https://example.com") + "}"},
	{"other_domains", "https://example.com.au https://myexample.com https://example.community"},
	{"control_chars", "nul\x00ctrlz\x1a https://example.com\r\n"},
}

var wpPosts = [][]any{
	{`<!-- wp:image {"url":"https:\/\/example.com\/a.jpg","caption":"\u003ca href=\u0022https:\u002f\u002fexample.com\u0022\u003e \u0026amp;"} -->` + "\n<figure><img src=\"https://example.com/a.jpg\"/></figure>\n<!-- /wp:image -->", "Mail me@example.com", "https://example.com/?p=1"},
	{`<a href="//example.com/x">rel</a> <a href="http://example.com/old">old</a> https%3A%2F%2Fexample.com%2Fenc https%3a%2f%2fexample.com`, "", "https://example.com/?p=2"},
	{"path /var/www/prod/wp-content and /var/www/production stays", "", "https://example.com/?p=3"},
}

var wpMySQL = fixture{
	ddl: []string{
		"CREATE TABLE wp_options (option_id bigint unsigned PRIMARY KEY AUTO_INCREMENT, option_name varchar(191), option_value longtext) CHARACTER SET utf8mb4",
		"CREATE TABLE wp_posts (ID bigint unsigned PRIMARY KEY AUTO_INCREMENT, post_content longtext, post_excerpt text, guid varchar(255)) CHARACTER SET utf8mb4",
		"CREATE TABLE wp_blogs (blog_id bigint PRIMARY KEY, site_id bigint, domain varchar(200), path varchar(100))",
		"CREATE TABLE wp_site (id bigint PRIMARY KEY, domain varchar(200), path varchar(100))",
		"CREATE TABLE wp_log (msg text, at datetime)",
	},
	tables: []string{"wp_options (option_name, option_value)", "wp_posts (post_content, post_excerpt, guid)", "wp_blogs", "wp_site", "wp_log"},
	rows: map[string][][]any{
		"wp_options (option_name, option_value)":      wpOptions,
		"wp_posts (post_content, post_excerpt, guid)": wpPosts,
		"wp_blogs": {{1, 1, "example.com", "/"}, {2, 1, "shop.example.com", "/"}, {3, 1, "example.com", "/blog/"}},
		"wp_site":  {{1, "example.com", "/"}},
		"wp_log":   {{"no primary key: https://example.com", "2026-01-01 00:00:00"}},
	},
}

var tldMySQL = fixture{
	ddl:    []string{"CREATE TABLE t (id int PRIMARY KEY, v text)"},
	tables: []string{"t"},
	rows: map[string][][]any{"t": {{1, "https://example.de/x"}, {2, "https://example.dev/already"}, {3, "see example.de."},
		{4, s("www.example.de")}, {5, "example.de-shop example.design"}}},
}

var wpPostgres = fixture{
	ddl: []string{
		"CREATE TABLE wp_options (option_id bigserial PRIMARY KEY, option_name text, option_value text)",
		"CREATE TABLE wp_posts (id bigserial PRIMARY KEY, post_content text, post_excerpt text, guid text)",
		"CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'https://example.com' $$",
	},
	tables: []string{"wp_options (option_name, option_value)", "wp_posts (post_content, post_excerpt, guid)"},
	rows: map[string][][]any{
		"wp_options (option_name, option_value)":      append(pgSafe(wpOptions), []any{"tabs", "tab\there https://example.com\nnewline \\ backslash 'quote'"}),
		"wp_posts (post_content, post_excerpt, guid)": wpPosts,
	},
}

// pgSafe drops values PostgreSQL text cannot hold (NUL bytes).
func pgSafe(rows [][]any) [][]any {
	var out [][]any
	for _, r := range rows {
		if !strings.Contains(r[1].(string), "\x00") {
			out = append(out, r)
		}
	}
	return out
}

func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "corpus", c.name)
			inDir := dir
			if c.input != "" {
				inDir = filepath.Join("testdata", "corpus", c.input)
			} else if *rebuild {
				buildInput(t, c, dir)
			}
			in, err := os.ReadFile(filepath.Join(inDir, "input.sql"))
			if err != nil {
				t.Fatalf("%v (rebuild with: go test ./rewrite -run Corpus -corpus -update)", err)
			}
			got, rep := rewriteDump(t, c, in)
			wantPath := filepath.Join(dir, "want.sql")
			if *update {
				if err := os.WriteFile(wantPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n%s", wantPath, lineDiff(want, got))
			}
			if again, rep2 := rewriteDump(t, c, got); !bytes.Equal(again, got) || len(rep2.Counts) != 0 {
				t.Errorf("a second run changed the output: %+v", rep2.Counts)
			}
			if len(rep.Counts) == 0 {
				t.Error("nothing was rewritten")
			}
			// wp_options holds a broken serialized value, a custom-serialized
			// object and base64 with a match: each is reported.
			if strings.HasPrefix(c.name, "wordpress") {
				reasons := map[string]bool{}
				for _, p := range rep.Unsafe {
					reasons[p.Reason] = true
				}
				if len(rep.Unsafe) < 2 || (c.dialect == "mysql" && len(rep.Unsafe) < 3) || !reasons["base64-encoded data holds a match: left as it is"] {
					t.Errorf("unsafe values reported: %+v", rep.Unsafe)
				}
			}
			checkPHP(t, c, got)
		})
	}
}

func rewriteDump(t *testing.T, c corpusCase, in []byte) ([]byte, *Report) {
	t.Helper()
	w, err := New(Config{Pairs: c.pairs, Options: c.opts})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var rep *Report
	if c.dialect == "postgres" {
		rep, err = w.Postgres(bytes.NewReader(in), &out)
	} else {
		rep, err = w.MySQL(bytes.NewReader(in), &out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), rep
}

// buildInput loads the fixture into a new database and dumps it with the
// engine's tool, as cairn does.
func buildInput(t *testing.T, c corpusCase, dir string) {
	ctx := context.Background()
	var dump bytes.Buffer
	if c.dialect == "postgres" {
		p := testenv.NewPostgres(t)
		for _, q := range c.fixture.ddl {
			if _, err := p.Admin.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, table := range c.fixture.tables {
			for _, r := range c.fixture.rows[table] {
				ph := make([]string, len(r))
				for i := range r {
					ph[i] = "$" + strconv.Itoa(i+1)
				}
				if _, err := p.Admin.Exec(ctx, "INSERT INTO "+table+" VALUES ("+strings.Join(ph, ",")+")", r...); err != nil {
					t.Fatalf("insert into %s: %v", table, err)
				}
			}
		}
		args := append([]string{"--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres", "-d", p.Database}, c.dumpArg...)
		cmd := exec.Command("pg_dump", args...)
		cmd.Stdout = &dump
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("pg_dump: %v: %s", err, stderr.String())
		}
	} else {
		m := testenv.NewMariaDB(t)
		for _, q := range c.fixture.ddl {
			if _, err := m.Admin.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, table := range c.fixture.tables {
			for _, r := range c.fixture.rows[table] {
				ph := strings.TrimSuffix(strings.Repeat("?,", len(r)), ",")
				if _, err := m.Admin.Exec("INSERT INTO "+table+" VALUES ("+ph+")", r...); err != nil {
					t.Fatalf("insert into %s: %v", table, err)
				}
			}
		}
		cfg := mysql.Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: m.Database}
		if err := mysql.Dump(ctx, cfg, &dump); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "input.sql"), stripNames(dump.Bytes()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stripNames removes the lines that name the dump's host, time and tool
// versions (a rebuild still names its random source database in two
// comments).
func stripNames(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("-- Host:")) || bytes.HasPrefix(l, []byte("-- Dump completed")) ||
			bytes.HasPrefix(l, []byte("-- Dumped from")) || bytes.HasPrefix(l, []byte("-- Dumped by")) ||
			bytes.HasPrefix(l, []byte("\\restrict")) || bytes.HasPrefix(l, []byte("\\unrestrict")) {
			continue
		}
		out = append(out, l)
	}
	return bytes.Join(out, nil)
}

func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

// checkPHP has PHP itself unserialize every value of the rewritten dump
// that the input held as valid serialized data.
func checkPHP(t *testing.T, c corpusCase, out []byte) {
	php, err := exec.LookPath("php")
	testenv.Require(t, "php (apt-get install php-cli)", err)
	values := serializedValues(c, out)
	if len(values) == 0 {
		return
	}
	script := `enum Suit { case Hearts; }
		$n = 0; while (($l = fgets(STDIN)) !== false) { $v = base64_decode(trim($l)); $n++;
		if ($v !== 'b:0;' && @unserialize($v) === false) { echo "line $n: ", $v, "\n"; } }`
	var in bytes.Buffer
	for _, v := range values {
		in.WriteString(base64.StdEncoding.EncodeToString(v) + "\n")
	}
	cmd := exec.Command(php, "-r", script)
	cmd.Stdin = &in
	got, err := cmd.CombinedOutput()
	if err != nil || len(got) > 0 {
		t.Errorf("PHP cannot unserialize these rewritten values (%v):\n%s", err, got)
	}
}

// serializedValues collects the values of a dump that parse as serialized
// PHP (with the rewriter's own parser) — PHP must agree.
func serializedValues(c corpusCase, dump []byte) [][]byte {
	var vals [][]byte
	w, _ := New(Config{Pairs: []Pair{{"\x00none\x00", "x"}}})
	w.r.cores = []needle{{}} // every value "may match": visit them all
	collect := func(v []byte) {
		if isSerialized(v) {
			vals = append(vals, append([]byte(nil), v...))
		}
	}
	w.visit = collect
	if c.dialect == "postgres" {
		w.Postgres(bytes.NewReader(dump), io.Discard)
	} else {
		w.MySQL(bytes.NewReader(dump), io.Discard)
	}
	return vals
}

// A real dump with a row over 16 MB (a line of its own in MariaDB's
// row-a-line format): the row's small values are rewritten, the huge one
// passes through as it was and is reported, and the result loads back.
// (Made at test time: too big to commit.)
func TestLongRowRealDump(t *testing.T) {
	m := testenv.NewMariaDB(t)
	var packet int64
	if err := m.Admin.QueryRow("SELECT @@GLOBAL.max_allowed_packet").Scan(&packet); err != nil {
		t.Fatal(err)
	}
	if packet < 64<<20 {
		if _, err := m.Admin.Exec("SET GLOBAL max_allowed_packet = 67108864"); err != nil {
			t.Fatal(err)
		}
	}
	// A session takes max_allowed_packet as it starts: the rows go in
	// over a connection opened after the change.
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+m.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE t (id int PRIMARY KEY, small text, huge longtext, other text)",
		"INSERT INTO t VALUES (1, 'https://example.com/a', CONCAT(REPEAT('0123456789abcdef', 1048576), ' https://example.com/'), 'https://example.com/b')",
		"INSERT INTO t VALUES (2, 'https://example.com/c', 'x', 'y')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ctx := context.Background()
	var dump bytes.Buffer
	src := mysql.Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: m.Database}
	if err := mysql.Dump(ctx, src, &dump); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Pairs: []Pair{{"https://example.com", "https://staging.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := w.MySQL(bytes.NewReader(dump.Bytes()), &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unsafe) != 1 || rep.Unsafe[0].Column != "huge" || len(rep.Counts) != 2 {
		t.Fatalf("report: unsafe %+v, counts %+v", rep.Unsafe, rep.Counts)
	}
	dst := testenv.NewMariaDB(t)
	if err := mysql.Load(ctx, mysql.Config{User: "root", Host: "127.0.0.1", Port: 3306, Database: dst.Database}, &out); err != nil {
		t.Fatal(err)
	}
	var small, other string
	var hugeLen int
	var hugeEnd string
	if err := dst.Admin.QueryRow("SELECT small, other, LENGTH(huge), RIGHT(huge, 21) FROM t WHERE id = 1").Scan(&small, &other, &hugeLen, &hugeEnd); err != nil {
		t.Fatal(err)
	}
	if small != "https://staging.example.com/a" || other != "https://staging.example.com/b" || hugeLen != 16<<20+21 || hugeEnd != " https://example.com/" {
		t.Errorf("loaded back: %q %q %d %q", small, other, hugeLen, hugeEnd)
	}
}
