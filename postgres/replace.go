package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sidedb"
)

// ErrMismatch means a loaded copy does not match the snapshot's statistics.
var ErrMismatch = cairn.ErrMismatch

// ErrInUse means other sessions are connected to the database to replace.
var ErrInUse = cairn.ErrInUse

// ReplaceOptions tune Replace.
type ReplaceOptions struct {
	// Terminate ends other sessions connected to the target at the swap,
	// instead of refusing to swap while there are any.
	Terminate bool
}

// Replace makes the database c names hold the dump, safely: the dump is
// loaded (in one transaction, as the target's owner, so the application's
// role keeps owning its tables) into a scratch database, checked against
// verify, and only then swapped in by renaming databases. Until the swap any
// failure or cancellation leaves the target as it was and removes the
// scratch database. c's user needs CREATEDB and must own the target or be
// a superuser.
func Replace(ctx context.Context, c Config, dump io.Reader, verify cairn.Verify, o ReplaceOptions) (err error) {
	maint := c
	maint.Database = "postgres"
	cfg, err := maint.connConfig()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s: %w%s", maint, err, hint(err.Error()))
	}
	defer conn.Close(context.Background())

	owner, encoding, collate, ctype := c.User, "UTF8", "", ""
	exists := true
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
		FROM pg_database WHERE datname = $1`, c.Database).Scan(&owner, &encoding, &collate, &ctype)
	if errors.Is(err, pgx.ErrNoRows) {
		exists, err = false, nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", c, err)
	}
	if err := dropLeftovers(ctx, conn, c.Database); err != nil {
		return err
	}
	scratch, old := sidedb.Name(c.Database, "new"), sidedb.Name(c.Database, "old")
	create := "CREATE DATABASE " + ident(scratch) + " OWNER " + ident(owner) + " TEMPLATE template0 ENCODING " + literal(encoding)
	if collate != "" {
		create += " LC_COLLATE " + literal(collate) + " LC_CTYPE " + literal(ctype)
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("create scratch database %s: %w", scratch, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn.Exec(cctx, "DROP DATABASE IF EXISTS "+ident(scratch)+" WITH (FORCE)") //nolint:errcheck
	}()

	sc := c
	sc.Database = scratch
	// Objects are created by the owner, as in the original database.
	setRole := strings.NewReader("SET ROLE " + ident(owner) + ";\n")
	if err := Load(ctx, sc, io.MultiReader(setRole, dump)); err != nil {
		return err
	}
	if err := check(ctx, sc, verify); err != nil {
		return err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(scratch)+" RENAME TO "+ident(c.Database)); err != nil {
			return fmt.Errorf("rename %s to %s: %w", scratch, c.Database, err)
		}
		return nil
	}
	if err := makeIdle(ctx, conn, c.Database, o.Terminate); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(c.Database)+" RENAME TO "+ident(old)); err != nil {
		return fmt.Errorf("swap %s: %w", c.Database, err)
	}
	// From here finish whatever ctx says: the target is renamed away.
	fctx := context.Background()
	if _, err := conn.Exec(fctx, "ALTER DATABASE "+ident(scratch)+" RENAME TO "+ident(c.Database)); err != nil {
		if _, rerr := conn.Exec(fctx, "ALTER DATABASE "+ident(old)+" RENAME TO "+ident(c.Database)); rerr != nil {
			return fmt.Errorf("swap %s: %w; putting the old database back failed too (%v): it is %s now", c.Database, err, rerr, old)
		}
		return fmt.Errorf("swap %s: %w (the old database is back in place)", c.Database, err)
	}
	if _, err := conn.Exec(fctx, "DROP DATABASE "+ident(old)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("the new database is in place, but dropping the previous one (%s) failed: %w", old, err)
	}
	return nil
}

// makeIdle refuses, or ends, other sessions on db.
func makeIdle(ctx context.Context, conn *pgx.Conn, db string, terminate bool) error {
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !terminate {
		return fmt.Errorf("%w: %d other session(s) are connected to %s, so it was left as it was. Try: stop the application (or its workers) first, or let cairn end those sessions", ErrInUse, n, db)
	}
	_, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db)
	return err
}

// dropLeftovers drops the scratch databases a killed restore of target
// left behind. The caller holds the target's restore lock.
func dropLeftovers(ctx context.Context, conn *pgx.Conn, target string) error {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", sidedb.Like(target, "new"))
	if err != nil {
		return fmt.Errorf("look for scratch databases left beside %s: %w", target, err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("look for scratch databases left beside %s: %w", target, err)
	}
	for _, s := range left {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(s)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop scratch database %s left by an interrupted restore: %w", s, err)
		}
	}
	return nil
}

func check(ctx context.Context, c Config, verify cairn.Verify) error {
	got, err := Stats(ctx, c)
	if err != nil {
		return err
	}
	return verify(got)
}

func ident(s string) string   { return pgx.Identifier{s}.Sanitize() }
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
