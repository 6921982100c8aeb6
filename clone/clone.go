// Package clone makes one environment an exact, working copy of another:
// a snapshot of the source (fresh, or one named), a safety snapshot of the
// target to roll back to, then a restore of the source's snapshot onto the
// target, its databases rewritten to the target's URL and files path. A
// fresh clone runs those stages side by side (see stream.go); a MySQL or
// MariaDB target the last clone left untouched gets only the rows that
// changed (see delta.go), and its safety snapshot takes what that clone
// kept (see state.go). The source is only read.
//
// The records of what clones left in their targets are the package's own
// (Records); anything else that replaces a target database must
// Invalidate them first, as package restore does through its Invalidator.
// Confirming a protected target is the caller's: Protected says which.
package clone

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
	"github.com/cairn-backup/cairn/site"
)

// Cloner clones environments through one repository.
type Cloner struct {
	Repo    *repo.Repo
	Sites   *site.Catalog
	Restore *restore.Engine
	Records *Records
	Log     *slog.Logger
	// Clock is the time (the machine's if nil).
	Clock cairn.Clock
	// Version names cairn in the URL check's User-Agent.
	Version string
}

// Options tune a clone.
type Options struct {
	// From clones this snapshot of the source (a selector: latest, an ID,
	// a time) instead of a fresh one.
	From     string
	DryRun   bool
	NoSafety bool // take no safety snapshot of the target
	// TerminateSessions and LockWait: see database.Options.
	TerminateSessions bool
	LockWait          time.Duration
}

func (c *Cloner) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func (c *Cloner) now() time.Time { return c.Clock.Now() }

