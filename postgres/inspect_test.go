package postgres

import "testing"

func TestMajor(t *testing.T) {
	for v, want := range map[string]int{
		"pg_dump (PostgreSQL) 16.4 (Debian 16.4-1.pgdg120+1)": 16,
		"pg_dump (PostgreSQL) 15.8":                           15,
		"16.4 (Debian 16.4-1.pgdg120+1)":                      16,
		"9.6.24":                                              9,
		"17beta2":                                             17,
		"":                                                    0,
	} {
		if got := major(v); got != want {
			t.Errorf("major(%q) = %d, want %d", v, got, want)
		}
	}
}
