package clone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
)

// A fresh clone runs its stages side by side instead of one after the
// other:
//
//   - the source is snapshotted, and each database dump, as it streams into
//     the repository, streams through the rewriter into a scratch database
//     beside the target's (the target itself is not touched);
//   - meanwhile the target's safety snapshot is taken;
//   - once the safety snapshot is complete, each file the source's
//     snapshot reads is also written onto the target, and once both
//     snapshots are complete, the target's files are synced from the new
//     snapshot (what is in place already is left) while the loads finish;
//   - each load is checked against the row counts the snapshot recorded
//     and swapped in only once both snapshots are complete: if either
//     fails, no database is swapped (and files may be partly synced).
//
// The result is what a snapshot followed by a restore of it gives.

// snapshotResult is a snapshot being taken, for many goroutines to wait on.
type snapshotResult struct {
	done chan struct{}
	snap *cairn.Snapshot
	err  error
	took time.Duration
}

func newSnapshotResult() *snapshotResult { return &snapshotResult{done: make(chan struct{})} }

func (s *snapshotResult) set(snap *cairn.Snapshot, err error) {
	s.snap, s.err = snap, err
	close(s.done)
}

// failed tells whether the snapshot is over and failed, without waiting.
func (s *snapshotResult) failed() bool {
	select {
	case <-s.done:
		return s.err != nil
	default:
		return false
	}
}

