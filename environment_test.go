package cairn

import (
	"errors"
	"testing"
)

func TestParseActions(t *testing.T) {
	got, err := ParseActions([]string{"noindex", " sql: UPDATE x SET y = 1 ", "run: wp cache flush", "sanitize-users"})
	if err != nil || len(got) != 4 || got[1] != (Action{Kind: "sql", Arg: "UPDATE x SET y = 1"}) || got[2].String() != "run: wp cache flush" {
		t.Errorf("ParseActions = %+v, %v", got, err)
	}
	if got[0].Describe() == "" || got[1].Repeatable() || !got[3].Repeatable() {
		t.Errorf("Describe/Repeatable of %+v", got)
	}
	for _, bad := range []string{"no-index", "sql:", "run:  ", "shell: ls"} {
		if _, err := ParseActions([]string{bad}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseActions(%q) = %v, want an invalid argument", bad, err)
		}
	}
}

func TestParseLocation(t *testing.T) {
	for _, tt := range []struct{ in, base, want string }{
		{"/var/www/", "", "/var/www"},
		{"www", "/etc/cairn", "/etc/cairn/www"},
		{"ssh://web1/var/www", "", "ssh://web1/var/www"},
		{"ssh://deploy@web1:22/var/www/../html", "", "ssh://deploy@web1:22/var/html"},
	} {
		l, err := ParseLocation(tt.in, tt.base)
		if err != nil || l.String() != tt.want {
			t.Errorf("ParseLocation(%q, %q) = %v, %v; want %s", tt.in, tt.base, l, err, tt.want)
		}
	}
	for _, bad := range []string{"", "s3://b/x", "ssh://web1", "ssh://:22/x", "ssh://h:99999/x", "ssh://u:pw@h/x"} {
		if l, err := ParseLocation(bad, "/"); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseLocation(%q) = %v, %v; want an invalid argument", bad, l, err)
		}
	}
}
