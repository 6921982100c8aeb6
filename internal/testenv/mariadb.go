package testenv

import (
	"database/sql"
	"fmt"
	"testing"

	driver "github.com/go-sql-driver/mysql"
)

// MariaDB is a uniquely named database on the MariaDB server at
// 127.0.0.1:3306 (root, no password, as the test command sets up), with a
// user of its own that has a password. Both are dropped when the test ends.
type MariaDB struct {
	Admin    *sql.DB // root, connected to the database
	Database string
	User     string
	Password string
}

// NewMariaDB creates the database and user, or fails (under CI=true) or
// skips the test when no server answers.
func NewMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	root := driver.NewConfig()
	root.User, root.Net, root.Addr = "root", "tcp", "127.0.0.1:3306"
	root.Collation = "utf8mb4_general_ci"
	conn, err := driver.NewConnector(root)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	Require(t, "MariaDB on 127.0.0.1:3306", db.Ping())
	m := &MariaDB{Database: "cairn_t_" + randomHex(5), User: "cairn_u_" + randomHex(4), Password: "pw-" + randomHex(8) + "'\"$x"}
	for _, q := range []string{
		"CREATE DATABASE " + m.Database + " CHARACTER SET utf8mb4",
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", m.User, escape(m.Password)),
		fmt.Sprintf("GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON %s.* TO '%s'@'%%'", m.Database, m.User),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"DROP DATABASE IF EXISTS " + m.Database, fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", m.User)} {
			if _, err := db.Exec(q); err != nil {
				t.Errorf("clean up: %s: %v", q, err)
			}
		}
		db.Close()
	})
	root.DBName = m.Database
	conn, err = driver.NewConnector(root)
	if err != nil {
		t.Fatal(err)
	}
	m.Admin = sql.OpenDB(conn)
	t.Cleanup(func() { m.Admin.Close() })
	return m
}

func escape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
