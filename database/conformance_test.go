package database_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn/database/dbtest"
	"github.com/cairn-backup/cairn/internal/testenv"
)

// One body, every engine: see package dbtest.

func TestMariaDBConformance(t *testing.T) {
	dbtest.Run(t, dbtest.Engine{
		New: func(t *testing.T) dbtest.Fixture {
			m := testenv.NewMariaDB(t)
			return dbtest.Fixture{
				DSN:  "mysql://root@127.0.0.1:3306/" + m.Database,
				Exec: dbtest.Statements(func(q string) error { _, err := m.Admin.Exec(q); return err }),
				Objects: func(t *testing.T) string {
					var s string
					if err := m.Admin.QueryRow(`SELECT CONCAT_WS(';',
						(SELECT GROUP_CONCAT(TRIGGER_NAME ORDER BY 1) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()),
						(SELECT GROUP_CONCAT(TABLE_NAME ORDER BY 1) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()),
						(SELECT GROUP_CONCAT(ROUTINE_NAME ORDER BY 1) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()))`).Scan(&s); err != nil {
						t.Fatal(err)
					}
					return s
				},
				Leftovers: func(t *testing.T) []string {
					return column(t, func() ([]string, error) {
						rows, err := m.Admin.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", m.Database+"_cairn_%")
						if err != nil {
							return nil, err
						}
						defer rows.Close()
						var out []string
						for rows.Next() {
							var s string
							if err := rows.Scan(&s); err != nil {
								return nil, err
							}
							out = append(out, s)
						}
						return out, rows.Err()
					})
				},
			}
		},
		Fill: []string{
			"CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(200), body MEDIUMTEXT, data BLOB, at DATETIME NULL) CHARACTER SET utf8mb4",
			`INSERT INTO posts VALUES (1, 'it''s', 'back\\slash and "quotes"', X'00FF0A0D275C', '2026-01-01 00:00:00'), (2, NULL, '😀 emoji', NULL, NULL)`,
			"INSERT INTO posts VALUES (3, 'big', REPEAT('x', 1200000), NULL, NULL)",
			"CREATE TABLE nokey (v TEXT)",
			"INSERT INTO nokey VALUES ('a'), ('a'), (NULL)",
			"CREATE VIEW titles AS SELECT title FROM posts",
			"CREATE TRIGGER trim_title BEFORE INSERT ON posts FOR EACH ROW SET NEW.title = TRIM(NEW.title)",
			"CREATE PROCEDURE count_posts() SELECT COUNT(*) FROM posts",
		},
		Own: []string{
			"CREATE TRIGGER own_trg BEFORE INSERT ON own FOR EACH ROW SET NEW.x = NEW.x + 1",
			"CREATE VIEW own_view AS SELECT * FROM own",
		},
	})
}

func TestPostgresConformance(t *testing.T) {
	dbtest.Run(t, dbtest.Engine{
		New: func(t *testing.T) dbtest.Fixture {
			p := testenv.NewPostgres(t)
			p.Admin.Close(context.Background()) // a connected session keeps a replace from swapping
			p.Admin = nil
			url := "postgres://postgres@127.0.0.1:5432/" + p.Database + "?sslmode=disable"
			return dbtest.Fixture{
				DSN: url,
				Exec: dbtest.Statements(func(q string) error {
					ctx := context.Background()
					c, err := pgx.Connect(ctx, url)
					if err != nil {
						return err
					}
					defer c.Close(ctx)
					_, err = c.Exec(ctx, q)
					return err
				}),
				Objects: func(t *testing.T) string {
					ctx := context.Background()
					c, err := pgx.Connect(ctx, url)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close(ctx)
					var s string
					if err := c.QueryRow(ctx, `SELECT concat_ws(';',
						(SELECT string_agg(viewname, ',' ORDER BY viewname) FROM pg_views WHERE schemaname = 'public'),
						(SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal))`).Scan(&s); err != nil {
						t.Fatal(err)
					}
					return s
				},
				Leftovers: func(t *testing.T) []string {
					return column(t, func() ([]string, error) {
						ctx := context.Background()
						c, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
						if err != nil {
							return nil, err
						}
						defer c.Close(ctx)
						rows, err := c.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", p.Database+"_cairn_%")
						if err != nil {
							return nil, err
						}
						return pgx.CollectRows(rows, pgx.RowTo[string])
					})
				},
			}
		},
		Fill: []string{
			"CREATE TABLE posts (id INT PRIMARY KEY, title TEXT, body TEXT, data BYTEA, at TIMESTAMP NULL)",
			`INSERT INTO posts VALUES (1, 'it''s', 'back\slash and "quotes"', '\x00ff0a0d275c', '2026-01-01 00:00:00'), (2, NULL, '😀 emoji', NULL, NULL)`,
			"INSERT INTO posts VALUES (3, 'big', repeat('x', 1200000), NULL, NULL)",
			"CREATE TABLE nokey (v TEXT)",
			"INSERT INTO nokey VALUES ('a'), ('a'), (NULL)",
			"CREATE VIEW titles AS SELECT title FROM posts",
			"CREATE FUNCTION trim_title() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.title := trim(NEW.title); RETURN NEW; END$$",
			"CREATE TRIGGER trim_title BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trim_title()",
		},
		Own: []string{"CREATE VIEW own_view AS SELECT * FROM own"},
	})
}

func TestSQLiteConformance(t *testing.T) {
	dbtest.Run(t, dbtest.Engine{
		New: func(t *testing.T) dbtest.Fixture {
			dir := t.TempDir()
			path := filepath.Join(dir, "app.db")
			return dbtest.Fixture{
				DSN: "sqlite://" + path,
				Exec: dbtest.Statements(func(q string) error {
					out, err := exec.Command("sqlite3", "-bail", "-batch", path, q).CombinedOutput()
					if err != nil {
						return &execError{err, string(out)}
					}
					return nil
				}),
				Objects: func(t *testing.T) string {
					if _, err := os.Stat(path); err != nil {
						return ""
					}
					out, err := exec.Command("sqlite3", "-batch", path, "SELECT type || ' ' || name FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY 1").CombinedOutput()
					if err != nil {
						t.Fatalf("%v: %s", err, out)
					}
					return strings.TrimSpace(string(out))
				},
				Leftovers: func(t *testing.T) []string {
					return column(t, func() ([]string, error) {
						entries, err := os.ReadDir(dir)
						var out []string
						for _, e := range entries {
							if e.Name() != "app.db" {
								out = append(out, e.Name())
							}
						}
						return out, err
					})
				},
			}
		},
		Fill: []string{
			"CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT, body TEXT, data BLOB, at TEXT)",
			`INSERT INTO posts VALUES (1, 'it''s', 'back\slash and "quotes"', X'00FF0A0D275C', '2026-01-01 00:00:00'), (2, NULL, '😀 emoji', NULL, NULL)`,
			"INSERT INTO posts VALUES (3, 'big', printf('%.*c', 1200000, 'x'), NULL, NULL)",
			"CREATE TABLE nokey (v TEXT)",
			"INSERT INTO nokey VALUES ('a'), ('a'), (NULL)",
			"CREATE VIEW titles AS SELECT title FROM posts",
			"CREATE TRIGGER trim_title BEFORE INSERT ON posts BEGIN SELECT 1; END",
		},
		Own: []string{"CREATE VIEW own_view AS SELECT * FROM own"},
	})
}

type execError struct {
	err error
	out string
}

func (e *execError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.out) }

// column runs a query for a list, failing the test on error.
func column(t *testing.T, q func() ([]string, error)) []string {
	t.Helper()
	out, err := q()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
