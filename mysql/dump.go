package mysql

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/runtool"
)

// mysqlClients is the advice when the client tools are missing.
const mysqlClients = "apt-get install mariadb-client (or default-mysql-client)"

// defaultsFile holds the client settings, password included, for the
// tool's --defaults-extra-file in memory only (see runtool.Secret): give
// it to the tool as cmd.ExtraFiles[0], name it runtool.SecretPath, and
// close it after the run. No file with the password is ever on a disk.
func defaultsFile(c Config) (*os.File, error) {
	var b bytes.Buffer
	b.WriteString("[client]\n")
	writeOpt(&b, "user", c.User)
	writeOpt(&b, "password", c.Password.Reveal())
	if c.Socket != "" {
		writeOpt(&b, "socket", c.Socket)
	} else {
		writeOpt(&b, "host", c.Host)
		writeOpt(&b, "port", strconv.Itoa(c.Port))
		writeOpt(&b, "protocol", "tcp")
	}
	return runtool.Secret(b.Bytes())
}

// writeOpt writes key="value" with the option-file escapes.
func writeOpt(b *bytes.Buffer, key, val string) {
	if val == "" {
		return
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	fmt.Fprintf(b, "%s=\"%s\"\n", key, r.Replace(val))
}

// toolArgs are the tool's arguments. The defaults file must come first.
// One database named without --databases: the dump holds no CREATE
// DATABASE or USE, so it loads into any database name. Its routines and
// events come with routines (a part of a parallel dump that is not the
// last has none).
//
// When binary is true the data is dumped with the binary character set
// (see binarySafe), else in utf8mb4 with binary columns in hex.
func toolArgs(defaults string, c Config, binary bool, tables []string, routines bool) []string {
	args := []string{
		"--defaults-extra-file=" + defaults,
		"--single-transaction", "--quick", // consistent InnoDB view, row by row
		"--triggers",
		"--skip-dump-date",   // identical data gives identical bytes: dedup
		"--no-tablespaces",   // needs no PROCESS privilege: a read-only user suffices
		"--skip-lock-tables", // --single-transaction already gives consistency
		"--max-allowed-packet=1G",
	}
	if routines {
		args = append(args, "--routines", "--events")
	} else {
		args = append(args, "--skip-routines", "--skip-events")
	}
	if binary {
		args = append(args, "--default-character-set=binary")
	} else {
		args = append(args, "--hex-blob", "--default-character-set=utf8mb4")
	}
	// "--": the names that follow are names, a table called --where=0
	// included (the tool reads options anywhere on its command line).
	return append(append(args, "--", c.Database), tables...)
}

// binarySafe tells whether every column of the database loads back the
// same from a dump in the binary character set: each value's bytes as the
// server stores them, escaped as strings (binary columns too: --hex-blob
// would turn every text column into hex). That is exact for any character
// set (latin1 tables holding UTF-8 included, which a utf8mb4 dump converts
// twice), and it spares the tool its character-aware escaping, which took
// 60% of its CPU (3.8 s against 1.4 s of user time for a 500 MB dump).
// Table definitions are unaffected: the tool wraps each CREATE in its own
// character set. But a binary string is the raw form of MariaDB's UUID and
// INET types, and MySQL's JSON refuses one, so a database with a column of
// a type not listed here is dumped in utf8mb4. The rewrite skips binary
// columns by their type, as it skips their hex.
func binarySafe(ctx context.Context, c Config) bool {
	db, err := c.open()
	if err != nil {
		return false
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT LOWER(DATA_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		return false // the dump tool says what is wrong
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		if rows.Scan(&t) != nil || !binaryLoads[t] {
			return false
		}
	}
	return rows.Err() == nil
}

// binaryLoads are the column types whose values load back the same from a
// binary string as from text.
var binaryLoads = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`tinyint smallint mediumint int bigint decimal float double bit
		char varchar tinytext text mediumtext longtext binary varbinary tinyblob blob mediumblob longblob
		date time datetime timestamp year enum set
		geometry point linestring polygon multipoint multilinestring multipolygon geometrycollection`) {
		binaryLoads[t] = true
	}
}

// Dump streams the database's SQL dump to w, its INSERT statements
// re-cut by content (see cutter). The dump is complete only if Dump returns
// nil; a tool that fails or dies half-way is an error (its
// last lines of stderr included), never a short dump taken as whole.
func Dump(ctx context.Context, c Config, w io.Writer) error { return DumpTables(ctx, c, w, nil) }

// DumpTables is Dump of some of the database's tables (all when tables
// is empty), with its routines and events.
func DumpTables(ctx context.Context, c Config, w io.Writer, tables []string) error {
	return dumpTool(ctx, c, w, tables, true, binarySafe(ctx, c))
}

// dumpTool runs the dump tool on tables (all when empty), its output cut
// into w.
func dumpTool(ctx context.Context, c Config, w io.Writer, tables []string, routines, binary bool) error {
	tool, err := runtool.Find(mysqlClients, "mariadb-dump", "mysqldump")
	if err != nil {
		return err
	}
	defaults, err := defaultsFile(c)
	if err != nil {
		return fmt.Errorf("dump %s: %w", c, err)
	}
	defer defaults.Close()
	cmd := exec.CommandContext(ctx, tool, toolArgs(runtool.SecretPath, c, binary, tables, routines)...)
	cmd.ExtraFiles = []*os.File{defaults}
	// Statements end where the rows say, not where the tool's buffer
	// fills: an edited row changes the dump around it only (see cutter).
	cut := newCutter(w)
	cmd.Stdout = cut
	if err := runtool.Run(ctx, cmd); err != nil {
		if strings.Contains(err.Error(), "Unknown database") {
			err = fmt.Errorf("%w: %w", cairn.ErrNotFound, err)
		}
		return fmt.Errorf("dump %s with %s: %w%s", c, filepath.Base(tool), err, hint(err.Error()))
	}
	if err := cut.Close(); err != nil {
		return fmt.Errorf("dump %s: %w", c, err)
	}
	return nil
}

// hint turns the dump tool's common complaints into advice.
func hint(stderr string) string {
	switch {
	case strings.Contains(stderr, "you need (at least one of)"):
		return ". Try: grant the privilege named above to this user, or restore as the database server's administrative user"
	case strings.Contains(stderr, "Access denied") && strings.Contains(stderr, "to database"):
		return ". Try: check the database name in the DSN, and that the user has SELECT, SHOW VIEW, TRIGGER and EVENT on it"
	case strings.Contains(stderr, "Access denied"):
		return ". Try: check the user and password in the DSN; a backup user needs SELECT, SHOW VIEW, TRIGGER and EVENT on the database"
	case strings.Contains(stderr, "Unknown database"):
		return ". Try: check the database name in the DSN"
	case strings.Contains(stderr, "Can't connect"), strings.Contains(stderr, "Unknown MySQL server host"):
		return ". Try: check the host and port, and that the server is running"
	}
	return ""
}
