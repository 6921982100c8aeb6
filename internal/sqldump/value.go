package sqldump

import (
	"bytes"
	"errors"
	"fmt"
)

// Kind is the kind of a literal in a row of a dump.
type Kind uint8

// The literals a dump writes in its rows.
const (
	Number Kind = iota // 12, -1.5e3: Raw is the number as written
	String             // '…': Raw is what stands between the quotes
	Binary             // _binary '…' (a dump with --hex-blob off): as String
	Hex                // 0x…: Raw is the digits, an even number of them
	Null               // NULL: Raw is empty
)

// Literal is one value of a row as the dump writes it.
type Literal struct {
	Kind Kind
	// Raw is a slice of the row: see Kind. A string's Raw is still
	// escaped; AppendUnescaped decodes it, AppendHex a hex literal's.
	Raw []byte
	// Escaped tells that a string's Raw holds a backslash or a doubled
	// quote, which AppendUnescaped decodes; when false, Raw is the value.
	Escaped bool
}

// NextRow steps over what stands between the rows of an INSERT from p[i]
// on (blanks, commas, ends of line) and returns where the next row's '('
// is, or len(p) when p ends first, or where the statement's ';' is with
// done true. Any other byte is an error.
func NextRow(p []byte, i int) (at int, done bool, err error) {
	for ; i < len(p); i++ {
		switch p[i] {
		case ' ', ',', '\t', '\n', '\r':
		case ';':
			return i, true, nil
		case '(':
			return i, false, nil
		default:
			return i, false, fmt.Errorf("unexpected %q between rows", p[i])
		}
	}
	return i, false, nil
}

// ReadValue reads the value of a row at p[i:] (just after the row's '('
// or a ',') and the ',' or ')' that follows it. It returns the literal,
// where what follows that byte starts, and whether the byte was the
// row's ')'. The whole value must be in p: a string not closed, a value
// cut off by p's end, an odd number of hex digits or a byte that starts
// no literal is an error.
func ReadValue(p []byte, i int) (v Literal, next int, last bool, err error) {
	if v, i, err = readLiteral(p, i); err != nil {
		return v, i, false, err
	}
	if i >= len(p) {
		return v, i, false, errors.New("a row is cut off")
	}
	switch p[i] {
	case ',':
		return v, i + 1, false, nil
	case ')':
		return v, i + 1, true, nil
	}
	return v, i, false, fmt.Errorf("unexpected %q after a value", p[i])
}

// readLiteral reads the literal at p[i:] and returns where it ends.
func readLiteral(p []byte, i int) (Literal, int, error) {
	if bytes.HasPrefix(p[i:], []byte("_binary '")) {
		raw, end, escaped, err := readString(p, i+len("_binary '"))
		return Literal{Binary, raw, escaped}, end, err
	}
	switch {
	case i < len(p) && p[i] == '\'':
		raw, end, escaped, err := readString(p, i+1)
		return Literal{String, raw, escaped}, end, err
	case bytes.HasPrefix(p[i:], []byte("0x")):
		start := i + 2
		end := start
		for end < len(p) && unhex[p[end]] >= 0 {
			end++
		}
		if (end-start)%2 != 0 {
			return Literal{}, end, errors.New("a hex literal has an odd number of digits")
		}
		return Literal{Kind: Hex, Raw: p[start:end]}, end, nil
	case bytes.HasPrefix(p[i:], []byte("NULL")):
		return Literal{Kind: Null}, i + len("NULL"), nil
	}
	start := i
	for i < len(p) && (p[i] >= '0' && p[i] <= '9' || p[i] == '-' || p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E') {
		i++
	}
	if i == start {
		return Literal{}, i, fmt.Errorf("unexpected literal at %q", p[i:min(len(p), i+20)])
	}
	return Literal{Kind: Number, Raw: p[start:i]}, i, nil
}

