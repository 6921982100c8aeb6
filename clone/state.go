package clone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/repo"
)

// After a clone into a MySQL, MariaDB or PostgreSQL database, cairn keeps in the
// repository, as state (repo.SaveState, never listed), a dump of what that
// database holds right after the load: for a whole load the source's dump
// as rewritten on its way in; for a delta the safety snapshot's dump of
// the database (or without one, the state kept before), by reference,
// followed by the delta as SQL. The clone record notes each table's
// UPDATE_TIME right after the load, and the schema's fingerprint.
//
// The next clone's safety snapshot of that database then does not dump
// it: the tables still as that load left them (UPDATE_TIME unchanged,
// schema unchanged) are the stored dump, taken by reference (unread,
// unwritten), and only the others (changed since by a person, a page
// view, an after_restore action) are dumped, after it, where they replace
// what the stored dump made of them. Should any of the reused tables
// change while those are dumped, or anything else not hold, the safety
// snapshot dumps the whole database as before.

// loadedState is what one load left in a target database, for the record.
type loadedState struct {
	id     string            // the state saved, "" if none
	times  map[string]string // table → UPDATE_TIME right after the load ("" where the state is not what the table holds)
	schema string
	index  cairn.RowIndex // of the source's dump loaded
	// committed are the tables' times as of the load's commit, where the
	// engine gave them (see cairn.Incremental.ApplyDelta).
	committed map[string]string
	// quiet is when the second of the load is over: a change the clone
	// makes itself to that database (after_restore actions, a page view)
	// must wait until then to show in UPDATE_TIME (see run.quiet).
	quiet time.Time
}

// noteLoad reads the UPDATE_TIMEs and schema of a database just
// loaded from state id; exact tells which tables the state holds as the
// database does (nil: all). schema is the schema's fingerprint when the
// caller knows the load kept it (a delta), "" to read it; times are the
// tables' times as of the load's commit, where the engine gave them (nil
// to read them). A failure costs the next safety snapshot its reuse only.
func (c *Cloner) noteLoad(ctx context.Context, to cairn.Database, id string, exact func(table string) bool, schema string, times map[string]string) loadedState {
	dt, ok := to.(cairn.Incremental)
	if !ok || id == "" {
		return loadedState{}
	}
	var quiet time.Duration
	var err error
	if times == nil {
		times, quiet, err = dt.UpdateTimes(ctx, true)
	}
	if err == nil && schema == "" {
		schema, err = dt.Schema(ctx)
	}
	if err != nil {
		c.log().Info("noting what the load left failed; the next safety snapshot dumps the whole database", "target", to.String(), "err", err)
		return loadedState{}
	}
	for t := range times {
		if exact != nil && !exact(t) {
			times[t] = ""
		}
	}
	return loadedState{id: id, times: times, schema: schema, quiet: c.now().Add(quiet)}
}

// saveWholeState keeps, as to's state, the dump a whole load reads: the
// returned writer takes it (it never fails nor blocks the load for long:
// should saving fail, it drops what it is given), end closes it (err nil
// when the load succeeded) and returns the state's ID, "" when none was
// saved. want gives the loaded tables' stats.
func (c *Cloner) saveWholeState(ctx context.Context, to cairn.Database, want func() ([]cairn.TableStat, error)) (w io.Writer, end func(err error) string) {
	w, saved := teeTo(func(pr io.Reader) (string, error) {
		id, err := c.Repo.SaveState(ctx, stateKey(to), []cairn.Database{pipedDump{to, pr, want}})
		if err != nil {
			c.log().Info("keeping what the load read failed; the next safety snapshot dumps the whole database", "target", to.String(), "err", err)
		}
		return id, err
	})
	return w, func(err error) string {
		if id, ok := saved(err); ok {
			return id
		}
		return ""
	}
}

// pipedDump is a database whose dump is what a pipe gives.
type pipedDump struct {
	cairn.Database
	r     io.Reader
	stats func() ([]cairn.TableStat, error)
}

func (p pipedDump) Dump(_ context.Context, w io.Writer) ([]cairn.TableStat, error) {
	if _, err := io.Copy(w, p.r); err != nil {
		return nil, err
	}
	return p.stats()
}

