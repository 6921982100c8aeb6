package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/rewrite"
)

// dbRestore is one of a snapshot's databases and where it goes.
type dbRestore struct {
	from cairn.DatabaseInfo
	to   cairn.Database
}

// databaseTargets pairs the snapshot's databases with the target's: the
// --database DSNs (NAME=DSN, or by position), else the target
// environment's databases: in the config, by position.
func (a *app) databaseTargets(s *cairn.Snapshot, t restoreTarget, o restoreOptions) ([]dbRestore, error) {
	if o.only == "files" || (o.path != "" && o.only != "db") || len(s.Databases) == 0 {
		if o.only == "db" && len(s.Databases) == 0 {
			return nil, fmt.Errorf("--only db: snapshot %s holds no databases: %w", s.ShortID(), cairn.ErrNotFound)
		}
		return nil, nil
	}
	cat, err := a.catalog()
	if err != nil {
		return nil, err
	}
	opts := database.Options{TerminateSessions: o.terminate, LockWait: o.lockWait, Beneath: cat.FilesRoots(t.dir)}
	var plan []dbRestore
	if len(o.databases) > 0 {
		for i, arg := range o.databases {
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
					return nil, usagef("--database %s=…: snapshot %s holds no database %q (it holds %s)", name, s.ShortID(), name, dbNames(s))
				}
			case i < len(s.Databases):
				from = s.Databases[i]
			default:
				return nil, usagef("%d --database given, but snapshot %s holds %d database(s): %s", len(o.databases), s.ShortID(), len(s.Databases), dbNames(s))
			}
			db, err := database.Open(cairn.NewDSN(dsn), opts)
			if err != nil {
				return nil, err
			}
			plan = append(plan, dbRestore{from, db})
		}
		return plan, nil
	}
	if t.env == nil || len(t.env.Databases) == 0 {
		where := t.dir
		if t.env != nil {
			where = t.env.Name() + " (no databases: in the config)"
		}
		if o.only == "db" {
			return nil, usagef("--only db: nowhere to restore the databases of snapshot %s to %s. Try: --database DSN (one per database: %s)", s.ShortID(), where, dbNames(s))
		}
		fmt.Fprintf(a.stderr, "note: the snapshot's database(s) %s are not restored to %s. Try: --database DSN (one per database) to restore them too\n", dbNames(s), where)
		return nil, nil
	}
	if len(t.env.Databases) < len(s.Databases) {
		return nil, fmt.Errorf("%w: snapshot %s holds %d database(s) (%s) but %s lists %d. Try: add the missing ones to its databases:, or name targets with --database NAME=DSN",
			cairn.ErrInvalidArgument, s.ShortID(), len(s.Databases), dbNames(s), t.env.Name(), len(t.env.Databases))
	}
	for i, from := range s.Databases {
		db, err := database.Open(t.env.Databases[i], opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.env.Name(), err)
		}
		plan = append(plan, dbRestore{from, db})
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

// restoreDatabases replaces each target database with its dump, one after
// the other; the first failure stops the restore (that database is left
// as it was; those before it are restored, and the error says which).
func (a *app) restoreDatabases(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, plan []dbRestore, pairs []rewrite.Pair, o restoreOptions) error {
	if len(plan) > 0 && len(pairs) > 0 {
		for _, p := range pairs {
			if o.json {
				jsonLine(a.stdout, rewritePairJSON{MessageType: "rewrite_pair", From: p.From, To: p.To, DryRun: o.dryRun}) //nolint:errcheck
			} else {
				fmt.Fprintf(a.stdout, "rewrite %s → %s\n", p.From, p.To)
			}
		}
	}
	errs := make([]error, len(plan))
	for i, p := range plan {
		if errs[i] = a.restoreDatabase(ctx, r, s, p, pairs, o); errs[i] != nil {
			if i > 0 && !o.dryRun {
				for j := i + 1; j < len(plan); j++ {
					errs[j] = errNotRun
				}
				return fmt.Errorf("%w%s", errs[i], swappedNote(plan, errs))
			}
			return errs[i]
		}
	}
	return nil
}

