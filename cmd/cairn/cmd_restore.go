package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/clone"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/restore"
)

type restoreOptions struct {
	to, path, only, confirm        string
	exclude, preserve, databases   []string
	dryRun, json, force, terminate bool
	delete                         bool
	workers                        int
	lockWait                       time.Duration // bounds each wait of a database swap for the target's locks
}

func (a *app) restoreCommand() *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SITE/ENV@SEL | ID",
		Short: "Restore a snapshot onto its environment, another one, or a directory",
		Long: `Restore a snapshot. SEL is latest, a snapshot ID (or unique prefix), or a
time (2026-11-01, 2026-11-01T14:30) meaning the newest snapshot at or before it.

Without --to, the snapshot goes back onto its own environment (a rollback).
--to names another environment from the config or a directory. Only files
that differ are written, each atomically; files the snapshot lacks are
removed, except paths the target's exclude: and preserve: lists (and
--exclude/--preserve) name. An interrupted restore is finished by running
the same command again. --dry-run prints the plan and changes nothing.

The snapshot's databases are restored first, onto the target
environment's databases: (in order) or the --database DSNs: each dump is
loaded into a scratch database on the target server, its row counts are
checked against the snapshot, and only then is it swapped in (MySQL and
MariaDB: one atomic RENAME TABLE; PostgreSQL: database renames; SQLite:
a file rename). A load that fails or is interrupted leaves the target
database as it was. A restore to a plain directory restores files only,
unless --database is given.`,
		Example: "  cairn restore blog/production@latest --to /tmp/blog\n  cairn restore blog/production@2026-11-01 --path wp-content/themes --dry-run\n  cairn restore blog/production@latest --to blog/staging --only db\n  cairn restore 3f2a9c1b --to ./copy --database mysql://root@127.0.0.1/copy",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target: SITE/ENV from the config, a directory, or ssh://[user@]host[:port]/path")
	f.StringVar(&o.path, "path", "", "restore only this file or directory of the snapshot")
	f.StringVar(&o.only, "only", "", "restore only `files` or only the databases (db)")
	f.StringArrayVar(&o.databases, "database", nil, "restore the snapshot's databases into this `DSN` (repeatable, in order, or NAME=DSN)")
	f.BoolVar(&o.terminate, "terminate-sessions", false, "end the sessions that keep a database swap from happening (PostgreSQL: connected to the target; MySQL/MariaDB: holding its tables) instead of refusing")
	f.DurationVar(&o.lockWait, "lock-wait", database.DefaultLockWait, "wait at most this `DURATION` (whole seconds), three times, for the sessions using a target database's tables at the swap; the site's queries never wait longer")
	f.StringArrayVar(&o.exclude, "exclude", nil, "never write nor delete paths matching `PATTERN`")
	f.StringArrayVar(&o.preserve, "preserve", nil, "keep the target's own paths matching `PATTERN`")
	f.BoolVar(&o.delete, "delete", false, "with --to DIR: remove what the snapshot lacks (always done for an environment's files, and for a directory an earlier restore made)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print what would change, change nothing")
	f.BoolVar(&o.json, "json", false, "print changes (with --dry-run) and a summary as JSON lines")
	f.BoolVar(&o.force, "force", false, "allow restoring onto a protected environment (asks to confirm)")
	f.StringVar(&o.confirm, "confirm", "", "confirm a protected target without a prompt, by its `SITE/ENV` name")
	f.IntVar(&o.workers, "parallel", 8, "files written at once")
	return cmd
}

// engine is the restore engine over the repository r.
func (a *app) engine(r *repo.Repo) *restore.Engine {
	return &restore.Engine{Store: r, Sites: a.sites, Invalidator: clone.NewRecords(r, a.log), Log: a.log}
}

// restoreEngineOptions are the engine's options for the flags o.
func (o restoreOptions) engine() restore.Options {
	return restore.Options{Path: o.path, Only: restore.Only(o.only), Keep: append(append([]string(nil), o.exclude...), o.preserve...),
		Delete: o.delete, Databases: o.databases, DryRun: o.dryRun, Workers: o.workers, TerminateSessions: o.terminate, LockWait: o.lockWait}
}

// restoreTarget is where --to (or, without it, the snapshot's own
// environment) says to restore s: an environment, or a directory.
func (a *app) restoreTarget(s *cairn.Snapshot, to string) (restore.Target, error) {
	if to == "" {
		if _, err := a.cfg.Env(s.Site, s.Environment); err != nil {
			return restore.Target{}, usagef("snapshot %s is of %s, which is not in the config: say where to restore it with --to DIR", s.ShortID(), s.Name())
		}
		to = s.Name()
	}
	if site, env, ok := strings.Cut(to, "/"); ok && a.cfg.Has(site, env) {
		e, err := a.cfg.Target(site, env)
		return restore.Target{Env: e}, err
	}
	return restore.Target{Dir: to}, nil
}

func (a *app) runRestore(ctx context.Context, sel string, o restoreOptions) error {
	switch o.only {
	case "", "files", "db":
	default:
		return usagef("--only takes files or db, not %q", o.only)
	}
	if _, err := a.catalog(); err != nil {
		return err
	}
	a.warmTarget(ctx, sel, o)
	r, s, err := a.pickFor(ctx, sel, true)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	t, err := a.restoreTarget(s, o.to)
	if err != nil {
		return err
	}
	e := a.engine(r)
	plan, err := e.Plan(ctx, s, t, o.engine())
	if err != nil {
		return err
	}
	rep := a.renderer(o.json)
	// Said before any confirmation: they tell what the target is.
	for _, n := range plan.Notices {
		rep.Event(cairn.Notice{Message: n})
	}
	plan.Notices = nil
	if !o.dryRun {
		for _, env := range plan.Protected {
			if err := a.confirmProtected(env.Name(), o); err != nil {
				return err
			}
		}
	}
	return e.Run(ctx, plan, rep)
}

// warmTarget starts reaching the target's files on other hosts (and
// listing them) while the repository opens, when the target is known
// before the snapshot is: --to, or SITE/ENV@SEL. It writes nothing there.
func (a *app) warmTarget(ctx context.Context, sel string, o restoreOptions) {
	if o.path != "" || o.only == "db" {
		return // not the whole tree
	}
	to := o.to
	if to == "" {
		to, _, _ = strings.Cut(sel, "@")
	}
	if site, env, ok := strings.Cut(to, "/"); ok && a.cfg.Has(site, env) {
		if e, err := a.cfg.Env(site, env); err == nil {
			a.sites.Warm(ctx, e)
		}
	}
}

// confirmProtected asks for --force and the environment's name typed back.
func (a *app) confirmProtected(name string, o restoreOptions) error {
	if !o.force {
		return fmt.Errorf("%s: %w. Try: --dry-run to see the plan; to really overwrite it add --force and confirm", name, cairn.ErrProtected)
	}
	if o.confirm != "" {
		if o.confirm != name {
			return fmt.Errorf("%s: %w: --confirm %q does not match. Try: --confirm %s", name, cairn.ErrProtected, o.confirm, name)
		}
		return nil
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !progress.IsTerminal(f) {
		return fmt.Errorf("%s: %w and there is no terminal to confirm on. Try: --force --confirm %s", name, cairn.ErrProtected, name)
	}
	fmt.Fprintf(a.stderr, "%s is protected. Type its name to overwrite it: ", name)
	line, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("%s: %w: confirmation did not match; nothing was changed", name, cairn.ErrProtected)
	}
	return nil
}
