package database

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		dsn, engine, name, str string
	}{
		{"mysql://wp:s3cret@db1/wordpress", "mysql", "wordpress", "mysql://wp@db1:3306/wordpress"},
		{"mariadb://wp:s3cret@db1:3307/shop", "mysql", "shop", "mysql://wp@db1:3307/shop"},
		{"postgres://app:s3cret@pg/app?sslmode=disable", "postgres", "app", "postgres://app@pg:5432/app?sslmode=disable"},
		{"postgresql://app@pg:6432/app", "postgres", "app", "postgres://app@pg:6432/app"},
		{"sqlite:///var/www/app/db.sqlite3", "sqlite", "db", "sqlite:///var/www/app/db.sqlite3"},
	}
	for _, tt := range tests {
		db, err := Open(cairn.NewDSN(tt.dsn), Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", tt.dsn, err)
			continue
		}
		if db.Engine() != tt.engine || db.Name() != tt.name || db.String() != tt.str {
			t.Errorf("Open(%q) = %s %s %s, want %s %s %s", tt.dsn, db.Engine(), db.Name(), db.String(), tt.engine, tt.name, tt.str)
		}
	}
	for _, bad := range []string{"oracle://scott:tiger@db/x", "wordpress", "mysql://u:s3cret@h/", "sqlite://relative/path.db"} {
		_, err := Open(cairn.NewDSN(bad), Options{})
		if !errors.Is(err, cairn.ErrInvalidArgument) || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tiger") {
			t.Errorf("Open(%q) = %v, want an invalid argument without the password", bad, err)
		}
	}
}

type fixedCounter []cairn.TableStat

func (fixedCounter) Write(p []byte) (int, error) { return len(p), nil }
func (c fixedCounter) Counts() []cairn.TableStat { return c }

// The rows come from the dump; a checksum is kept only where the engine
// saw as many rows; empty tables come from the engine's list.
func TestDumpWithStats(t *testing.T) {
	counted := fixedCounter{{Name: "big", Rows: 5}, {Name: "busy", Rows: 7}, {Name: "new", Rows: 1}, {Name: "posts", Rows: 3}}
	engine := []cairn.TableStat{{Name: "big", Rows: -1}, {Name: "busy", Rows: 8, Checksum: "b"}, {Name: "empty", Checksum: "0"}, {Name: "posts", Rows: 3, Checksum: "p"}}
	var out strings.Builder
	got, err := dumpWithStats(context.Background(), &out, counted,
		func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "DUMP"); return err },
		func(context.Context) ([]cairn.TableStat, error) { return engine, nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []cairn.TableStat{{Name: "big", Rows: 5}, {Name: "busy", Rows: 7}, {Name: "empty", Checksum: "0"}, {Name: "posts", Rows: 3, Checksum: "p"}, {Name: "new", Rows: 1}}
	if len(got) != len(want) || out.String() != "DUMP" {
		t.Fatalf("got %+v (dump %q), want %+v", got, out.String(), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("table %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// A failing dump stops the stats and is the error.
	boom := errors.New("dump died")
	_, err = dumpWithStats(context.Background(), io.Discard, counted,
		func(context.Context, io.Writer) error { return boom },
		func(ctx context.Context) ([]cairn.TableStat, error) { <-ctx.Done(); return nil, ctx.Err() })
	if !errors.Is(err, boom) {
		t.Errorf("failed dump: %v", err)
	}
}
