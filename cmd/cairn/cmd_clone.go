package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/clone"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/repo"
)

type cloneOptions struct {
	from, confirm             string
	dryRun, json, force, noSS bool
	terminate                 bool
	lockWait                  time.Duration
}

func (a *app) cloneCommand() *cobra.Command {
	var o cloneOptions
	cmd := &cobra.Command{
		Use:   "clone SITE/SRC SITE/DST",
		Short: "Make one environment an exact, working copy of another",
		Long: `Clone snapshots the source environment (or, with --from, uses one of its
snapshots), then restores it onto the target: each database is loaded into
a scratch database with the source's URL and files path rewritten to the
target's (PHP-serialized and JSON data included), checked and swapped in;
the files are synced by difference, keeping the target's preserve: and
exclude: paths. Before touching the target, cairn snapshots it (a safety
snapshot to roll back to; --no-safety-snapshot skips it). The source is
only read. A protected target needs --force and its name typed back (or
--confirm SITE/DST). --dry-run prints the plan.

A fresh clone runs side by side: the dump streams into the repository and
into the scratch database at once, and the files are copied while they
are snapshotted; nothing is swapped in before both snapshots are complete.
A MySQL/MariaDB target that the last clone left untouched gets only the
rows that changed, in one transaction (see the README).`,
		Example: "  cairn clone blog/production blog/staging\n  cairn clone blog/production blog/staging --from 2026-11-01 --dry-run",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runClone(cmd.Context(), args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "clone this snapshot of the source (`SEL`: latest, an ID, a time) instead of a fresh one")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan, change nothing")
	f.BoolVar(&o.json, "json", false, "print the plan or the changes as JSON lines")
	f.BoolVar(&o.noSS, "no-safety-snapshot", false, "do not snapshot the target before overwriting it")
	f.BoolVar(&o.force, "force", false, "allow a protected target (asks to confirm)")
	f.StringVar(&o.confirm, "confirm", "", "confirm a protected target without a prompt, by its `SITE/ENV` name")
	f.BoolVar(&o.terminate, "terminate-sessions", false, "end the sessions that keep a database swap from happening (PostgreSQL: connected to the target; MySQL/MariaDB: holding its tables)")
	f.DurationVar(&o.lockWait, "lock-wait", database.DefaultLockWait, "wait at most this `DURATION` (whole seconds), three times, for the sessions using a target database's tables at the swap")
	return cmd
}

func (a *app) runClone(ctx context.Context, srcName, dstName string, o cloneOptions) error {
	if _, err := a.catalog(); err != nil {
		return err
	}
	src, err := a.envByName(srcName, a.cfg.Env)
	if err != nil {
		return err
	}
	dst, err := a.envByName(dstName, a.cfg.Target)
	if err != nil {
		return err
	}
	if src.Name() == dst.Name() {
		return usagef("clone %s onto itself? Try: cairn restore %s@SEL to roll it back", src.Name(), src.Name())
	}
	if !o.dryRun {
		protected, err := clone.Protected(a.sites, dst)
		if err != nil {
			return err
		}
		ro := restoreOptions{force: o.force, confirm: o.confirm}
		for _, e := range protected {
			if err := a.confirmProtected(e.Name(), ro); err != nil {
				return err
			}
		}
	}
	r, err := a.openRepo(ctx, true)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	c := a.cloner(r)
	if !o.dryRun {
		defer a.startBoard("clone " + src.Name() + " → " + dst.Name())()
	}
	return c.Run(ctx, src, dst, clone.Options{From: o.from, DryRun: o.dryRun, NoSafety: o.noSS, TerminateSessions: o.terminate, LockWait: o.lockWait}, a.renderer(o.json))
}

// cloner is the clone engine over the repository r.
func (a *app) cloner(r *repo.Repo) *clone.Cloner {
	return &clone.Cloner{Repo: r, Sites: a.sites, Restore: a.engine(r), Records: clone.NewRecords(r, a.log), Log: a.log, Version: cairn.Version}
}

// envByName finds SITE/ENV in the config with get (Env, or Target for
// what a clone writes).
func (a *app) envByName(name string, get func(site, env string) (*cairn.Environment, error)) (*cairn.Environment, error) {
	site, env, ok := strings.Cut(name, "/")
	if !ok {
		return nil, usagef("%q is not SITE/ENV", name)
	}
	return get(site, env)
}
