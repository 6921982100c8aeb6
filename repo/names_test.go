package repo

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// Every byte value a name can hold survives escaping, a JSON round trip
// (what kopia does to names) and unescaping, alone and among others.
func TestNameEscapingRoundTrip(t *testing.T) {
	var names []string
	for b := 1; b <= 0xFF; b++ {
		if b == '/' {
			continue
		}
		names = append(names, string([]byte{byte(b)}), "caf"+string([]byte{byte(b)})+".txt", string([]byte{byte(b), byte(b), 'x'}))
	}
	names = append(names, "café.txt", "caf\xe9.txt", "caf\xc3.txt", "\xef\x9c\x80", "\uf700", "\uf780x", "\uf7ff\xff", "日本語", "\xed\xa0\x80", strRepeat("\xe9", 255))
	seen := map[string]string{}
	for _, raw := range names {
		stored := escapeName(raw)
		if !utf8.ValidString(stored) {
			t.Fatalf("escapeName(%q) = %q: not UTF-8", raw, stored)
		}
		b, err := json.Marshal(stored)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := unescapeName(back); got != raw {
			t.Errorf("round trip of %q gave %q (stored %q)", raw, got, stored)
		}
		if other, dup := seen[stored]; dup && other != raw {
			t.Errorf("%q and %q are stored alike: %q", raw, other, stored)
		}
		seen[stored] = raw
	}
	for _, plain := range []string{"index.php", "café.txt", "日本語.pdf", "a b\tc"} {
		if escapeName(plain) != plain {
			t.Errorf("escapeName(%q) = %q; a UTF-8 name is stored as it is", plain, escapeName(plain))
		}
	}
}

func strRepeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func FuzzNameEscaping(f *testing.F) {
	f.Add("caf\xe9.txt")
	f.Add("\uf700\uf780")
	f.Fuzz(func(t *testing.T, raw string) {
		stored := escapeName(raw)
		if !utf8.ValidString(stored) {
			t.Fatalf("escapeName(%q) = %q: not UTF-8", raw, stored)
		}
		if got := unescapeName(stored); got != raw {
			t.Fatalf("round trip of %q gave %q", raw, got)
		}
	})
}
