package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/runtool"
	"github.com/jackc/pgx/v5"
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
// grants, so it loads into another database owned by another role. Ahead
// of pg_dump's output it writes, as comments, each table's primary key
// (see keyHeader). The dump is complete only if Dump returns nil.
func Dump(ctx context.Context, c Config, w io.Writer) error {
	keys, err := primaryKeys(ctx, c)
	if err != nil {
		return fmt.Errorf("dump %s: %w", c, err)
	}
	return pgDump(ctx, c, &prefixed{w: w, prefix: keys})
}

// prefixed writes prefix to w ahead of the first write.
type prefixed struct {
	w      io.Writer
	prefix []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	if p.prefix != nil {
		if _, err := p.w.Write(p.prefix); err != nil {
			return 0, err
		}
		p.prefix = nil
	}
	return p.w.Write(b)
}

// pgDump runs pg_dump on c with args, its output to w.
func pgDump(ctx context.Context, c Config, w io.Writer, args ...string) error {
	tool, err := runtool.Find("apt-get install postgresql-client (a version at least the server's)", "pg_dump")
	if err != nil {
		return err
	}
	pass, err := passFile(c)
	if err != nil {
		return fmt.Errorf("dump %s: %w", c, err)
	}
	defer pass.Close()
	cmd := exec.CommandContext(ctx, tool, append([]string{"--format=plain", "--no-owner", "--no-privileges",
		"--encoding=UTF8", "--no-password"}, args...)...)
	cmd.Env, cmd.Stdout, cmd.ExtraFiles = toolEnv(c), w, []*os.File{pass}
	if err := runtool.Run(ctx, cmd); err != nil {
		if strings.Contains(err.Error(), "database \""+c.Database+"\" does not exist") {
			err = fmt.Errorf("%w: %w", cairn.ErrNotFound, err)
		}
		return fmt.Errorf("dump %s with pg_dump: %w%s", c, err, hint(err.Error()))
	}
	return nil
}

// primaryKeys returns the keyHeader lines of c's tables, but for a table
// whose name or key's column names hold a newline, which has no key in a
// delta (a comment line cannot hold it).
func primaryKeys(ctx context.Context, c Config) ([]byte, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "database \""+c.Database+"\" does not exist") {
			err = fmt.Errorf("%w: %w", cairn.ErrNotFound, err)
		}
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname), string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE i.indisprimary AND k.ord <= i.indnkeyatts AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		GROUP BY 1 HAVING strpos(format('%I.%I', n.nspname, c.relname) || string_agg(a.attname, ''), E'\n') = 0 ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	var table, cols string
	_, err = pgx.ForEachRow(rows, []any{&table, &cols}, func() error {
		fmt.Fprintf(&b, "%s%s (%s)\n", keyHeader, table, cols)
		return nil
	})
	return b.Bytes(), err
}

func hint(msg string) string {
	switch {
	case strings.Contains(msg, "password authentication failed"), strings.Contains(msg, "no password supplied"):
		return ". Try: check the user and password in the DSN"
	case strings.Contains(msg, "does not exist") && strings.Contains(msg, "database"):
		return ". Try: check the database name in the DSN"
	case strings.Contains(msg, "server version mismatch"):
		return ". Try: install a pg_dump at least as new as the server (postgresql-client-NN)"
	case strings.Contains(msg, "Connection refused"), strings.Contains(msg, "connection refused"), strings.Contains(msg, "could not connect"), strings.Contains(msg, "could not translate host name"):
		return ". Try: check the host and port, and that the server is running"
	case strings.Contains(msg, "permission denied"):
		return ". Try: GRANT pg_read_all_data TO the backup user (PostgreSQL 14+), or GRANT SELECT ON ALL TABLES and ON ALL SEQUENCES in each schema (and USAGE on the schemas)"
	}
	return ""
}
