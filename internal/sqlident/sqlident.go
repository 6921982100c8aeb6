// Package sqlident reads the identifiers of MySQL dumps.
package sqlident

// CutBackquoted reads the backquoted identifier at the start of b (two backquotes are one
// inside it) and returns it unquoted with the bytes after it.
func CutBackquoted(b []byte) (name string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '`' {
		return "", nil, false
	}
	var out []byte
	for i := 1; i < len(b); i++ {
		if b[i] != '`' {
			out = append(out, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == '`' {
			out = append(out, '`')
			i++
			continue
		}
		return string(out), b[i+1:], true
	}
	return "", nil, false
}
