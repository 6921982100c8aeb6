package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/actions"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
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
	gone bool
}

func (d *detachable) Write(p []byte) (int, error) {
	if !d.gone {
		if _, err := d.pw.Write(p); err != nil {
			d.gone = true
		}
	}
	return len(p), nil
}

// cloneRun is one fresh clone in progress: what its side-by-side stages
// share.
type cloneRun struct {
	a       *app
	r       *repo.Repo
	ctx     context.Context
	src     *cairn.Environment
	ro      restoreOptions
	req     cairn.SnapshotRequest // the source's snapshot, its dumps teed
	t       restoreTarget
	after   []actions.Action
	loads   []dbRestore      // source database i → target database i
	readers []*io.PipeReader // database i's dump, as it streams
	tees    []*detachable
	hints   []string      // for the safety snapshot (see SnapshotRequest.Hints)
	plans   []*deltaPlan  // load i as a delta, or nil (see clone_delta.go)
	loaded  []loadedState // what load i left, for the record
	source  *snapshotResult
	safety  *snapshotResult
	mirror  *files.Mirror // the source's files onto the target, as read
	// unlockMirror releases the target's lock startMirror took, and its
	// handle.
	unlockMirror func()
}

// streamClone clones src onto dst with a fresh snapshot, its stages side by
// side (see above). ro are the restore options clone set up.
func (a *app) streamClone(ctx context.Context, r *repo.Repo, src, dst *cairn.Environment, ro restoreOptions, noSafety bool, sum *cloneSummaryJSON) error {
	start := time.Now()
	interrupted := ctx.Err
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := a.planClone(ctx, r, src, dst, ro)
	if err != nil {
		return err
	}
	go c.snapshot()
	var wg sync.WaitGroup
	loadErrs := make([]error, len(c.loads))
	for i := range c.loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loadErrs[i] = c.load(i)
		}()
	}

	if noSafety {
		c.safety.set(nil, nil)
	} else {
		t0 := time.Now()
		s, err := a.safetySnapshot(ctx, r, dst, takeOptions{hints: c.hints, reuse: c.reusable()}, ro.json)
		if s != nil {
			sum.Seconds["safety_snapshot"] = time.Since(t0).Seconds()
			sum.SafetySnapshot = s.ID
		}
		c.safety.set(s, err)
	}
	if c.safety.err == nil && !c.source.failed() {
		c.startMirror()
	}
	snap, err := c.ready()
	if err != nil {
		cancel()
		wg.Wait()
		<-c.source.done // its dumps' loads are over, so it ends
		c.stopMirror()
		if c.safety.err != nil || interrupted() != nil {
			return err
		}
		undo := ""
		if c.safety.snap != nil {
			undo = fmt.Sprintf(", or put them back with cairn restore %s@%s --only files", dst.Name(), c.safety.snap.ShortID())
		}
		return fmt.Errorf("%w. Nothing was swapped into %s's databases; its files may be partly synced: run the same command again once the cause is fixed%s", err, dst.Name(), undo)
	}
	c.stopMirror() // the snapshot reads no more
	sum.Snapshot = snap.ID
	sum.Seconds["snapshot"] = c.source.took.Seconds()
	t0 := time.Now()
	keep, _, ferr := a.restoreFiles(ctx, r, snap, c.t, ro)
	sum.Seconds["files"] = time.Since(t0).Seconds()
	if ferr != nil {
		cancel() // scratch databases are dropped; nothing is swapped
	}
	wg.Wait()
	sum.Seconds["databases"] = time.Since(start).Seconds()
	if err := errors.Join(loadErrs...); err != nil {
		err = fmt.Errorf("%w%s", err, swappedNote(c.loads, loadErrs))
		if ferr == nil {
			return fmt.Errorf("%w. The files were synced; run the same command again to finish the clone, or roll back with the safety snapshot", err)
		}
		return err
	}
	if ferr != nil {
		return ferr
	}
	if err := a.configureApp(snap, c.t, keep, ro); err != nil {
		return err
	}
	if len(c.after) > 0 {
		c.quiet(ctx)
	}
	if err := a.afterRestore(ctx, c.t, c.after, ro); err != nil {
		return err
	}
	if dst.URL != "" {
		// Before noting what the clone left: a page view may write to
		// the database.
		sum.URLStatus = a.checkURL(ctx, dst.URL, ro.json, func() { c.quiet(ctx) })
	}
	for i, p := range c.loads {
		a.writeCloneRecord(ctx, r, p.to, snap, snap.Databases[i].Name, c.t.pairs, c.loaded[i])
	}
	return nil
}

