// Package postgres dumps PostgreSQL databases with pg_dump in plain SQL
// format as a stream (rewritable, and it deduplicates well), and reads
// per-table statistics (row counts, an md5 over the ordered rows of tables
// under a size limit) through pgx. Passwords reach pg_dump and psql through
// a password file held in memory only (runtool.Secret) named by
// PGPASSFILE, never argv nor a file on disk.
package postgres

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
)

// Config is one database to back up, from a postgres:// or postgresql://
// DSN: postgres://user:password@host:5432/dbname[?sslmode=…].
type Config struct {
	User     string
	Password cairn.Secret
	Host     string
	Port     int
	Database string
	SSLMode  string // disable, require, verify-full…; "" = prefer
	// Connections is how many pg_dumps read the rows (?connections=): 1
	// dumps in one piece; 2 in parts whatever the size; 0 in parts from
	// 32 MiB (see DumpParts).
	Connections int
}

// ParseDSN reads a postgres:// or postgresql:// DSN.
func ParseDSN(dsn string) (Config, error) {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), err)
	}
	// The password is out of what is parsed: a URL parser's errors quote it.
	u, err := url.Parse(d.Rest)
	if err != nil {
		return Config{}, fmt.Errorf("%w: database DSN %s is not a URL", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return Config{}, fmt.Errorf("%w: %s: not a postgres:// DSN", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	c := Config{Port: 5432, Host: u.Hostname(), Database: strings.Trim(u.Path, "/"), User: d.User, Password: d.Password}
	if c.Database == "" || strings.Contains(c.Database, "/") {
		return Config{}, fmt.Errorf("%w: %s: name one database, e.g. postgres://user@host/app", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil || c.Port <= 0 || c.Port > 65535 {
			return Config{}, fmt.Errorf("%w: %s: bad port %q", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), p)
		}
	}
	for key, vals := range u.Query() {
		switch key {
		case "sslmode":
			c.SSLMode = vals[0]
		case "connections":
			if c.Connections, err = strconv.Atoi(vals[0]); err != nil || c.Connections < 1 || c.Connections > DumpConnections {
				return Config{}, fmt.Errorf("%w: %s: connections=%q: say how many pg_dumps read the rows, 1 or %d", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), vals[0], DumpConnections)
			}
		default:
			return Config{}, fmt.Errorf("%w: %s: unknown option %q (known: sslmode, connections)", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), key)
		}
	}
	return c, nil
}

// String is the DSN without its password.
func (c Config) String() string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	if c.SSLMode != "" {
		u.RawQuery = "sslmode=" + url.QueryEscape(c.SSLMode)
	}
	return u.String()
}
