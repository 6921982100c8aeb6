// Package copytext reads and writes the fields of PostgreSQL's COPY text
// format, as pg_dump writes table rows: tab-separated, one row a line,
// backslash escapes, \N for NULL.
package copytext

// Unescape appends to dst the value of a COPY text-format field (its
// backslash escapes decoded; \N, NULL, is the caller's to tell).
func Unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch c := s[i]; {
		case c == 'b':
			dst = append(dst, '\b')
		case c == 'f':
			dst = append(dst, '\f')
		case c == 'n':
			dst = append(dst, '\n')
		case c == 'r':
			dst = append(dst, '\r')
		case c == 't':
			dst = append(dst, '\t')
		case c == 'v':
			dst = append(dst, '\v')
		case c >= '0' && c <= '7':
			v, n := 0, 0
			for ; n < 3 && i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '7'; n++ {
				v = v*8 + int(s[i+n]-'0')
			}
			dst = append(dst, byte(v))
			i += n - 1
		case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
			v, n := 0, 1
			for ; n <= 2 && i+n < len(s) && isHex(s[i+n]); n++ {
				v = v*16 + hexVal(s[i+n])
			}
			dst = append(dst, byte(v))
			i += n - 1
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// Escape appends v to dst as a COPY text-format field, escaped as
// pg_dump escapes it.
func Escape(dst, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\v':
			dst = append(dst, '\\', 'v')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