func (s *snapshotResult) wait(ctx context.Context) (*cairn.Snapshot, error) {
	select {
	case <-s.done:
		return s.snap, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// teeDatabase is a source database whose dump is also written to a load.
type teeDatabase struct {
	cairn.Database
	tee *detachable
}

func (t teeDatabase) Dump(ctx context.Context, w io.Writer) ([]cairn.TableStat, error) {
	stats, err := t.Database.Dump(ctx, io.MultiWriter(w, t.tee))
	t.tee.pw.CloseWithError(err) // nil: the load reads io.EOF
	return stats, err
}

// detachable writes to a pipe until the pipe's reader goes away; then it
// drops what it is given, so that a failed load never fails the snapshot.
type detachable struct {
	pw   *io.PipeWriter
	gone atomic.Bool
}

func (d *detachable) Write(p []byte) (int, error) {
	if !d.gone.Load() {
		if _, err := d.pw.Write(p); err != nil {
			d.gone.Store(true)
		}
	}
	return len(p), nil
}

// run is one fresh clone in progress: what its side-by-side stages
// share.
type run struct {
	c       *Cloner
	ctx     context.Context
	src     *cairn.Environment
	o       Options
	rep     *reporter
	req     cairn.SnapshotRequest // the source's snapshot, its dumps teed
	plan    *restore.Plan         // the restore onto the target (its databases: the loads)
	after   []cairn.Action
	loads   []restore.Load   // source database i → target database i
	readers []*io.PipeReader // database i's dump, as it streams
	tees    []*detachable
	hints   []string      // for the safety snapshot (see SnapshotRequest.Hints)
	plans   []*deltaPlan  // load i as a delta, or nil (see delta.go)
	views   []targetView  // target database i as the clone found it (see state.go)
	loaded  []loadedState // what load i left, for the record
	source  *snapshotResult
	safety  *snapshotResult
	mirror  *files.Mirror // the source's files onto the target, as read
	// unlockMirror releases the target's lock startMirror took, and its
	// handle.
	unlockMirror func()
}

// stream clones src onto dst with a fresh snapshot, its stages side by
// side (see above).
func (c *Cloner) stream(ctx context.Context, src, dst *cairn.Environment, o Options, sum *cairn.CloneSummary, rep *reporter) error {
	start := c.now()
	interrupted := ctx.Err
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run, err := c.planStream(ctx, src, dst, o, rep)
	if err != nil {
		return err
	}
	go run.snapshot()
	// The target databases as they are, while the source's dump starts:
	// before the safety snapshot starts, so that a delta's guard covers
	// everything since the target's dump.
	for _, l := range run.loads {
		view, _ := viewOf(ctx, l.To)
		plan, _ := c.deltaBase(ctx, l, run.plan.Pairs, run.after, view)
		run.plans = append(run.plans, plan)
		run.views = append(run.views, view)
	}
	var wg sync.WaitGroup
	loadErrs := make([]error, len(run.loads))
	for i := range run.loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loadErrs[i] = run.load(i)
		}()
	}

	if o.NoSafety {
		run.safety.set(nil, nil)
	} else {
		t0 := c.now()
		s, err := c.safetySnapshot(ctx, dst, takeOptions{hints: run.hints, reuse: run.reusable()}, rep)
		if s != nil {
			sum.Seconds["safety_snapshot"] = c.now().Sub(t0).Seconds()
			sum.SafetySnapshot = s.ID
		}
		run.safety.set(s, err)
	}
	if run.safety.err == nil && !run.source.failed() {
		run.startMirror()
	}
	snap, err := run.ready()
	if err != nil {
		cancel()
		wg.Wait()
		<-run.source.done // its dumps' loads are over, so it ends
		run.stopMirror()
		if run.safety.err != nil || interrupted() != nil {
			return err
		}
		undo := ""
		if run.safety.snap != nil {
			undo = fmt.Sprintf(", or put them back with cairn restore %s@%s --only files", dst.Name(), run.safety.snap.ShortID())
		}
		return fmt.Errorf("%w. Nothing was swapped into %s's databases; its files may be partly synced: run the same command again once the cause is fixed%s", err, dst.Name(), undo)
	}
	run.stopMirror() // the snapshot reads no more
	sum.Snapshot = snap.ID
	sum.Seconds["snapshot"] = run.source.took.Seconds()
	t0 := c.now()
	run.plan.Snapshot = snap
	_, ferr := c.Restore.RestoreFiles(ctx, run.plan, rep)
	sum.Seconds["files"] = c.now().Sub(t0).Seconds()
	if ferr != nil {
		cancel() // scratch databases are dropped; nothing is swapped
	}
	wg.Wait()
	sum.Seconds["databases"] = c.now().Sub(start).Seconds()
	if ferr != nil && interrupted() == nil && len(loadErrs) > 0 && !slices.ContainsFunc(loadErrs, func(err error) bool { return err == nil }) {
		// The loads were stopped for the files' failure: that is the one
		// to tell.
		return fmt.Errorf("%w. Nothing was swapped into %s's databases", ferr, dst.Name())
	}
	if err := errors.Join(loadErrs...); err != nil {
		err = fmt.Errorf("%w%s", err, restore.SwappedNote(run.loads, loadErrs))
		if ferr == nil {
			return fmt.Errorf("%w. The files were synced; run the same command again to finish the clone, or roll back with the safety snapshot", err)
		}
		return err
	}
	if ferr != nil {
		undo := ""
		if run.safety.snap != nil {
			undo = fmt.Sprintf(", or roll the databases back with cairn restore %s@%s --only db", dst.Name(), run.safety.snap.ShortID())
		}
		return fmt.Errorf("%w. The databases were swapped in meanwhile: run the same command again once the cause is fixed, to finish the files%s", ferr, undo)
	}
	if err := c.Restore.Configure(ctx, run.plan, rep); err != nil {
		return err
	}
	if len(run.after) > 0 {
		run.quiet(ctx)
	}
	if err := c.Restore.AfterRestore(ctx, run.plan, rep); err != nil {
		return err
	}
	viewed := false // the target's page was asked for
	if dst.URL != "" {
		// Before noting what the clone left: a page view may write to
		// the database.
		sum.URLStatus = c.checkURL(ctx, dst.URL, rep, func() { viewed = true; run.quiet(ctx) })
	}
	for i, l := range run.loads {
		c.writeRecord(ctx, l.To, snap, snap.Databases[i].Name, run.plan.Pairs, run.loaded[i], len(run.after) == 0 && !viewed)
	}
	return nil
}

