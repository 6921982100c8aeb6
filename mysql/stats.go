package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"slices"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"
)

// TableStat describes one table at dump time.
type TableStat struct {
	Name     string
	Rows     int64
	Checksum string // CHECKSUM TABLE's value; "" for views and large tables
	View     bool
	large    bool
}

// The driver's own log lines ("[mysql] packets.go: unexpected EOF") say
// nothing its errors do not, and go to stderr unasked: they are dropped.
func init() { driver.SetLogger(log.New(io.Discard, "", 0)) } //nolint:errcheck // it fails only for a nil logger

func (c Config) open() (*sql.DB, error) {
	conn, err := driver.NewConnector(c.driverConfig())
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func (c Config) driverConfig() *driver.Config {
	dc := driver.NewConfig()
	dc.User, dc.Passwd, dc.DBName = c.User, c.Password.Reveal(), c.Database
	if c.Socket != "" {
		dc.Net, dc.Addr = "unix", c.Socket
	} else {
		dc.Net, dc.Addr = "tcp", fmt.Sprintf("%s:%d", c.Host, c.Port)
	}
	dc.Timeout = 10 * time.Second
	dc.Collation = "utf8mb4_general_ci"
	return dc
}

// ChecksumLimit is the largest table (data bytes) that gets a CHECKSUM
// TABLE; larger ones get a row count only. A checksum reads the table a
// second time beside the dump (and again after a restore's load): on the
// 400 MB benchmark database, tables up to 256 MiB checksummed made the
// server's work of a snapshot twice the dump's (2.0 s of CPU against
// 1.0 s) and the snapshot 30% slower; tables of the size most sites'
// tables are keep theirs.
const ChecksumLimit = 64 << 20

// Stats returns every table's row count, and checksum when small, in name
// order.
func Stats(ctx context.Context, c Config) ([]TableStat, error) { return stats(ctx, c, true, nil, 1) }

// Checksums is Stats that leaves views out and large tables uncounted
// (Rows -1): what a snapshot takes beside its dump, which counts every
// table's rows itself, without reading the large tables a second time.
func Checksums(ctx context.Context, c Config) ([]TableStat, error) {
	return stats(ctx, c, false, nil, 1)
}

// stats is Stats (large) or Checksums; with only, of only the tables it
// names, each reported under the name it gives (the scratch tables of an
// in-place load, under the dump's names); tables counted on at most
// conns connections at once (more than one only for a restore's check of
// the copy it loaded: on a site's database, one is load enough).
func stats(ctx context.Context, c Config, large bool, only map[string]string, conns int) ([]TableStat, error) {
	db, err := c.open()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME", c.Database)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w%s", c, err, hint(err.Error()))
	}
	var stats []TableStat
	for rows.Next() {
		var s TableStat
		var typ string
		var size int64
		if err := rows.Scan(&s.Name, &typ, &size); err != nil {
			rows.Close()
			return nil, err
		}
		if typ == "SEQUENCE" {
			continue // MariaDB's: no rows in a dump (a SETVAL), moved with the tables
		}
		s.View = typ == "VIEW"
		if !large && s.View {
			continue
		}
		if only != nil {
			if _, ok := only[s.Name]; !ok {
				continue
			}
		}
		s.large = size > ChecksumLimit
		stats = append(stats, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, conns))
	for i := range stats {
		s := &stats[i]
		if s.large && !large {
			s.Rows = -1 // not counted
			continue
		}
		g.Go(func() error {
			if err := db.QueryRowContext(gctx, "SELECT COUNT(*) FROM "+quoteIdent(s.Name)).Scan(&s.Rows); err != nil {
				return fmt.Errorf("count rows of %s.%s: %w", c.Database, s.Name, err)
			}
			if s.View || s.large {
				return nil
			}
			var name string
			var sum sql.NullInt64
			if err := db.QueryRowContext(gctx, "CHECKSUM TABLE "+quoteIdent(s.Name)).Scan(&name, &sum); err != nil {
				return fmt.Errorf("checksum %s.%s: %w", c.Database, s.Name, err)
			}
			if sum.Valid {
				s.Checksum = strconv.FormatInt(sum.Int64, 10)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if only != nil {
		for i := range stats {
			stats[i].Name = only[stats[i].Name]
		}
		slices.SortFunc(stats, func(a, b TableStat) int { return strings.Compare(a.Name, b.Name) })
	}
	return stats, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
