package mysql

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/testenv"
)

// holdTables opens a session as the target's own user that holds a
// metadata lock on its posts table (an open transaction that read it),
// as a site's long request or a forgotten console does. It returns the
// session's id and the connection.
func holdTables(t *testing.T, dst *testenv.MariaDB) (int64, func(context.Context) error) {
	t.Helper()
	return hold(t, dst, "SELECT COUNT(*) FROM posts")
}

// hold is holdTables, the transaction having run read.
func hold(t *testing.T, dst *testenv.MariaDB, read string) (int64, func(context.Context) error) {
	t.Helper()
	if _, err := dst.Admin.Exec("GRANT SELECT ON " + dst.Database + ".* TO '" + dst.User + "'@'%'"); err != nil {
		t.Fatal(err)
	}
	app := Config{User: dst.User, Password: cairnSecret(dst.Password), Host: "127.0.0.1", Port: 3306, Database: dst.Database}
	db, err := app.open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var id int64
	conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id)
	for _, q := range []string{"BEGIN", read} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return id, conn.PingContext
}

// readWhile runs the site's reads of posts until stop is closed, and
// returns the longest one took and how many ran.
func readWhile(t *testing.T, dst *testenv.MariaDB, stop chan struct{}) func() (time.Duration, int) {
	var mu sync.Mutex
	var longest time.Duration
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			var c int
			if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM posts").Scan(&c); err != nil {
				t.Errorf("the site's read failed: %v", err)
				return
			}
			mu.Lock()
			longest, n = max(longest, time.Since(start)), n+1
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() (time.Duration, int) { close(stop); <-done; return longest, n }
}

// A session holding the target's tables makes the swap give up within
// its bound, naming that session; the target is left as it was, the
// site's reads wait no longer than the bound; --terminate-sessions ends
// the holder and swaps.
func TestReplaceInUseIsBounded(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "scratch database", true: "in place"}[inPlace], func(t *testing.T) { replaceInUse(t, inPlace) })
	}
}

func replaceInUse(t *testing.T, inPlace bool) {
	dump, all := sourceDump(t)
	want := tablesOnly(all)
	dst := target(t)
	before := targetState(t, dst)
	id, alive := holdTables(t, dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const bound = 2 * time.Second
	reads := readWhile(t, dst, make(chan struct{}))
	start := time.Now()
	err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: bound, Attempts: 2, InPlace: inPlace})
	took := time.Since(start)
	longest, n := reads()
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Replace = %v, want ErrInUse", err)
	}
	for _, want := range []string{"session " + strconv.FormatInt(id, 10) + " (" + dst.User + "@", "in a transaction", "left as it was", "Try:", "--terminate-sessions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if took > 2*bound+10*time.Second {
		t.Errorf("Replace took %s", took)
	}
	if longest > bound+time.Second || n == 0 {
		t.Errorf("the site's reads: %d, the longest took %s (bound %s)", n, longest, bound)
	}
	if after := targetState(t, dst); after != before {
		t.Errorf("target changed:\nbefore %s\nafter  %s", before, after)
	}
	if left := append(sideDatabases(t, dst, dst.Database), scratchTables(t, dst, dst.Database)...); len(left) > 0 {
		t.Errorf("side databases or scratch tables left: %v", left)
	}
	if err := alive(ctx); err != nil {
		t.Fatalf("the holder was ended without --terminate-sessions: %v", err)
	}

	if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(want), ReplaceOptions{LockWait: bound, Terminate: true, InPlace: inPlace}); err != nil {
		t.Fatalf("with Terminate: %v", err)
	}
	if err := alive(ctx); err == nil {
		t.Error("the holder still lives after Terminate")
	}
	var n2 int
	if err := dst.Admin.QueryRow("SELECT COUNT(*) FROM posts").Scan(&n2); err != nil || n2 != 400 {
		t.Errorf("after the swap posts has %d rows, %v", n2, err)
	}
	if left := append(sideDatabases(t, dst, dst.Database), scratchTables(t, dst, dst.Database)...); len(left) > 0 {
		t.Errorf("side databases or scratch tables left: %v", left)
	}
}

// A session that read the target's view in an open transaction holds the
// swap back as one holding its tables does: the target is left as it was
// (never new tables beside the old view, nor without a view), and once
// the session is gone the swap goes through.
func TestReplaceViewInUse(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		t.Run(map[bool]string{false: "scratch database", true: "in place"}[inPlace], func(t *testing.T) {
			dump, all := sourceDump(t)
			dst := target(t)
			before := targetState(t, dst)
			_, alive := hold(t, dst, "SELECT COUNT(*) FROM old_view")
			ctx := context.Background()
			err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(tablesOnly(all)), ReplaceOptions{LockWait: time.Second, Attempts: 1, InPlace: inPlace})
			if !errors.Is(err, ErrInUse) {
				t.Fatalf("Replace = %v, want ErrInUse", err)
			}
			if after := targetState(t, dst); after != before {
				t.Errorf("target changed:\nbefore %s\nafter  %s", before, after)
			}
			if err := alive(ctx); err != nil {
				t.Fatal(err)
			}
			if err := Replace(ctx, root(dst.Database), bytes.NewReader(dump), strict(tablesOnly(all)), ReplaceOptions{LockWait: time.Second, Terminate: true, InPlace: inPlace}); err != nil {
				t.Fatalf("with Terminate: %v", err)
			}
			var views []string
			rows, _ := dst.Admin.Query("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1")
			for rows.Next() {
				var v string
				rows.Scan(&v)
				views = append(views, v)
			}
			rows.Close()
			if strings.Join(views, ",") != "titles" {
				t.Errorf("views after the swap: %v, want the dump's (titles)", views)
			}
		})
	}
}

// A target whose view has the name of one of the dump's tables takes the
// table: the view moves aside in the swap's one RENAME before the table
// comes in (both paths).
func TestReplaceViewNamedAsTable(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		dump, all := sourceDump(t)
		dst := target(t)
		// the dump's table posts, the target's view of that name
		if _, err := dst.Admin.Exec("RENAME TABLE posts TO posts_old"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Admin.Exec("CREATE VIEW posts AS SELECT * FROM posts_old"); err != nil {
			t.Fatal(err)
		}
		if err := Replace(context.Background(), root(dst.Database), bytes.NewReader(dump), strict(tablesOnly(all)), ReplaceOptions{InPlace: inPlace}); err != nil {
			t.Fatalf("in place %v: %v", inPlace, err)
		}
		var kind string
		dst.Admin.QueryRow("SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'posts'").Scan(&kind)
		if kind != "BASE TABLE" {
			t.Errorf("in place %v: posts is a %q", inPlace, kind)
		}
	}
}

// A restoring user without PROCESS cannot see another user's session that
// holds the target: the error says so, and what would show it.
func TestReplaceInUseUnseen(t *testing.T) {
	dump, all := sourceDump(t)
	dst := target(t)
	app := ownDatabaseOnly(t, dst)
	ctx := context.Background()
	conn, err := dst.Admin.Conn(ctx) // root's
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"BEGIN", "SELECT COUNT(*) FROM posts"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	err = Replace(ctx, app, bytes.NewReader(dump), strict(tablesOnly(all)), ReplaceOptions{LockWait: time.Second, Attempts: 1})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "without the PROCESS privilege") {
		t.Fatalf("Replace = %v", err)
	}
}