// planStream sets a fresh clone up: the source's snapshot request with
// each dump teed to a load, and the restore onto the target.
func (c *Cloner) planStream(ctx context.Context, src, dst *cairn.Environment, o Options, rep *reporter) (*run, error) {
	run := &run{c: c, ctx: ctx, src: src, o: o, rep: rep, source: newSnapshotResult(), safety: newSnapshotResult()}
	var err error
	if run.req, err = c.Sites.Request(ctx, src, nil, false); err != nil {
		return nil, err
	}
	abs := run.req.Path // another host's files: their location
	if run.req.Tree == nil {
		if abs, err = filepath.Abs(run.req.Path); err != nil {
			return nil, err
		}
	}
	// What the snapshot will say of itself, for the rewrite pairs; the
	// databases are the loads', not the plan's.
	planned := &cairn.Snapshot{Site: run.req.Site, Environment: run.req.Environment, URL: run.req.URL, Source: abs}
	ro := c.restoreOptions(o)
	ro.Only = restore.Files
	if run.plan, err = c.Restore.Plan(ctx, planned, restore.Target{Env: dst}, ro); err != nil {
		return nil, err
	}
	run.plan.Options.Only = restore.All
	keep, err := pattern.Compile(run.plan.Keep...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cairn.ErrInvalidArgument, err)
	}
	run.mirror = files.NewMirror(keep)
	run.req.Mirror = run.mirror
	run.after = dst.AfterRestore
	if len(dst.Databases) < len(run.req.Databases) {
		return nil, fmt.Errorf("%w: %s has %d database(s) but %s lists %d. Try: add the missing ones to its databases: list",
			cairn.ErrInvalidArgument, src.Name(), len(run.req.Databases), dst.Name(), len(dst.Databases))
	}
	// The target was most likely cloned from the source's latest snapshot:
	// its files need no rereading where they did not change.
	if prev, err := c.pick(ctx, src.Name()+"@latest"); err == nil {
		run.hints = []string{prev.ID}
	}
	for i, db := range run.req.Databases {
		to, err := c.Sites.OpenDatabase(dst.Databases[i], database.Options{TerminateSessions: o.TerminateSessions, LockWait: o.LockWait, Beneath: c.Sites.FilesRoots("")})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dst.Name(), err)
		}
		pr, pw := io.Pipe()
		run.tees = append(run.tees, &detachable{pw: pw})
		run.req.Databases[i] = teeDatabase{Database: db, tee: run.tees[i]}
		if pd, ok := db.(cairn.PartedDumper); ok {
			run.req.Databases[i] = teePartedDatabase{teeDatabase{Database: db, tee: run.tees[i]}, pd, filepath.Join(c.Repo.StateDir(), "spool")}
		}
		l := restore.Load{From: cairn.DatabaseInfo{Name: db.Name(), Engine: db.Engine()}, To: to}
		run.loads = append(run.loads, l)
		run.readers = append(run.readers, pr)
	}
	run.plan.Databases = run.loads
	run.loaded = make([]loadedState, len(run.loads))
	return run, nil
}

// reusable returns, for the safety snapshot, the target databases that
// can be taken from what the last clone kept (see state.go).
func (r *run) reusable() []repo.Reused {
	var out []repo.Reused
	for i, l := range r.loads {
		if re, ok := r.c.reuseState(r.ctx, l.To, r.views[i]); ok {
			out = append(out, re.Reused)
			r.rep.Event(cairn.SafetyFromState{Target: l.To.String(), Kept: re.kept, Dumped: re.dumped})
		}
	}
	return out
}

// snapshot takes the source's snapshot.
func (r *run) snapshot() {
	t0 := r.c.now()
	stage := r.rep.Stage("snapshot")
	snap, err := r.c.Sites.Snapshot(r.ctx, r.c.Repo, r.req, stage)
	stage.End()
	if err != nil {
		err = fmt.Errorf("snapshot %s: %w", r.src.Name(), err)
	}
	for _, tee := range r.tees {
		// A snapshot that failed before dumping a database must still end
		// its load; a finished dump's pipe stays as is.
		tee.pw.CloseWithError(errors.Join(err, errors.New("the snapshot did not dump this database")))
	}
	r.source.took = r.c.now().Sub(t0)
	r.source.set(snap, err)
}

// ready waits for both snapshots: nothing of the target is replaced before
// they are complete.
func (r *run) ready() (*cairn.Snapshot, error) {
	snap, err := r.source.wait(r.ctx)
	if err != nil {
		return nil, err
	}
	if _, err := r.safety.wait(r.ctx); err != nil {
		return nil, err
	}
	return snap, nil
}

