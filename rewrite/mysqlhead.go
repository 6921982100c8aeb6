package rewrite

import (
	"bytes"

	"github.com/cairn-backup/cairn/internal/sqlident"
)

// insertHead is what precedes the values of an INSERT statement that is not
// in mysqldump's own form: hand-written SQL and other tools' dumps.
type insertHead struct {
	table string
	cols  []string // the column list, nil when none is given
	n     int      // bytes up to and including "VALUES" and the byte after it
}

// parseInsertHead reads `INSERT|REPLACE [LOW_PRIORITY|DELAYED|HIGH_PRIORITY]
// [IGNORE] [INTO] [schema.]table [(col, …)] VALUES|VALUE ` at the start of
// line, with identifiers bare, `backquoted` or "double-quoted", keywords in
// any case. ok is false when line holds no such head.
func parseInsertHead(line []byte) (h insertHead, ok bool) {
	p := line
	word, p := cutWord(p)
	if !eqFold(word, "INSERT") && !eqFold(word, "REPLACE") {
		return h, false
	}
	for {
		save := p
		word, p = cutWord(p)
		switch {
		case eqFold(word, "LOW_PRIORITY"), eqFold(word, "DELAYED"), eqFold(word, "HIGH_PRIORITY"), eqFold(word, "IGNORE"), eqFold(word, "INTO"):
			continue
		}
		p = save
		break
	}
	p = skipSpace(p)
	for {
		name, rest, ok := cutIdent(p)
		if !ok {
			return h, false
		}
		h.table, p = name, rest
		if len(p) == 0 || p[0] != '.' {
			break
		}
		p = p[1:]
	}
	p = skipSpace(p)
	if len(p) > 0 && p[0] == '(' {
		p = skipSpace(p[1:])
		h.cols = []string{}
		for {
			name, rest, ok := cutIdent(p)
			if !ok {
				return h, false
			}
			h.cols = append(h.cols, name)
			p = skipSpace(rest)
			if len(p) == 0 {
				return h, false
			}
			if p[0] == ')' {
				p = skipSpace(p[1:])
				break
			}
			if p[0] != ',' {
				return h, false
			}
			p = skipSpace(p[1:])
		}
	}
	word, rest := cutWord(p)
	if !eqFold(word, "VALUES") && !eqFold(word, "VALUE") {
		return h, false
	}
	h.n = len(line) - len(rest)
	if len(rest) == 0 || rest[0] != ' ' && rest[0] != '\n' && rest[0] != '\r' && rest[0] != '\t' && rest[0] != '(' {
		return h, false
	}
	if rest[0] != '(' {
		h.n++ // the space after VALUES
	}
	return h, true
}

// cutIdent reads one identifier: `backquoted`, "double-quoted" or bare.
func cutIdent(p []byte) (string, []byte, bool) {
	if len(p) == 0 {
		return "", nil, false
	}
	switch p[0] {
	case '`':
		return sqlident.CutBackquoted(p)
	case '"':
		var out []byte
		for i := 1; i < len(p); i++ {
			if p[i] != '"' {
				out = append(out, p[i])
				continue
			}
			if i+1 < len(p) && p[i+1] == '"' {
				out = append(out, '"')
				i++
				continue
			}
			return string(out), p[i+1:], true
		}
		return "", nil, false
	}
	i := 0
	for i < len(p) && identByte(p[i]) {
		i++
	}
	if i == 0 {
		return "", nil, false
	}
	return string(p[:i]), p[i:], true
}

func identByte(b byte) bool {
	return b == '_' || b == '$' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || b >= 0x80
}

// cutWord reads a keyword (letters and '_') after optional spaces.
func cutWord(p []byte) ([]byte, []byte) {
	p = skipSpace(p)
	i := 0
	for i < len(p) && (p[i] == '_' || 'a' <= p[i]|0x20 && p[i]|0x20 <= 'z') {
		i++
	}
	return p[:i], p[i:]
}

func skipSpace(p []byte) []byte {
	return bytes.TrimLeft(p, " \t\r\n")
}

func eqFold(word []byte, kw string) bool { return bytes.EqualFold(word, []byte(kw)) }

// dataStatement tells whether a line starts a statement that writes data
// (whose strings a rewrite is about): INSERT, REPLACE or UPDATE.
func dataStatement(line []byte) bool {
	word, _ := cutWord(line)
	return eqFold(word, "INSERT") || eqFold(word, "REPLACE") || eqFold(word, "UPDATE")
}
