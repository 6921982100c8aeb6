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

// settle waits until the second in which a table of schema last changed
// is over, when ctx carries a cairn.LoadTrace (a clone, which notes the
// tables' times: a restore does not wait). A load calls it before
// swapping its tables in: RENAME TABLE keeps their UPDATE_TIME, so that a
// change the site makes after the swap moves it past what the load left.
// A failure to tell costs nothing but the wait.
func settle(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string) error {
	if cairn.LoadTraceFrom(ctx) == nil {
		return nil
	}
	_, left, err := tableTimes(ctx, q, schema, true)
	if err != nil || left == 0 {
		return nil //nolint:nilerr // as said above
	}
	select {
	case <-time.After(left):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
