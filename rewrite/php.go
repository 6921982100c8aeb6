package rewrite

import (
	"bytes"
	"strconv"
)

// maxDepth bounds nesting (arrays in arrays, serialized strings in
// serialized strings) so that hostile input cannot exhaust the stack.
const maxDepth = 64

// result counts what rewriting one value did.
type result struct {
	replaced int // matches replaced
	unsafe   int // places holding a match that were left as they were
}

func (a *result) add(b result) { a.replaced += b.replaced; a.unsafe += b.unsafe }

// value appends v rewritten to dst. A PHP-serialized value is rewritten
// inside, lengths recomputed; one that looks serialized but does not parse
// is left as it is and counted unsafe; anything else is text.
func (r *replacer) value(dst, v []byte, depth int) ([]byte, result) {
	if !r.mayMatch(v) {
		return append(dst, v...), result{}
	}
	if looksSerialized(v) {
		mark := len(dst)
		p := phpParser{r: r, in: v, out: dst, depth: depth}
		if p.item() && p.pos == len(v) {
			return p.out, p.res
		}
		return append(dst[:mark], v...), result{unsafe: 1}
	}
	out, n := r.text(dst, v)
	return out, result{replaced: n}
}

// looksSerialized is WordPress's is_serialized, strict: what PHP code
// would hand to unserialize().
func looksSerialized(v []byte) bool {
	if len(v) < 2 {
		return false
	}
	if v[0] == 'N' && v[1] == ';' && len(v) == 2 {
		return true
	}
	if len(v) < 4 || v[1] != ':' {
		return false
	}
	switch v[0] {
	case 'a', 'O', 'C':
		return v[len(v)-1] == '}'
	case 's', 'S', 'b', 'i', 'd', 'E', 'r', 'R':
		return v[len(v)-1] == ';'
	}
	return false
}

// phpParser rewrites one serialized value: strings are rewritten as values
// (so serialized and JSON strings nested in them are too) with their
// lengths recomputed in bytes; every other byte is copied as it is
// (floats, references, enums and custom-serialized objects included).
type phpParser struct {
	r     *replacer
	in    []byte
	pos   int
	out   []byte
	depth int
	res   result
}

func (p *phpParser) item() bool {
	if p.depth > maxDepth || p.pos >= len(p.in) {
		return false
	}
	switch p.in[p.pos] {
	case 'N':
		return p.lit("N;")
	case 'b', 'i', 'r', 'R':
		return p.scalar(p.in[p.pos], true)
	case 'd':
		return p.scalar('d', false)
	case 's':
		return p.str(true)
	case 'a':
		n, ok := p.count('a')
		if !ok || !p.lit("{") {
			return false
		}
		return p.members(n)
	case 'O':
		if _, ok := p.quoted('O', ':'); !ok {
			return false
		}
		n, ok := p.number(':')
		if !ok || !p.lit("{") {
			return false
		}
		return p.members(n)
	case 'C':
		// Custom serialization: its payload's format is the class's own.
		// Kept as it is; a match inside is reported.
		if _, ok := p.quoted('C', ':'); !ok {
			return false
		}
		n, ok := p.number(':')
		if !ok || !p.lit("{") || p.pos+n+1 > len(p.in) || p.in[p.pos+n] != '}' {
			return false
		}
		p.keep(p.in[p.pos : p.pos+n+1])
		return true
	case 'E':
		// An enum case, Class:Case: kept.
		_, ok := p.quoted('E', ';')
		return ok
	}
	return false
}

// keep copies b as it is, reporting a match inside as unsafe.
func (p *phpParser) keep(b []byte) {
	if p.r.mayMatch(b) {
		if _, n := p.r.text(nil, b); n > 0 {
			p.res.unsafe++
		}
	}
	p.out = append(p.out, b...)
	p.pos += len(b)
}

func (p *phpParser) lit(s string) bool {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(s)) {
		return false
	}
	p.out = append(p.out, s...)
	p.pos += len(s)
	return true
}

