package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/actions"
	"github.com/cairn-backup/cairn/database"
	"github.com/cairn-backup/cairn/files"
	"github.com/cairn-backup/cairn/internal/targetlock"
	"github.com/cairn-backup/cairn/mysql"
	"github.com/cairn-backup/cairn/pattern"
	"github.com/cairn-backup/cairn/progress"
	"github.com/cairn-backup/cairn/repo"
	"github.com/cairn-backup/cairn/rewrite"
	"github.com/cairn-backup/cairn/site"
	"github.com/cairn-backup/cairn/webapp"
)

type restoreOptions struct {
	to, path, only, confirm        string
	exclude, preserve, databases   []string
	dryRun, json, force, terminate bool
	delete                         bool
	workers                        int
	lockWait                       time.Duration // bounds each wait of a database swap for the target's locks
	confirmed                      bool          // a protected target was confirmed already (clone)
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
	f.StringVar(&o.to, "to", "", "target: SITE/ENV from the config, or a directory")
	f.StringVar(&o.path, "path", "", "restore only this file or directory of the snapshot")
	f.StringVar(&o.only, "only", "", "restore only `files` or only the databases (db)")
	f.StringArrayVar(&o.databases, "database", nil, "restore the snapshot's databases into this `DSN` (repeatable, in order, or NAME=DSN)")
	f.BoolVar(&o.terminate, "terminate-sessions", false, "end the sessions that keep a database swap from happening (PostgreSQL: connected to the target; MySQL/MariaDB: holding its tables) instead of refusing")
	f.DurationVar(&o.lockWait, "lock-wait", mysql.DefaultLockWait, "wait at most this `DURATION` (whole seconds), three times, for the sessions using a target database's tables at the swap; the site's queries never wait longer")
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

// restoreTarget is where a restore writes.
type restoreTarget struct {
	dir  string
	env  *cairn.Environment // nil for a plain directory
	keep []string
	// protected are the environments marked protected: true that the
	// restore writes: t.env, or those whose files a directory target is,
	// holds, or lies in.
	protected []*cairn.Environment
	// deleteExtra removes what the snapshot lacks: always in an
	// environment's files, else only with --delete or in a directory
	// cairn restored into while it was empty.
	deleteExtra bool
	// pairs rewrite the databases on their way in: the source
	// environment's URL and files path become the target's.
	pairs []rewrite.Pair
}

func (a *app) restoreTarget(s *cairn.Snapshot, o restoreOptions) (restoreTarget, error) {
	var t restoreTarget
	name := o.to
	if name == "" {
		if _, err := a.cfg.Env(s.Site, s.Environment); err != nil {
			return t, usagef("snapshot %s is of %s, which is not in the config: say where to restore it with --to DIR", s.ShortID(), s.Name())
		}
		name = s.Name()
	}
	if site, env, ok := strings.Cut(name, "/"); ok && a.cfg.Sites[site] != nil && a.cfg.Sites[site].Environments[env] != nil {
		e, err := a.cfg.Env(site, env)
		if err != nil {
			return t, err
		}
		if e.Files.Path == "" || !e.Files.IsLocal() {
			return t, fmt.Errorf("%s: files %q is not a local directory; this version of cairn restores to local directories only. Try: --to DIR", e.Name(), e.Files)
		}
		t = restoreTarget{dir: e.Files.Path, env: e, keep: append(append([]string(nil), e.Exclude...), e.Preserve...), deleteExtra: true}
		dir, err := files.Resolve(t.dir)
		if err != nil {
			return t, err
		}
		t.protected = a.sites.ProtectedAt(dir)
		if e.Name() != s.Name() {
			t.pairs = append(movePairs(s, e.URL, t.dir), sitePairs(e.Replace)...)
		}
	} else {
		t.dir = name
		// What the source never captured must not be deleted either.
		if e, err := a.cfg.Env(s.Site, s.Environment); err == nil {
			t.keep = append(t.keep, e.Exclude...)
		}
		if err := a.directoryTarget(&t, o); err != nil {
			return t, err
		}
	}
	t.keep = append(append(t.keep, o.exclude...), o.preserve...)
	return t, nil
}

// directoryTarget applies to a --to DIR restore what belongs to the
// environments it writes: a directory that is an environment's files is
// restored as those files are (its keep rules, protection, deletions),
// and one that holds or lies in a protected environment's files needs
// that environment's confirmation.
func (a *app) directoryTarget(t *restoreTarget, o restoreOptions) error {
	dir, err := files.Resolve(t.dir)
	if err != nil {
		return err
	}
	exact, _ := a.sites.At(dir)
	for _, e := range exact {
		fmt.Fprintf(a.stderr, "note: %s is the files of %s; they are restored as that environment's\n", t.dir, e.Name())
		t.keep = append(append(t.keep, e.Exclude...), e.Preserve...)
		t.deleteExtra = true
	}
	t.protected = a.sites.ProtectedAt(dir)
	if o.delete {
		t.deleteExtra = true
	} else if a.sites.MadeByRestore(dir) {
		t.deleteExtra = true
	}
	return nil
}

// movePairs are the rewrites that move a snapshot's data to another
// environment: its URL, and the absolute path of its files.
func movePairs(s *cairn.Snapshot, url, dir string) []rewrite.Pair {
	var pairs []rewrite.Pair
	if s.URL != "" && url != "" && strings.TrimRight(s.URL, "/") != strings.TrimRight(url, "/") {
		pairs = append(pairs, rewrite.Pair{From: strings.TrimRight(s.URL, "/"), To: strings.TrimRight(url, "/")})
	}
	if abs, err := filepath.Abs(dir); err == nil && s.Source != "" && s.Source != abs {
		pairs = append(pairs, rewrite.Pair{From: s.Source, To: abs})
	}
	return pairs
}

// sitePairs are a site's replace: pairs.
func sitePairs(list []cairn.Replacement) []rewrite.Pair {
	out := make([]rewrite.Pair, 0, len(list))
	for _, r := range list {
		out = append(out, rewrite.Pair{From: r.From, To: r.To})
	}
	return out
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
	r, s, err := a.pickFor(ctx, sel, true)
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	t, err := a.restoreTarget(s, o)
	if err != nil {
		return err
	}
	return a.restoreSnapshot(ctx, r, s, t, o)
}

// restorable refuses a restore that needs what a damaged snapshot lost,
// saying what is lost; a part of it that lost nothing (--path, or only
// the files or only the databases) restores.
func restorable(s *cairn.Snapshot, o restoreOptions) error {
	var hit []string
	for _, p := range s.Damaged {
		db := strings.HasPrefix(p, "database ") || p == "databases"
		switch {
		case db && o.only == "files", !db && o.only == "db":
		case !db && o.path != "" && !pathsOverlap(p, strings.Trim(o.path, "/")):
		default:
			hit = append(hit, p)
		}
	}
	if len(hit) == 0 {
		return nil
	}
	return fmt.Errorf("%w: snapshot %s is damaged: lost %s. Try: restore another snapshot (cairn snapshots), or only what it kept (--path P, --only files|db)",
		cairn.ErrDamaged, s.ShortID(), strings.Join(hit, ", "))
}

// pathsOverlap: one of a and b is the other or inside it ("/" is the root).
func pathsOverlap(a, b string) bool {
	if a == "/" || b == "" || a == b {
		return true
	}
	return strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// restoreSnapshot writes a snapshot onto a target: databases first (with
// t's rewrites), then files.
func (a *app) restoreSnapshot(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, t restoreTarget, o restoreOptions) error {
	if err := restorable(s, o); err != nil {
		return err
	}
	if !o.dryRun && !o.confirmed {
		for _, e := range t.protected {
			if err := a.confirmProtected(e.Name(), o); err != nil {
				return err
			}
		}
	}
	var after []cairn.Action
	if t.env != nil {
		after = t.env.AfterRestore
	}
	dbs, err := a.databaseTargets(s, t, o)
	if err != nil {
		return err
	}
	if !o.dryRun && !o.confirmed {
		// A database named by --database may be a protected one's.
		for _, e := range a.sites.ProtectedDatabases(targetDatabases(dbs), t.protected) {
			if err := a.confirmProtected(e.Name(), o); err != nil {
				return err
			}
		}
	}
	if o.only != "db" {
		// The files' guard first: a refused target leaves the databases
		// as they were too.
		dir, err := files.Resolve(t.dir)
		if err != nil {
			return err
		}
		if _, err := a.sites.Guard(dir); err != nil {
			return err
		}
	}
	if err := a.restoreDatabases(ctx, r, s, dbs, t.pairs, o); err != nil {
		return err
	}
	if o.only == "db" {
		return a.afterRestore(ctx, t, after, o)
	}
	keep, rel, err := a.restoreFiles(ctx, r, s, t, o)
	if err != nil {
		return err
	}
	if rel != "" {
		if len(after) > 0 {
			fmt.Fprintln(a.stderr, "note: after_restore actions are not run for a --path restore")
		}
		return nil
	}
	if err := a.configureApp(s, t, keep, o); err != nil {
		return err
	}
	return a.afterRestore(ctx, t, after, o)
}

// restoreFiles writes the snapshot's files (or o.path) onto the target,
// keeping t.keep; it returns t.keep compiled, and o.path as found in the
// snapshot ("" for the whole tree).
func (a *app) restoreFiles(ctx context.Context, r *repo.Repo, s *cairn.Snapshot, t restoreTarget, o restoreOptions) (keep pattern.Set, rel string, err error) {
	keep, err = pattern.Compile(t.keep...)
	if err != nil {
		return keep, rel, fmt.Errorf("%w: %v", cairn.ErrInvalidArgument, err)
	}
	root, err := r.Root(ctx, s)
	if err != nil {
		return keep, rel, err
	}
	src, rel, err := lookup(ctx, root, o.path)
	if err != nil {
		return keep, rel, fmt.Errorf("--path %s in snapshot %s: %w", o.path, s.ShortID(), err)
	}
	dir, err := files.Resolve(t.dir)
	if err != nil {
		return keep, rel, err
	}
	protect, err := a.sites.Guard(dir)
	if err != nil {
		return keep, rel, err
	}
	ids := a.sites.OwnIDs()
	unlock, err := a.sites.Lock(dir, targetlock.Write)
	if err != nil {
		return keep, rel, err
	}
	defer unlock()
	made := false
	if !o.dryRun {
		made = site.IsEmptyDir(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return keep, rel, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	var target files.Target = files.Missing(dir)
	if !o.dryRun || pathExists(dir) {
		l, err := files.OpenLocal(dir)
		if err != nil {
			return keep, rel, fmt.Errorf("open %s: %w", t.dir, err)
		}
		defer l.Close()
		if l.Root() != dir { // a link swapped in since it was checked and locked
			return keep, rel, fmt.Errorf("open %s: it now leads to %s, not %s: %w", t.dir, l.Root(), dir, files.ErrNotDir)
		}
		l.Keep(ids)
		target = l
	}
	if made {
		a.sites.NoteMadeByRestore(dir) //nolint:errcheck // without the record, the next restore there only keeps extras
	}
	a.log.Info("restore", "snapshot", s.ID, "path", rel, "target", dir, "keep", t.keep, "dry_run", o.dryRun)
	start := time.Now()
	bar := a.bar("restore " + s.ShortID())
	if rel == "" {
		bar.Total(s.Files, s.Bytes)
	}
	links, err := r.HardLinks(ctx, s)
	if err != nil {
		return keep, rel, err
	}
	opts := files.Options{Keep: keep, Delete: t.deleteExtra || made, Protect: protect, ProtectIDs: ids, HardLinks: links, DryRun: o.dryRun, Workers: o.workers, Progress: bar}
	if o.dryRun {
		opts.OnChange = a.printChange(o.json)
	}
	st, err := files.Restore(ctx, src, target, rel, opts)
	bar.Finish()
	if err != nil {
		return keep, rel, fmt.Errorf("restore %s to %s: %w", s.ShortID(), t.dir, err)
	}
	if !o.dryRun {
		a.totals.addFiles(st)
	}
	return keep, rel, a.restoreSummary(s, t.dir, st, o, time.Since(start))
}

// configureApp points a copy restored onto another environment at that
// environment's database and URL, in the application's own configuration,
// unless the target keeps its own (preserve:).
func (a *app) configureApp(s *cairn.Snapshot, t restoreTarget, keep pattern.Set, o restoreOptions) error {
	if t.env == nil {
		return nil
	}
	kept := func(file string) bool { return keep.Match(file, false) }
	var changes []webapp.Change
	if t.env.Name() != s.Name() {
		c, err := a.pointApp(t, kept, o)
		if err != nil {
			return err
		}
		changes = c
	}
	var rules []webapp.Setting
	for _, r := range t.env.Settings {
		rules = append(rules, webapp.Setting{File: r.File, Key: r.Key, Value: r.Value})
	}
	c, err := webapp.Set(t.dir, rules, kept, o.dryRun)
	changes = append(changes, c...)
	a.printChanges(changes, o)
	if err != nil {
		return fmt.Errorf("%s: %w. Try: fix the config: rule in %s", t.env.Name(), err, a.cfg.File)
	}
	return nil
}

// pointApp points the application's own configuration at the target.
func (a *app) pointApp(t restoreTarget, kept func(string) bool, o restoreOptions) ([]webapp.Change, error) {
	target := webapp.Target{URL: t.env.URL}
	if len(t.env.Databases) > 0 {
		target.Database = t.env.Databases[0].Reveal()
	}
	changes, err := webapp.Configure(t.dir, target, kept, o.dryRun)
	if errors.Is(err, webapp.ErrUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("configure the copy in %s: %w. Try: set it by hand, or keep the target's own with preserve: [/wp-config.php] (or /.env)", t.dir, err)
	}
	return changes, nil
}

func (a *app) printChanges(changes []webapp.Change, o restoreOptions) {
	verb := "set"
	if o.dryRun {
		verb = "would set"
	}
	for _, c := range changes {
		if o.json {
			jsonLine(a.stdout, map[string]any{"message_type": "config_change", "file": c.File, "key": c.Key, "value": c.Value, "dry_run": o.dryRun}) //nolint:errcheck
			continue
		}
		fmt.Fprintf(a.stdout, "%s %s %s = %s\n", c.File, verb, c.Key, c.Value)
	}
}

// afterRestore runs the target environment's after_restore: actions (or
// prints them, in a dry run).
func (a *app) afterRestore(ctx context.Context, t restoreTarget, list []actions.Action, o restoreOptions) error {
	if len(list) == 0 {
		return nil
	}
	report := func(act actions.Action, verb string) {
		if o.json {
			jsonLine(a.stdout, map[string]any{"message_type": "action", "action": act.String(), "dry_run": o.dryRun}) //nolint:errcheck
			return
		}
		fmt.Fprintf(a.stdout, "after_restore %s: %s\n", act, verb)
	}
	if o.dryRun {
		for _, act := range list {
			report(act, "would "+act.Describe())
		}
		return nil
	}
	target := actions.Target{Name: t.env.Name(), URL: t.env.URL, Dir: t.dir, DSNs: t.env.Databases}
	for _, dsn := range t.env.Databases {
		db, err := database.Open(dsn, database.Options{})
		if err != nil {
			return err
		}
		target.Databases = append(target.Databases, db)
	}
	return actions.Run(ctx, target, list, func(act actions.Action) { report(act, "done") })
}

func (a *app) printChange(asJSON bool) func(files.Change) {
	marks := map[files.Op]string{files.OpAdd: "+", files.OpUpdate: "~", files.OpMeta: "*", files.OpDelete: "-"}
	return func(c files.Change) {
		if asJSON {
			jsonLine(a.stdout, changeJSON{MessageType: "change", Op: string(c.Op), Path: c.Path, PathBytes: rawBytes(c.Path), Size: c.Size, Dir: c.Dir}) //nolint:errcheck
			return
		}
		name := c.Path
		if c.Dir {
			name += "/"
		}
		if c.Size > 0 {
			fmt.Fprintf(a.stdout, "%s %s (%s)\n", marks[c.Op], name, progress.Bytes(c.Size))
		} else {
			fmt.Fprintf(a.stdout, "%s %s\n", marks[c.Op], name)
		}
	}
}

func (a *app) restoreSummary(s *cairn.Snapshot, dir string, st files.Stats, o restoreOptions, took time.Duration) error {
	if n := len(st.Unsafe); n > 0 {
		fmt.Fprintf(a.stderr, "warning: %d file(s) restored without their setuid/setgid bit, because ownership is not restored: %s\n", n, strings.Join(firstN(st.Unsafe, 5), ", "))
	}
	if o.json {
		return jsonLine(a.stdout, restoreSummaryJSON{MessageType: "summary", Snapshot: s.ID, Target: dir, DryRun: o.dryRun,
			Added: st.Added, Updated: st.Updated, Meta: st.Meta, Deleted: st.Deleted, Unchanged: st.Unchanged,
			Extra: st.Extra, BytesWritten: st.BytesWritten, DurationSec: took.Seconds()})
	}
	verb := "restored"
	if o.dryRun {
		verb = "would restore"
	}
	fmt.Fprintf(a.stdout, "%s snapshot %s (%s, %s) to %s: %d added, %d updated, %d attributes fixed, %d deleted, %d unchanged; %s written in %s\n",
		verb, s.ShortID(), s.Name(), s.Time.Local().Format("2006-01-02 15:04"), dir, st.Added, st.Updated, st.Meta,
		st.Deleted, st.Unchanged, progress.Bytes(st.BytesWritten), took.Round(time.Millisecond))
	if st.Extra > 0 {
		fmt.Fprintf(a.stdout, "%d entries the snapshot lacks were left in %s; add --delete to remove them\n", st.Extra, dir)
	}
	return nil
}

func firstN(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(append([]string(nil), list[:n]...), fmt.Sprintf("and %d more", len(list)-n))
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
