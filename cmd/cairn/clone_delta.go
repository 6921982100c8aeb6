package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/actions"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/rewrite"
)

// A clone onto a MySQL or MariaDB database that the last clone loaded
// loads only what changed: the new dump is compared row by row with the
// dump of the snapshot that clone loaded, and the rows that differ go in
// (rewritten) in one transaction, instead of the whole database through a
// scratch database. Which tables still hold what the last clone left is
// proved by InnoDB's UPDATE_TIME of each, recorded after the last clone
// (its after_restore actions and URL check included) and unchanged since;
// the tables changed since (by a person, a page view, a plugin) are
// emptied and loaded whole in the same transaction. A server restart (it
// forgets those times), a schema change, triggers, a changed table without
// a primary key, sql: or run: actions (which may not be repeatable), or
// more than deltaLimit of rows to load each mean the whole dump is loaded
// as the first time.

// deltaLimit bounds the changed rows a delta holds in memory.
const deltaLimit = 64 << 20

// cloneRecord is what a clone left in one target database.
type cloneRecord struct {
	Target   string            `json:"target"`   // the DSN without its password
	Snapshot string            `json:"snapshot"` // the source snapshot loaded
	Database string            `json:"database"` // its name in that snapshot
	Pairs    []rewrite.Pair    `json:"pairs"`
	Updated  map[string]string `json:"updated"` // table → UPDATE_TIME after the clone
	Time     time.Time         `json:"time"`
	// What the target was loaded from, kept (see clone_state.go).
	Loaded      string            `json:"loaded,omitempty"`       // the state's ID
	LoadedTimes map[string]string `json:"loaded_times,omitempty"` // table → UPDATE_TIME right after the load
	Schema      string            `json:"schema,omitempty"`       // fingerprint right after the load
}

func recordPath(r *repo.Repo, target string) string {
	return filepath.Join(r.StateDir(), "clones", recordName(target)+".json")
}

func recordName(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:8])
}

// writeCloneRecord notes what a clone left in a target database; a failure
// only costs the next clone its delta.
func (a *app) writeCloneRecord(ctx context.Context, r *repo.Repo, to cairn.Database, snap *cairn.Snapshot, name string, pairs []rewrite.Pair, loaded loadedState) {
	path := recordPath(r, to.String())
	os.Remove(path)
	dt, ok := to.(database.DeltaTarget)
	if !ok {
		return
	}
	// No change of the clone's own follows: the current second needs no
	// waiting for (see mysql.UpdateTimes).
	times, _, err := dt.UpdateTimes(ctx, true)
	if err == nil {
		rec := cloneRecord{Target: to.String(), Snapshot: snap.ID, Database: name, Pairs: pairs, Updated: times, Time: time.Now(),
			Loaded: loaded.id, LoadedTimes: loaded.times, Schema: loaded.schema}
		var b []byte
		if b, err = json.Marshal(rec); err == nil {
			if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
				err = os.WriteFile(path, b, 0o600)
			}
		}
	}
	if err != nil {
		a.log.Info("noting what the clone left failed; the next clone loads the whole database", "target", to.String(), "err", err)
		return
	}
	writeRowIndex(r, to, snap.ID, loaded.index)
}

// deltaPlan is how a target database can be brought up to date row by
// row from the snapshot it still holds, rewritten.
type deltaPlan struct {
	base  *cairn.Snapshot
	dirty map[string]bool   // tables changed since on the target's side: loaded whole
	guard map[string]string // the UPDATE_TIMEs that prove the others unchanged
	state string            // the state the last clone kept (see clone_state.go), "" if none
	exact map[string]bool   // the tables that state holds as the target does
	index *mysql.RowIndex   // base's dump's rows, if kept: then that dump is not read
}

// deltaBase returns how the next load can be a delta, if it can.
func (a *app) deltaBase(ctx context.Context, r *repo.Repo, p dbRestore, pairs []rewrite.Pair, after []actions.Action) (*deltaPlan, bool) {
	dt, isDelta := p.to.(database.DeltaTarget)
	if !isDelta || p.from.Engine != "mysql" {
		return nil, false
	}
	for _, act := range after {
		if act.Kind == "sql" || act.Kind == "run" {
			return nil, false
		}
	}
	b, err := os.ReadFile(recordPath(r, p.to.String()))
	if err != nil {
		return nil, false
	}
	var rec cloneRecord
	if json.Unmarshal(b, &rec) != nil || rec.Target != p.to.String() || rec.Database != p.from.Name || !slices.Equal(rec.Pairs, pairs) {
		return nil, false
	}
	now, _, err := dt.UpdateTimes(ctx, false)
	if err != nil || len(now) != len(rec.Updated) {
		return nil, false
	}
	if rec.Schema != "" {
		// A column or key changed on the target by hand need not move
		// UPDATE_TIME: the schema as the last load left it must hold.
		if schema, err := dt.Schema(ctx); err != nil || schema != rec.Schema {
			return nil, false
		}
	}
	plan := &deltaPlan{dirty: map[string]bool{}, guard: map[string]string{}, state: rec.Loaded, exact: map[string]bool{}}
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
		a.log.Info("tables changed on the target since the last clone are loaded whole", "target", p.to.String(), "tables", len(plan.dirty))
	}
	if plan.base, err = a.pickIn(ctx, r, rec.Snapshot); err != nil || plan.base.ID != rec.Snapshot {
		return nil, false
	}
	plan.index = readRowIndex(r, p.to, rec.Snapshot)
	return plan, true
}

