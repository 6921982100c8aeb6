package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/rewrite"
)

// planDatabases pairs the snapshot's databases with the target's:
// Options.Databases (NAME=DSN, or by position), else the target
// environment's databases: in the config, by position.
func (e *Engine) planDatabases(p *Plan) ([]Load, error) {
	s, o := p.Snapshot, p.Options
	if o.Only == Files || (o.Path != "" && o.Only != Databases) || len(s.Databases) == 0 {
		if o.Only == Databases && len(s.Databases) == 0 {
			return nil, fmt.Errorf("--only db: snapshot %s holds no databases: %w", s.ShortID(), cairn.ErrNotFound)
		}
		return nil, nil
	}
	opts := e.openOptions(p)
	if len(o.Databases) > 0 {
		return e.namedDatabases(s, o.Databases, opts)
	}
	if p.Env == nil || len(p.Env.Databases) == 0 {
		where := p.Dir
		if p.Env != nil {
			where = p.Env.Name() + " (no databases: in the config)"
		}
		if o.Only == Databases {
			return nil, fmt.Errorf("%w: --only db: nowhere to restore the databases of snapshot %s to %s. Try: --database DSN (one per database: %s)", cairn.ErrInvalidArgument, s.ShortID(), where, dbNames(s))
		}
		p.Notices = append(p.Notices, fmt.Sprintf("the snapshot's database(s) %s are not restored to %s. Try: --database DSN (one per database) to restore them too", dbNames(s), where))
		return nil, nil
	}
	if len(p.Env.Databases) < len(s.Databases) {
		return nil, fmt.Errorf("%w: snapshot %s holds %d database(s) (%s) but %s lists %d. Try: add the missing ones to its databases:, or name targets with --database NAME=DSN",
			cairn.ErrInvalidArgument, s.ShortID(), len(s.Databases), dbNames(s), p.Env.Name(), len(p.Env.Databases))
	}
	var plan []Load
	for i, from := range s.Databases {
		db, err := e.Sites.OpenDatabase(p.Env.Databases[i], opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Env.Name(), err)
		}
		plan = append(plan, Load{from, db})
	}
	return plan, nil
}

// namedDatabases pairs the snapshot's databases with args, each a DSN
// (by position) or NAME=DSN.
func (e *Engine) namedDatabases(s *cairn.Snapshot, args []string, opts database.Options) ([]Load, error) {
	var plan []Load
	for i, arg := range args {
		name, dsn, named := strings.Cut(arg, "=")
		if !named || strings.Contains(name, "://") {
			name, dsn = "", arg
		}
		from, ok := cairn.DatabaseInfo{}, false
		switch {
		case name != "":
			for _, d := range s.Databases {
				if d.Name == name {
					from, ok = d, true
				}
			}
			if !ok {
				return nil, fmt.Errorf("%w: --database %s=…: snapshot %s holds no database %q (it holds %s)", cairn.ErrInvalidArgument, name, s.ShortID(), name, dbNames(s))
			}
		case i < len(s.Databases):
			from = s.Databases[i]
		default:
			return nil, fmt.Errorf("%w: %d --database given, but snapshot %s holds %d database(s): %s", cairn.ErrInvalidArgument, len(args), s.ShortID(), len(s.Databases), dbNames(s))
		}
		db, err := e.Sites.OpenDatabase(cairn.NewDSN(dsn), opts)
		if err != nil {
			return nil, err
		}
		plan = append(plan, Load{from, db})
	}
	return plan, nil
}