// planClone sets a fresh clone up: the source's snapshot request with each
// dump teed to a load, and the target.
func (a *app) planClone(ctx context.Context, r *repo.Repo, src, dst *cairn.Environment, ro restoreOptions) (*cloneRun, error) {
	c := &cloneRun{a: a, r: r, ctx: ctx, src: src, ro: ro, source: newSnapshotResult(), safety: newSnapshotResult()}
	var err error
	if c.req, err = a.sites.Request(src, nil, false); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(c.req.Path)
	if err != nil {
		return nil, err
	}
	// What the snapshot will say of itself, for the rewrite pairs.
	planned := &cairn.Snapshot{Site: c.req.Site, Environment: c.req.Environment, URL: c.req.URL, Source: abs}
	if c.t, err = a.restoreTarget(planned, ro); err != nil {
		return nil, err
	}
	keep, err := pattern.Compile(c.t.keep...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cairn.ErrInvalidArgument, err)
	}
	c.mirror = files.NewMirror(keep)
	c.req.Mirror = c.mirror
	c.after = dst.AfterRestore
	if len(dst.Databases) < len(c.req.Databases) {
		return nil, fmt.Errorf("%w: %s has %d database(s) but %s lists %d. Try: add the missing ones to its databases:",
			cairn.ErrInvalidArgument, src.Name(), len(c.req.Databases), dst.Name(), len(dst.Databases))
	}
	// The target was most likely cloned from the source's latest snapshot:
	// its files need no rereading where they did not change.
	if prev, err := a.pickIn(ctx, r, src.Name()+"@latest"); err == nil {
		c.hints = []string{prev.ID}
	}
	for i, db := range c.req.Databases {
		to, err := database.Open(dst.Databases[i], database.Options{TerminateSessions: ro.terminate, LockWait: ro.lockWait, Beneath: a.sites.FilesRoots("")})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dst.Name(), err)
		}
		pr, pw := io.Pipe()
		c.tees = append(c.tees, &detachable{pw: pw})
		c.req.Databases[i] = teeDatabase{Database: db, tee: c.tees[i]}
		p := dbRestore{from: cairn.DatabaseInfo{Name: db.Name(), Engine: db.Engine()}, to: to}
		c.loads = append(c.loads, p)
		c.readers = append(c.readers, pr)
		// Before the safety snapshot starts: a delta's guard then covers
		// everything since the target's dump.
		plan, _ := a.deltaBase(ctx, r, p, c.t.pairs, c.after)
		c.plans = append(c.plans, plan)
	}
	c.loaded = make([]loadedState, len(c.loads))
	return c, nil
}

// reusable returns, for the safety snapshot, the target databases that
// can be taken from what the last clone kept (see clone_state.go).
func (c *cloneRun) reusable() []repo.Reused {
	var out []repo.Reused
	for _, p := range c.loads {
		if re, ok := c.a.reuseState(c.ctx, c.r, p.to); ok {
			out = append(out, re.Reused)
		}
	}
	return out
}

