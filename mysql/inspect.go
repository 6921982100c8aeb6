package mysql

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/cairn-backup/cairn/internal/sidedb"
)

// Inspection is what a preflight learns of a database before a snapshot
// or a restore: the server, the dump tool here, what the user may not do,
// and what a restore cannot keep.
type Inspection struct {
	Server      string // VERSION()
	Tool        string // the dump tool's path ("" if none)
	ToolVersion string // its --version line
	User        string // CURRENT_USER()
	// MissingSnapshot and MissingRestore are the privileges the user
	// lacks for a snapshot of the database and for a restore onto it
	// (which creates and drops a scratch database beside it).
	MissingSnapshot, MissingRestore []string
	// Definers are the views, triggers, routines and events another
	// user defined ("view v_posts, DEFINER root@localhost"): a restore
	// makes them the restoring user's (keeping a DEFINER needs SUPER).
	Definers []string
	// Mismatch says how the dump tool and the server may not agree
	// (another flavour, an older version); "" when they do.
	Mismatch string
	// InPlace: a restore loads into scratch tables inside the database,
	// because the user may not create the scratch database beside it
	// (Why says what it lacks).
	InPlace bool
	Why     string
	// Serial: a snapshot dumps on one connection, for the user may not
	// stop commits for a parallel dump's moment (no RELOAD).
	Serial bool
}

var (
	snapshotPrivileges = []string{"SELECT", "SHOW VIEW", "TRIGGER", "EVENT"}
	restorePrivileges  = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "CREATE VIEW", "TRIGGER", "EVENT", "CREATE ROUTINE", "ALTER ROUTINE", "REFERENCES"}
)

// Inspect connects to the database and looks; it changes nothing.
func Inspect(ctx context.Context, c Config) (Inspection, error) {
	var in Inspection
	db, err := c.open()
	if err != nil {
		return in, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), CURRENT_USER()").Scan(&in.Server, &in.User); err != nil {
		return in, fmt.Errorf("connect to %s: %w%s", c, err, hint(err.Error()))
	}
	user, host, _ := strings.Cut(in.User, "@")
	grantee := "'" + user + "'@'" + host + "'"
	have := func(schema string) (map[string]bool, error) {
		rows, err := db.QueryContext(ctx, "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? "+
			"UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA", grantee, grantee, schema)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				return nil, err
			}
			out[p] = true
		}
		return out, rows.Err()
	}
	target, err := have(c.Database)
	if err != nil {
		return in, fmt.Errorf("read the privileges of %s: %w", in.User, err)
	}
	scratch, err := have(sidedb.Name(c.Database, "new"))
	if err != nil {
		return in, fmt.Errorf("read the privileges of %s: %w", in.User, err)
	}
	in.MissingSnapshot = missing(snapshotPrivileges, target)
	in.Serial = len(missing([]string{"RELOAD"}, target)) > 0
	in.MissingRestore = missing(restorePrivileges, target)
	if lack := missing([]string{"CREATE", "DROP"}, scratch); len(lack) > 0 {
		in.InPlace = true
		in.Why = fmt.Sprintf("%s lacks %s on %s, so it cannot make the scratch database beside it", in.User, strings.Join(lack, ", "), sidedb.Like(c.Database, "new"))
	} else {
		for _, p := range missing(restorePrivileges, scratch) {
			if !slices.Contains(in.MissingRestore, p) {
				in.MissingRestore = append(in.MissingRestore, p+" (on "+sidedb.Like(c.Database, "new")+")")
			}
		}
	}
	rows, err := db.QueryContext(ctx, "SELECT 'view', TABLE_NAME, DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? "+
		"UNION ALL SELECT 'trigger', TRIGGER_NAME, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? "+
		"UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? "+
		"UNION ALL SELECT 'event', EVENT_NAME, DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", c.Database, c.Database, c.Database, c.Database)
	if err != nil {
		return in, fmt.Errorf("list the views, triggers, routines and events of %s: %w", c, err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name, definer string
		if err := rows.Scan(&kind, &name, &definer); err != nil {
			return in, err
		}
		if definer != in.User {
			in.Definers = append(in.Definers, fmt.Sprintf("%s %s, DEFINER %s", kind, name, definer))
		}
	}
	if err := rows.Err(); err != nil {
		return in, err
	}
	in.Tool, _ = runtool.Find(mysqlClients, "mariadb-dump", "mysqldump")
	if in.Tool != "" {
		out, _ := exec.CommandContext(ctx, in.Tool, "--version").Output()
		in.ToolVersion = strings.TrimSpace(string(out))
		in.Mismatch = mismatch(in.ToolVersion, in.Server)
	}
	return in, nil
}

func missing(want []string, have map[string]bool) []string {
	if have["ALL PRIVILEGES"] {
		return nil
	}
	var out []string
	for _, p := range want {
		if !have[p] {
			out = append(out, p)
		}
	}
	return out
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)\.(\d+)`)

// mismatch compares a dump tool's --version line with the server's
// VERSION(): MariaDB's tool on MySQL's server (or the reverse), or a tool
// older than the server, may not dump everything the server holds.
func mismatch(tool, server string) string {
	toolMaria, serverMaria := strings.Contains(tool, "MariaDB"), strings.Contains(server, "MariaDB")
	if toolMaria != serverMaria {
		return fmt.Sprintf("the dump tool is %s's and the server %s's", flavour(toolMaria), flavour(serverMaria))
	}
	// MariaDB's tools print the client library's version first: the
	// server version they come from follows "from" (Distrib for old ones).
	t := tool
	for _, mark := range []string{"from ", "Distrib "} {
		if i := strings.Index(tool, mark); i >= 0 {
			t = tool[i:]
			break
		}
	}
	tv, sv := versionRE.FindStringSubmatch(t), versionRE.FindStringSubmatch(server)
	if tv == nil || sv == nil {
		return ""
	}
	if older(tv[1:3], sv[1:3]) {
		return fmt.Sprintf("the dump tool (%s.%s) is older than the server (%s.%s)", tv[1], tv[2], sv[1], sv[2])
	}
	return ""
}

func flavour(maria bool) string {
	if maria {
		return "MariaDB"
	}
	return "MySQL"
}

// older compares major.minor pairs of decimal strings.
func older(a, b []string) bool {
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return len(a[i]) < len(b[i])
		}
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
