package rewrite

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
)

// Pair is one replacement: every form of From becomes the same form of To.
type Pair struct{ From, To string }

// form is one spelling of a pair: plain, JSON-escaped, URL-encoded,
// protocol-relative… from and to are that spelling of the pair's sides.
type form struct {
	from, to []byte
	core     int  // offset of the pair's core inside from
	email    bool // the "@host" form: only when e-mail domains are rewritten
}

// Options tune what values rewriting touches.
type Options struct {
	// Emails also rewrites e-mail domains (user@example.com) when a
	// pair's From is a URL or a host. Off by default: addresses are
	// people, not links.
	Emails bool
}

// replacer rewrites text values: every form of every pair, at boundaries
// (example.com does not match inside example.com.au or myexample.com), and
// idempotently (a match that is already part of its To is left alone, so
// a second run changes nothing even when To contains From).
type replacer struct {
	cores []needle // per pair: the longest run of host-like bytes of From
	forms [][]form // per pair, longest first
	reach []int    // per pair: the largest offset of the core in a form
	b64   []needle // the cores' base64 spellings, at each alignment
}

func newReplacer(pairs []Pair, o Options) *replacer {
	r := &replacer{}
	for _, p := range pairs {
		core := coreOf(p.From)
		r.cores = append(r.cores, newNeedle([]byte(core)))
		var fs []form
		seen := map[string]bool{}
		add := func(from, to string, email bool) {
			if from == to || seen[from] || !strings.Contains(from, core) {
				return
			}
			seen[from] = true
			fs = append(fs, form{from: []byte(from), to: []byte(to), core: strings.Index(from, core), email: email})
		}
		for _, v := range spellings(p.From, p.To) {
			add(v[0], v[1], false)
		}
		if o.Emails {
			if fh, th := hostOf(p.From), hostOf(p.To); fh != "" && th != "" {
				add("@"+fh, "@"+th, true)
			}
		}
		// Longest first: at one position the most specific form wins
		// (https://example.com before //example.com).
		for a := 1; a < len(fs); a++ {
			for b := a; b > 0 && len(fs[b].from) > len(fs[b-1].from); b-- {
				fs[b], fs[b-1] = fs[b-1], fs[b]
			}
		}
		r.forms = append(r.forms, fs)
		reach := 0
		for _, f := range fs {
			reach = max(reach, f.core)
		}
		r.reach = append(r.reach, reach)
		for _, n := range base64Needles(core) {
			r.b64 = append(r.b64, newNeedle(n))
		}
	}
	return r
}

// spellings lists (from, to) in every form a value may hold them.
func spellings(from, to string) [][2]string {
	base := [][2]string{{from, to}}
	fu, fErr := url.Parse(from)
	tu, tErr := url.Parse(to)
	isURL := func(u *url.URL, err error) bool { return err == nil && u.Scheme != "" && u.Host != "" }
	if isURL(fu, fErr) && isURL(tu, tErr) {
		// Protocol-relative (//example.com), which also carries the other
		// scheme's links (https:// when From is http://) to To's host.
		fr, tr := strings.TrimPrefix(from, fu.Scheme+":"), strings.TrimPrefix(to, tu.Scheme+":")
		if fr != tr {
			base = append(base, [2]string{fr, tr})
		} else if fu.Scheme != tu.Scheme {
			// Same host, scheme change only: the other scheme's links
			// are already what they should be.
			base = base[:1]
		}
	}
	var out [][2]string
	for _, b := range base {
		out = append(out, b)
		if strings.Contains(b[0], "/") {
			for _, esc := range []string{`\/`, `\u002F`, `\u002f`, `\\\/`} {
				out = append(out, [2]string{strings.ReplaceAll(b[0], "/", esc), strings.ReplaceAll(b[1], "/", esc)})
			}
		}
		if strings.ContainsAny(b[0], ":/") {
			up := strings.NewReplacer(":", "%3A", "/", "%2F")
			low := strings.NewReplacer(":", "%3a", "/", "%2f")
			out = append(out, [2]string{up.Replace(b[0]), up.Replace(b[1])}, [2]string{low.Replace(b[0]), low.Replace(b[1])})
		}
	}
	return out
}

// hostOf is a URL's host, or s itself when s is a bare host name.
func hostOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	if s != "" && !strings.ContainsAny(s, "/:@ ") && strings.Contains(s, ".") {
		return s
	}
	return ""
}

func hostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// coreOf is the longest run of host-like bytes in s: every form of s
// holds it unchanged, so finding it finds every candidate match.
func coreOf(s string) string {
	best, start := "", -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && hostByte(s[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start > len(best) {
			best = s[start:i]
		}
		start = -1
	}
	if best == "" {
		return s
	}
	return best
}

// base64Needles are what base64 makes of core, whatever precedes it: the
// groups of 4 characters that encode only core's bytes, for each of the
// three alignments.
func base64Needles(core string) [][]byte {
	var out [][]byte
	for shift := 0; shift < 3; shift++ {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, shift), core...))
		first := (shift + 2) / 3        // the first group holding only core bytes
		last := (shift + len(core)) / 3 // groups before this are whole
		if last-first >= 2 {
			out = append(out, []byte(enc[first*4:last*4]))
		}
	}
	return out
}