// Protected lists the protected environments a clone onto dst writes: dst
// itself, those whose files its files are, hold or lie in, and those one
// of whose databases is one of its. Each must be confirmed before Run.
func Protected(sites *site.Catalog, dst *cairn.Environment) ([]*cairn.Environment, error) {
	var out []*cairn.Environment
	if dst.Protected {
		out = append(out, dst)
	}
	locs := dst.Nodes
	if len(locs) == 0 && dst.Files.Path != "" {
		locs = []cairn.Location{dst.Files}
	}
	for _, l := range locs {
		dir := l.Key() // another host's files, by their location
		if l.IsLocal() {
			var err error
			if dir, err = files.Resolve(l.Path); err != nil {
				return nil, err
			}
		}
		for _, e := range sites.ProtectedAt(dir) {
			if e != dst && !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	// A database of the target may be a protected environment's too.
	var dbs []cairn.Database
	for _, dsn := range dst.Databases {
		if db, err := database.Open(dsn, database.Options{}); err == nil {
			dbs = append(dbs, db)
		}
	}
	return append(out, sites.ProtectedDatabases(dbs, out)...), nil
}

// Run clones src onto dst and reports what it does to rep; it ends with a
// cairn.CloneSummary event.
func (c *Cloner) Run(ctx context.Context, src, dst *cairn.Environment, o Options, rep cairn.Reporter) error {
	if src.Name() == dst.Name() {
		return fmt.Errorf("%w: clone %s onto itself? Try: cairn restore %s@SEL to roll it back", cairn.ErrInvalidArgument, src.Name(), src.Name())
	}
	r := &reporter{Reporter: rep, totals: &totals{}}
	start := c.now()
	sum := cairn.CloneSummary{Source: src.Name(), Target: dst.Name(), DryRun: o.DryRun, Seconds: map[string]float64{}}
	var err error
	checked := false
	if o.From == "" && !o.DryRun {
		err, checked = c.stream(ctx, src, dst, o, &sum, r), true
	} else {
		err = c.fromSnapshot(ctx, src, dst, o, &sum, r)
	}
	if errors.Is(err, errOutlined) {
		return nil
	}
	if err != nil {
		return err
	}
	if !o.DryRun && !checked && dst.URL != "" {
		sum.URLStatus = c.checkURL(ctx, dst.URL, r, nil)
	}
	sum.Seconds["total"] = c.now().Sub(start).Seconds()
	r.totals.fill(&sum)
	rep.Event(sum)
	return nil
}

// errOutlined ends a dry run that could only outline the clone.
var errOutlined = errors.New("outlined")

// fromSnapshot clones an existing snapshot of src (or plans a dry run
// with the latest one): a safety snapshot, then a restore.
func (c *Cloner) fromSnapshot(ctx context.Context, src, dst *cairn.Environment, o Options, sum *cairn.CloneSummary, rep *reporter) error {
	t0 := c.now()
	sel := o.From
	if sel == "" {
		sel = "latest"
	}
	snap, err := c.pick(ctx, src.Name()+"@"+sel)
	if o.From == "" && errors.Is(err, cairn.ErrNotFound) {
		c.outline(src, dst, rep)
		return errOutlined
	}
	if err != nil {
		return err
	}
	if o.From == "" {
		rep.Event(cairn.Notice{Message: fmt.Sprintf("dry run: planning with the latest snapshot of %s (%s); a real clone takes a fresh one", src.Name(), snap.ShortID())})
	}
	sum.Seconds["snapshot"] = c.now().Sub(t0).Seconds()
	sum.Snapshot = snap.ID
	if !o.DryRun && !o.NoSafety {
		t0 := c.now()
		// The target's files were most likely cloned from the source:
		// its snapshot spares rereading those that did not change.
		safety, err := c.safetySnapshot(ctx, dst, takeOptions{hints: []string{snap.ID}}, rep)
		if err != nil {
			return err
		}
		if safety != nil {
			sum.Seconds["safety_snapshot"] = c.now().Sub(t0).Seconds()
			sum.SafetySnapshot = safety.ID
		}
	}
	plan, err := c.Restore.Plan(ctx, snap, restore.Target{Env: dst}, c.restoreOptions(o))
	if err != nil {
		return err
	}
	t0 = c.now()
	if err := c.Restore.Run(ctx, plan, rep); err != nil {
		return err
	}
	sum.Seconds["restore"] = c.now().Sub(t0).Seconds()
	if o.DryRun && o.From == "" {
		c.planDeltas(ctx, plan, rep)
	}
	return nil
}

func (c *Cloner) restoreOptions(o Options) restore.Options {
	return restore.Options{DryRun: o.DryRun, Workers: 8, TerminateSessions: o.TerminateSessions, LockWait: o.LockWait}
}

// outline reports what a clone would do when there is no snapshot of the
// source to plan the details with.
func (c *Cloner) outline(src, dst *cairn.Environment, rep cairn.Reporter) {
	rep.Event(cairn.Notice{Message: fmt.Sprintf("dry run: %s has no snapshot yet, so this is an outline; a snapshot first gives the full plan (files and tables)", src.Name())})
	step := func(format string, a ...any) { rep.Event(cairn.PlanStep{Text: fmt.Sprintf(format, a...)}) }
	step("would snapshot %s (files %s, %d database(s))", src.Name(), src.Files, len(src.Databases))
	step("would take a safety snapshot of %s", dst.Name())
	if src.URL != "" && dst.URL != "" && src.URL != dst.URL {
		step("rewrite %s → %s", strings.TrimRight(src.URL, "/"), strings.TrimRight(dst.URL, "/"))
	}
	for i, dsn := range src.Databases {
		if i < len(dst.Databases) {
			step("database %s → %s: would load into a scratch database and swap it in", dsn, dst.Databases[i])
		}
	}
	step("would sync files %s → %s, keeping %v", src.Files, dst.Files, append(append([]string(nil), dst.Exclude...), dst.Preserve...))
	for _, act := range dst.AfterRestore {
		rep.Event(cairn.ActionRun{Action: act, DryRun: true})
	}
}

// pick resolves a selector among the repository's snapshots.
func (c *Cloner) pick(ctx context.Context, arg string) (*cairn.Snapshot, error) {
	sel, err := cairn.ParseSelector(arg, time.Local)
	if err != nil {
		return nil, err
	}
	all, err := c.Repo.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	return sel.Pick(all)
}

// takeOptions tune takeSnapshot.
type takeOptions struct {
	hints []string      // see cairn.SnapshotRequest.Hints
	noDB  bool          // files only
	reuse []repo.Reused // databases taken so, by their DSN (see state.go)
}

// takeSnapshot snapshots an environment.
func (c *Cloner) takeSnapshot(ctx context.Context, e *cairn.Environment, label string, o takeOptions, rep cairn.Reporter) (*cairn.Snapshot, error) {
	req, err := c.Sites.Request(ctx, e, nil, o.noDB)
	if err != nil {
		return nil, err
	}
	req.Hints = o.hints
	for i, db := range req.Databases {
		for _, re := range o.reuse {
			if re.String() == db.String() {
				req.Databases[i] = re
			}
		}
	}
	stage := rep.Stage(label)
	snap, err := c.Sites.Snapshot(ctx, c.Repo, req, stage)
	stage.End()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	for _, w := range snap.Warnings {
		rep.Event(cairn.Warning{Message: w})
	}
	c.log().Info("snapshot saved", "id", snap.ID, "environment", snap.Name())
	return snap, nil
}

// safetySnapshot snapshots a clone's target before it is overwritten; a
// database the target does not have yet holds nothing to keep (the clone
// creates it), so then the files are kept alone.
func (c *Cloner) safetySnapshot(ctx context.Context, dst *cairn.Environment, o takeOptions, rep cairn.Reporter) (*cairn.Snapshot, error) {
	if dst.Files.IsLocal() {
		if _, err := os.Stat(dst.Files.Path); err != nil {
			return nil, nil
		}
	} else if _, err := c.Sites.OpenRemote(ctx, dst.Files, false); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", dst.Name(), err)
	}
	label := "safety snapshot " + dst.Name()
	safety, err := c.takeSnapshot(ctx, dst, label, o, rep)
	if err != nil && len(o.reuse) > 0 && ctx.Err() == nil {
		// What the last clone kept did not do: the databases are
		// dumped whole.
		rep.Event(cairn.Notice{Message: fmt.Sprintf("the safety snapshot of %s could not take what the last clone kept (%v); its databases are dumped whole", dst.Name(), err)})
		o.reuse = nil
		safety, err = c.takeSnapshot(ctx, dst, label, o, rep)
	}
	if errors.Is(err, cairn.ErrNotFound) {
		rep.Event(cairn.Notice{Message: fmt.Sprintf("%v; the safety snapshot holds %s's files only", err, dst.Name())})
		o.noDB, o.reuse = true, nil
		safety, err = c.takeSnapshot(ctx, dst, label, o, rep)
	}
	if err != nil {
		advice := ". Try: fix the cause, or --no-safety-snapshot"
		if strings.Contains(err.Error(), "Try: ") {
			advice = "; or clone without it: --no-safety-snapshot"
		}
		return nil, fmt.Errorf("safety snapshot of %s failed, so it was left as it was: %w%s", dst.Name(), err, advice)
	}
	rep.Event(cairn.SafetySnapshot{Environment: dst.Name(), Snapshot: safety})
	return safety, nil
}

// checkURL fetches the target's URL, if it is reachable from here, and
// reports the HTTP status: a quick sign the copy serves pages. connected,
// if set, is called once the server answers, before the request goes out
// (a page view may write to the site's database).
func (c *Cloner) checkURL(ctx context.Context, u string, rep cairn.Reporter, connected func()) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("User-Agent", "cairn/"+c.Version+" (clone check)")
	client := http.DefaultClient
	if connected != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		dialer := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				connected()
			}
			return conn, err
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	resp, err := client.Do(req)
	if err != nil {
		rep.Event(cairn.URLChecked{URL: u, Err: err})
		return 0
	}
	resp.Body.Close()
	rep.Event(cairn.URLChecked{URL: u, Status: resp.StatusCode, StatusText: resp.Status})
	return resp.StatusCode
}