// load brings target database i up to the snapshot's dump as it streams:
// row by row when the target still holds what the last clone left (see
// delta.go), else whole, through a scratch database.
func (r *run) load(i int) error {
	c, ctx, l, pairs := r.c, r.ctx, r.loads[i], r.plan.Pairs
	recorded := func() (cairn.DatabaseInfo, []cairn.TableStat, error) {
		snap, err := r.ready()
		if err != nil {
			return l.From, nil, fmt.Errorf("nothing was swapped in: %w", err)
		}
		info := snap.Databases[i]
		want, err := c.Repo.Tables(ctx, snap, info.Name)
		return info, want, err
	}
	// The dump again, read back from the complete snapshot.
	reread := func() (io.ReadCloser, error) {
		snap, err := r.ready()
		if err != nil {
			return nil, err
		}
		return c.Repo.OpenDump(ctx, snap, snap.Databases[i].Name)
	}
	c.log().Info("clone database", "database", l.From.Name, "target", l.To.String(), "rewrite", len(pairs))
	stage := r.rep.Stage("database " + l.From.Name)
	var err error
	if plan := r.plans[i]; plan != nil {
		r.loaded[i], err = c.loadDelta(ctx, plan, l, restore.ProgressReader{R: r.readers[i], Progress: stage}, recorded, func() *cairn.Snapshot { return r.safety.snap }, pairs, r.rep)
		if errors.Is(err, cairn.ErrNoDelta) {
			r.rep.Event(cairn.Notice{Message: fmt.Sprintf("database %s: %v; loading the whole dump", l.From.Name, err)})
			// The tee detaches, so that the snapshot completes.
			r.readers[i].CloseWithError(err)
			var whole io.ReadCloser
			if whole, err = reread(); err == nil {
				err = r.loadWhole(i, restore.ProgressReader{R: whole, Progress: stage}, stage, recorded)
				whole.Close()
			}
		}
		stage.End()
	} else {
		err = r.loadWhole(i, restore.ProgressReader{R: r.readers[i], Progress: stage}, stage, recorded)
	}
	r.readers[i].CloseWithError(errors.Join(err, io.ErrClosedPipe)) // the tee detaches
	return err
}

// loadWhole loads target database i with the whole dump, and keeps what
// it read for the next safety snapshot (see state.go).
func (r *run) loadWhole(i int, dump io.Reader, stage cairn.Stage, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error)) error {
	c, l := r.c, r.loads[i]
	var keep io.Writer
	end := func(error) string { return "" }
	inc, ok := l.To.(cairn.Incremental)
	if ok && l.From.Engine == l.To.Engine() {
		keep, end = c.saveWholeState(r.ctx, l.To, func() ([]cairn.TableStat, error) {
			_, want, err := recorded()
			return restore.BlankChecksums(want), err
		})
	}
	var index func(error) cairn.RowIndex
	if keep != nil {
		// The rows of the dump as it comes, for the next delta.
		dump, index = indexDump(r.ctx, inc, dump)
	}
	// The tables' times as the load left them, which the engine reads
	// before the swap where it can (else they are read right after it).
	var times map[string]string
	ctx := cairn.WithLoadTrace(r.ctx, &cairn.LoadTrace{
		Swapping: func(t map[string]string) { times = t },
		Replaced: func(old map[string]string) { r.writtenSince(i, old) },
	})
	err := c.Restore.Load(ctx, l, dump, stage, recorded, r.plan.Pairs, keep, r.rep)
	if keep != nil && err == nil && times == nil {
		times = swappedTimes(r.ctx, inc)
	}
	id := end(err)
	if index != nil {
		x := index(err)
		if err == nil && times != nil {
			r.loaded[i] = c.noteLoad(r.ctx, l.To, id, nil, "", times)
			r.loaded[i].committed, r.loaded[i].index = maps.Clone(times), x
		}
	}
	return err
}

