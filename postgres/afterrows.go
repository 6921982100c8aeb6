package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// What follows a part's rows (its tables' keys and indexes, then each
// table's stats for the check) is run by the connections that loaded the
// parts, as pg_restore -j's workers do: once its own part is loaded, a
// connection takes the next job of any loaded table, the largest table's
// first, and waits for more while a part still loads. A table's entries
// run in the dump's order, where an index may be built beside another
// index of the table, but a key (ALTER TABLE … ADD CONSTRAINT, which locks
// the table whole, and which may be made from an index before it) waits
// for every entry before it and holds up every one after; the table's
// stats come last (its size on disk, indexes included, decides whether
// its rows are summed, as at dump time). Stats taken there leave the check
// only the tables no part held (see statsBut).

// afterRows schedules that work for one load in parts.
type afterRows struct {
	post  *postData
	c     Config
	owner string

	mu      sync.Mutex
	wake    *sync.Cond
	loading int                    // parts still loading
	tables  map[string]*afterTable // loaded tables with jobs left
	stats   map[string]TableStat   // taken, by name as a TableStat has it
	failed  error
}

// afterTable is a loaded table's jobs: its entries of post-data (indexes
// into postData.entries) in order, then its stats.
type afterTable struct {
	name    string // as the dump writes it
	bytes   int64  // its rows' size in the dump: the larger, the sooner
	entries []int
	stats   bool // taken (or being taken)
	running int  // jobs running; -1: one that needs the table alone
}

// afterJob is one job: an entry, or (entry -1) a table's stats.
type afterJob struct {
	t     *afterTable
	entry int
}

func newAfterRows(post *postData, c Config, owner string, parts int) *afterRows {
	a := &afterRows{post: post, c: c, owner: owner, loading: parts, tables: map[string]*afterTable{}, stats: map[string]TableStat{}}
	a.wake = sync.NewCond(&a.mu)
	return a
}

// loaded ends one part's load (err its failure): its tables' jobs become
// ready.
func (a *afterRows) loaded(tables []copied, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.loading--
	if err != nil && a.failed == nil {
		a.failed = err
	}
	for _, t := range tables {
		at := a.tables[t.table]
		if at == nil {
			at = &afterTable{name: t.table, entries: a.post.claim(t.table)}
			a.tables[t.table] = at
		}
		at.bytes += t.bytes
	}
	a.wake.Broadcast()
}

// next waits for a job that may run now; ok is false once there are no
// more (every part loaded and every job taken) or one failed.
func (a *afterRows) next() (job afterJob, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		if a.failed != nil {
			return afterJob{}, false
		}
		var best *afterTable
		for _, t := range a.tables {
			if t.ready(a.post) && (best == nil || t.bytes > best.bytes || t.bytes == best.bytes && t.name < best.name) {
				best = t
			}
		}
		if best != nil {
			return best.take(a.post), true
		}
		if a.loading == 0 && a.idle() {
			return afterJob{}, false
		}
		a.wake.Wait()
	}
}

// idle reports whether no job is left nor running (a running job holds up
// the jobs of its table behind it).
func (a *afterRows) idle() bool {
	for _, t := range a.tables {
		if t.running != 0 || len(t.entries) > 0 || !t.stats {
			return false
		}
	}
	return true
}

// done ends a job (err its failure).
func (a *afterRows) done(job afterJob, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if job.t.running < 0 {
		job.t.running = 0
	} else {
		job.t.running--
	}
	if err != nil && a.failed == nil {
		a.failed = err
	}
	a.wake.Broadcast()
}

// ready reports whether t's next job may start now.
func (t *afterTable) ready(p *postData) bool {
	switch {
	case t.running < 0:
		return false
	case len(t.entries) > 0:
		return !p.whole(t.entries[0]) || t.running == 0
	default:
		return !t.stats && t.running == 0
	}
}

// take starts t's next job (ready said it may).
func (t *afterTable) take(p *postData) afterJob {
	if len(t.entries) == 0 {
		t.stats, t.running = true, -1
		return afterJob{t: t, entry: -1}
	}
	e := t.entries[0]
	t.entries = t.entries[1:]
	if p.whole(e) {
		t.running = -1
	} else {
		t.running++
	}
	return afterJob{t: t, entry: e}
}

// work runs jobs on conn until there are none left. conn is a part's,
// as that part's load left it (role owner, the part's SET lines in
// force).
func (a *afterRows) work(ctx context.Context, conn *pgx.Conn) error {
	headDone := false
	for {
		job, ok := a.next()
		if !ok {
			return nil
		}
		var err error
		if job.entry >= 0 && !headDone {
			err = a.exec(ctx, conn, "SET ROLE "+ident(a.owner)+";\n"+a.post.head)
			headDone = err == nil
		}
		if err == nil {
			err = a.run(ctx, conn, job)
		}
		if job.entry < 0 {
			headDone = false // the stats reset the session
		}
		a.done(job, err)
		if err != nil {
			return err
		}
	}
}

// run runs one job on conn.
func (a *afterRows) run(ctx context.Context, conn *pgx.Conn, job afterJob) error {
	if job.entry >= 0 {
		e := a.post.entries[job.entry]
		return a.exec(ctx, conn, "SET ROLE "+ident(a.owner)+";\nSET default_tablespace = "+e.tablespace+";\n"+e.sql)
	}
	// The stats are the check's, taken as they would be on a connection
	// of their own (as at dump time): as the user cairn connects as (not
	// the owner, who may not read another role's tables), none of the
	// dump's settings (its empty search_path would print a regclass
	// value schema-qualified, and change the checksum).
	if err := a.exec(ctx, conn, "RESET ALL; RESET ROLE"); err != nil {
		return err
	}
	var t statTable
	err := conn.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname), `+nameSQL("n", "c")+`, pg_total_relation_size(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`, job.t.name).Scan(&t.quoted, &t.stat.Name, &t.size)
	if err == nil {
		err = t.measure(ctx, conn, true)
	}
	if err != nil {
		return fmt.Errorf("stats of %s.%s: %w%s", a.c.Database, job.t.name, err, hint(err.Error()))
	}
	a.mu.Lock()
	a.stats[t.stat.Name] = t.stat
	a.mu.Unlock()
	return nil
}

func (a *afterRows) exec(ctx context.Context, conn *pgx.Conn, sql string) error {
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("load into %s: %w%s", a.c, err, hint(err.Error()))
	}
	return nil
}
