package postgres

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/runtool"
)

// passFile holds a .pgpass-format line for PGPASSFILE in memory only
// (see runtool.Secret): give it to the tool as cmd.ExtraFiles[0] and close
// it after the run. No file with the password is ever on a disk.
func passFile(c Config) (*os.File, error) {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	line := strings.Join([]string{esc.Replace(c.Host), strconv.Itoa(c.Port), esc.Replace(c.Database), esc.Replace(c.User), esc.Replace(c.Password.Reveal())}, ":") + "\n"
	return runtool.Secret([]byte(line))
}

// toolEnv is the environment for libpq tools: the connection comes from
// PG* variables and the password from the pass file (the tool's first
// extra file, see passFile), so argv holds none.
func toolEnv(c Config) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGHOST="+c.Host, "PGPORT="+strconv.Itoa(c.Port), "PGDATABASE="+c.Database,
		"PGPASSFILE="+runtool.SecretPath, "PGCONNECT_TIMEOUT=10", "PGAPPNAME=cairn")
	if c.User != "" {
		env = append(env, "PGUSER="+c.User)
	}
	if c.SSLMode != "" {
		env = append(env, "PGSSLMODE="+c.SSLMode)
	}
	return env
}

// Dump streams the database as plain SQL to w. pg_dump reads one
// consistent snapshot; the dump names no database and no owners or
// grants, so it loads into another database owned by another role. The
// dump is complete only if Dump returns nil.
func Dump(ctx context.Context, c Config, w io.Writer) error {
	tool, err := runtool.Find("apt-get install postgresql-client (a version at least the server's)", "pg_dump")
	if err != nil {
		return err
	}
	pass, err := passFile(c)
	if err != nil {
		return fmt.Errorf("dump %s: %w", c, err)
	}
	defer pass.Close()
	cmd := exec.CommandContext(ctx, tool, "--format=plain", "--no-owner", "--no-privileges",
		"--encoding=UTF8", "--no-password")
	cmd.Env, cmd.Stdout, cmd.ExtraFiles = toolEnv(c), w, []*os.File{pass}
	if err := runtool.Run(ctx, cmd); err != nil {
		if strings.Contains(err.Error(), "database \""+c.Database+"\" does not exist") {
			err = fmt.Errorf("%w: %w", cairn.ErrNotFound, err)
		}
		return fmt.Errorf("dump %s with pg_dump: %w%s", c, err, hint(err.Error()))
	}
	return nil
}

func hint(msg string) string {
	switch {
	case strings.Contains(msg, "password authentication failed"), strings.Contains(msg, "no password supplied"):
		return ". Try: check the user and password in the DSN"
	case strings.Contains(msg, "does not exist") && strings.Contains(msg, "database"):
		return ". Try: check the database name in the DSN"
	case strings.Contains(msg, "server version mismatch"):
		return ". Try: install a pg_dump at least as new as the server (postgresql-client-NN)"
	case strings.Contains(msg, "Connection refused"), strings.Contains(msg, "could not connect"), strings.Contains(msg, "could not translate host name"):
		return ". Try: check the host and port, and that the server is running"
	case strings.Contains(msg, "permission denied"):
		return ". Try: GRANT pg_read_all_data TO the backup user (PostgreSQL 14+), or GRANT SELECT ON ALL TABLES and ON ALL SEQUENCES in each schema (and USAGE on the schemas)"
	}
	return ""
}
