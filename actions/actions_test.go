package actions

import (
	"errors"
	"testing"

	"github.com/cairn-backup/cairn"
)

func TestParse(t *testing.T) {
	got, err := Parse([]string{"noindex", " sql: UPDATE x SET y = 1 ", "run: wp cache flush", "sanitize-users"})
	if err != nil || len(got) != 4 || got[1] != (Action{"sql", "UPDATE x SET y = 1"}) || got[2].String() != "run: wp cache flush" {
		t.Errorf("Parse = %+v, %v", got, err)
	}
	for _, bad := range []string{"no-index", "sql:", "run:  ", "shell: ls"} {
		if _, err := Parse([]string{bad}); !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("Parse(%q) = %v, want an invalid argument", bad, err)
		}
	}
}
