package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cairn-backup/cairn"
)

// coarseClock is how far behind the server's NOW() the clock InnoDB
// stamps UPDATE_TIME with may lag (time(), the kernel's coarse clock,
// moves once a tick): a change made this soon after a second began may
// still be stamped with the second before.
const coarseClock = 50 * time.Millisecond

// UpdateTimes returns when each base table of the database c names last
// changed (InnoDB's UPDATE_TIME, to the second), as the server can vouch
// for it: "" where it cannot (the server restarted since, or the table
// changed in the current second, which a later change could share: then
// the second is waited out once, and the table asked about again).
//
// With note, to note a state just written, a table changed in the current
// second gets that second at once, and quiet is what remains of it: a
// change the caller makes itself before quiet has passed would not move
// UPDATE_TIME, so one that must show waits that long first. Changes by
// others within that second cannot be told apart, waiting or not.
func UpdateTimes(ctx context.Context, c Config, note bool) (times map[string]string, quiet time.Duration, err error) {
	db, err := c.open()
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	for try := 0; ; try++ {
		times, quiet, err = tableTimes(ctx, db, c.Database, note)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w%s", c, err, hint(err.Error()))
		}
		if note || quiet == 0 || try == 1 {
			return times, quiet, nil
		}
		select {
		case <-time.After(quiet):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// settledTimes waits until the second in which a table of schema last
// changed is over, then reads the tables' UPDATE_TIMEs (see tableTimes):
// a change made after it moves a table's time past the one read.
func settledTimes(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string) (map[string]string, error) {
	times, left, err := tableTimes(ctx, q, schema, true)
	if err != nil || left == 0 {
		return times, err
	}
	select {
	case <-time.After(left):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	times, _, err = tableTimes(ctx, q, schema, true)
	return times, err
}

// traceSwap, for a load whose context carries a cairn.LoadTrace (a
// clone, which notes the tables' times; a restore does not wait), waits
// out the second of the load's last change and tells the trace the
// tables' times, each under name(table) (the name it is swapped in under;
// "" leaves it out). A load calls it just before its swap: RENAME TABLE
// keeps UPDATE_TIME, so that a change the site makes after the swap moves
// it past what the load left. A failure to read the times tells the
// trace nothing.
func traceSwap(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string, name func(table string) string) error {
	if cairn.LoadTraceFrom(ctx) == nil {
		return nil
	}
	all, err := settledTimes(ctx, q, schema)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	cairn.TraceSwapping(ctx, func() (map[string]string, error) {
		times := map[string]string{}
		for t, at := range all {
			if n := name(t); n != "" {
				times[n] = at
			}
		}
		return times, err
	})
	return nil
}

// traceReplaced, for a load whose context carries a cairn.LoadTrace,
// tells the trace the times of the target's previous tables, renamed
// aside (old name → aside name) or moved to the holding database hold
// under their own names: RENAME TABLE keeps UPDATE_TIME, so they
// hold every change the site made to them up to the swap.
func traceReplaced(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string, aside map[string]string, hold string, moved map[string]bool) {
	if cairn.LoadTraceFrom(ctx) == nil || len(aside)+len(moved) == 0 {
		return
	}
	cairn.TraceReplaced(ctx, func() (map[string]string, error) {
		all, _, err := tableTimes(ctx, q, schema, true)
		times := map[string]string{}
		for old, tmp := range aside {
			if at, ok := all[tmp]; ok {
				times[old] = at
			}
		}
		if len(moved) > 0 && err == nil {
			held, _, herr := tableTimes(ctx, q, hold, true)
			for t := range moved {
				if at, ok := held[t]; ok {
					times[t] = at
				}
			}
			err = herr
		}
		return times, err
	})
}
