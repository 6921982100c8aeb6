package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// The schema after the data (keys, indexes, constraints, triggers) of a
// dump in parts is built as pg_restore -j builds it: each table's keys and
// indexes (pg_dump's CONSTRAINT and INDEX entries) as soon as the part of
// rows that held the table is loaded, on that part's connection, while
// the other part may still be loading; then everything else (foreign
// keys, triggers, rules, attached partitions' indexes, comments) in the
// dump's order, by psql in one transaction. Each entry runs with the
// default_tablespace in force where the dump has it.

// postDataMax bounds the schema after the data read ahead of its load; a
// larger one loads after the rows, one entry after the other.
const postDataMax = 16 << 20

// postData is the schema after the data, split into pg_dump's entries.
type postData struct {
	head    string           // the SET lines every entry runs after
	entries []postEntry      // in the dump's order
	byTable map[string][]int // table (as the dump writes it) → its keys' and indexes' entries
	early   map[int]string   // the entries of byTable → their table

	mu    sync.Mutex
	built map[string]bool // the tables whose entries of byTable ran
}

type postEntry struct {
	sql        string // its SET lines, comment and statements
	tablespace string // default_tablespace's value in force there, as SET takes it
}

var (
	entryRE      = regexp.MustCompile(`(?m)^--\n-- Name: [^\n]*; Type: ([A-Z ]+); Schema: [^\n]*\n--\n`)
	tablespaceRE = regexp.MustCompile(`(?m)^SET default_tablespace = ('[^'\n]*'|[^;\n]+);$`) // '' or a name
)

// splitPostData splits text, pg_dump's --section=post-data, into its
// entries. Its \restrict pair is dropped (the entries run without psql or
// after cairn's own \restrict).
func splitPostData(text string) *postData {
	p := &postData{byTable: map[string][]int{}, early: map[int]string{}, built: map[string]bool{}}
	var lines []string
	for _, l := range strings.SplitAfter(text, "\n") {
		if !restrictRE.MatchString(l) {
			lines = append(lines, l)
		}
	}
	text = strings.Join(lines, "")
	at := entryRE.FindAllStringSubmatchIndex(text, -1)
	if len(at) == 0 {
		p.head = text
		return p
	}
	// The SET lines just before an entry's comment are the entry's (but
	// the first's: those are the head's, which every entry runs after).
	starts := make([]int, len(at))
	starts[0] = at[0][0]
	for i := 1; i < len(at); i++ {
		s := at[i][0]
		for {
			prev := strings.LastIndex(strings.TrimRight(text[:s], "\n"), "\n") + 1
			if prev >= s || prev < at[i-1][1] || !strings.HasPrefix(text[prev:], "SET ") {
				break
			}
			s = prev
		}
		starts[i] = s
	}
	p.head = text[:starts[0]]
	tablespace := "''"
	for _, m := range tablespaceRE.FindAllStringSubmatch(p.head, -1) {
		tablespace = m[1]
	}
	for i, m := range at {
		end := len(text)
		if i+1 < len(at) {
			end = starts[i+1]
		}
		sql := text[starts[i]:end]
		for _, t := range tablespaceRE.FindAllStringSubmatch(text[starts[i]:m[0]], -1) {
			tablespace = t[1]
		}
		p.entries = append(p.entries, postEntry{sql: sql, tablespace: tablespace})
		if table := entryTable(text[m[2]:m[3]], text[m[1]:end]); table != "" {
			p.byTable[table] = append(p.byTable[table], i)
			p.early[i] = table
		}
		for _, t := range tablespaceRE.FindAllStringSubmatch(text[m[1]:end], -1) {
			tablespace = t[1]
		}
	}
	return p
}

// entryTable is the table of a key's or an index's entry (its statements
// body, pg_dump's type typ), as the dump writes it, or "" for any other.
func entryTable(typ, body string) string {
	body = strings.TrimLeft(body, "\n")
	switch typ {
	case "CONSTRAINT":
		rest, ok := strings.CutPrefix(body, "ALTER TABLE ONLY ")
		if !ok {
			return ""
		}
		table, _, ok := strings.Cut(rest, "\n    ADD CONSTRAINT ")
		if !ok || strings.ContainsAny(table, "\n;") {
			return ""
		}
		return table
	case "INDEX":
		words := splitOutsideQuotes(strings.SplitN(body, "\n", 2)[0], ' ')
		if len(words) > 0 && words[0] == "CREATE" {
			words = words[1:]
		}
		if len(words) > 0 && words[0] == "UNIQUE" {
			words = words[1:]
		}
		// INDEX name ON table USING …; ON ONLY is a partitioned table's.
		if len(words) < 5 || words[0] != "INDEX" || words[2] != "ON" || words[4] != "USING" {
			return ""
		}
		return words[3]
	}
	return ""
}

// build runs the keys' and indexes' entries of tables (whose rows are
// loaded) on c as owner, those of each table once.
func (p *postData) build(ctx context.Context, c Config, owner string, tables []string) error {
	var todo []string
	p.mu.Lock()
	for _, t := range tables {
		if len(p.byTable[t]) > 0 && !p.built[t] {
			todo, p.built[t] = append(todo, t), true
		}
	}
	p.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	pg := conn.PgConn()
	if _, err := pg.Exec(ctx, "SET ROLE "+ident(owner)+";\n"+p.head).ReadAll(); err != nil {
		return fmt.Errorf("load into %s: %w", c, err)
	}
	for _, t := range todo {
		for _, i := range p.byTable[t] {
			e := p.entries[i]
			if _, err := pg.Exec(ctx, "SET default_tablespace = "+e.tablespace+";\n"+e.sql).ReadAll(); err != nil {
				return fmt.Errorf("load into %s: %w%s", c, err, hint(err.Error()))
			}
		}
	}
	return nil
}

// rest is the schema after the data but the entries built (see build),
// for psql: each entry with the default_tablespace in force there.
func (p *postData) rest() io.Reader {
	var b bytes.Buffer
	b.WriteString(p.head)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.entries {
		if table, ok := p.early[i]; !ok || !p.built[table] {
			b.WriteString("SET default_tablespace = " + e.tablespace + ";\n" + e.sql)
		}
	}
	return &b
}
