package mysql

import (
	"bytes"
	"fmt"
	"strings"
)

// localizer makes a dump's statements act on the database they are loaded
// into, and on no other. A dump holds no USE or CREATE DATABASE, but
// objects may still name the database they were dumped from: a trigger
// created as `CREATE TRIGGER src.trg … ON src.t`, a trigger's, routine's
// or event's body written with `src.table` (the server keeps those as
// written), and the `ALTER DATABASE src CHARACTER SET …` lines the dump
// tool puts around a routine whose database's character set has changed
// since it was made. Loaded into another database as they are, they would
// create the trigger in the source database, make the copy's triggers and
// events write to the source's tables, and change the source's character
// set: a restore to staging would write to production.
//
// So every qualifier naming the source database is removed (an unqualified
// name is the object's own database), ALTER DATABASE loses the source's
// name (it then alters the database being loaded), and a statement that
// would use, create, drop or alter any other database is refused. Names of
// other databases in bodies are left as they are: those are the
// application's cross-database references. String literals and plain
// comments are never changed; versioned comments (`/*!50003 … */`) are
// read as the code they are.
type localizer struct {
	src  string // the source database, from the dump's header; "" until known
	fold bool   // names are compared without case (lower_case_table_names)
	ansi bool   // "…" is an identifier, not a string (sql_mode ANSI_QUOTES)
}

// objectKinds are the words after which a CREATE names the object made.
var objectKinds = map[string]bool{"TRIGGER": true, "EVENT": true, "PROCEDURE": true, "FUNCTION": true, "VIEW": true}

// header learns the source database from a dump's comment line
// "-- Host: HOST    Database: NAME", and tells whether line was one.
func (z *localizer) header(line []byte) bool {
	if rest, ok := bytes.CutPrefix(line, []byte("-- Host: ")); ok {
		if _, name, ok := bytes.Cut(rest, []byte("    Database: ")); ok {
			z.src = string(bytes.TrimRight(name, " \r"))
			return true
		}
	}
	return false
}

func (z *localizer) same(name string) bool {
	if z.fold {
		return strings.EqualFold(name, z.src)
	}
	return name == z.src
}

// token is one word or quoted identifier of a statement.
type token struct {
	start, end int // the bytes it takes, quotes included
	name       string
	quoted     bool
}

// statement rewrites one statement (see localizer). It returns stmt itself
// when nothing changes.
func (z *localizer) statement(stmt []byte) ([]byte, error) {
	var cuts [][2]int // byte ranges to remove, in order
	var head []string // the statement's first words, upper-cased ("" for a quoted name)
	objectNext := false
	for i := 0; i < len(stmt); {
		tok, next, code := z.scan(stmt, i)
		if !code || tok == nil {
			i = next
			continue
		}
		i = tok.end
		word := ""
		if !tok.quoted {
			word = strings.ToUpper(tok.name)
		}
		head = append(head, word)
		if len(head) == 2 && (head[0] == "USE" || (head[0] == "CREATE" || head[0] == "DROP") && (word == "DATABASE" || word == "SCHEMA")) {
			return nil, fmt.Errorf("the dump holds %s: a dump cairn loads names no database (it loads into the scratch database only). Try: restore a snapshot made by cairn", snippet(stmt))
		}
		if len(head) == 3 && head[0] == "ALTER" && (head[1] == "DATABASE" || head[1] == "SCHEMA") && isDatabaseName(tok, word) {
			if z.src == "" || !z.same(tok.name) {
				return nil, fmt.Errorf("the dump alters another database (%s). Try: restore a snapshot made by cairn", snippet(stmt))
			}
			cuts = append(cuts, [2]int{tok.start, tok.end})
			continue
		}
		if end, ok := z.qualifier(stmt, tok); ok {
			if objectNext && z.src == "" {
				z.src = tok.name // a dumped object is always in the dumped database
			}
			if z.same(tok.name) {
				cuts = append(cuts, [2]int{tok.start, end})
			}
		}
		switch {
		case objectKinds[word] && head[0] == "CREATE":
			objectNext = true
		case word != "IF" && word != "NOT" && word != "EXISTS":
			objectNext = false
		}
	}
	if len(cuts) == 0 {
		return stmt, nil
	}
	out := make([]byte, 0, len(stmt))
	last := 0
	for _, c := range cuts {
		out = append(out, stmt[last:c[0]]...)
		last = c[1]
	}
	return append(out, stmt[last:]...), nil
}

