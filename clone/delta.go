package clone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
	"github.com/cairn-backup/cairn/rewrite"
)

// A clone onto a MySQL, MariaDB or PostgreSQL database that the last clone loaded
// loads only what changed: the new dump is compared row by row with the
// dump of the snapshot that clone loaded, and the rows that differ go in
// (rewritten) in one transaction, instead of the whole database through a
// scratch database. Which tables still hold what the last clone left is
// proved by InnoDB's UPDATE_TIME of each (PostgreSQL: its rows per xmin,
// see postgres/delta.go), recorded after the last clone
// (its after_restore actions and URL check included) and unchanged since;
// the tables changed since (by a person, a page view, a plugin) are
// emptied and loaded whole in the same transaction. A server restart (it
// forgets those times), a schema change, triggers, a changed table without
// a primary key, sql: or run: actions (which may not be repeatable), or
// more than deltaLimit of rows to load each mean the whole dump is loaded
// as the first time.

// deltaLimit bounds the changed rows a delta holds in memory.
const deltaLimit = 64 << 20

// writeRecord notes what a clone left in a target database; a failure
// only costs the next clone its delta. untouched says the clone wrote
// nothing to it since the load (no after_restore action, no page view):
// the times the load's commit gave, if any, are then what it left, and a
// write of the site's that came in meanwhile is not taken for the clone's.
func (c *Cloner) writeRecord(ctx context.Context, to cairn.Database, snap *cairn.Snapshot, name string, pairs []rewrite.Pair, loaded loadedState, untouched bool) {
	os.Remove(c.Records.path(to)) // in cairn's state directory (see Records)
	dt, ok := to.(cairn.Incremental)
	if !ok {
		return
	}
	times, err := loaded.committed, error(nil)
	if !untouched || times == nil {
		// No change of the clone's own follows: the current second
		// needs no waiting for (see cairn.Incremental).
		times, _, err = dt.UpdateTimes(ctx, true)
	}
	if err != nil {
		c.log().Info("noting what the clone left failed; the next clone loads the whole database", "target", to.String(), "err", err)
		return
	}
	c.Records.write(to, record{Target: to.String(), Snapshot: snap.ID, Database: name, Pairs: pairs, Updated: times, Time: c.now(),
		Loaded: loaded.id, LoadedTimes: loaded.times, Schema: loaded.schema}, loaded.index)
}

// deltaPlan is how a target database can be brought up to date row by
// row from the snapshot it still holds, rewritten.
type deltaPlan struct {
	base   *cairn.Snapshot
	dirty  map[string]bool   // tables changed since on the target's side: loaded whole
	guard  map[string]string // the UPDATE_TIMEs that prove the others unchanged
	state  string            // the state the last clone kept (see state.go), "" if none
	exact  map[string]bool   // the tables that state holds as the target does
	index  cairn.RowIndex    // base's dump's rows, if kept: then that dump is not read
	schema string            // the target's schema's fingerprint, which a delta keeps
}

// deltaBase returns how the next load can be a delta, if it can, given
// the target's view.
func (c *Cloner) deltaBase(ctx context.Context, p restore.Load, pairs []rewrite.Pair, after []cairn.Action, view targetView) (*deltaPlan, bool) {
	if _, isDelta := p.To.(cairn.Incremental); !isDelta || p.From.Engine != p.To.Engine() || view.err != nil {
		return nil, false
	}
	for _, act := range after {
		if !act.Repeatable() {
			return nil, false
		}
	}
	rec, ok := c.Records.read(p.To)
	if !ok || rec.Database != p.From.Name || !slices.Equal(rec.Pairs, pairs) {
		return nil, false
	}
	now := view.times
	if len(now) != len(rec.Updated) {
		return nil, false
	}
	// A column or key changed on the target by hand need not move
	// UPDATE_TIME: the schema as the last load left it must hold.
	if rec.Schema != "" && view.schema != rec.Schema {
		return nil, false
	}
	plan := &deltaPlan{dirty: map[string]bool{}, guard: map[string]string{}, state: rec.Loaded, exact: map[string]bool{}, schema: view.schema}
	for table, at := range now {
		was, known := rec.Updated[table]
		switch {
		case !known:
			return nil, false // a table the last clone did not leave
		case at == "" || at != was:
			plan.dirty[table] = true
		default:
			plan.guard[table] = at
		}
		if loaded := rec.LoadedTimes[table]; plan.dirty[table] || loaded != "" && at == loaded {
			plan.exact[table] = true
		}
	}
	if len(plan.dirty) > 0 {
		c.log().Info("tables changed on the target since the last clone are loaded whole", "target", p.To.String(), "tables", len(plan.dirty))
	}
	var err error
	if plan.base, err = c.pick(ctx, rec.Snapshot); err != nil || plan.base.ID != rec.Snapshot {
		return nil, false
	}
	// Too many rows to compare in memory: the delta would only find out
	// half-way through the dump (see cairn.DeltaRows).
	if stats, err := c.Repo.Tables(ctx, plan.base, p.From.Name); err == nil {
		var rows int64
		for _, t := range stats {
			rows += max(t.Rows, 0)
		}
		if rows > int64(cairn.DeltaRows) {
			c.log().Info("too many rows for a delta: the whole dump is loaded", "target", p.To.String(), "rows", rows)
			return nil, false
		}
	}
	plan.index = c.Records.readRowIndex(p.To, rec.Snapshot)
	return plan, true
}