// readString reads a string's content from p[i:] (after its opening
// quote) to its closing quote, and returns the content, where the string
// ends, and whether the content holds escapes or doubled quotes.
func readString(p []byte, i int) (raw []byte, end int, escaped bool, err error) {
	start := i
	for {
		j, _, esc := StringEnd(p[i:], false)
		if j < 0 {
			return nil, len(p), escaped, errors.New("a string is not closed")
		}
		escaped = escaped || esc
		i += j + 1
		if i < len(p) && p[i] == '\'' { // a doubled quote is one quote
			escaped = true
			i++
			continue
		}
		return p[start : i-1], i, escaped, nil
	}
}

// StringEnd finds the quote that ends a string's content in p, a piece of
// it that may stop anywhere: it returns the quote's index, or -1 when p
// ends first, and whether p ends inside an escape (a backslash whose byte
// is the next piece's first). escaped tells that p's first byte is so
// escaped. escapes tells whether the content before the quote (or all of
// p) holds a backslash. A quote ends the content even if another follows
// it: a doubled quote ends a string and opens one (ReadValue reads the
// two as one string). It jumps from quote to quote, looking for a
// backslash in the run before each.
func StringEnd(p []byte, escaped bool) (end int, escaping, escapes bool) {
	i := 0
	if escaped {
		if len(p) == 0 {
			return -1, true, false
		}
		i = 1
	}
	for {
		j := bytes.IndexByte(p[i:], '\'')
		run := p[i:]
		if j >= 0 {
			run = run[:j]
		}
		if k := bytes.IndexByte(run, '\\'); k >= 0 {
			if i+k+1 == len(p) {
				return -1, true, true
			}
			escapes = true
			i += k + 2
			continue
		}
		if j < 0 {
			return -1, false, escapes
		}
		return i + j, false, escapes
	}
}

// AppendUnescaped appends to dst the value of a string whose content, as
// a dump writes it between the quotes, is raw, decoded as MySQL reads it:
// \0 \b \n \r \t \Z are NUL, backspace, newline, carriage return, tab and
// Ctrl-Z; \% and \_ stay as they are, backslash included (they are for
// LIKE patterns, and MySQL keeps them so in any string); a backslash
// before any other byte is that byte; a doubled quote is one quote. A
// backslash ending raw (which no whole string's content does) is kept.
func AppendUnescaped(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		run := raw
		if i >= 0 {
			run = raw[:i]
		}
		if q := bytes.IndexByte(run, '\''); q >= 0 {
			// '' is ': copy up to the first quote, drop the second.
			dst = append(dst, run[:q+1]...)
			raw = raw[q+1:]
			if len(raw) > 0 && raw[0] == '\'' {
				raw = raw[1:]
			}
			continue
		}
		if i < 0 || i+1 == len(raw) {
			return append(dst, raw...)
		}
		dst = append(dst, run...)
		switch c := raw[i+1]; c {
		case '0':
			dst = append(dst, 0)
		case 'b':
			dst = append(dst, '\b')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'Z':
			dst = append(dst, 0x1a)
		case '%', '_':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
		raw = raw[i+2:]
	}
	return dst
}

// escapes maps the bytes a dump escapes to their escape letter.
var escapes = [256]byte{0: '0', '\n': 'n', '\r': 'r', '\\': '\\', '\'': '\'', '"': '"', 0x1a: 'Z'}

// AppendEscaped appends v escaped as mysqldump writes a string's content
// (mysql_real_escape_string): NUL, newline, carriage return, backslash,
// both quotes and Ctrl-Z get a backslash; all else is as it is. What
// AppendUnescaped decodes from it is v.
func AppendEscaped(dst, v []byte) []byte {
	start := 0
	for i, c := range v {
		if e := escapes[c]; e != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', e)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}

// AppendHex appends the bytes a hex literal's digits stand for. digits
// must be an even number of hex digits, as ReadValue returns them.
func AppendHex(dst, digits []byte) []byte {
	for k := 0; k+1 < len(digits); k += 2 {
		dst = append(dst, byte(unhex[digits[k]])<<4|byte(unhex[digits[k+1]]))
	}
	return dst
}

// unhex maps a hex digit to its value, anything else to -1.
var unhex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c-'a') + 10
		t[c-'a'+'A'] = int8(c-'a') + 10
	}
	return t
}()
