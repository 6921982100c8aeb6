package postgres

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"sync"
)

// The schema after the data (keys, indexes, constraints, triggers) of a
// dump in parts is built as pg_restore -j builds it: each table's keys and
// indexes (pg_dump's CONSTRAINT and INDEX entries) as soon as the part of
// rows that held the table is loaded, on the parts' connections, while
// the other part may still be loading (see afterRows); then everything else (foreign
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
	alone      bool   // an entry of byTable that needs its table alone (see whole)
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
		typ := text[m[2]:m[3]]
		alone := typ == "CONSTRAINT" || typ == "INDEX" && !oneStatement(text[m[1]:end])
		p.entries = append(p.entries, postEntry{sql: sql, tablespace: tablespace, alone: alone})
		if table := entryTable(typ, text[m[1]:end]); table != "" {
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

// claim returns table's keys' and indexes' entries, once: a second
// claim, and rest, leave them out.
func (p *postData) claim(table string) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.built[table] {
		return nil
	}
	p.built[table] = true
	return p.byTable[table]
}

// whole reports whether entry i needs its table alone: a key, which locks
// it whole and may be made from an index built before it, or an index's
// entry that does more than build it (ALTER TABLE … CLUSTER ON or
// REPLICA IDENTITY USING INDEX after it, which lock the table more than
// a build does: two such entries side by side would deadlock). An
// index's build alone locks out writes only.
func (p *postData) whole(i int) bool { return p.entries[i].alone }

// oneStatement reports whether an entry's body (after its comment) is
// one statement only: nothing but blank lines and SET lines after the
// first line that ends with a semicolon.
func oneStatement(body string) bool {
	lines := strings.Split(body, "\n")
	i := 0
	for i < len(lines) && !strings.HasSuffix(strings.TrimSpace(lines[i]), ";") {
		i++
	}
	for _, l := range lines[min(i+1, len(lines)):] {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "SET ") {
			return false
		}
	}
	return true
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
