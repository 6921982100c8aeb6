package postgres

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-backup/cairn"
)

// RowCounter counts each table's rows in a pg_dump plain-format stream as
// it is written through it: the data lines of every COPY … FROM stdin;
// block up to its \. line. The counts come from the dump's own snapshot.
// Tables are named as Stats names them (see tableName).
type RowCounter struct {
	counts map[string]int64
	inCopy bool
	table  string
	line   []byte // the current line's first bytes (up to lineMax)
	text   sqlText
	lit    bool // the current line begins inside a literal (see sqlText)
	copies copyLines
}

// lineMax bounds the bytes of a line the counter keeps: enough for a
// row's end (\.), and for any COPY line (see headMax).
const lineMax = 4096

// NewRowCounter returns an empty counter.
func NewRowCounter() *RowCounter { return &RowCounter{counts: map[string]int64{}} }

// Write counts rows in p; it never fails.
func (c *RowCounter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !c.inCopy {
			c.text.write(p[:len(part)+min(1, len(p)-len(part))])
		}
		limit := lineMax
		if !c.inCopy && (bytes.HasPrefix(c.line, []byte("COPY ")) || len(c.line) == 0 && bytes.HasPrefix(part, []byte("COPY "))) {
			limit = headMax
		}
		if room := limit - len(c.line); room > 0 {
			c.line = append(c.line, part[:min(room, len(part))]...)
		}
		if i < 0 {
			break
		}
		c.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (c *RowCounter) endLine() {
	line := c.line
	c.line = c.line[:0]
	if c.inCopy {
		if string(line) == `\.` {
			c.inCopy = false
		} else {
			c.counts[c.table]++
		}
		return
	}
	lit := c.lit
	c.lit = c.text.literal()
	if lit && !c.copies.open() {
		return
	}
	line, done := c.copies.take(line)
	if done && bytes.HasPrefix(line, []byte("COPY ")) && bytes.HasSuffix(line, []byte(" FROM stdin;")) {
		if name, ok := copyTable(string(line[len("COPY "):])); ok {
			c.inCopy, c.table = true, name
			c.counts[name] += 0
		}
	}
}

// copyTable reads the (possibly quoted) schema.table at the start of s,
// and returns it named as tableName names it.
func copyTable(s string) (string, bool) {
	parts := splitName(s)
	if len(parts) != 2 {
		return "", false
	}
	return tableName(parts[0], parts[1]), true
}

// splitName reads the dotted name, its parts quoted or not, at the start
// of s: nil if a quote does not end.
func splitName(s string) []string {
	var parts []string
	for {
		var part string
		if strings.HasPrefix(s, `"`) {
			end := 1
			var b strings.Builder
			for end < len(s) {
				if s[end] == '"' {
					if end+1 < len(s) && s[end+1] == '"' {
						b.WriteByte('"')
						end += 2
						continue
					}
					break
				}
				b.WriteByte(s[end])
				end++
			}
			if end >= len(s) {
				return nil
			}
			part, s = b.String(), s[end+1:]
		} else {
			end := strings.IndexAny(s, ". (")
			if end < 0 {
				end = len(s)
			}
			part, s = s[:end], s[end:]
		}
		parts = append(parts, part)
		if !strings.HasPrefix(s, ".") {
			break
		}
		s = s[1:]
	}
	return parts
}

// tableName is a table's name as cairn's stats name it: schema.table,
// or, when either holds a dot or a double quote (which would make
// "a.b".c and a."b.c" both a.b.c), the two quoted as SQL quotes them,
// "a.b"."c".
func tableName(schema, table string) string {
	if !strings.ContainsAny(schema, `."`) && !strings.ContainsAny(table, `."`) {
		return schema + "." + table
	}
	return quoteName(schema) + "." + quoteName(table)
}

// withOldNames is stats, and each stat of a table named quoted (see
// tableName) again under the name cairn gave it before, schema.table
// unquoted, unless another table is spelled so too: a snapshot taken by
// an earlier version recorded that name, and is checked by it.
func withOldNames(stats []TableStat) []TableStat {
	spelled := map[string]int{}
	old := make([]string, len(stats))
	for i, st := range stats {
		if parts := splitName(st.Name); strings.HasPrefix(st.Name, `"`) && len(parts) == 2 {
			old[i] = parts[0] + "." + parts[1]
		} else {
			old[i] = st.Name
		}
		spelled[old[i]]++
	}
	out := slices.Clip(stats)
	for i, st := range stats {
		if old[i] != st.Name && spelled[old[i]] == 1 {
			st.Name = old[i]
			out = append(out, st)
		}
	}
	return out
}

func quoteName(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// nameSQL is tableName in SQL, of pg_namespace's row ns and pg_class's
// row c.
func nameSQL(ns, c string) string {
	n, r := ns+".nspname", c+".relname"
	return fmt.Sprintf(`CASE WHEN %[1]s ~ '[."]' OR %[2]s ~ '[."]' THEN '"' || replace(%[1]s, '"', '""') || '"."' || replace(%[2]s, '"', '""') || '"' ELSE %[1]s || '.' || %[2]s END`, n, r)
}

// Counts returns the rows seen per table, in table name order.
func (c *RowCounter) Counts() []TableStat { return cairn.TableCounts(c.counts) }