// reporter passes a clone's events on, adding up what they tell for the
// clone's summary.
type reporter struct {
	cairn.Reporter
	totals *totals
}

func (r *reporter) Event(e cairn.Event) {
	switch e := e.(type) {
	case cairn.FilesRestored:
		if !e.DryRun {
			r.totals.filesWritten.Add(e.Added + e.Updated)
			r.totals.filesDeleted.Add(e.Deleted)
			r.totals.bytesWritten.Add(e.BytesWritten)
		}
	case cairn.DatabaseRestored:
		if e.Delta == nil {
			r.totals.rows.Add(e.Rows)
		}
	case cairn.Rewritten:
		r.totals.replacements.Add(e.Matches)
	}
	r.Reporter.Event(e)
}

// totals adds up what a clone did; its stages may add at once.
type totals struct {
	filesWritten, filesDeleted, bytesWritten, rows, replacements atomic.Int64
}

func (t *totals) addFiles(st files.Stats) {
	t.filesWritten.Add(st.Added + st.Updated)
	t.filesDeleted.Add(st.Deleted)
	t.bytesWritten.Add(st.BytesWritten)
}

func (t *totals) fill(sum *cairn.CloneSummary) {
	sum.FilesWritten, sum.FilesDeleted, sum.BytesWritten = t.filesWritten.Load(), t.filesDeleted.Load(), t.bytesWritten.Load()
	sum.Rows, sum.Replacements = t.rows.Load(), t.replacements.Load()
}
