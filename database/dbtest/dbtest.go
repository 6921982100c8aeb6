// Package dbtest is the conformance suite every database engine passes:
// one body, run against a real server of each engine (MariaDB,
// PostgreSQL, SQLite), holding each to the contract of cairn.Database —
// a dump restores to the same rows and checksums, and a replace that
// fails, is cancelled or is given a broken dump leaves the target as it
// was, with nothing left beside it.
package dbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/internal/testenv"
)

// Engine is one database engine, as the suite needs it.
type Engine struct {
	// New makes an empty database, removed when the test ends.
	New func(t *testing.T) Fixture
	// Fill is SQL, in the engine's dialect, that fills a database with
	// the hard cases: several tables, one without a primary key, NULLs,
	// quotes and backslashes, emoji, binary data, a row of a megabyte or
	// more, and a view.
	Fill []string
	// Own is SQL that gives a replace's target objects of its own beyond
	// a table (a trigger, a view): a failed replace must keep them.
	Own []string
}

// Fixture is one database made for a test.
type Fixture struct {
	DSN string // with the rights a restore needs
	// Exec runs statements on the database as its administrator.
	Exec func(t *testing.T, statements ...string)
	// Leftovers lists what a replace may leave beside the database
	// (scratch or held-aside copies): none once it returns.
	Leftovers func(t *testing.T) []string
	// Objects describes the database's objects besides table rows
	// (triggers, views, routines), to compare before and after.
	Objects func(t *testing.T) string
}

// Run runs the suite against e.
func Run(t *testing.T, e Engine) {
	src := e.New(t)
	src.Exec(t, e.Fill...)
	dump, want := dumpOf(t, src)
	if len(want) < 2 || len(dump) < 1<<20 {
		t.Fatalf("the fixture dumps %d tables in %d bytes: too little to test", len(want), len(dump))
	}

	t.Run("RoundTrip", func(t *testing.T) {
		dst := target(t, e)
		if err := open(t, dst).Replace(context.Background(), bytes.NewReader(dump), cairn.Expect(want, nil)); err != nil {
			t.Fatal(err)
		}
		_, got := dumpOf(t, dst)
		if !slices.Equal(got, want) {
			t.Errorf("after a replace the target holds\n%+v\nwant\n%+v", got, want)
		}
		if got, want := dst.Objects(t), src.Objects(t); got != want {
			t.Errorf("after a replace the target's objects are %s, want the source's %s", got, want)
		}
		if left := dst.Leftovers(t); len(left) > 0 {
			t.Errorf("left beside the target: %v", left)
		}
	})

	t.Run("FailuresLeaveTheTarget", func(t *testing.T) {
		dst := target(t, e)
		_, before := dumpOf(t, dst)
		objects := dst.Objects(t)
		wrong := slices.Clone(want)
		wrong[0].Rows++
		broken := append(bytes.Clone(dump[:len(dump)/2]), "\n\\.\nTHIS IS NOT SQL;\n"...)
		cases := []struct {
			name   string
			ctx    func() (context.Context, context.CancelFunc)
			dump   func(cancel context.CancelFunc) io.Reader
			verify cairn.Verify
			is     error
		}{
			{"rows that do not match", background, whole(dump), cairn.Expect(wrong, nil), cairn.ErrMismatch},
			{"a broken dump", background, whole(broken), cairn.Expect(want, nil), nil},
			{"cancelled while loading", cancellable, func(cancel context.CancelFunc) io.Reader {
				return &testenv.CancelAfter{R: bytes.NewReader(dump), N: len(dump) / 3, Cancel: cancel}
			}, cairn.Expect(want, nil), nil},
			{"a verify that refuses", background, whole(dump), func([]cairn.TableStat) error { return errRefused }, errRefused},
		}
		for _, c := range cases {
			ctx, cancel := c.ctx()
			err := open(t, dst).Replace(ctx, c.dump(cancel), c.verify)
			cancel()
			if err == nil || c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%s: Replace = %v, want an error (%v)", c.name, err, c.is)
			}
			if _, after := dumpOf(t, dst); !slices.Equal(after, before) {
				t.Errorf("%s: the target changed:\n%+v\nwas\n%+v", c.name, after, before)
			}
			if after := dst.Objects(t); after != objects {
				t.Errorf("%s: the target's objects changed: %s, were %s", c.name, after, objects)
			}
			if left := dst.Leftovers(t); len(left) > 0 {
				t.Errorf("%s: left beside the target: %v", c.name, left)
			}
		}
	})
}

var errRefused = errors.New("refused by verify")

func background() (context.Context, context.CancelFunc) { return context.Background(), func() {} }

func cancellable() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func whole(b []byte) func(context.CancelFunc) io.Reader {
	return func(context.CancelFunc) io.Reader { return bytes.NewReader(b) }
}

// target makes a database with content of its own, for a replace.
func target(t *testing.T, e Engine) Fixture {
	dst := e.New(t)
	dst.Exec(t, append([]string{"CREATE TABLE own (x INTEGER)", "INSERT INTO own VALUES (1)"}, e.Own...)...)
	return dst
}

func open(t *testing.T, f Fixture) cairn.Database {
	t.Helper()
	db, err := database.Open(cairn.NewDSN(f.DSN), database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func dumpOf(t *testing.T, f Fixture) ([]byte, []cairn.TableStat) {
	t.Helper()
	var b bytes.Buffer
	stats, err := open(t, f).Dump(context.Background(), &b)
	if err != nil {
		t.Fatalf("dump %s: %v", cairn.RedactDSN(f.DSN), err)
	}
	return b.Bytes(), stats
}

// Statements is a helper for engines whose admin connection runs one
// statement at a time.
func Statements(exec func(string) error) func(t *testing.T, statements ...string) {
	return func(t *testing.T, statements ...string) {
		t.Helper()
		for _, q := range statements {
			if err := exec(q); err != nil {
				t.Fatal(fmt.Errorf("%.80s: %w", q, err))
			}
		}
	}
}