// loadDelta brings the target database from base's dump to the dump that
// streams in, row by row (see above). recorded waits for the new snapshot
// (and the safety snapshot) to be complete, like a full load's check.
// mysql.ErrNoDelta means the whole dump must be loaded instead.
//
// What the target then holds is kept (see clone_state.go): the safety
// snapshot's dump of it (complete when recorded returns) followed by the
// delta, or without one, what the last clone kept followed by the delta.
func (a *app) loadDelta(ctx context.Context, r *repo.Repo, plan *deltaPlan, p dbRestore, dump io.Reader, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error), safety func() *cairn.Snapshot, pairs []rewrite.Pair, o restoreOptions) (loadedState, error) {
	base := plan.base
	start := time.Now()
	cat, err := a.catalog()
	if err != nil {
		return loadedState{}, err
	}
	unlock, err := cat.LockDatabase(p.to)
	if err != nil {
		return loadedState{}, err
	}
	defer unlock()
	open := func() (io.ReadCloser, error) { return r.OpenDump(ctx, base, p.from.Name) }
	d, err := mysql.Diff(ctx, open, plan.index, dump, plan.dirty, deltaLimit)
	if err != nil {
		return loadedState{}, err
	}
	a.log.Info("delta computed", "database", p.from.Name, "base", base.ID, "from_index", plan.index != nil, "tables", len(d.Tables), "elapsed", time.Since(start))
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
		for i := range d.Tables {
			t := &d.Tables[i]
			var n int64
			if len(t.Removed) > 0 {
				// A key holding a URL is the rewritten one in the target.
				var keys string
				if keys, err = t.KeyTable(); err == nil {
					t.Removed, _, err = rewriteRows(keys, t.Name, t.Removed, pairs)
				}
			}
			if err == nil {
				t.Added, n, err = rewriteRows(t.Create, t.Name, t.Added, pairs)
			}
			if err != nil {
				return loadedState{}, fmt.Errorf("rewrite the changed rows of %s: %w", t.Name, err)
			}
			replaced += n
		}
	}
	// A table still as the last load left it holds as many rows as the
	// base snapshot's: it need not be counted.
	before := map[string]int64{}
	if stats, err := r.Tables(ctx, base, p.from.Name); err == nil {
		for _, t := range stats {
			if plan.exact[t.Name] && !plan.dirty[t.Name] {
				before[t.Name] = t.Rows
			}
		}
	}
	if err := p.to.(database.DeltaTarget).ApplyDelta(ctx, d, counts, before, plan.guard); err != nil {
		if errors.Is(err, mysql.ErrNoDelta) {
			return loadedState{}, err
		}
		return loadedState{}, fmt.Errorf("update database %s in place: %w", p.to, err)
	}
	from, exact := repo.DumpRef{ID: plan.state, Name: p.to.Name()}, func(t string) bool { return plan.exact[t] }
	if s := safety(); s != nil {
		for _, db := range s.Databases {
			if db.DSN == p.to.String() {
				// The target as it was when the delta's guard began.
				from, exact = repo.DumpRef{ID: s.ID, Name: db.Name}, nil
			}
		}
	}
	loaded := a.noteLoad(ctx, p.to, a.saveDeltaState(ctx, r, p.to, from, d, want), exact)
	loaded.index = d.Index
	a.totals.addRows(info.Rows, replaced)
	removed, added := d.Rows()
	report := databaseRestoreJSON{MessageType: "database", Name: info.Name, Target: p.to.String(), Tables: info.Tables, Rows: info.Rows,
		DumpBytes: info.Bytes, DurationSec: time.Since(start).Seconds(), Delta: &deltaJSON{Base: base.ID, Removed: removed, Added: added, Tables: len(d.Tables)}}
	if o.json {
		return loaded, jsonLine(a.stdout, report)
	}
	fmt.Fprintf(a.stdout, "database %s updated in place from snapshot %s: %d row(s) out, %d in, in %d table(s); %d rows checked, in %s\n",
		info.Name, base.ShortID(), removed, added, len(d.Tables), info.Rows, time.Since(start).Round(time.Millisecond))
	return loaded, nil
}

// deltaJSON tells, in a database's restore report, that only changed rows
// were loaded.
type deltaJSON struct {
	Base    string `json:"base"` // the snapshot the target held
	Removed int    `json:"rows_removed"`
	Added   int    `json:"rows_added"`
	Tables  int    `json:"tables"`
}