// errNotRun marks a database a restore did not get to.
var errNotRun = errors.New("not restored")

// swappedNote says, after a failure of some of a restore's databases
// (errs, one per database of plan; nil: restored), which of them were
// already swapped in and which were not: a multi-database restore is not
// one transaction.
func swappedNote(plan []dbRestore, errs []error) string {
	var done, not []string
	for i, p := range plan {
		if i < len(errs) && errs[i] == nil {
			done = append(done, p.from.Name+" → "+p.to.String())
		} else {
			not = append(not, p.from.Name)
		}
	}
	if len(done) == 0 {
		return ""
	}
	return fmt.Sprintf(". Databases already restored and swapped in: %s; left as they were: %s. Try: fix the cause and restore again (databases already restored are restored again), or restore the swapped ones from an earlier snapshot to undo them",
		strings.Join(done, ", "), strings.Join(not, ", "))
}

func (a *app) restoreDatabase(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, p dbRestore, pairs []rewrite.Pair, o restoreOptions) error {
	if o.dryRun {
		report := databaseRestoreJSON{MessageType: "database", Name: p.from.Name, Target: p.to.String(), DryRun: true,
			Tables: p.from.Tables, Rows: p.from.Rows, DumpBytes: p.from.Bytes}
		if o.json {
			return jsonLine(a.stdout, report)
		}
		fmt.Fprintf(a.stdout, "database %s → %s: would load the %s dump (%d tables, %d rows) into a scratch database beside it, check its row counts, then swap it in\n",
			p.from.Name, p.to, progress.Bytes(p.from.Bytes), p.from.Tables, p.from.Rows)
		return nil
	}
	want, err := r.Tables(ctx, s, p.from.Name)
	if err != nil {
		return err
	}
	dump, err := r.OpenDump(ctx, s, p.from.Name)
	if err != nil {
		return err
	}
	defer dump.Close()
	// What a clone noted of this database no longer holds.
	os.Remove(recordPath(r, p.to.String()))
	writeRowIndex(r, p.to, "", nil)
	if err := r.DropState(ctx, stateKey(p.to)); err != nil {
		a.log.Info("dropping what the last clone kept failed", "target", p.to.String(), "err", err)
	}
	a.log.Info("restore database", "snapshot", s.ID, "database", p.from.Name, "target", p.to.String(), "rewrite", len(pairs))
	bar := a.bar("database " + p.from.Name)
	bar.Total(0, p.from.Bytes)
	recorded := func() (cairn.DatabaseInfo, []cairn.TableStat, error) { return p.from, want, nil }
	return a.loadDatabase(ctx, p, progressReader{dump, bar}, bar, recorded, pairs, o, nil)
}

