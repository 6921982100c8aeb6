package webapp

import (
	"regexp"
	"strings"
)

// PHP configuration is read, not run: these find constant definitions,
// variable assignments and array entries whose values are literals.

var (
	defineRE = regexp.MustCompile(`(?m)^\s*define\s*\(\s*(['"])([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[0-9.]+|true|false)\s*\)`)
	assignRE = regexp.MustCompile(`(?m)^\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*;`)
	keyRE    = regexp.MustCompile(`['"]([A-Za-z_]+)['"]\s*=>\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[0-9]+)`)
	propRE   = regexp.MustCompile(`\$CONFIG->([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[0-9]+)\s*;`)
)

// phpString decodes a PHP literal: '…' (only \' and \\ are escapes) or
// "…" (the common escapes; variables are left as written).
func phpString(lit string) string {
	if len(lit) < 2 {
		return lit
	}
	q, body := lit[0], lit[1:len(lit)-1]
	if q != '\'' && q != '"' {
		return lit // a number or a constant
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\\' || i+1 == len(body) {
			b.WriteByte(c)
			continue
		}
		n := body[i+1]
		switch {
		case q == '\'' && (n == '\'' || n == '\\'):
			b.WriteByte(n)
			i++
		case q == '"' && strings.IndexByte(`"\$`, n) >= 0:
			b.WriteByte(n)
			i++
		case q == '"' && n == 'n':
			b.WriteByte('\n')
			i++
		case q == '"' && n == 't':
			b.WriteByte('\t')
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stripComments removes PHP comments, so that commented-out settings are
// not read. Strings are respected.
func stripComments(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				j = len(src) - 1
			}
			b.WriteString(src[i : j+1])
			i = j
		case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
			for i < len(src) && src[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			b.WriteString(strings.Repeat("\n", strings.Count(src[i:i+2+end+2], "\n")))
			i += 2 + end + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func defines(src string) map[string]string {
	out := map[string]string{}
	for _, m := range defineRE.FindAllStringSubmatch(stripComments(src), -1) {
		out[m[2]] = phpString(m[3])
	}
	return out
}

func assigns(src string) map[string]string {
	out := map[string]string{}
	for _, m := range assignRE.FindAllStringSubmatch(stripComments(src), -1) {
		out[m[1]] = phpString(m[2])
	}
	return out
}