// loadDelta brings the target database from base's dump to the dump that
// streams in, row by row (see above). recorded waits for the new snapshot
// (and the safety snapshot) to be complete, like a full load's check.
// cairn.ErrNoDelta means the whole dump must be loaded instead.
//
// What the target then holds is kept (see state.go): the safety
// snapshot's dump of it (complete when recorded returns) followed by the
// delta, or without one, what the last clone kept followed by the delta.
func (c *Cloner) loadDelta(ctx context.Context, plan *deltaPlan, p restore.Load, dump io.Reader, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error), safety func() *cairn.Snapshot, pairs []rewrite.Pair, rep *reporter) (loadedState, error) {
	base := plan.base
	start := c.now()
	unlock, err := c.Sites.LockDatabase(p.To)
	if err != nil {
		return loadedState{}, err
	}
	defer unlock()
	inc := p.To.(cairn.Incremental)
	open := func() (io.ReadCloser, error) { return c.Repo.OpenDump(ctx, base, p.From.Name) }
	d, err := inc.Diff(ctx, open, plan.index, dump, plan.dirty, deltaLimit)
	if err != nil {
		return loadedState{}, err
	}
	c.log().Info("delta computed", "database", p.From.Name, "base", base.ID, "from_index", plan.index != nil, "tables", len(d.Tables()), "elapsed", time.Since(start))
	info, want, err := recorded()
	if err != nil {
		return loadedState{}, fmt.Errorf("nothing was changed: %w", err)
	}
	counts := map[string]int64{}
	for _, t := range want {
		counts[t.Name] = t.Rows
	}
	var replaced int64
	if len(pairs) > 0 {
		w, err := rewrite.New(rewrite.Config{Pairs: pairs})
		if err != nil {
			return loadedState{}, err
		}
		dialect := database.DialectOf(p.From.Engine)
		if replaced, err = d.Rewrite(func(in io.Reader, out io.Writer) (int64, error) {
			r, err := w.Dump(dialect, in, out)
			if err != nil {
				return 0, err
			}
			return r.Replacements(), nil
		}); err != nil {
			return loadedState{}, err
		}
	}
	// A table still as the last load left it holds as many rows as the
	// base snapshot's: it need not be counted.
	before := map[string]int64{}
	if stats, err := c.Repo.Tables(ctx, base, p.From.Name); err == nil {
		for _, t := range stats {
			if plan.exact[t.Name] && !plan.dirty[t.Name] {
				before[t.Name] = t.Rows
			}
		}
	}
	after, err := inc.ApplyDelta(ctx, d, counts, before, plan.guard)
	if err != nil {
		if errors.Is(err, cairn.ErrNoDelta) {
			return loadedState{}, err
		}
		return loadedState{}, fmt.Errorf("update database %s in place: %w", p.To, err)
	}
	from, exact := repo.DumpRef{ID: plan.state, Name: p.To.Name()}, func(t string) bool { return plan.exact[t] }
	if s := safety(); s != nil {
		for _, db := range s.Databases {
			if db.DSN == p.To.String() {
				// The target as it was when the delta's guard began.
				from, exact = repo.DumpRef{ID: s.ID, Name: db.Name}, nil
			}
		}
	}
	loaded := c.noteLoad(ctx, p.To, c.saveDeltaState(ctx, p.To, from, d, want), exact, plan.schema, maps.Clone(after))
	loaded.committed = after
	loaded.index = d.Index()
	rep.totals.rows.Add(info.Rows)
	rep.totals.replacements.Add(replaced)
	removed, added := d.Rows()
	rep.Event(cairn.DatabaseRestored{Name: info.Name, Target: p.To.String(), Tables: info.Tables, Rows: info.Rows, DumpBytes: info.Bytes,
		Duration: time.Since(start), Delta: &cairn.Delta{Base: base, Removed: removed, Added: added, Tables: len(d.Tables()), BaseDumpRead: plan.index == nil}})
	return loaded, nil
}

// planDeltas tells, in a clone's dry run, which target databases a real
// clone would bring up to date row by row, and which safety snapshots
// would take what the last clone kept.
func (c *Cloner) planDeltas(ctx context.Context, p *restore.Plan, rep cairn.Reporter) {
	for _, l := range p.Databases {
		view, _ := viewOf(ctx, l.To)
		if re, ok := c.reuseState(ctx, l.To, view); ok {
			rep.Event(cairn.SafetyFromState{Target: l.To.String(), Kept: re.kept, Dumped: re.dumped})
		}
		plan, ok := c.deltaBase(ctx, l, p.Pairs, p.Actions, view)
		if !ok {
			continue
		}
		rep.Event(cairn.DeltaPlanned{Name: l.From.Name, Target: l.To.String(), Base: plan.base, Whole: slices.Sorted(maps.Keys(plan.dirty))})
	}
}