func dbNames(s *cairn.Snapshot) string {
	var names []string
	for _, d := range s.Databases {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

// RestoreDatabases replaces each of the plan's databases with its dump,
// one after the other; the first failure stops the restore (that
// database is left as it was; those before it are restored, and the
// error says which).
func (e *Engine) RestoreDatabases(ctx context.Context, p *Plan, rep cairn.Reporter) error {
	if len(p.Databases) > 0 {
		for _, pair := range p.Pairs {
			rep.Event(cairn.RewritePair{From: pair.From, To: pair.To, DryRun: p.Options.DryRun})
		}
	}
	errs := make([]error, len(p.Databases))
	for i, l := range p.Databases {
		if errs[i] = e.restoreDatabase(ctx, p, l, rep); errs[i] != nil {
			if i > 0 && !p.Options.DryRun {
				for j := i + 1; j < len(p.Databases); j++ {
					errs[j] = errNotRun
				}
				return fmt.Errorf("%w%s", errs[i], SwappedNote(p.Databases, errs))
			}
			return errs[i]
		}
	}
	return nil
}

// errNotRun marks a database a restore did not get to.
var errNotRun = errors.New("not restored")

// SwappedNote says, after a failure of some of a restore's databases
// (errs, one per load; nil: restored), which of them were already swapped
// in and which were not: a multi-database restore is not one
// transaction.
func SwappedNote(loads []Load, errs []error) string {
	var done, not []string
	for i, l := range loads {
		if i < len(errs) && errs[i] == nil {
			done = append(done, l.From.Name+" → "+l.To.String())
		} else {
			not = append(not, l.From.Name)
		}
	}
	if len(done) == 0 {
		return ""
	}
	return fmt.Sprintf(". Databases already restored and swapped in: %s; left as they were: %s. Try: fix the cause and restore again (databases already restored are restored again), or restore the swapped ones from an earlier snapshot to undo them",
		strings.Join(done, ", "), strings.Join(not, ", "))
}

func (e *Engine) restoreDatabase(ctx context.Context, p *Plan, l Load, rep cairn.Reporter) error {
	if p.Options.DryRun {
		ev := cairn.DatabasePlanned{Name: l.From.Name, Target: l.To.String(), Tables: l.From.Tables, Rows: l.From.Rows, DumpBytes: l.From.Bytes}
		if in, err := database.Inspect(ctx, l.To); err == nil { // unreachable: the real restore says why
			ev.InPlace, ev.Why = in.InPlace, in.Why
		}
		rep.Event(ev)
		return nil
	}
	want, err := e.Store.Tables(ctx, p.Snapshot, l.From.Name)
	if err != nil {
		return err
	}
	if e.Invalidator != nil {
		e.Invalidator.Invalidate(ctx, l.To)
	}
	e.log().Info("restore database", "snapshot", p.Snapshot.ID, "database", l.From.Name, "target", l.To.String(), "rewrite", len(p.Pairs))
	stage := rep.Stage("database " + l.From.Name)
	stage.Total(0, l.From.Bytes)
	recorded := func() (cairn.DatabaseInfo, []cairn.TableStat, error) { return l.From, want, nil }
	if parts, err := e.openParts(ctx, p, l); err != nil || parts != nil {
		if err != nil {
			stage.End()
			return err
		}
		defer parts.Close()
		for i := range parts.parts {
			parts.parts[i] = ProgressReader{parts.parts[i], stage}
		}
		return e.Load(ctx, l, parts, stage, recorded, p.Pairs, nil, rep)
	}
	dump, err := e.Store.OpenDump(ctx, p.Snapshot, l.From.Name)
	if err != nil {
		stage.End()
		return err
	}
	defer dump.Close()
	return e.Load(ctx, l, ProgressReader{dump, stage}, stage, recorded, p.Pairs, nil, rep)
}

// dumpParts is a dump taken in parts, read by its parts by a database
// that loads them at once, else as their concatenation.
type dumpParts struct {
	parts  []io.Reader
	closes []io.Closer
	all    io.Reader
}

func (d *dumpParts) Read(p []byte) (int, error) {
	if d.all == nil {
		d.all = io.MultiReader(d.parts...)
	}
	return d.all.Read(p)
}

func (d *dumpParts) Close() error {
	for _, c := range d.closes {
		c.Close()
	}
	return nil
}

// openParts opens the dump's parts when it has several and the target
// loads them at once (nothing rewritten on the way), else returns nil.
func (e *Engine) openParts(ctx context.Context, p *Plan, l Load) (*dumpParts, error) {
	ps, ok := e.Store.(PartsStore)
	if _, loads := l.To.(cairn.PartedReplacer); !ok || !loads || len(p.Pairs) > 0 {
		return nil, nil
	}
	rcs, err := ps.OpenDumpParts(ctx, p.Snapshot, l.From.Name)
	if err != nil || len(rcs) < 2 {
		for _, rc := range rcs {
			rc.Close()
		}
		return nil, err
	}
	d := &dumpParts{}
	for _, rc := range rcs {
		d.parts, d.closes = append(d.parts, rc), append(d.closes, rc)
	}
	return d, nil
}

// Load replaces l.To with a dump, rewritten on its way in by pairs (stage
// shows the dump's progress and is ended before the result). Before the
// swap, recorded gives the database's record in the snapshot and its
// tables, which the loaded copy must match; an error from it cancels the
// swap. keep, if not nil, is also given the dump as it goes in.
func (e *Engine) Load(ctx context.Context, l Load, dump io.Reader, stage cairn.Stage, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error), pairs []rewrite.Pair, keep io.Writer, rep cairn.Reporter) error {
	start := time.Now()
	unlock, err := e.Sites.LockDatabase(l.To)
	if err != nil {
		stage.End()
		return err
	}
	defer unlock()
	in := dump
	var rewritten <-chan rewriteResult
	var rewriter io.Closer
	if len(pairs) > 0 {
		var rc io.ReadCloser
		rc, rewritten = rewriteStream(in, pairs, database.DialectOf(l.From.Engine))
		in, rewriter = rc, rc
	}
	if keep != nil {
		in = io.TeeReader(in, keep)
	}
	var differ []string
	info := l.From
	verify := func(got []cairn.TableStat) error {
		i, want, err := recorded()
		if err != nil {
			return err
		}
		info = i
		if len(pairs) > 0 {
			// Rewriting changes content, not rows: checksums cannot match.
			want = BlankChecksums(want)
		}
		return cairn.Expect(want, &differ)(got)
	}
	if parts, ok := dump.(*dumpParts); ok && len(pairs) == 0 && keep == nil {
		if pr, ok := l.To.(cairn.PartedReplacer); ok {
			err = pr.ReplaceParts(ctx, parts.parts, verify)
		} else {
			err = l.To.Replace(ctx, in, verify)
		}
	} else {
		err = l.To.Replace(ctx, in, verify)
	}
	stage.End()
	var rw rewriteResult
	if rewritten != nil {
		rewriter.Close() // ends the rewriter if Replace stopped reading early
		rw = <-rewritten
		if err == nil && rw.err != nil {
			err = rw.err
		}
	}
	if err != nil {
		return fmt.Errorf("restore database %s into %s: %w", l.From.Name, l.To, err)
	}
	if rw.report != nil {
		ReportRewrite(info.Name, rw.report, rep)
	}
	if len(differ) > 0 {
		rep.Event(cairn.Warning{Message: fmt.Sprintf("database %s: the checksum of %s differs from the one taken with the snapshot, though the row counts match: the table changed while the snapshot was taken, or data did not survive the round trip",
			l.From.Name, strings.Join(differ, ", "))})
	}
	rep.Event(cairn.DatabaseRestored{Name: info.Name, Target: l.To.String(), Tables: info.Tables, Rows: info.Rows, DumpBytes: info.Bytes,
		ChecksumsDiffer: differ, Duration: time.Since(start)})
	return nil
}

// BlankChecksums drops the checksums of tables whose content a rewrite
// changed.
func BlankChecksums(stats []cairn.TableStat) []cairn.TableStat {
	out := append([]cairn.TableStat(nil), stats...)
	for i := range out {
		out[i].Checksum = ""
	}
	return out
}

type rewriteResult struct {
	report *rewrite.Report
	err    error
}

// rewriteStream rewrites a dump on its way to the database, streaming.
func rewriteStream(in io.Reader, pairs []rewrite.Pair, dialect rewrite.Dialect) (io.ReadCloser, <-chan rewriteResult) {
	pr, pw := io.Pipe()
	done := make(chan rewriteResult, 1)
	go func() {
		w, err := rewrite.New(rewrite.Config{Pairs: pairs})
		var rep *rewrite.Report
		if err == nil {
			rep, err = w.Dump(dialect, in, pw)
		}
		pw.CloseWithError(err)
		done <- rewriteResult{rep, err}
	}()
	return pr, done
}

// ReportRewrite reports what the rewrite of one database did: the
// replacements, and warnings for what it left as it was.
func ReportRewrite(name string, r *rewrite.Report, rep cairn.Reporter) {
	var values, matches int64
	for _, c := range r.Counts {
		values += c.Values
		matches += c.Replacements
	}
	rep.Event(cairn.Rewritten{Database: name, Matches: matches, Values: values})
	for _, u := range r.Unsafe {
		rep.Event(cairn.Warning{Message: fmt.Sprintf("database %s: line %d, %s.%s left as it was: %s", name, u.Line, u.Table, u.Column, u.Reason)})
	}
	for _, u := range r.Unparsed {
		rep.Event(cairn.Warning{Message: fmt.Sprintf("database %s: line %d of the dump (%s) was loaded unchanged, not understood: %s. Try: check it on the target, and rewrite it there by hand", name, u.Line, u.Table, u.Reason)})
	}
}

// ProgressReader reports the bytes read to a progress.
type ProgressReader struct {
	R        io.Reader
	Progress cairn.Progress
}

func (p ProgressReader) Read(b []byte) (int, error) {
	n, err := p.R.Read(b)
	p.Progress.Done(0, int64(n))
	return n, err
}