// scalar copies "x:VALUE;" as it is; digits limits VALUE to an integer.
func (p *phpParser) scalar(tag byte, digits bool) bool {
	start := p.pos
	if p.pos+2 > len(p.in) || p.in[p.pos+1] != ':' {
		return false
	}
	end := bytes.IndexByte(p.in[p.pos+2:], ';')
	if end <= 0 {
		return false
	}
	val := p.in[p.pos+2 : p.pos+2+end]
	if digits {
		if _, err := strconv.ParseInt(string(val), 10, 64); err != nil {
			return false
		}
		if tag == 'b' && len(val) != 1 {
			return false
		}
	}
	p.pos += 2 + end + 1
	p.out = append(p.out, p.in[start:p.pos]...)
	return true
}

// number reads digits up to sep, copying them and sep.
func (p *phpParser) number(sep byte) (int, bool) {
	end := bytes.IndexByte(p.in[p.pos:], sep)
	if end <= 0 || end > 10 {
		return 0, false
	}
	n, err := strconv.Atoi(string(p.in[p.pos : p.pos+end]))
	if err != nil || n < 0 {
		return 0, false
	}
	p.out = append(p.out, p.in[p.pos:p.pos+end+1]...)
	p.pos += end + 1
	return n, true
}

// count reads "a:N:", copying it.
func (p *phpParser) count(tag byte) (int, bool) {
	if !p.lit(string([]byte{tag, ':'})) {
		return 0, false
	}
	return p.number(':')
}

// quoted reads `T:N:"…"` followed by after, copying it as it is.
func (p *phpParser) quoted(tag, after byte) ([]byte, bool) {
	n, ok := p.count(tag)
	if !ok || p.pos+n+3 > len(p.in) || p.in[p.pos] != '"' || p.in[p.pos+n+1] != '"' || p.in[p.pos+n+2] != after {
		return nil, false
	}
	s := p.in[p.pos+1 : p.pos+n+1]
	p.out = append(p.out, p.in[p.pos:p.pos+n+3]...)
	p.pos += n + 3
	return s, true
}

// str rewrites `s:N:"…";`, writing the new length. Keys are strings too,
// kept as they are (as WP-CLI does): an array's keys are its shape.
func (p *phpParser) str(rewrite bool) bool {
	if !bytes.HasPrefix(p.in[p.pos:], []byte("s:")) {
		return false
	}
	end := bytes.IndexByte(p.in[p.pos+2:], ':')
	if end <= 0 || end > 10 {
		return false
	}
	n, err := strconv.Atoi(string(p.in[p.pos+2 : p.pos+2+end]))
	body := p.pos + 2 + end + 1
	if err != nil || n < 0 || body+n+3 > len(p.in) || p.in[body] != '"' || p.in[body+n+1] != '"' || p.in[body+n+2] != ';' {
		return false
	}
	s := p.in[body+1 : body+1+n]
	if !rewrite || !p.r.mayMatch(s) {
		p.out = append(p.out, p.in[p.pos:body+n+3]...)
		p.pos = body + n + 3
		return true
	}
	rewritten, res := p.r.value(nil, s, p.depth+1)
	p.res.add(res)
	p.out = append(p.out, "s:"...)
	p.out = strconv.AppendInt(p.out, int64(len(rewritten)), 10)
	p.out = append(p.out, ':', '"')
	p.out = append(p.out, rewritten...)
	p.out = append(p.out, '"', ';')
	p.pos = body + n + 3
	return true
}

// members reads n key/value pairs and the closing brace.
func (p *phpParser) members(n int) bool {
	p.depth++
	defer func() { p.depth-- }()
	for i := 0; i < n; i++ {
		if p.pos >= len(p.in) {
			return false
		}
		switch p.in[p.pos] {
		case 'i':
			if !p.scalar('i', true) {
				return false
			}
		case 's':
			if !p.str(false) {
				return false
			}
		default:
			return false
		}
		if !p.item() {
			return false
		}
	}
	return p.lit("}")
}
