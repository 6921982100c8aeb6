package database

import (
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
)

// passwordsWith holds, for every character that means something in a URL
// or to a shell, passwords with it at the start, in the middle, at the end.
func passwordsWith() []string {
	var pws []string
	for _, c := range " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" {
		s := string(c)
		pws = append(pws, s+"Zq9secret", "Zq9"+s+"secret", "Zq9secret"+s, "Zq9"+s+s+"se"+s+"cret")
	}
	return pws
}

// TestOpenNeverShowsThePassword: a DSN is opened with its password,
// whatever its characters, and no error about a DSN quotes any part of it.
func TestOpenNeverShowsThePassword(t *testing.T) {
	for _, pw := range passwordsWith() {
		for _, scheme := range []string{"mysql", "postgres"} {
			good := scheme + "://u:" + pw + "@db1:3306/app"
			db, err := Open(cairn.NewDSN(good), Options{})
			if err != nil {
				t.Errorf("Open(%q): %v", good, err)
			} else if got := password(db); got != pw {
				t.Errorf("Open(%q): password %q", good, got)
			} else if strings.Contains(db.String(), "Zq9") {
				t.Errorf("Open(%q).String() = %q", good, db.String())
			}
			for _, bad := range []string{
				scheme + "://u:" + pw + "@db1:99999/app",         // bad port
				scheme + "://u:" + pw + "@db1:3306/app?colour=1", // unknown option
				scheme + "://u:" + pw + "@db1:3306/",             // no database
				scheme + "://u:" + pw + "@db1:3306",              // no database
				scheme + "://u:" + pw + "@db1:3306/a/b",          // two
				"oracle://u:" + pw + "@db1/app",                  // unknown engine
				"u:" + pw + "@db1/app",                           // no scheme
				scheme + ":/u:" + pw + "@db1/app",                // one slash
			} {
				_, err := Open(cairn.NewDSN(bad), Options{})
				if err == nil {
					t.Errorf("Open(%q) succeeded", bad)
					continue
				}
				if msg := err.Error(); strings.Contains(msg, "Zq9") || strings.Contains(msg, "secret") || strings.Contains(msg, "cret") {
					t.Errorf("Open(%q): the error shows the password: %s", bad, msg)
				}
			}
		}
	}
}

func password(db any) string {
	switch d := db.(type) {
	case mysqlDB:
		return d.c.Password.Reveal()
	case postgresDB:
		return d.c.Password.Reveal()
	}
	return ""
}