// snapshot takes the source's snapshot.
func (c *cloneRun) snapshot() {
	t0 := time.Now()
	bar := c.a.bar("snapshot")
	snap, err := c.a.sites.Snapshot(c.ctx, c.r, c.req, bar)
	bar.Finish()
	if err != nil {
		err = fmt.Errorf("snapshot %s: %w", c.src.Name(), err)
	}
	for _, tee := range c.tees {
		// A snapshot that failed before dumping a database must still end
		// its load; a finished dump's pipe stays as is.
		tee.pw.CloseWithError(errors.Join(err, errors.New("the snapshot did not dump this database")))
	}
	c.source.took = time.Since(t0)
	c.source.set(snap, err)
}

// ready waits for both snapshots: nothing of the target is replaced before
// they are complete.
func (c *cloneRun) ready() (*cairn.Snapshot, error) {
	snap, err := c.source.wait(c.ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.safety.wait(c.ctx); err != nil {
		return nil, err
	}
	return snap, nil
}

// load brings target database i up to the snapshot's dump as it streams:
// row by row when the target still holds what the last clone left (see
// clone_delta.go), else whole, through a scratch database.
func (c *cloneRun) load(i int) error {
	a, ctx, p, pairs := c.a, c.ctx, c.loads[i], c.t.pairs
	recorded := func() (cairn.DatabaseInfo, []cairn.TableStat, error) {
		snap, err := c.ready()
		if err != nil {
			return p.from, nil, fmt.Errorf("nothing was swapped in: %w", err)
		}
		info := snap.Databases[i]
		want, err := c.r.Tables(ctx, snap, info.Name)
		return info, want, err
	}
	// The dump again, read back from the complete snapshot.
	reread := func() (io.ReadCloser, error) {
		snap, err := c.ready()
		if err != nil {
			return nil, err
		}
		return c.r.OpenDump(ctx, snap, snap.Databases[i].Name)
	}
	a.log.Info("clone database", "database", p.from.Name, "target", p.to.String(), "rewrite", len(pairs))
	bar := a.bar("database " + p.from.Name)
	var err error
	if plan := c.plans[i]; plan != nil {
		c.loaded[i], err = a.loadDelta(ctx, c.r, plan, p, progressReader{c.readers[i], bar}, recorded, func() *cairn.Snapshot { return c.safety.snap }, pairs, c.ro)
		if errors.Is(err, mysql.ErrNoDelta) {
			fmt.Fprintf(a.stderr, "note: database %s: %v; loading the whole dump\n", p.from.Name, err)
			// The tee detaches, so that the snapshot completes.
			c.readers[i].CloseWithError(err)
			var whole io.ReadCloser
			if whole, err = reread(); err == nil {
				err = c.loadWhole(i, progressReader{whole, bar}, bar, recorded)
				whole.Close()
			}
		}
		bar.Finish()
	} else {
		err = c.loadWhole(i, progressReader{c.readers[i], bar}, bar, recorded)
	}
	c.readers[i].CloseWithError(errors.Join(err, io.ErrClosedPipe)) // the tee detaches
	return err
}

// loadWhole loads target database i with the whole dump, and keeps what
// it read for the next safety snapshot (see clone_state.go).
func (c *cloneRun) loadWhole(i int, dump io.Reader, bar *progress.Bar, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error)) error {
	a, p := c.a, c.loads[i]
	var keep io.Writer
	end := func(error) string { return "" }
	if _, ok := p.to.(database.DeltaTarget); ok && p.from.Engine == "mysql" {
		keep, end = a.saveWholeState(c.ctx, c.r, p.to, func() ([]cairn.TableStat, error) {
			_, want, err := recorded()
			return blankChecksums(want), err
		})
	}
	var index func(error) *mysql.RowIndex
	if keep != nil {
		// The rows of the dump as it comes, for the next delta.
		dump, index = indexDump(c.ctx, dump)
	}
	err := a.loadDatabase(c.ctx, p, dump, bar, recorded, c.t.pairs, c.ro, keep)
	id := end(err)
	if index != nil {
		x := index(err)
		if err == nil {
			c.loaded[i] = a.noteLoad(c.ctx, p.to, id, nil)
			c.loaded[i].index = x
		}
	}
	return err
}

