package rewrite

import "testing"

func TestDetect(t *testing.T) {
	for head, want := range map[string]Dialect{
		"--\n-- PostgreSQL database dump\n--\n":                    Postgres,
		"SET standard_conforming_strings = on;\n":                  Postgres,
		"CREATE TABLE t (a int);\nCOPY public.t (a) FROM stdin;\n": Postgres,
		"-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n":  MySQL,
		"INSERT INTO `t` VALUES ('COPY ');\n":                      MySQL,
		"":                                                         MySQL,
	} {
		if got := Detect([]byte(head)); got != want {
			t.Errorf("Detect(%q) = %v, want %v", head, got, want)
		}
	}
}
