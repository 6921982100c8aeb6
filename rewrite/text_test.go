package rewrite

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	stage := []Pair{{"https://example.com", "https://staging.example.com"}}
	tests := []struct {
		pairs []Pair
		opts  Options
		in    string
		want  string
		n     int
	}{
		{stage, Options{}, "see https://example.com/about.", "see https://staging.example.com/about.", 1},
		{stage, Options{}, "https://example.com.au and https://myexample.com stay", "https://example.com.au and https://myexample.com stay", 0},
		{stage, Options{}, "end https://example.com.", "end https://staging.example.com.", 1},
		{stage, Options{}, "already https://staging.example.com/x", "already https://staging.example.com/x", 0},
		{stage, Options{}, `json "https:\/\/example.com\/a"`, `json "https:\/\/staging.example.com\/a"`, 1},
		{stage, Options{}, `json "https:\u002F\u002Fexample.com"`, `json "https:\u002F\u002Fstaging.example.com"`, 1},
		{stage, Options{}, `double "https:\\\/\\\/example.com"`, `double "https:\\\/\\\/staging.example.com"`, 1},
		{stage, Options{}, "u=https%3A%2F%2Fexample.com%2Fx&v=https%3a%2f%2fexample.com", "u=https%3A%2F%2Fstaging.example.com%2Fx&v=https%3a%2f%2fstaging.example.com", 2},
		{stage, Options{}, `<img src="//example.com/a.png">`, `<img src="//staging.example.com/a.png">`, 1},
		{stage, Options{}, "old http://example.com/a", "old http://staging.example.com/a", 1},
		{stage, Options{}, "mail me@example.com", "mail me@example.com", 0},
		{stage, Options{Emails: true}, "mail me@example.com", "mail me@staging.example.com", 1},
		{[]Pair{{"http://example.com", "https://example.com"}}, Options{}, "http://example.com/ https://example.com //example.com", "https://example.com/ https://example.com //example.com", 1},
		{[]Pair{{"example.de", "example.dev"}}, Options{}, "example.de example.dev example.de.", "example.dev example.dev example.dev.", 2},
		{[]Pair{{"https://example.com", "https://example.com/staging"}}, Options{}, "https://example.com/staging/x https://example.com/y", "https://example.com/staging/x https://example.com/staging/y", 1},
		{[]Pair{{"/var/www/prod", "/srv/staging"}}, Options{}, `path /var/www/prod/wp and \/var\/www\/prod`, `path /srv/staging/wp and \/srv\/staging`, 2},
		{[]Pair{{"https://example.com", "https://example.org"}, {"/var/www/prod", "/srv/stage"}}, Options{}, "https://example.com /var/www/prod", "https://example.org /srv/stage", 2},
		{stage, Options{}, "Café ☕ https://example.com 🎉", "Café ☕ https://staging.example.com 🎉", 1},
	}
	for _, tt := range tests {
		r := newReplacer(tt.pairs, tt.opts)
		got, n := r.text(nil, []byte(tt.in))
		if string(got) != tt.want || n != tt.n {
			t.Errorf("%v on %q:\n got %q (%d)\nwant %q (%d)", tt.pairs, tt.in, got, n, tt.want, tt.n)
		}
		again, n2 := r.text(nil, got)
		if string(again) != string(got) || n2 != 0 {
			t.Errorf("%v: second run on %q changed it: %q (%d)", tt.pairs, got, again, n2)
		}
	}
}

// needle.index finds what bytes.Index finds, whichever byte it looks for
// first and however often that byte occurs.
func TestNeedleIndex(t *testing.T) {
	texts := []string{
		"", "e", "example.com", "see https://example.com/x", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxexample.com",
		strings.Repeat("x", 5000) + "example.co" + strings.Repeat("ex", 3000) + "example.com!",
		strings.Repeat("examplexcom ", 400), "exampl", "example.cox", "\x00example.com\x00",
	}
	for _, s := range []string{"example.com", "x", "ex", "ZXhhbXBsZS5jb20", ".", "com"} {
		n := newNeedle([]byte(s))
		for _, v := range texts {
			if got, want := n.index([]byte(v)), strings.Index(v, s); got != want {
				t.Errorf("needle %q (rare byte %q) in %.40q…: %d, want %d", s, s[n.rare], v, got, want)
			}
		}
	}
	if n := newNeedle([]byte("example.com")); n.s[n.rare] != 'x' {
		t.Errorf("rarest byte of example.com = %q, want x", n.s[n.rare])
	}
}

// One value of 300,000 URLs, two pairs that share their core (the second
// pair's forms never match): every URL is rewritten, and each core is
// looked for once over the value (the search used to start again at
// every match for each pair: minutes for this value, found by a clone
// that never ended).
func TestManyMatchesInOneValue(t *testing.T) {
	v := strings.Repeat("https://example.com/ ", 300000)
	dump := "CREATE TABLE `a` (\n  `id` int NOT NULL,\n  `v` longtext\n);\nINSERT INTO `a` VALUES (1,'" + v + "');\n"
	w, err := New(Config{Pairs: []Pair{{From: "https://example.com", To: "https://staging.example.com"}, {From: "http://example.com", To: "http://staging.example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep, err := w.Dump(MySQL, strings.NewReader(dump), &out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "https://staging.example.com/ "); rep.Replacements() != 300000 || n != 300000 {
		t.Errorf("%d replacements, %d rewritten URLs; want 300000", rep.Replacements(), n)
	}
}
