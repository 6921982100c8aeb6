package cairn

import (
	"context"
	"errors"
	"io"
	"time"
)

// Incremental is implemented by databases that can be brought from the
// content of one of their dumps to another's by the rows that differ,
// in place (MySQL and MariaDB, PostgreSQL): a clone onto a target that still holds
// what the last clone loaded then loads only what changed. The values it
// hands out (RowIndex, Changes) are its own: only the same engine reads
// them back.
type Incremental interface {
	Database
	// UpdateTimes tells when each table last changed, as the server
	// keeps it (MySQL's UPDATE_TIME), or what it holds (PostgreSQL's rows
	// per xmin): two equal values mean the table did not change between
	// the two reads. quiet is how long a change made now may take to show
	// (note: make the current second's changes show).
	UpdateTimes(ctx context.Context, note bool) (times map[string]string, quiet time.Duration, err error)
	// Schema fingerprints all the database's dump holds besides rows.
	Schema(ctx context.Context) (string, error)
	// DumpTables is Dump of the tables named only.
	DumpTables(ctx context.Context, w io.Writer, tables []string) ([]TableStat, error)
	// IndexDump reads a dump of this engine into an index of its rows,
	// which Diff can use in place of reading that dump again.
	IndexDump(ctx context.Context, dump io.Reader) (RowIndex, error)
	// ReadRowIndex reads back what a RowIndex's WriteTo wrote.
	ReadRowIndex(r io.Reader) (RowIndex, error)
	// Diff returns what changed from the earlier dump (its index, if not
	// nil, else what openOld reads) to the newer one that streams in;
	// the tables in whole are taken whole from newer. It fails with
	// ErrNoDelta when no delta can be made (the schema changed, more than
	// limit bytes of rows changed, …): load the newer dump whole.
	Diff(ctx context.Context, openOld func() (io.ReadCloser, error), index RowIndex, newer io.Reader, whole map[string]bool, limit int64) (Changes, error)
	// ApplyDelta writes the changes in one transaction, checked against
	// want's row counts (before: counts known before, not to be counted
	// again); a table named in guard that changed since its time fails
	// it with ErrNoDelta, changing nothing. after is every table's time
	// as of the commit, where the engine knows it without reading the
	// tables again (else nil: read them with UpdateTimes).
	ApplyDelta(ctx context.Context, c Changes, want, before map[string]int64, guard map[string]string) (after map[string]string, err error)
}

// RowIndex is an engine's index of the rows of one dump.
type RowIndex interface{ io.WriterTo }

// Changes are the rows that differ between two dumps of one database.
type Changes interface {
	// Rows counts the rows removed and added.
	Rows() (removed, added int)
	// Tables lists the tables that changed.
	Tables() []string
	// Index is the newer dump's row index, for the next Diff.
	Index() RowIndex
	// WriteSQL writes the changes as statements that, run after the
	// earlier dump, give what the newer one holds.
	WriteSQL(w io.Writer) error
	// Rewrite passes the changed rows through filter, which reads them
	// as a dump of the engine and writes them rewritten (a URL rewrite),
	// and returns what filter counted.
	Rewrite(filter func(in io.Reader, out io.Writer) (int64, error)) (int64, error)
}

// DeltaRows is the most rows a database's dumps may hold for a delta
// (and for the row index a clone keeps): a delta holds some 60 bytes of
// each row in memory (its hash and primary key, of both dumps), so more
// would take cairn past its memory bound. A larger database is loaded
// whole at each clone. (A variable for tests.)
var DeltaRows = 2_500_000

// ErrNoDelta means two dumps cannot be told apart row by row: load the
// newer whole.
var ErrNoDelta = errors.New("no row-by-row delta")

// LoadTrace hooks into a whole load of a database, as net/http/httptrace
// hooks into a request: a caller that wants to know puts one in the
// load's context (WithLoadTrace), and the engines that can tell call it.
type LoadTrace struct {
	// Swapping is called once the load is checked, just before its tables
	// are swapped in, with each table's time (as UpdateTimes gives them)
	// as the load left it: what the site does from the swap on changes
	// them, and nothing before it can.
	Swapping func(times map[string]string)
	// Replaced is called once the load is swapped in, with each of the
	// target's previous tables' times (as UpdateTimes gives them) as they
	// were swapped out: what the site wrote to them up to the swap shows
	// there, and nothing after it can.
	Replaced func(times map[string]string)
}

type loadTraceKey struct{}

// WithLoadTrace returns ctx carrying t.
func WithLoadTrace(ctx context.Context, t *LoadTrace) context.Context {
	return context.WithValue(ctx, loadTraceKey{}, t)
}

// LoadTraceFrom returns the trace ctx carries, or nil.
func LoadTraceFrom(ctx context.Context) *LoadTrace {
	t, _ := ctx.Value(loadTraceKey{}).(*LoadTrace)
	return t
}

// TraceSwapping tells ctx's trace, if any, the times as a load left its
// tables, which times reads (called only when there is a trace to tell;
// a failure tells nothing).
func TraceSwapping(ctx context.Context, times func() (map[string]string, error)) {
	t := LoadTraceFrom(ctx)
	if t == nil || t.Swapping == nil {
		return
	}
	if m, err := times(); err == nil {
		t.Swapping(m)
	}
}

// TraceReplaced tells ctx's trace, if any, the times of the tables a load
// swapped out, which times reads (called only when there is a trace to
// tell; a failure tells nothing).
func TraceReplaced(ctx context.Context, times func() (map[string]string, error)) {
	t := LoadTraceFrom(ctx)
	if t == nil || t.Replaced == nil {
		return
	}
	if m, err := times(); err == nil {
		t.Replaced(m)
	}
}