// loadDatabase replaces p.to with a dump, rewritten on its way in by pairs
// (bar shows the dump's progress and is finished before the result).
// Before the swap, recorded gives the database's record in the snapshot
// and its tables, which the loaded copy must match; an error from it
// cancels the swap. keep, if not nil, is also given the dump as it goes
// in.
func (a *app) loadDatabase(ctx context.Context, p dbRestore, dump io.Reader, bar *progress.Bar, recorded func() (cairn.DatabaseInfo, []cairn.TableStat, error), pairs []rewrite.Pair, o restoreOptions, keep io.Writer) error {
	start := time.Now()
	cat, err := a.catalog()
	if err != nil {
		return err
	}
	unlock, err := cat.LockDatabase(p.to)
	if err != nil {
		return err
	}
	defer unlock()
	in := dump
	var rewritten <-chan rewriteResult
	var rewriter io.Closer
	if len(pairs) > 0 {
		var rc io.ReadCloser
		rc, rewritten = rewriteStream(in, pairs, p.from.Engine)
		in, rewriter = rc, rc
	}
	if keep != nil {
		in = io.TeeReader(in, keep)
	}
	var differ []string
	info := p.from
	verify := func(got []cairn.TableStat) error {
		i, want, err := recorded()
		if err != nil {
			return err
		}
		info = i
		if len(pairs) > 0 {
			// Rewriting changes content, not rows: checksums cannot match.
			for i := range want {
				want[i].Checksum = ""
			}
		}
		return cairn.Expect(want, &differ)(got)
	}
	err = p.to.Replace(ctx, in, verify)
	bar.Finish()
	var rw rewriteResult
	if rewritten != nil {
		rewriter.Close() // ends the rewriter if Replace stopped reading early
		rw = <-rewritten
		if err == nil && rw.err != nil {
			err = rw.err
		}
	}
	if err != nil {
		return fmt.Errorf("restore database %s into %s: %w", p.from.Name, p.to, err)
	}
	var replaced int64
	if rw.report != nil {
		replaced = a.reportRewrite(p.from.Name, rw.report)
	}
	a.totals.addRows(info.Rows, replaced)
	if len(differ) > 0 {
		fmt.Fprintf(a.stderr, "warning: database %s: the checksum of %s differs from the one taken with the snapshot, though the row counts match: the table changed while the snapshot was taken, or data did not survive the round trip\n",
			p.from.Name, strings.Join(differ, ", "))
	}
	report := databaseRestoreJSON{MessageType: "database", Name: info.Name, Target: p.to.String(),
		Tables: info.Tables, Rows: info.Rows, DumpBytes: info.Bytes, ChecksumsDiffer: differ, DurationSec: time.Since(start).Seconds()}
	if o.json {
		return jsonLine(a.stdout, report)
	}
	fmt.Fprintf(a.stdout, "database %s restored into %s: %d tables, %d rows checked, swapped in, in %s\n",
		info.Name, p.to, info.Tables, info.Rows, time.Since(start).Round(time.Millisecond))
	return nil
}

type rewriteResult struct {
	report *rewrite.Report
	err    error
}

// rewriteStream rewrites a dump on its way to the database, streaming.
func rewriteStream(in io.Reader, pairs []rewrite.Pair, engine string) (io.ReadCloser, <-chan rewriteResult) {
	pr, pw := io.Pipe()
	done := make(chan rewriteResult, 1)
	go func() {
		w, err := rewrite.New(rewrite.Config{Pairs: pairs})
		var rep *rewrite.Report
		if err == nil {
			if engine == "mysql" {
				rep, err = w.MySQL(in, pw)
			} else {
				rep, err = w.Postgres(in, pw) // PostgreSQL, and SQLite's INSERTs
			}
		}
		pw.CloseWithError(err)
		done <- rewriteResult{rep, err}
	}()
	return pr, done
}

// reportRewrite tells what the rewrite of one database did, and returns
// the number of replacements.
func (a *app) reportRewrite(name string, rep *rewrite.Report) int64 {
	var values, matches int64
	for _, c := range rep.Counts {
		values += c.Values
		matches += c.Replacements
	}
	fmt.Fprintf(a.stderr, "database %s: rewrote %d match(es) in %d value(s)\n", name, matches, values)
	for _, u := range rep.Unsafe {
		fmt.Fprintf(a.stderr, "warning: database %s: line %d, %s.%s left as it was: %s\n", name, u.Line, u.Table, u.Column, u.Reason)
	}
	for _, u := range rep.Unparsed {
		fmt.Fprintf(a.stderr, "warning: database %s: line %d of the dump (%s) was loaded unchanged, not understood: %s. Try: check it on the target, and rewrite it there by hand\n", name, u.Line, u.Table, u.Reason)
	}
	return matches
}

// progressReader reports bytes read to a bar.
type progressReader struct {
	r   io.Reader
	bar cairn.Progress
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.bar.Done(0, int64(n))
	return n, err
}

// targetDatabases are the databases a plan replaces.
func targetDatabases(plan []dbRestore) []cairn.Database {
	out := make([]cairn.Database, len(plan))
	for i, p := range plan {
		out[i] = p.to
	}
	return out
}