// indexDump reads a row index of what is read from dump (see
// mysql.RowIndex), without ever holding up the reading; end returns it,
// or nil, once reading ended (err nil when the whole dump was read).
func indexDump(ctx context.Context, dump io.Reader) (io.Reader, func(err error) *mysql.RowIndex) {
	w, end := teeTo(func(r io.Reader) (*mysql.RowIndex, error) { return mysql.IndexDump(ctx, r) })
	return io.TeeReader(dump, w), func(err error) *mysql.RowIndex { x, _ := end(err); return x }
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
		if err == nil && tee.gone {
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
func (c *cloneRun) startMirror() {
	target, unlock, err := c.openMirrorTarget()
	if err != nil {
		c.a.log.Info("copying the files as they are snapshotted failed; the restore does it", "err", err)
		return
	}
	c.unlockMirror = func() { target.Close(); unlock() }
	c.mirror.Start(target)
}

// openMirrorTarget locks and opens the clone's target directory, made if
// missing, as a restore onto it does.
func (c *cloneRun) openMirrorTarget() (*files.Local, func(), error) {
	dir, err := files.Resolve(c.t.dir)
	if err != nil {
		return nil, nil, err
	}
	protect, err := c.a.sites.Guard(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(protect) > 0 {
		return nil, nil, fmt.Errorf("%s holds cairn's own files: the restore copies it, keeping them", dir)
	}
	unlock, err := c.a.sites.Lock(dir, targetlock.Write)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		unlock()
		return nil, nil, err
	}
	target, err := files.OpenLocal(dir)
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
func (c *cloneRun) quiet(ctx context.Context) {
	for _, l := range c.loaded {
		if d := time.Until(l.quiet); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
}

// stopMirror ends the copying startMirror began (the source's snapshot is
// over) and counts what it wrote.
func (c *cloneRun) stopMirror() {
	c.a.totals.addFiles(c.mirror.Stop())
	if c.unlockMirror != nil {
		c.unlockMirror()
		c.unlockMirror = nil
	}
}

// safetySnapshot snapshots a clone's target before it is overwritten; a
// database the target does not have yet holds nothing to keep (the clone
// creates it), so then the files are kept alone.
func (a *app) safetySnapshot(ctx context.Context, r *repo.Repo, dst *cairn.Environment, o takeOptions, quiet bool) (*cairn.Snapshot, error) {
	if _, err := os.Stat(dst.Files.Path); err != nil {
		return nil, nil
	}
	label := "safety snapshot " + dst.Name()
	safety, err := a.takeSnapshot(ctx, r, dst, label, o)
	if err != nil && len(o.reuse) > 0 && ctx.Err() == nil {
		// What the last clone kept did not do: the databases are
		// dumped whole.
		a.log.Info("safety snapshot from what the last clone kept failed; dumping the databases whole", "err", err)
		o.reuse = nil
		safety, err = a.takeSnapshot(ctx, r, dst, label, o)
	}
	if errors.Is(err, cairn.ErrNotFound) {
		fmt.Fprintf(a.stderr, "note: %v; the safety snapshot holds %s's files only\n", err, dst.Name())
		o.noDB, o.reuse = true, nil
		safety, err = a.takeSnapshot(ctx, r, dst, label, o)
	}
	if err != nil {
		advice := ". Try: fix the cause, or --no-safety-snapshot"
		if strings.Contains(err.Error(), "Try: ") {
			advice = "; or clone without it: --no-safety-snapshot"
		}
		return nil, fmt.Errorf("safety snapshot of %s failed, so it was left as it was: %w%s", dst.Name(), err, advice)
	}
	if !quiet {
		fmt.Fprintf(a.stdout, "safety snapshot %s of %s: to undo this clone, cairn restore %s@%s\n", safety.ShortID(), dst.Name(), dst.Name(), safety.ShortID())
	}
	return safety, nil
}
