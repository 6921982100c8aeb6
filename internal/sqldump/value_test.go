package sqldump

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// decodeRows reads a line of rows into values: each value's bytes, nil
// for NULL, rows ended by a "|".
func decodeRows(p []byte) (string, bool, error) {
	var out strings.Builder
	for i := 0; ; {
		var done bool
		var err error
		if i, done, err = NextRow(p, i); done || err != nil || i == len(p) {
			return out.String(), done, err
		}
		i++
		for last := false; !last; {
			var v Literal
			if v, i, last, err = ReadValue(p, i); err != nil {
				return out.String(), false, err
			}
			switch {
			case v.Kind == Null:
				out.WriteString("NULL;")
			case v.Kind == Hex:
				fmt.Fprintf(&out, "%q;", AppendHex(nil, v.Raw))
			case v.Escaped:
				fmt.Fprintf(&out, "%q;", AppendUnescaped(nil, v.Raw))
			default:
				fmt.Fprintf(&out, "%q;", v.Raw)
			}
		}
		out.WriteString("|")
	}
}

func TestReadValue(t *testing.T) {
	got, done, err := decodeRows([]byte(`(1,'a\'b\\c\nd\%\_',_binary 'x''y',0x00fF,NULL,-1.5e3,''),` + "\t" + `(0x,'\0\Z\b\r\t\q');`))
	want := `"1";"a'b\\c\nd\\%\\_";"x'y";"\x00\xff";NULL;"-1.5e3";"";|"";"\x00\x1a\b\r\tq";|`
	if err != nil || !done || got != want {
		t.Errorf("got %s, %v, %v\nwant %s", got, done, err, want)
	}
	for _, bad := range []string{"(1", "(1,'a)", "(0x123)", "(1 2)", "(x)", "(1),x", "('a'b')"} {
		if _, _, err := decodeRows([]byte(bad)); err == nil {
			t.Errorf("%q read without error", bad)
		}
	}
	if v, next, last, err := ReadValue([]byte("(_binary 'a\\'b')"), 1); err != nil || v.Kind != Binary || string(v.Raw) != `a\'b` || !v.Escaped || next != 16 || !last {
		t.Errorf("ReadValue = %+v, %d, %v, %v", v, next, last, err)
	}
}

// FuzzReadValue: NextRow and ReadValue never panic; wherever the loader's
// old value reader (oldDecodeRows) read a line of rows, they read the same
// values; and rows written with AppendEscaped read back as they were.
func FuzzReadValue(f *testing.F) {
	for _, s := range []string{
		`(1,'a\'b\\c',NULL,0x00FF),(2,_binary 'x\0',-1.5e3);`,
		`(1,'it''s'),`,
		"(1,'\\%\\_\\q'), (2,'')\t,",
		"(0x,'\\Z\\b')",
	} {
		f.Add(s, "a\\'\x00")
	}
	f.Fuzz(func(t *testing.T, line, value string) {
		got, gotDone, err := decodeRows([]byte(line))
		if want, wantDone, oldErr := oldDecodeRows([]byte(line)); oldErr == nil && (err != nil || got != want || gotDone != wantDone) {
			t.Fatalf("%q: the old reader read %s %v, ReadValue %s %v %v", line, want, wantDone, got, gotDone, err)
		}
		row := "(" + "'" + string(AppendEscaped(nil, []byte(value))) + "',_binary '" + string(AppendEscaped(nil, []byte(value))) + "',0x" + fmt.Sprintf("%X", value) + ",NULL,-1);"
		got, done, err := decodeRows([]byte(row))
		if want := fmt.Sprintf("%q;%q;%q;NULL;\"-1\";|", value, value, value); err != nil || !done || got != want {
			t.Fatalf("%q read back as %s, %v", row, got, err)
		}
	})
}

