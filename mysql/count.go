package mysql

import (
	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/internal/sqldump"
)

// RowCounter counts the rows of each table in a mysqldump stream as it is
// written through it (tee the dump into it). Counts taken this way come
// from the dump's own consistent view, whatever the server did meanwhile.
// It reads the dump with the one dump tokenizer (sqldump.Counter): rows
// on one line or one a line (MariaDB 10.11+), minding quoted strings and
// backslash escapes; other lines are skipped. It never fails.
type RowCounter struct{ c *sqldump.Counter }

// NewRowCounter returns an empty counter.
func NewRowCounter() *RowCounter { return &RowCounter{sqldump.NewCounter()} }

// Write counts rows in p; it never fails.
func (r *RowCounter) Write(p []byte) (int, error) { return r.c.Write(p) }

// Counts returns the rows seen per table, in table name order.
func (r *RowCounter) Counts() []cairn.TableStat { return cairn.TableCounts(r.c.Counts()) }

// insertPrefix starts every INSERT of a dump (the loader's; the
// tokenizer has its own).
var insertPrefix = []byte("INSERT INTO `")
