// Package mysql dumps MySQL and MariaDB databases with the engine's own
// tool (mariadb-dump or mysqldump) as a stream, and reads per-table
// statistics (row counts, CHECKSUM TABLE) through the official Go driver.
// Passwords reach the tools through a defaults file held in memory only
// (runtool.Secret), never argv nor a file on disk.
package mysql

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn"
)

// Config is one database to back up, from a mysql:// or mariadb:// DSN:
//
//	mysql://user:password@host:3306/dbname
//	mysql://user@/dbname?socket=/run/mysqld/mysqld.sock
//	mysql://user@host/dbname?connections=4
type Config struct {
	User     string
	Password cairn.Secret
	Host     string // empty with Socket
	Port     int
	Socket   string
	Database string
	// Connections is how many connections a dump reads and a load writes
	// on (?connections=); 0 is DumpConnections and LoadConnections.
	Connections int
}

// maxConnections bounds ?connections=.
const maxConnections = 16

// DumpConnections is how many connections a dump of c reads on.
func (c Config) DumpConnections() int {
	if c.Connections > 0 {
		return c.Connections
	}
	return DumpConnections
}

// loadConnections is how many connections a load into c sends rows on.
func (c Config) loadConnections() int {
	if c.Connections > 0 {
		return c.Connections
	}
	return LoadConnections
}

// ParseDSN reads a mysql:// or mariadb:// DSN.
func ParseDSN(dsn string) (Config, error) {
	d, err := cairn.SplitDSN(dsn)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), err)
	}
	// The password is out of what is parsed: a URL parser's errors quote it.
	u, err := url.Parse(d.Rest)
	if err != nil {
		return Config{}, fmt.Errorf("%w: database DSN %s: %v", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), redactErr(err, d.Rest))
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return Config{}, fmt.Errorf("%w: %s: not a mysql:// or mariadb:// DSN", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	c := Config{Port: 3306, Database: strings.Trim(u.Path, "/"), User: d.User, Password: d.Password}
	if c.Database == "" || strings.Contains(c.Database, "/") {
		return Config{}, fmt.Errorf("%w: %s: name one database, e.g. mysql://user@host/wordpress", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn))
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil || c.Port <= 0 || c.Port > 65535 {
			return Config{}, fmt.Errorf("%w: %s: bad port %q", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), p)
		}
	}
	for key, vals := range u.Query() {
		switch key {
		case "socket":
			c.Socket = vals[0]
		case "connections":
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 1 || n > maxConnections {
				return Config{}, fmt.Errorf("%w: %s: connections=%q: say how many connections a dump and a load use, 1 to %d", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), vals[0], maxConnections)
			}
			c.Connections = n
		default:
			return Config{}, fmt.Errorf("%w: %s: unknown option %q (known: socket, connections)", cairn.ErrInvalidArgument, cairn.RedactDSN(dsn), key)
		}
	}
	if c.Host == "" && c.Socket == "" {
		c.Host = "127.0.0.1"
	}
	return c, nil
}

// String is the DSN without its password.
func (c Config) String() string {
	u := url.URL{Scheme: "mysql", Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	if c.Socket != "" {
		u.RawQuery = "socket=" + url.QueryEscape(c.Socket)
	} else {
		u.Host = net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	}
	return u.String()
}

func redactErr(err error, dsn string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(strings.ReplaceAll(ue.Err.Error(), dsn, cairn.RedactDSN(dsn)))
	}
	return err
}