// oldDecodeRows reads a line of rows as the loader did before the
// tokenizer had values (mysql/load.go, rowBatches.add and field).
func oldDecodeRows(p []byte) (string, bool, error) {
	var out strings.Builder
	for i := 0; ; {
		var done bool
		var err error
		if i, done, err = oldNextRow(p, i); done || err != nil || i == len(p) {
			return out.String(), done, err
		}
		i++
		for {
			var v []byte
			if v, i, err = oldField(p, i); err != nil {
				return out.String(), false, err
			}
			if v == nil {
				out.WriteString("NULL;")
			} else {
				fmt.Fprintf(&out, "%q;", v)
			}
			if i >= len(p) {
				return out.String(), false, errors.New("a row is cut off at the end of its line")
			}
			if p[i] == ')' {
				i++
				break
			}
			if p[i] != ',' {
				return out.String(), false, fmt.Errorf("unexpected %q after a value", p[i])
			}
			i++
		}
		out.WriteString("|")
	}
}

func oldNextRow(p []byte, i int) (int, bool, error) {
	for ; i < len(p); i++ {
		switch p[i] {
		case ' ', ',', '\t':
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

func oldField(p []byte, i int) ([]byte, int, error) {
	arena := []byte{}
	if bytes.HasPrefix(p[i:], []byte("_binary '")) {
		i += len("_binary ")
	}
	switch {
	case i < len(p) && p[i] == '\'':
		i++
		for {
			j := bytes.IndexByte(p[i:], '\'')
			if j < 0 {
				return nil, i, errors.New("a string is not closed on its line")
			}
			run := p[i : i+j]
			if k := bytes.IndexByte(run, '\\'); k >= 0 {
				arena = append(arena, run[:k]...)
				arena = oldAppendUnescaped(arena, p[i+k+1])
				i += k + 2
				continue
			}
			return append(arena, run...), i + j + 1, nil
		}
	case bytes.HasPrefix(p[i:], []byte("0x")):
		i += 2
		start := i
		for i < len(p) && oldIsHex(p[i]) {
			i++
		}
		if (i-start)%2 != 0 {
			return nil, i, errors.New("a hex literal has an odd number of digits")
		}
		for k := start; k < i; k += 2 {
			arena = append(arena, oldUnhex(p[k])<<4|oldUnhex(p[k+1]))
		}
		return arena, i, nil
	case bytes.HasPrefix(p[i:], []byte("NULL")):
		return nil, i + 4, nil
	}
	start := i
	for i < len(p) && (p[i] >= '0' && p[i] <= '9' || p[i] == '-' || p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E') {
		i++
	}
	if i == start {
		return nil, i, fmt.Errorf("unexpected literal at %q", p[i:min(len(p), i+20)])
	}
	return append(arena, p[start:i]...), i, nil
}

func oldAppendUnescaped(dst []byte, c byte) []byte {
	switch c {
	case '0':
		return append(dst, 0)
	case 'b':
		return append(dst, '\b')
	case 'n':
		return append(dst, '\n')
	case 'r':
		return append(dst, '\r')
	case 't':
		return append(dst, '\t')
	case 'Z':
		return append(dst, 0x1a)
	case '%', '_':
		return append(dst, '\\', c)
	}
	return append(dst, c)
}

func oldIsHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

func oldUnhex(b byte) byte {
	switch {
	case b >= 'a':
		return b - 'a' + 10
	case b >= 'A':
		return b - 'A' + 10
	}
	return b - '0'
}

func TestEscapes(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{`a\'b`, `a'b`}, {`\\`, `\`}, {`\%\_`, `\%\_`}, {`\0\b\n\r\t\Z`, "\x00\b\n\r\t\x1a"},
		{`\q\"`, `q"`}, {`it''s`, `it's`}, {`x\`, `x\`}, {``, ``},
	} {
		if got := string(AppendUnescaped([]byte("<"), []byte(c.raw))); got != "<"+c.want {
			t.Errorf("AppendUnescaped(%q) = %q, want %q", c.raw, got, c.want)
		}
	}
	if got, want := string(AppendEscaped(nil, []byte("\x00\n\r\\'\"\x1a\b\t%_x"))), `\0\n\r\\\'\"\Z`+"\b\t%_x"; got != want {
		t.Errorf("AppendEscaped = %q, want %q", got, want)
	}
}

// FuzzEscapes: AppendUnescaped and AppendEscaped never panic; unescaping
// what AppendEscaped wrote gives the value back; both agree with the
// rewriter's old functions (rewrite/mysql.go), unescaping wherever the
// content holds no quote but escaped ones (the rewriter's strings end at
// any other), and with the loader's old decoding of a string.
func FuzzEscapes(f *testing.F) {
	for _, s := range []string{`a\'b\\c\%\_\q\0\Z`, "x\x00\n\r\x1a'\"\\", `it''s\`, `\''`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := []byte(s)
		esc := AppendEscaped(nil, in)
		if !bytes.Equal(esc, oldEscapeMySQL(in)) {
			t.Fatalf("AppendEscaped(%q) = %q, the rewriter's %q", s, esc, oldEscapeMySQL(in))
		}
		if back := AppendUnescaped(nil, esc); !bytes.Equal(back, in) {
			t.Fatalf("%q escaped %q unescaped %q", s, esc, back)
		}
		got := AppendUnescaped(nil, in)
		if !bareQuote(in) {
			if want := oldUnescapeMySQL(nil, in); !bytes.Equal(got, want) {
				t.Fatalf("AppendUnescaped(%q) = %q, the rewriter's %q", s, got, want)
			}
		}
		if want, end, err := oldField(append(append([]byte("'"), in...), '\''), 0); err == nil && end == len(in)+2 && !bytes.Equal(got, want) {
			t.Fatalf("AppendUnescaped(%q) = %q, the loader's %q", s, got, want)
		}
	})
}

// bareQuote tells whether s holds a quote no backslash escapes.
func bareQuote(s []byte) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			return true
		}
	}
	return false
}

// oldUnescapeMySQL and oldEscapeMySQL are the rewriter's before they were
// the tokenizer's (rewrite/mysql.go unescapeMySQL, escapeMySQLTo).
func oldUnescapeMySQL(dst, s []byte) []byte {
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 || i+1 == len(s) {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		switch c := s[i+1]; c {
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
		s = s[i+2:]
	}
	return dst
}

var oldMySQLEscapes = [256]byte{0: '0', '\n': 'n', '\r': 'r', '\\': '\\', '\'': '\'', '"': '"', 0x1a: 'Z'}

func oldEscapeMySQL(v []byte) []byte {
	var w bytes.Buffer
	start := 0
	var esc [2]byte
	for i := 0; i < len(v); i++ {
		if e := oldMySQLEscapes[v[i]]; e != 0 || v[i] == 0 {
			if e == 0 {
				e = '0'
			}
			w.Write(v[start:i])
			esc = [2]byte{'\\', e}
			w.Write(esc[:])
			start = i + 1
		}
	}
	w.Write(v[start:])
	return w.Bytes()
}

// FuzzStringEnd: StringEnd never panics; fed a string's content in two
// pieces cut anywhere, it finds the end it finds in one; and it finds
// the end the rewriter's old string stepping found (rewrite/mysql.go,
// mysqlInsert.inString).
func FuzzStringEnd(f *testing.F) {
	for _, s := range []string{`abc'`, `a\'b\\'c`, `x\`, `''`, `a\\\'\q'`} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		p := []byte(s)
		whole, escaping, _ := StringEnd(p, false)
		if old, oldEscaping := oldStringEnd(p, false); old != whole || oldEscaping != escaping {
			t.Fatalf("StringEnd(%q) = %d, %v; the rewriter's %d, %v", s, whole, escaping, old, oldEscaping)
		}
		cut = abs(cut) % (len(p) + 1)
		end, esc, _ := StringEnd(p[:cut], false)
		if end < 0 {
			if end, esc, _ = StringEnd(p[cut:], esc); end >= 0 {
				end += cut
			}
		}
		if end != whole || esc != escaping {
			t.Fatalf("StringEnd(%q) cut at %d = %d, %v; whole %d, %v", s, cut, end, esc, whole, escaping)
		}
	})
}

// oldStringEnd is the rewriter's old stepping through a string's piece.
func oldStringEnd(p []byte, escape bool) (int, bool) {
	for i := 0; i < len(p); {
		if escape {
			escape = false
			i++
			continue
		}
		q := bytes.IndexByte(p[i:], '\'')
		seg := p[i:]
		if q >= 0 {
			seg = p[i : i+q]
		}
		if bs := bytes.IndexByte(seg, '\\'); bs >= 0 {
			escape = true
			i += bs + 1
			continue
		}
		if q < 0 {
			break
		}
		return i + q, false
	}
	return -1, escape
}
