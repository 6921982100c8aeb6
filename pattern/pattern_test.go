package pattern

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		patterns []string
		path     string
		isDir    bool
		want     bool
	}{
		{[]string{"cache/"}, "cache", true, true},
		{[]string{"cache/"}, "cache", false, false},
		{[]string{"cache/"}, "wp-content/cache/x/y.html", false, true},
		{[]string{"wp-content/cache/"}, "wp-content/cache/page.html", false, true},
		{[]string{"wp-content/cache/"}, "other/wp-content/cache/page.html", false, false},
		{[]string{"*.log"}, "logs/error.log", false, true},
		{[]string{"*.log"}, "logs/error.log.gz", false, false},
		{[]string{"/wp-config.php"}, "wp-config.php", false, true},
		{[]string{"/wp-config.php"}, "sub/wp-config.php", false, false},
		{[]string{"wp-config.php"}, "sub/wp-config.php", false, true},
		{[]string{"**/tmp"}, "a/b/tmp/file", false, true},
		{[]string{"a/**/b"}, "a/b", true, true},
		{[]string{"a/**/b"}, "a/x/y/b", true, true},
		{[]string{"a/**/b"}, "c/a/x/b", true, false},
		{[]string{"*.log", "!keep.log"}, "keep.log", false, false},
		{[]string{"*.log", "!keep.log"}, "drop.log", false, true},
		{[]string{"uploads/"}, "uploads-old/x", false, false},
		{[]string{"example.com"}, "example.com.au", false, false},
		{nil, "anything", false, false},
		{[]string{"# comment", ""}, "# comment", false, false},
	}
	for _, tt := range tests {
		s := MustCompile(tt.patterns...)
		if got := s.Match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("%q.Match(%q, dir=%v) = %v, want %v", tt.patterns, tt.path, tt.isDir, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, p := range []string{"[", "/", "!"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%q) = nil error, want one", p)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/**/b", "a/x/b", true)
	f.Add("*.log", "x.log", false)
	f.Fuzz(func(t *testing.T, pat, p string, isDir bool) {
		s, err := Compile(pat)
		if err != nil {
			return
		}
		_ = s.Match(p, isDir) // must not panic or hang
	})
}
