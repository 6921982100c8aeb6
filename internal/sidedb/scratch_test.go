package sidedb

import (
	"regexp"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	long := strings.Repeat("x", 64)
	for _, target := range []string{"wp", "my_db%", long} {
		n := Name(target, "new")
		if len(n) > 63 || n == Name(target, "new") {
			t.Errorf("Name(%q) = %q: too long, or not random", target, n)
		}
		// Like, read as SQL LIKE, matches the name.
		like := Like(target, "new")
		re := regexp.QuoteMeta(like)
		re = strings.NewReplacer(`\\\\`, `\\`, `\\_`, `_`, `\\%`, `%`, `%`, `.*`).Replace(re)
		if !regexp.MustCompile("^" + re + "$").MatchString(n) {
			t.Errorf("Like(%q) = %q does not match %q", target, like, n)
		}
	}
	if Like("my_db", "new") != `my\_db\_cairn\_new\_%` {
		t.Errorf("Like = %q", Like("my_db", "new"))
	}
}
