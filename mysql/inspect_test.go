package mysql

import "testing"

func TestMismatch(t *testing.T) {
	for _, tt := range []struct{ tool, server, want string }{
		{"mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)", "10.11.19-MariaDB-0+deb12u1", ""},
		{"mariadb-dump from 11.8.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)", "10.11.6-MariaDB", ""},
		{"mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)", "11.4.2-MariaDB-log", "the dump tool (10.11) is older than the server (11.4)"},
		{"mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", "10.11.6-MariaDB", "the dump tool is MySQL's and the server MariaDB's"},
		{"mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB", "8.0.36", "the dump tool is MariaDB's and the server MySQL's"},
		{"mysqldump  Ver 8.0.36 for Linux", "8.4.1", "the dump tool (8.0) is older than the server (8.4)"},
		{"mysqldump  Ver 8.4.1 for Linux", "8.0.36", ""},
	} {
		if got := mismatch(tt.tool, tt.server); got != tt.want {
			t.Errorf("mismatch(%q, %q) = %q, want %q", tt.tool, tt.server, got, tt.want)
		}
	}
}
