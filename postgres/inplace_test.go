package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/jackc/pgx/v5"
)

// The target's owner, without CREATEDB (one role per application, as
// managed hosting gives), restores inside its database: the snapshot's
// tables, view, function and trigger are there, owned by it, the target's
// own are gone, nothing is left beside or inside, and sessions connected
// to the database meanwhile are no obstacle.
func TestReplaceInPlaceAsOwner(t *testing.T) {
	dump, want := sourceDump(t)
	dst := pgTarget(t)
	ctx := context.Background()
	app := Config{User: dst.User, Password: cairn.Secret(dst.Password), Host: "127.0.0.1", Port: 5432, Database: dst.Database, SSLMode: "disable"}
	if can := query(t, "postgres", "SELECT rolcreatedb::text FROM pg_roles WHERE rolname = $1", dst.User); can != "false" {
		t.Fatalf("the role may create databases (%s): the test proves nothing", can)
	}
	before := state(t, dst.Database)

	// A cut dump, then a copy that does not match: nothing changes.
	if err := Replace(ctx, app, bytes.NewReader(dump[:len(dump)/2]), strict(want), ReplaceOptions{}); err == nil {
		t.Fatal("a cut dump replaced the target")
	}
	wrong := append([]TableStat(nil), want...)
	wrong[0].Rows++
	if err := Replace(ctx, app, bytes.NewReader(dump), strict(wrong), ReplaceOptions{}); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a mismatched copy: %v", err)
	}
	if after := state(t, dst.Database); after != before {
		t.Fatalf("a failed restore changed the target:\n%s\n%s", before, after)
	}
	if n := query(t, dst.Database, "SELECT count(*)::text FROM pg_namespace WHERE nspname LIKE 'cairn%'"); n != "0" {
		t.Fatalf("%s schemas left", n)
	}

	if err := Replace(ctx, app, bytes.NewReader(dump), strict(want), ReplaceOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := Stats(ctx, asPostgres(dst.Database))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after replace %+v, want %+v", got, want)
	}
	if owner := query(t, dst.Database, "SELECT tableowner FROM pg_tables WHERE tablename = 'posts'"); owner != dst.User {
		t.Errorf("posts owned by %s, want %s", owner, dst.User)
	}
	if n := query(t, dst.Database, "SELECT count(*)::text FROM titles"); n != "3000" {
		t.Errorf("view: %s rows", n)
	}
	if _, err := dst.Admin.Exec(ctx, "INSERT INTO posts (title) VALUES ('  padded  ')"); err != nil {
		t.Fatal(err)
	}
	if title := query(t, dst.Database, "SELECT title FROM posts ORDER BY id DESC LIMIT 1"); title != "padded" {
		t.Errorf("trigger: title %q", title)
	}
	if n := query(t, dst.Database, "SELECT count(*)::text FROM pg_tables WHERE tablename = 'stale'"); n != "0" {
		t.Error("the target's own table survived")
	}
	if n := query(t, dst.Database, "SELECT count(*)::text FROM pg_namespace WHERE nspname LIKE 'cairn%'"); n != "0" {
		t.Errorf("%s schemas left", n)
	}
	if s := sideDBs(t, dst.Database); s != "" {
		t.Errorf("side databases left: %s", s)
	}
}

// A target with an extension in its schemas is refused, as it was: the
// extension's objects cannot move with a restore inside it.
func TestReplaceInPlaceRefusesExtensions(t *testing.T) {
	dump, want := sourceDump(t)
	dst := pgTarget(t)
	ctx := context.Background()
	if _, err := dst.Admin.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pgcrypto"); err != nil {
		t.Fatalf("pgcrypto (PostgreSQL's own contrib): %v", err)
	}
	before := state(t, dst.Database)
	app := Config{User: dst.User, Password: cairn.Secret(dst.Password), Host: "127.0.0.1", Port: 5432, Database: dst.Database, SSLMode: "disable"}
	err := Replace(ctx, app, bytes.NewReader(dump), strict(want), ReplaceOptions{})
	if err == nil || !strings.Contains(err.Error(), "pgcrypto") || !strings.Contains(err.Error(), "Try:") {
		t.Fatalf("Replace = %v", err)
	}
	if after := state(t, dst.Database); after != before {
		t.Fatalf("the target changed:\n%s\n%s", before, after)
	}
}

