package rewrite

import (
	"fmt"
	"strings"
	"testing"
)

// ser serializes a PHP string.
func ser(s string) string { return fmt.Sprintf("s:%d:\"%s\";", len(s), s) }

func TestSerialized(t *testing.T) {
	r := newReplacer([]Pair{{"https://example.com", "https://staging.example.com"}}, Options{})
	tests := []struct {
		name, in, want string
		res            result
	}{
		{"string", `s:19:"https://example.com";`, `s:27:"https://staging.example.com";`, result{1, 0}},
		{"emoji", ser("Café ☕ https://example.com"), ser("Café ☕ https://staging.example.com"), result{1, 0}},
		{"quote-semicolon inside", `a:1:{s:3:"url";` + ser(`x";s:3:"https://example.com`) + `}`, `a:1:{s:3:"url";` + ser(`x";s:3:"https://staging.example.com`) + `}`, result{1, 0}},
		{"backslash-quote inside", `s:23:"a\";https://example.com";`, `s:31:"a\";https://staging.example.com";`, result{1, 0}},
		{"nested", `a:2:{i:0;a:1:{s:4:"home";s:19:"https://example.com";}s:1:"n";i:5;}`, `a:2:{i:0;a:1:{s:4:"home";s:27:"https://staging.example.com";}s:1:"n";i:5;}`, result{1, 0}},
		{"double", ser(ser("https://example.com")), ser(ser("https://staging.example.com")), result{1, 0}},
		{"object private protected", "O:3:\"Foo\":2:{s:8:\"\x00Foo\x00url\";s:19:\"https://example.com\";s:6:\"\x00*\x00raw\";d:0.1000000000000000055511151231257827;}",
			"O:3:\"Foo\":2:{s:8:\"\x00Foo\x00url\";s:27:\"https://staging.example.com\";s:6:\"\x00*\x00raw\";d:0.1000000000000000055511151231257827;}", result{1, 0}},
		{"references and floats", `a:3:{i:0;s:19:"https://example.com";i:1;R:2;i:2;d:1.0E+25;}`, `a:3:{i:0;s:27:"https://staging.example.com";i:1;R:2;i:2;d:1.0E+25;}`, result{1, 0}},
		{"json inside", ser(`{"u":"https:\/\/example.com\/x"}`), ser(`{"u":"https:\/\/staging.example.com\/x"}`), result{1, 0}},
		{"custom object kept", `C:3:"Foo":23:{x:https://example.com;}`, `C:3:"Foo":23:{x:https://example.com;}`, result{0, 1}},
		{"enum kept", `a:2:{i:0;E:11:"Suit:Hearts";i:1;s:19:"https://example.com";}`, `a:2:{i:0;E:11:"Suit:Hearts";i:1;s:27:"https://staging.example.com";}`, result{1, 0}},
		{"keys kept", `a:1:{s:19:"https://example.com";b:1;}`, `a:1:{s:19:"https://example.com";b:1;}`, result{0, 0}},
		{"wrong length", `s:20:"https://example.com";`, `s:20:"https://example.com";`, result{0, 1}},
		{"truncated", `a:1:{s:3:"url";s:19:"https://example.com";`, `a:1:{s:3:"url";s:19:"https://staging.example.com";`, result{1, 0}}, // not serialized: text
		{"bad count", `a:2:{s:3:"url";s:19:"https://example.com";}`, `a:2:{s:3:"url";s:19:"https://example.com";}`, result{0, 1}},
		{"text with serialized tail", `see a:1:{s:1:"u";s:19:"https://example.com";}`, `see a:1:{s:1:"u";s:19:"https://staging.example.com";}`, result{1, 0}}, // text: PHP would not unserialize it
		{"no match", `a:1:{s:3:"url";s:15:"https://other.x";}`, `a:1:{s:3:"url";s:15:"https://other.x";}`, result{}},
	}
	for _, tt := range tests {
		got, res := r.value(nil, []byte(tt.in), 0)
		if string(got) != tt.want || res != tt.res {
			t.Errorf("%s:\n got %q %+v\nwant %q %+v", tt.name, got, res, tt.want, tt.res)
		}
		again, res2 := r.value(nil, got, 0)
		if string(again) != string(got) || res2.replaced != 0 {
			t.Errorf("%s: not idempotent: %q", tt.name, again)
		}
	}
	deep := strings.Repeat("a:1:{i:0;", 100) + `s:19:"https://example.com";` + strings.Repeat("}", 100)
	if got, res := r.value(nil, []byte(deep), 0); string(got) != deep || res.unsafe != 1 {
		t.Errorf("too deep: %+v", res)
	}
}

// isSerialized parses v with a replacer that matches nothing.
func isSerialized(v []byte) bool {
	p := phpParser{r: newReplacer([]Pair{{"\x00never\x00", "x"}}, Options{}), in: v}
	return looksSerialized(v) && p.item() && p.pos == len(v)
}

func FuzzValue(f *testing.F) {
	for _, s := range []string{
		`s:19:"https://example.com";`, `a:2:{i:0;s:19:"https://example.com";s:1:"k";d:0.5;}`,
		"O:3:\"Foo\":1:{s:6:\"\x00*\x00url\";s:19:\"https://example.com\";}", `C:3:"Foo":5:{hello}`,
		ser(ser("https://example.com/x")), `https:\/\/example.com`, "plain https://example.com.au text",
	} {
		f.Add(s)
	}
	r := newReplacer([]Pair{{"https://example.com", "https://staging.example.com"}}, Options{})
	f.Fuzz(func(t *testing.T, in string) {
		out, res := r.value(nil, []byte(in), 0)
		if !strings.Contains(in, "example.com") && string(out) != in {
			t.Fatalf("changed a value without the core: %q → %q", in, out)
		}
		if res.replaced == 0 && string(out) != in {
			t.Fatalf("changed without counting: %q → %q", in, out)
		}
		if isSerialized([]byte(in)) && !isSerialized(out) {
			t.Fatalf("broke serialized data: %q → %q", in, out)
		}
		again, res2 := r.value(nil, out, 0)
		if string(again) != string(out) || res2.replaced != 0 {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
	})
}