// rewriteRows rewrites rows of one table as they would be in a dump, and
// counts the replacements.
func rewriteRows(create, table string, rows [][]byte, pairs []rewrite.Pair) ([][]byte, int64, error) {
	if len(rows) == 0 {
		return rows, 0, nil
	}
	var in bytes.Buffer
	in.WriteString(create + ";\nINSERT INTO `" + strings.ReplaceAll(table, "`", "``") + "` VALUES ")
	in.Write(bytes.Join(rows, []byte(",")))
	in.WriteString(";\n")
	w, err := rewrite.New(rewrite.Config{Pairs: pairs})
	if err != nil {
		return nil, 0, err
	}
	var out bytes.Buffer
	rep, err := w.MySQL(&in, &out)
	if err != nil {
		return nil, 0, err
	}
	var replaced int64
	for _, c := range rep.Counts {
		replaced += c.Replacements
	}
	var rewritten [][]byte
	err = mysql.Rows(&out, func(_ string, row []byte) error {
		rewritten = append(rewritten, bytes.Clone(row))
		return nil
	})
	if err == nil && len(rewritten) != len(rows) {
		err = fmt.Errorf("%d rows in, %d out", len(rows), len(rewritten))
	}
	return rewritten, replaced, err
}

// planDeltas tells, in a clone's dry run, which target databases a real
// clone would bring up to date row by row.
func (a *app) planDeltas(ctx context.Context, r *repo.Repo, snap *cairn.Snapshot, t restoreTarget, ro restoreOptions) {
	plan, err := a.databaseTargets(snap, t, ro)
	if err != nil || t.env == nil {
		return
	}
	after := t.env.AfterRestore
	for _, p := range plan {
		if re, ok := a.reuseState(ctx, r, p.to); ok {
			if ro.json {
				jsonLine(a.stdout, safetyPlanJSON{MessageType: "safety_from_state", Target: p.to.String(), TablesKept: re.kept, TablesDumped: re.dumped}) //nolint:errcheck
			} else {
				fmt.Fprintf(a.stdout, "safety snapshot of %s: %d table(s) as the last clone left them, taken from what it kept; %d dumped\n", p.to, re.kept, re.dumped)
			}
		}
		plan, ok := a.deltaBase(ctx, r, p, t.pairs, after)
		if !ok {
			continue
		}
		base, whole := plan.base, slices.Sorted(maps.Keys(plan.dirty))
		if ro.json {
			jsonLine(a.stdout, deltaPlanJSON{MessageType: "database_delta", Name: p.from.Name, Target: p.to.String(), Base: base.ID, Whole: whole}) //nolint:errcheck
			continue
		}
		except := ""
		if len(whole) > 0 {
			except = fmt.Sprintf(" (%s changed since: loaded whole)", strings.Join(whole, ", "))
		}
		fmt.Fprintf(a.stdout, "database %s → %s: it still holds snapshot %s as the last clone left it%s, so a clone loads only the rows that changed, in place\n",
			p.from.Name, p.to, base.ShortID(), except)
	}
}

// safetyPlanJSON is a target database whose safety snapshot would take
// what the last clone kept (see clone_state.go).
type safetyPlanJSON struct {
	MessageType  string `json:"message_type"` // "safety_from_state"
	Target       string `json:"target"`
	TablesKept   int    `json:"tables_kept"`
	TablesDumped int    `json:"tables_dumped"`
}

// deltaPlanJSON is a database a clone would update row by row.
type deltaPlanJSON struct {
	MessageType string   `json:"message_type"` // "database_delta"
	Name        string   `json:"name"`
	Target      string   `json:"target"`
	Base        string   `json:"base"`
	Whole       []string `json:"whole,omitempty"` // tables changed since, loaded whole
}

// A clone also keeps, beside its record, the row index of the dump it
// loaded (see mysql.RowIndex), so that the next delta need not read that
// dump back from the repository.

func rowIndexPath(r *repo.Repo, to cairn.Database, snapshot string) string {
	return filepath.Join(r.StateDir(), "clones", recordName(to.String())+"-"+snapshot+".rows")
}

// writeRowIndex keeps the index of snapshot's dump for to, in place of
// any other; nil removes them. A failure costs the next delta a read.
func writeRowIndex(r *repo.Repo, to cairn.Database, snapshot string, x *mysql.RowIndex) {
	old, _ := filepath.Glob(filepath.Join(r.StateDir(), "clones", recordName(to.String())+"-*.rows"))
	for _, f := range old {
		os.Remove(f)
	}
	if x == nil {
		return
	}
	path := rowIndexPath(r, to, snapshot)
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = x.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		os.Remove(path + ".tmp")
	}
}

// readRowIndex returns the kept index of snapshot's dump for to, or nil.
func readRowIndex(r *repo.Repo, to cairn.Database, snapshot string) *mysql.RowIndex {
	f, err := os.Open(rowIndexPath(r, to, snapshot))
	if err != nil {
		return nil
	}
	defer f.Close()
	x, err := mysql.ReadRowIndex(bufio.NewReader(f))
	if err != nil {
		return nil
	}
	return x
}
