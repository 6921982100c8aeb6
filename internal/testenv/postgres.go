package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a uniquely named database on the PostgreSQL server at
// 127.0.0.1:5432 (user postgres, trust), with a role of its own that has a
// password. Both are dropped when the test ends.
type Postgres struct {
	Admin    *pgx.Conn // postgres, connected to the database
	Database string
	User     string
	Password string
}

// NewPostgres creates the database and role, or fails (under CI=true) or
// skips the test when no server answers.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	root, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	Require(t, "PostgreSQL on 127.0.0.1:5432", err)
	p := &Postgres{Database: "cairn_t_" + randomHex(5), User: "cairn_u_" + randomHex(4), Password: "pw-" + randomHex(8) + ":'x"}
	for _, q := range []string{
		"CREATE DATABASE " + p.Database,
		"CREATE ROLE " + p.User + " LOGIN PASSWORD '" + strings.ReplaceAll(p.Password, "'", "''") + "'",
	} {
		if _, err := root.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if p.Admin != nil {
			p.Admin.Close(ctx)
		}
		for _, q := range []string{"DROP DATABASE IF EXISTS " + p.Database + " WITH (FORCE)", "DROP ROLE IF EXISTS " + p.User} {
			if _, err := root.Exec(ctx, q); err != nil {
				t.Errorf("clean up: %s: %v", q, err)
			}
		}
		root.Close(ctx)
	})
	p.Admin, err = pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+p.Database+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Admin.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+p.User+"; ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "+p.User); err != nil {
		t.Fatal(err)
	}
	return p
}
