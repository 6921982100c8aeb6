package postgres

import (
	"bytes"
	"strings"
	"testing"
)

func TestFilterRestrict(t *testing.T) {
	long := strings.Repeat("x", 3<<20)
	tests := []struct{ name, in, want string }{
		{"pg_dump's own lines dropped", "--\n-- header\n\\restrict abc\nSET x = 1;\nCOPY t (a) FROM stdin;\n\\restrict abc\n\\N\n\\.\n\\unrestrict abc\n",
			"--\n-- header\nSET x = 1;\nCOPY t (a) FROM stdin WITH (FREEZE);\n\\restrict abc\n\\N\n\\.\n"},
		{"each part's pair dropped, what it wraps kept (psql refuses it)", "SET x = 1;\n\\restrict abc\n\\connect other\n\\unrestrict abc\n\\restrict def\nSET y = 2;\n\\unrestrict def\n",
			"SET x = 1;\n\\connect other\nSET y = 2;\n"},
		{"another key's \\unrestrict is kept", "\\restrict abc\n\\unrestrict zzz\n", "\\unrestrict zzz\n"},
		{"long lines", "SELECT '" + long + "';\n\\connect x", "SELECT '" + long + "';\n\\connect x"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := filterCopies(&out, strings.NewReader(tt.in), "KEY"); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "\\restrict KEY\n"+tt.want {
			t.Errorf("%s:\n got %.200q\nwant %.200q", tt.name, got, "\\restrict KEY\n"+tt.want)
		}
	}
}