// What a restore inside the database cannot take in its one transaction
// is refused with the target as it was and nothing left: a dump with
// large objects (pg_dump writes them in transactions of their own, whose
// COMMIT would end the restore's half-way), a target holding large
// objects, a schema of the target owned by another role.
func TestReplaceInPlaceRefusals(t *testing.T) {
	src, _ := fixture(t)
	ctx := context.Background()
	if _, err := src.Admin.Exec(ctx, "SELECT lo_from_bytea(0, 'a large object')"); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := Dump(ctx, asPostgres(src.Database), &dump); err != nil {
		t.Fatal(err)
	}
	clean, _ := sourceDump(t)
	for _, c := range []struct {
		name, setup string
		dump        []byte
		says        string
	}{
		{"a dump with large objects", "", dump.Bytes(), "large objects"},
		{"a target with large objects", "SELECT lo_from_bytea(0, 'old')", clean, "large objects"},
		{"a schema of another role", "CREATE SCHEMA other AUTHORIZATION postgres", clean, "belong to another role"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := pgTarget(t)
			if c.setup != "" {
				if _, err := dst.Admin.Exec(ctx, c.setup); err != nil {
					t.Fatal(err)
				}
			}
			before := state(t, dst.Database)
			app := Config{User: dst.User, Password: cairn.Secret(dst.Password), Host: "127.0.0.1", Port: 5432, Database: dst.Database, SSLMode: "disable"}
			err := Replace(ctx, app, bytes.NewReader(c.dump), cairn.Expect(nil, nil), ReplaceOptions{})
			if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "Try:") {
				t.Fatalf("Replace = %v", err)
			}
			if after := state(t, dst.Database); after != before {
				t.Fatalf("the target changed:\n%s\n%s", before, after)
			}
			if n := query(t, dst.Database, "SELECT count(*)::text FROM pg_namespace WHERE nspname LIKE 'cairn%'"); n != "0" {
				t.Fatalf("%s schemas left", n)
			}
		})
	}
}

// A transaction elsewhere making a table in the target's schema (a
// migration under way) holds an in-place restore's schema swap back: it
// gives up within its bound, naming the session, and the target is as it
// was. (A transaction that only read the target's tables does not: the
// schemas are renamed under it, and the old ones dropped later.)
func TestReplaceInPlaceLocked(t *testing.T) {
	dump, want := sourceDump(t)
	dst := pgTarget(t)
	dst.Admin.Close(context.Background())
	before := state(t, dst.Database)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	holder, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/"+dst.Database+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	var pid int
	holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid)
	for _, q := range []string{"BEGIN", "CREATE TABLE public.held_by_a_session (x int)"} {
		if _, err := holder.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err = Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: time.Second, InPlace: true})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("session %d (postgres@", pid)) || !strings.Contains(err.Error(), "Try:") {
		t.Fatalf("Replace = %v", err)
	}
	if after := state(t, dst.Database); after != before {
		t.Errorf("target changed:\nbefore %s\nafter  %s", before, after)
	}
	holder.Exec(ctx, "ROLLBACK")
	if err := Replace(ctx, asPostgres(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: time.Second, InPlace: true}); err != nil {
		t.Fatalf("once the lock is gone: %v", err)
	}
}

// A load's trace is told each table's fingerprint as the load left it,
// on both paths (a scratch database renamed in; the schemas swapped in
// place, read in the load's own transaction): what UpdateTimes reads
// right after, before anyone writes.
func TestReplaceTracesFingerprints(t *testing.T) {
	dump, want := sourceDump(t)
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("in place %v", inPlace), func(t *testing.T) {
			dst := pgTarget(t)
			c := asPostgres(dst.Database)
			var traced map[string]string
			ctx := cairn.WithLoadTrace(context.Background(), &cairn.LoadTrace{Swapping: func(p map[string]string) { traced = p }})
			if err := Replace(ctx, c, bytes.NewReader(dump), strict(want), ReplaceOptions{InPlace: inPlace, Terminate: true}); err != nil {
				t.Fatal(err)
			}
			now, _, err := UpdateTimes(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(traced) == 0 || fmt.Sprint(traced) != fmt.Sprint(now) {
				t.Errorf("traced %v\nread after %v", traced, now)
			}
		})
	}
}
