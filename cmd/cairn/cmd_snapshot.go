package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn"
	"github.com/cairn-backup/cairn/render"
	"github.com/cairn-backup/cairn/repo"
)

type snapshotOptions struct {
	exclude []string
	json    bool
	noDB    bool
}

func (a *app) snapshotCommand() *cobra.Command {
	var o snapshotOptions
	cmd := &cobra.Command{
		Use:   "snapshot SITE/ENV | PATH",
		Short: "Snapshot an environment from the config, or a directory",
		Long: `Snapshot an environment defined in the config (SITE/ENV), or any directory
(PATH). A directory that is an environment's files in the config is recorded
as that environment; any other is recorded as site = the directory's name,
environment = this host's name.

An environment's databases: are dumped into the same snapshot, streamed
(no temporary files), each with its tables' row counts and checksums. A
PATH holding WordPress, Drupal, Laravel or Elgg has its database found in
the application's own configuration and dumped too (--no-db: files only).
The application's name and version (and WordPress plugins' and themes')
are recorded either way.

The first snapshot into the default local repository creates it.`,
		Example: "  cairn snapshot blog/production\n  cairn snapshot /var/www/html --exclude 'wp-content/cache/'\n  cairn snapshot /var/www/html --no-db",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runSnapshot(cmd.Context(), args[0], o)
		},
	}
	cmd.Flags().StringArrayVar(&o.exclude, "exclude", nil, "leave out paths matching this gitignore-style `PATTERN` (repeatable)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the snapshot as JSON")
	cmd.Flags().BoolVar(&o.noDB, "no-db", false, "snapshot files only: no databases")
	return cmd
}

// snapshotRequest resolves `cairn snapshot ARG`: SITE/ENV from the config
// (even where a directory has that name), else a directory (as its
// environment, if it is one's files). It returns what builds the request,
// which reaches another host's files when they are there.
func (a *app) snapshotRequest(arg string, o snapshotOptions) (func(context.Context) (cairn.SnapshotRequest, error), error) {
	if site, env, ok := strings.Cut(arg, "/"); ok && cairn.ValidName(site) && cairn.ValidName(env) && (a.cfg.Has(site, env) || !pathExists(arg)) {
		e, err := a.cfg.Env(site, env)
		if err != nil {
			return nil, err
		}
		if pathExists(arg) {
			fmt.Fprintf(a.stderr, "note: %s is the environment of the config, not the directory of that name here (say ./%s for that one)\n", arg, arg)
		}
		return func(ctx context.Context) (cairn.SnapshotRequest, error) {
			return a.sites.Request(ctx, e, o.exclude, o.noDB)
		}, nil
	}
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("%s is neither SITE/ENV from the config nor a directory: %w", arg, cairn.ErrNotFound)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", cairn.ErrInvalidArgument, arg)
	}
	if e, ok := a.cfg.FindByPath(arg); ok {
		return func(ctx context.Context) (cairn.SnapshotRequest, error) {
			req, err := a.sites.Request(ctx, e, o.exclude, o.noDB)
			req.Path = arg
			return req, err
		}, nil
	}
	return func(context.Context) (cairn.SnapshotRequest, error) {
		return a.sites.RequestDir(arg, shortHost(), o.exclude, o.noDB)
	}, nil
}

func (a *app) runSnapshot(ctx context.Context, arg string, o snapshotOptions) error {
	if _, err := a.catalog(); err != nil {
		return err
	}
	request, err := a.snapshotRequest(arg, o)
	if err != nil {
		return err
	}
	// The repository opens (its key derived, its indexes read) while
	// another host's files are reached and listed.
	type opened struct {
		r   *repo.Repo
		err error
	}
	repoOpened := make(chan opened, 1)
	go func() {
		r, err := a.openRepo(ctx, true)
		repoOpened <- opened{r, err}
	}()
	req, err := request(ctx)
	op := <-repoOpened
	if op.r != nil {
		defer op.r.Close(ctx)
	}
	switch {
	case err != nil:
		return err
	case op.err != nil:
		return op.err
	}
	r := op.r
	a.log.Info("snapshot", "site", req.Site, "environment", req.Environment, "path", req.Path, "exclude", req.Exclude, "databases", len(req.Databases))
	bar := a.bar("snapshot " + req.Site + "/" + req.Environment)
	snap, err := a.sites.Snapshot(ctx, r, req, bar)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("snapshot %s/%s: %w", req.Site, req.Environment, err)
	}
	for _, w := range snap.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
	if o.json {
		return render.Indented(a.stdout, render.SnapshotJSON(snap))
	}
	render.Saved(a.stdout, snap)
	return nil
}

func pathExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func shortHost() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}
