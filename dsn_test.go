package cairn_test

import (
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
)

// specials are the characters a password may hold that mean something
// in a URL, or to a shell.
const specials = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// passwords holds, for every special character, passwords with it at the
// start, in the middle, at the end, and twice.
func passwords() []string {
	var pws []string
	for _, c := range specials {
		s := string(c)
		pws = append(pws, s+"Zq9secret", "Zq9"+s+"secret", "Zq9secret"+s, "Zq9"+s+s+"se"+s+"cret")
	}
	return append(pws, "Zq9p%41ss", "Zq9/?#@:all", "Zq9@host:3306/db")
}

func TestSplitDSNPasswords(t *testing.T) {
	for _, pw := range passwords() {
		for _, rest := range []string{"db.example.com:3306/wordpress", "127.0.0.1/wp?socket=/run/mysqld/mysqld.sock", "[::1]:3306/wp", "/wp?socket=/tmp/s"} {
			dsn := "mysql://backup:" + pw + "@" + rest
			d, err := cairn.SplitDSN(dsn)
			if strings.HasPrefix(pw, "Zq9@host:3306/db") {
				// Ambiguous: the password looks like a host and a database.
				if err == nil && d.Password.Reveal() != pw {
					t.Errorf("%q: password %q: read as %q", dsn, pw, d.Password.Reveal())
				}
				continue
			}
			want := pw
			if pw == "Zq9p%41ss" {
				want = "Zq9pAss"
			}
			if err != nil {
				t.Errorf("%q: %v", dsn, err)
				continue
			}
			if d.User != "backup" || d.Password.Reveal() != want || d.Rest != "mysql://"+rest {
				t.Errorf("%q: got user %q password %q rest %q", dsn, d.User, d.Password.Reveal(), d.Rest)
			}
			if got := cairn.RedactDSN(dsn); strings.Contains(got, "Zq9") || strings.Contains(got, "secret") {
				t.Errorf("RedactDSN(%q) = %q", dsn, got)
			}
		}
	}
}

func TestSplitDSNKeepsQueryAt(t *testing.T) {
	d, err := cairn.SplitDSN("mysql://backup:pw@127.0.0.1:3306/wp?ssh=deploy@web1.example.com")
	if err != nil || d.User != "backup" || d.Password.Reveal() != "pw" || d.Rest != "mysql://127.0.0.1:3306/wp?ssh=deploy@web1.example.com" {
		t.Fatalf("got %+v, %v", d, err)
	}
	d, err = cairn.SplitDSN("mysql://127.0.0.1:3306/wp?ssh=deploy@web1.example.com")
	if err != nil || d.User != "" || d.Rest != "mysql://127.0.0.1:3306/wp?ssh=deploy@web1.example.com" {
		t.Fatalf("got %+v, %v", d, err)
	}
}
