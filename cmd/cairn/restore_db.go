package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
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
	opts := database.Options{TerminateSessions: o.terminate}
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
			db, err := database.Open(dsn, opts)
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
			where = t.env.Name + " (no databases: in the config)"
		}
		if o.only == "db" {
			return nil, usagef("--only db: nowhere to restore the databases of snapshot %s to %s. Try: --database DSN (one per database: %s)", s.ShortID(), where, dbNames(s))
		}
		fmt.Fprintf(a.stderr, "note: the snapshot's database(s) %s are not restored to %s. Try: --database DSN (one per database) to restore them too\n", dbNames(s), where)
		return nil, nil
	}
	if len(t.env.Databases) < len(s.Databases) {
		return nil, fmt.Errorf("%w: snapshot %s holds %d database(s) (%s) but %s lists %d. Try: add the missing ones to its databases:, or name targets with --database NAME=DSN",
			cairn.ErrInvalidArgument, s.ShortID(), len(s.Databases), dbNames(s), t.env.Name, len(t.env.Databases))
	}
	for i, from := range s.Databases {
		db, err := database.Open(t.env.Databases[i], opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.env.Name, err)
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
// as it was; those before it are restored).
func (a *app) restoreDatabases(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, plan []dbRestore, o restoreOptions) error {
	for _, p := range plan {
		if err := a.restoreDatabase(ctx, r, s, p, o); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) restoreDatabase(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, p dbRestore, o restoreOptions) error {
	start := time.Now()
	report := databaseRestoreJSON{MessageType: "database", Name: p.from.Name, Target: p.to.String(), DryRun: o.dryRun,
		Tables: p.from.Tables, Rows: p.from.Rows, DumpBytes: p.from.Bytes}
	if o.dryRun {
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
	unlock, err := lockTarget("database " + p.to.String())
	if err != nil {
		return err
	}
	defer unlock()
	dump, err := r.OpenDump(ctx, s, p.from.Name)
	if err != nil {
		return err
	}
	defer dump.Close()
	a.log.Info("restore database", "snapshot", s.ID, "database", p.from.Name, "target", p.to.String())
	bar := a.bar("database " + p.from.Name)
	bar.Total(0, p.from.Bytes)
	var differ []string
	err = p.to.Replace(ctx, progressReader{dump, bar}, cairn.Expect(want, &differ))
	bar.Finish()
	if err != nil {
		return fmt.Errorf("restore database %s into %s: %w", p.from.Name, p.to, err)
	}
	if len(differ) > 0 {
		fmt.Fprintf(a.stderr, "warning: database %s: the checksum of %s differs from the one taken with the snapshot, though the row counts match: the table changed while the snapshot was taken, or data did not survive the round trip\n",
			p.from.Name, strings.Join(differ, ", "))
	}
	report.ChecksumsDiffer, report.DurationSec = differ, time.Since(start).Seconds()
	if o.json {
		return jsonLine(a.stdout, report)
	}
	fmt.Fprintf(a.stdout, "database %s restored into %s: %d tables, %d rows checked, swapped in, in %s\n",
		p.from.Name, p.to, p.from.Tables, p.from.Rows, time.Since(start).Round(time.Millisecond))
	return nil
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