// mayHideMatch tells whether v may hold a pair's core encoded in base64.
// Of a value rather than a line, see mayHideMatchValue.
func (r *replacer) mayHideMatch(v []byte) bool {
	for _, n := range r.b64 {
		if n.in(v) {
			return true
		}
	}
	return false
}

// mayHideMatchValue is mayHideMatch for a whole value: only a value that
// is base64 through and through can hide a match (see hidesMatch), and
// most text shows it is not within its first few bytes.
func (r *replacer) mayHideMatchValue(v []byte) bool {
	for _, c := range bytes.TrimSpace(v) {
		if !base64Byte[c] {
			return false
		}
	}
	return r.mayHideMatch(v)
}

// base64Byte holds the bytes of the base64 alphabets (standard and URL,
// padding included), and the line breaks decoders skip, escaped or not.
var base64Byte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=\\\r\n") {
		t[c] = true
	}
	return t
}()

// hidesMatch tells whether v is base64 whose decoding holds a core: such
// a value cannot be rewritten, only reported.
func (r *replacer) hidesMatch(v []byte) bool {
	if !r.mayHideMatchValue(v) {
		return false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(string(bytes.TrimSpace(v))); err == nil {
			return r.mayMatch(dec)
		}
	}
	return false
}

// mayMatch tells whether any pair's core occurs in v: when none does, v
// cannot change.
func (r *replacer) mayMatch(v []byte) bool {
	for _, c := range r.cores {
		if c.in(v) {
			return true
		}
	}
	return false
}

// text appends v with every match replaced to dst, and counts the
// replacements. Each pair's core is looked for once over v (see scan): a
// value of many matches, or of a core many times over that no form
// matches, costs its length, not its length times its matches.
func (r *replacer) text(dst, v []byte) ([]byte, int) {
	scans := make([]scan, len(r.cores))
	n, done := 0, 0
	for pos := 0; pos < len(v); {
		at, f := -1, (*form)(nil)
		for i := range scans {
			m, ok := r.first(&scans[i], i, v, pos)
			if ok && (f == nil || m.start < at || m.start == at && len(m.f.from) > len(f.from)) {
				at, f = m.start, m.f
			}
		}
		if f == nil {
			break
		}
		dst = append(dst, v[done:at]...)
		dst = append(dst, f.to...)
		n++
		done = at + len(f.from)
		pos = done
	}
	return append(dst, v[done:]...), n
}

// A scan is where the search for one pair's matches in a value stands:
// the matches found ahead, by start, and where its core is to be looked
// for next.
type scan struct {
	found []match
	next  int
	done  bool // the core occurs no more
}

// match is a form matching at start.
type match struct {
	start int
	f     *form
}

// first returns pair i's first match at or after pos: the earliest, and
// at one position the longest form. A match found starts at most
// reach[i] before the core it was found by, so the core is looked for
// until it lies further than that past the earliest match found.
func (r *replacer) first(s *scan, i int, v []byte, pos int) (match, bool) {
	for len(s.found) > 0 && s.found[0].start < pos {
		s.found = s.found[1:]
	}
	for {
		if len(s.found) > 0 && (s.done || s.next-r.reach[i] > s.found[0].start) {
			return s.found[0], true
		}
		if s.done || s.next >= len(v) {
			s.done = true
			if len(s.found) > 0 {
				continue
			}
			return match{}, false
		}
		c := r.cores[i].index(v[s.next:])
		if c < 0 {
			s.done = true
			continue
		}
		c += s.next
		s.next = c + 1
		for k := range r.forms[i] {
			f := &r.forms[i][k]
			start := c - f.core
			if start >= pos && r.matches(v, start, f) {
				s.add(match{start, f})
				break // forms are longest first
			}
		}
	}
}

// add keeps m among the matches found, by start; at one start the longest.
func (s *scan) add(m match) {
	k := len(s.found)
	for k > 0 && s.found[k-1].start > m.start {
		k--
	}
	if k > 0 && s.found[k-1].start == m.start {
		if len(m.f.from) > len(s.found[k-1].f.from) {
			s.found[k-1] = m
		}
		return
	}
	s.found = slices.Insert(s.found, k, m)
}

// matches tells whether f matches v at start: the bytes, the boundaries,
// and not already the replacement.
func (r *replacer) matches(v []byte, start int, f *form) bool {
	end := start + len(f.from)
	if end > len(v) || !bytes.Equal(v[start:end], f.from) {
		return false
	}
	if !f.email && hostByte(f.from[0]) && start > 0 {
		if b := v[start-1]; hostByte(b) || b == '@' {
			return false
		}
	}
	if alnum(f.from[len(f.from)-1]) && end < len(v) {
		switch b := v[end]; {
		case alnum(b) || b == '-' || b == '_':
			return false
		case b == '.' && end+1 < len(v) && alnum(v[end+1]):
			return false
		}
	}
	if k := bytes.Index(f.to, f.from); k >= 0 && start-k >= 0 && bytes.HasPrefix(v[start-k:], f.to) {
		return false
	}
	return true
}