// isDatabaseName tells whether the word after ALTER DATABASE is a name
// rather than the first word of its options.
func isDatabaseName(tok *token, word string) bool {
	if tok.quoted {
		return true
	}
	switch word {
	case "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT", "UPGRADE", "READ", "ENCRYPTION":
		return false
	}
	return true
}

// qualifier tells whether tok is followed by a dot and a name (it then
// qualifies that name), and where the name starts.
func (z *localizer) qualifier(stmt []byte, tok *token) (int, bool) {
	if !tok.quoted && isNumber(tok.name) {
		return 0, false
	}
	if p := bytes.TrimRight(stmt[:tok.start], " \t\r\n"); len(p) > 0 && p[len(p)-1] == '.' {
		return 0, false // the second part of a name: db.NAME.column
	}
	j := skipSpace(stmt, tok.end)
	if j >= len(stmt) || stmt[j] != '.' {
		return 0, false
	}
	k := skipSpace(stmt, j+1)
	if k >= len(stmt) || !(stmt[k] == '`' || isIdentByte(stmt[k]) || z.ansi && stmt[k] == '"') {
		return 0, false
	}
	return k, true
}

// scan reads what starts at stmt[i]: a word or quoted identifier (tok), or
// one byte of code (tok nil, code true), or a string or comment (code
// false). next is where it ends.
func (z *localizer) scan(stmt []byte, i int) (tok *token, next int, code bool) {
	b := stmt[i]
	switch {
	case b == '`' || z.ansi && b == '"':
		j, name := quoted(stmt, i)
		return &token{start: i, end: j, name: name, quoted: true}, j, true
	case b == '\'' || b == '"':
		j, _ := quoted(stmt, i)
		return nil, j, false
	case b == '#' || b == '-' && i+2 < len(stmt) && stmt[i+1] == '-' && isSpace(stmt[i+2]):
		j := bytes.IndexByte(stmt[i:], '\n')
		if j < 0 {
			return nil, len(stmt), false
		}
		return nil, i + j, false
	case b == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
		j := i + 2
		if j < len(stmt) && stmt[j] == 'M' && j+1 < len(stmt) && stmt[j+1] == '!' {
			j++
		}
		if j < len(stmt) && stmt[j] == '!' {
			j++
			for j < len(stmt) && stmt[j] >= '0' && stmt[j] <= '9' {
				j++
			}
			return nil, j, true // versioned: its content is code, its */ skipped below
		}
		k := bytes.Index(stmt[j:], []byte("*/"))
		if k < 0 {
			return nil, len(stmt), false
		}
		return nil, j + k + 2, false
	case b == '*' && i+1 < len(stmt) && stmt[i+1] == '/':
		return nil, i + 2, true
	case isIdentByte(b):
		j := i
		for j < len(stmt) && isIdentByte(stmt[j]) {
			j++
		}
		return &token{start: i, end: j, name: string(stmt[i:j])}, j, true
	}
	return nil, i + 1, true
}

// quoted reads the quoted string or identifier at stmt[i], with the
// escapes of its quote; it returns where it ends and its content.
func quoted(stmt []byte, i int) (int, string) {
	q := stmt[i]
	var name []byte
	for j := i + 1; j < len(stmt); j++ {
		switch {
		case stmt[j] == '\\' && q != '`' && j+1 < len(stmt):
			name = append(name, stmt[j], stmt[j+1])
			j++
		case stmt[j] == q && j+1 < len(stmt) && stmt[j+1] == q:
			name = append(name, q)
			j++
		case stmt[j] == q:
			return j + 1, string(name)
		default:
			name = append(name, stmt[j])
		}
	}
	return len(stmt), string(name)
}

func isIdentByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '$' || b >= 0x80
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}
