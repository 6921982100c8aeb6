package postgres

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-backup/cairn/internal/runtool"
)

// Inspection is what a preflight learns of a database before a snapshot
// or a restore: the server, pg_dump here, and what the user may not do.
type Inspection struct {
	Server      string // server_version
	Tool        string // pg_dump's path ("" if none)
	ToolVersion string // its --version line
	User        string
	// Unreadable are tables the user may not read: a snapshot fails on
	// them.
	Unreadable []string
	// MissingRestore says what a restore onto the database needs that
	// the user lacks: owning the database (or membership of its owner's
	// role), or CREATEDB where it does not exist yet.
	MissingRestore []string
	// InPlace: a restore loads inside the database, in one transaction
	// (no CREATEDB for a scratch database beside it); Why says so.
	InPlace bool
	Why     string
	// Mismatch says how pg_dump and the server may not agree (an older
	// pg_dump refuses a newer server); "" when they do.
	Mismatch string
}

// Inspect connects to the database and looks; it changes nothing.
func Inspect(ctx context.Context, c Config) (Inspection, error) {
	var in Inspection
	conn, err := c.connect(ctx)
	if err != nil {
		return in, err
	}
	defer conn.Close(ctx)
	var createdb, super bool
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_user, rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user").
		Scan(&in.Server, &in.User, &createdb, &super); err != nil {
		return in, fmt.Errorf("inspect %s: %w", c, err)
	}
	var exists, owner bool
	if err := conn.QueryRow(ctx, "SELECT count(*) > 0, coalesce(bool_or(pg_has_role(current_user, datdba, 'MEMBER')), false) FROM pg_database WHERE datname = $1", c.Database).
		Scan(&exists, &owner); err != nil {
		return in, fmt.Errorf("inspect %s: %w", c, err)
	}
	switch {
	case !exists && !createdb && !super:
		in.MissingRestore = append(in.MissingRestore, "CREATEDB")
	case exists && !owner && !super:
		in.MissingRestore = append(in.MissingRestore, "ownership of database "+c.Database+" (ALTER DATABASE "+c.Database+" OWNER TO "+in.User+")")
	case exists && !createdb && !super:
		in.InPlace = true
		in.Why = in.User + " lacks CREATEDB, so it cannot make the scratch database beside it"
	}
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND NOT has_table_privilege(format('%I.%I', schemaname, tablename), 'SELECT')
		ORDER BY 1`)
	if err != nil {
		return in, fmt.Errorf("inspect %s: %w", c, err)
	}
	in.Unreadable, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return in, fmt.Errorf("inspect %s: %w", c, err)
	}
	in.Tool, _ = runtool.Find("", "pg_dump")
	if in.Tool != "" {
		out, _ := exec.CommandContext(ctx, in.Tool, "--version").Output()
		in.ToolVersion = strings.TrimSpace(string(out))
		if t, s := major(in.ToolVersion), major(in.Server); t > 0 && s > 0 && t < s {
			in.Mismatch = fmt.Sprintf("pg_dump %d is older than the server (%d), which it refuses to dump", t, s)
		}
	}
	return in, nil
}

var majorRE = regexp.MustCompile(`(\d+)(?:\.\d+)?`)

// major is the major version in a version string (16 of "16.4 (Debian…)"
// or of "pg_dump (PostgreSQL) 16.4").
func major(v string) int {
	if i := strings.LastIndex(v, ") "); i >= 0 {
		v = v[i+2:]
	}
	m := majorRE.FindStringSubmatch(v)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
