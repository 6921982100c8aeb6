package repo

import (
	"strings"
	"unicode/utf8"
)

// File names are bytes, but kopia keeps them in JSON strings, which hold
// only UTF-8: a Latin-1 "caf\xe9.txt" would come back as "caf\uFFFD.txt",
// and several such names in one directory as one file. So names are
// escaped on their way into a snapshot and unescaped on their way out,
// reversibly, for every byte string:
//
//   - a byte that is not part of valid UTF-8 (0x80–0xFF) becomes the rune
//     U+F700+byte (U+F780–U+F7FF, in Unicode's private use area);
//   - a rune of U+F700–U+F7FF already in the name is written as U+F700
//     followed by itself.
//
// A name that is valid UTF-8 and holds no rune of U+F700–U+F7FF (every
// name but the rarest) is stored as it is, so snapshots taken before this
// escaping read back the same.
const (
	escBase = 0xF700 // escapes a raw byte b as escBase+b; alone, quotes the next rune
	escEnd  = 0xF800
)

// escapeName returns the name kopia stores for the file name raw.
func escapeName(raw string) string {
	if !needsEscape(raw) {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw) + 8)
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRuneInString(raw[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(escBase + rune(raw[i]))
		case r >= escBase && r < escEnd:
			b.WriteRune(escBase)
			b.WriteRune(r)
		default:
			b.WriteString(raw[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || r >= escBase && r < escEnd {
			return true
		}
		i += size
	}
	return false
}

// unescapeName returns the file name a stored name stands for.
func unescapeName(stored string) string {
	if !hasEscapes(stored) {
		return stored
	}
	var b strings.Builder
	b.Grow(len(stored))
	for i := 0; i < len(stored); {
		r, size := utf8.DecodeRuneInString(stored[i:])
		switch {
		case r == escBase && i+size < len(stored):
			_, qsize := utf8.DecodeRuneInString(stored[i+size:])
			b.WriteString(stored[i+size : i+size+qsize])
			size += qsize
		case r >= escBase+0x80 && r < escEnd:
			b.WriteByte(byte(r - escBase))
		default:
			b.WriteString(stored[i : i+size])
		}
		i += size
	}
	return b.String()
}

func hasEscapes(s string) bool {
	for _, r := range s {
		if r >= escBase && r < escEnd {
			return true
		}
	}
	return false
}