// saveDeltaState keeps, as to's state, a dump of what it held before a
// delta (from) followed by the delta; want gives the stats of the tables
// the delta changed.
func (c *Cloner) saveDeltaState(ctx context.Context, to cairn.Database, from repo.DumpRef, d cairn.Changes, want []cairn.TableStat) string {
	if from.ID == "" {
		return ""
	}
	before, err := c.Repo.StateTables(ctx, from)
	if err != nil {
		c.log().Info("keeping what the delta left failed; the next safety snapshot dumps the whole database", "target", to.String(), "err", err)
		return ""
	}
	changed := map[string]bool{}
	for _, t := range d.Tables() {
		changed[t] = true
	}
	stats := map[string]cairn.TableStat{}
	for _, s := range before {
		stats[s.Name] = s
	}
	for _, s := range want {
		if changed[s.Name] {
			stats[s.Name] = cairn.TableStat{Name: s.Name, Rows: s.Rows}
		}
	}
	tail := func(_ context.Context, w io.Writer) ([]cairn.TableStat, error) {
		return sortedStats(stats), d.WriteSQL(w)
	}
	id, err := c.Repo.SaveState(ctx, stateKey(to), []cairn.Database{repo.Reused{Database: to, From: from, Tail: tail}})
	if err != nil {
		c.log().Info("keeping what the delta left failed; the next safety snapshot dumps the whole database", "target", to.String(), "err", err)
		return ""
	}
	return id
}

func sortedStats(byName map[string]cairn.TableStat) []cairn.TableStat {
	return slices.SortedFunc(maps.Values(byName), func(a, b cairn.TableStat) int { return strings.Compare(a.Name, b.Name) })
}

// stateReuse is how a safety snapshot of a database takes the state the
// last clone kept.
type stateReuse struct {
	repo.Reused
	kept, dumped int // tables taken from the state, and dumped
}

// A targetView is what a clone reads of a target database before it
// starts: when each table last changed and the schema's fingerprint (see
// cairn.Incremental). The delta's plan and the safety snapshot's reuse
// both decide on one reading: each checks again, later, what it relies
// on (the delta's guard, the safety snapshot's after-check).
type targetView struct {
	times  map[string]string
	schema string
	err    error
}

// viewOf reads to's view; ok is false when to is not incremental.
func viewOf(ctx context.Context, to cairn.Database) (v targetView, ok bool) {
	dt, ok := to.(cairn.Incremental)
	if !ok {
		return targetView{}, false
	}
	if v.times, _, v.err = dt.UpdateTimes(ctx, false); v.err == nil {
		v.schema, v.err = dt.Schema(ctx)
	}
	return v, true
}

// reuseState returns how a safety snapshot of to can take the state the
// last clone kept, if it can (see above), given its view.
func (c *Cloner) reuseState(ctx context.Context, to cairn.Database, view targetView) (stateReuse, bool) {
	dt, ok := to.(cairn.Incremental)
	if !ok || view.err != nil {
		return stateReuse{}, false
	}
	rec, ok := c.Records.read(to)
	if !ok || rec.Loaded == "" {
		return stateReuse{}, false
	}
	now := view.times
	if !slices.Equal(slices.Sorted(maps.Keys(now)), slices.Sorted(maps.Keys(rec.LoadedTimes))) || view.schema != rec.Schema {
		return stateReuse{}, false
	}
	ref := repo.DumpRef{ID: rec.Loaded, Name: to.Name()}
	stored, err := c.Repo.StateTables(ctx, ref)
	if err != nil {
		return stateReuse{}, false
	}
	var fresh []string
	kept := map[string]string{}
	for t, at := range now {
		if was := rec.LoadedTimes[t]; at == "" || was == "" || at != was {
			fresh = append(fresh, t)
		} else {
			kept[t] = at
		}
	}
	slices.Sort(fresh)
	c.log().Info("safety snapshot from the state the last clone kept", "target", to.String(), "tables_kept", len(kept), "tables_dumped", len(fresh))
	tail := func(ctx context.Context, w io.Writer) ([]cairn.TableStat, error) {
		var dumped []cairn.TableStat
		if len(fresh) > 0 {
			var err error
			if dumped, err = dt.DumpTables(ctx, w, fresh); err != nil {
				return nil, err
			}
		}
		after, _, err := dt.UpdateTimes(ctx, false)
		if err != nil {
			return nil, err
		}
		for t, at := range kept {
			if after[t] != at {
				return nil, fmt.Errorf("%w: table %s changed while the safety snapshot was taken", errStateStale, t)
			}
		}
		byName := map[string]cairn.TableStat{}
		for _, s := range stored {
			if _, ok := kept[s.Name]; ok {
				byName[s.Name] = s
			}
		}
		for _, s := range dumped {
			byName[s.Name] = s
		}
		return sortedStats(byName), nil
	}
	return stateReuse{repo.Reused{Database: to, From: ref, Tail: tail}, len(kept), len(fresh)}, true
}

// errStateStale ends a safety snapshot that took a stored state the
// database no longer holds: it is taken again, whole.
var errStateStale = errors.New("the stored state is stale")