// writtenSince tells the user when target database i's tables, as the
// load swapped them out (old: their times then), had changed since the
// clone read them, just before the safety snapshot began: what the site
// wrote to them meanwhile may be in no snapshot, and production's rows
// replaced it. (A table changed in the very second the clone read it is
// told of too: it cannot tell that change from a later one.)
func (r *run) writtenSince(i int, old map[string]string) {
	view := r.views[i]
	if r.safety.snap == nil || view.err != nil || view.times == nil {
		return
	}
	var changed []string
	for t, at := range old {
		if before, ok := view.times[t]; !ok || at != "" && at != before {
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return
	}
	slices.Sort(changed)
	l := r.loads[i]
	r.rep.Event(cairn.Notice{Message: fmt.Sprintf("database %s: %s changed on %s while the clone ran, after it read them for safety snapshot %s; what was written to them then may be in no snapshot, and was replaced by %s's rows. Try: stop writes to %s (maintenance mode, its cron) while cloning onto it",
		l.From.Name, tablesPhrase(changed), l.To, r.safety.snap.ShortID(), r.src.Name(), l.To)})
}

// tablesPhrase names tables in a sentence: "table a", "tables a, b".
func tablesPhrase(tables []string) string {
	if len(tables) == 1 {
		return "table " + tables[0]
	}
	return "tables " + strings.Join(tables, ", ")
}

// swappedTimes reads the times of a database a whole load just swapped
// in, where the engine did not give them as of the swap (see
// cairn.LoadTrace), at once (before its state is saved, which may take a
// while). The load waited out the second of its last change before the
// swap (which keeps the tables' times), so a table changed in the
// current second was changed since by someone else: not knowing which,
// it takes none of them for what the load left. nil when it cannot tell.
// A change the site made between the swap and this read, in an earlier
// second, is taken for the load's.
func swappedTimes(ctx context.Context, inc cairn.Incremental) map[string]string {
	times, quiet, err := inc.UpdateTimes(ctx, true)
	if err != nil {
		return nil
	}
	if quiet > 0 {
		for t := range times {
			times[t] = ""
		}
	}
	return times
}

// indexDump reads a row index of what is read from dump (see
// cairn.Incremental), without ever holding up the reading; end returns it,
// or nil, once reading ended (err nil when the whole dump was read).
func indexDump(ctx context.Context, inc cairn.Incremental, dump io.Reader) (io.Reader, func(err error) cairn.RowIndex) {
	w, end := teeTo(func(r io.Reader) (cairn.RowIndex, error) { return inc.IndexDump(ctx, r) })
	return io.TeeReader(dump, w), func(err error) cairn.RowIndex { x, _ := end(err); return x }
}

// teeTo runs consume on what is written to w, in its own goroutine; w
// never fails nor blocks for long (should consume stop, w drops what it
// is given). end closes w (err nil when all was written) and returns
// consume's result, ok only if consume read it all and succeeded.
func teeTo[T any](consume func(io.Reader) (T, error)) (w io.Writer, end func(err error) (T, bool)) {
	pr, pw := io.Pipe()
	tee := &detachable{pw: pw}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := consume(pr)
		pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
		done <- result{v, err}
	}()
	return tee, func(err error) (T, bool) {
		if err == nil && tee.gone.Load() {
			err = errors.New("stopped reading")
		}
		pw.CloseWithError(err)
		res := <-done
		return res.v, err == nil && res.err == nil
	}
}

// startMirror has the source's snapshot copy each file it reads onto the
// target (once the target's safety snapshot is complete): restoring the
// snapshot afterwards finds them in place, same size and time, and writes
// only the rest (files the snapshot took unread from an earlier one, and
// any it read before this). It is only a head start, so a failure is
// noted and left to that restore. stopMirror must follow.
func (r *run) startMirror() {
	if !r.plan.Remote.IsLocal() || len(r.plan.Nodes) > 0 {
		return // files on another host, or on several, are written by the restore alone
	}
	target, unlock, err := r.openMirrorTarget()
	if err != nil {
		r.c.log().Info("copying the files as they are snapshotted failed; the restore does it", "err", err)
		return
	}
	r.unlockMirror = func() { target.Close(); unlock() }
	r.mirror.Start(r.ctx, target)
}

// openMirrorTarget locks and opens the clone's target directory, made if
// missing, as a restore onto it does.
func (r *run) openMirrorTarget() (*files.Local, func(), error) {
	dir := r.plan.Resolved
	protect, err := r.c.Sites.Guard(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(protect) > 0 {
		return nil, nil, fmt.Errorf("%s holds cairn's own files: the restore copies it, keeping them", dir)
	}
	unlock, err := r.c.Sites.Lock(dir, targetlock.Write)
	if err != nil {
		return nil, nil, err
	}
	target, err := files.CreateLocal(dir)
	if err == nil && target.Root() != dir {
		target.Close()
		err = fmt.Errorf("%s changed while being opened", dir)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return target, unlock, nil
}

// quiet waits until the second of each load is over, before the clone
// changes those databases itself: the change then shows in UPDATE_TIME,
// and what the load left is not taken for what the tables hold (see
// loadedState.quiet).
func (r *run) quiet(ctx context.Context) {
	for _, l := range r.loaded {
		if d := l.quiet.Sub(r.c.now()); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
}

// stopMirror ends the copying startMirror began (the source's snapshot is
// over) and counts what it wrote.
func (r *run) stopMirror() {
	r.rep.totals.addFiles(r.mirror.Stop())
	if r.unlockMirror != nil {
		r.unlockMirror()
		r.unlockMirror = nil
	}
}
