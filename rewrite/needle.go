package rewrite

import "bytes"

// needle is a string searched for by its rarest byte. bytes.Index looks
// for a string's first byte and checks each place it finds: for
// "example.com" that is every 'e' of the text, and it runs at about 1 GB/s
// on prose; looking for the 'x' instead finds a place to check once in
// hundreds of bytes, at memchr's speed (30 GB/s and more). A rewrite looks
// through every value of a dump this way, so this is most of its time.
type needle struct {
	s    []byte
	rare int // offset in s of its rarest byte
}

func newNeedle(s []byte) needle {
	n := needle{s: s}
	for i, c := range s {
		if commonness[c] < commonness[s[n.rare]] {
			n.rare = i
		}
	}
	return n
}

// index returns the offset of the first occurrence of the needle in v, or
// -1. Should the rare byte turn out common in v, it falls back to
// bytes.Index for the rest.
func (n needle) index(v []byte) int {
	if len(n.s) == 0 {
		return 0
	}
	c, fails := n.s[n.rare], 0
	for from := n.rare; from < len(v); {
		i := bytes.IndexByte(v[from:], c)
		if i < 0 {
			return -1
		}
		i += from
		if start := i - n.rare; start+len(n.s) <= len(v) && bytes.Equal(v[start:start+len(n.s)], n.s) {
			return start
		}
		from = i + 1
		if fails++; fails > 16+(i>>6) {
			start := from - n.rare
			if j := bytes.Index(v[start:], n.s); j >= 0 {
				return start + j
			}
			return -1
		}
	}
	return -1
}

func (n needle) in(v []byte) bool { return n.index(v) >= 0 }

// commonness ranks bytes by how often they occur in what web sites store:
// prose, HTML, JSON and URLs. Only the order matters.
var commonness = func() (t [256]uint8) {
	for c := range t {
		t[c] = 40 // control bytes, symbols, non-ASCII
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 70
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 110
	}
	t['0'], t['1'], t['2'] = 120, 120, 115
	for i, c := range []byte("zqjxkvbpygfwmucdlhrsnioate") { // English letters, rarest first
		t[c] = 90 + uint8(i)*6
	}
	for c, v := range map[byte]uint8{' ': 255, '.': 150, '/': 160, '-': 130, '_': 100, ':': 120, '"': 150, '<': 140, '>': 140, '=': 140, ',': 140, '\'': 130, '\n': 120, '%': 90, '\\': 90} {
		t[c] = v
	}
	return t
}()
